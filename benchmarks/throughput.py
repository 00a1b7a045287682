"""Images per second of `maskdesk predict`: one at a time, decoding ahead, and batched.

    python benchmarks/throughput.py [--sets shapes,photos,big] [--shapes 60] [--photos 8]
                                    [--big 8] [--rounds 1] [--keep DIR]

Every mode runs on the same images in the same run, each in its own process, and the
command's own "N images predicted in S s (R images/s)" line is used: the prediction loop
and the JSON, without start-up and model loading.

- one at a time (the baseline): the same `maskdesk predict` in a child process whose file
  loop is replaced by: decode an image (core.images.load_rgb), predict it, the next; no
  thread at all.
- `python -m maskdesk predict FOLDER -o OUT --model M --no-store --decoders D --batch B`,
  the installed command, for D/B = 1/1 (one image decoded ahead: the behaviour before
  issue 15), 2/1 and 3/1 (decoded ahead on a pool; 3/1 not on `photos`, where decoding is
  about 1% of the time), 2/4 (batched; the first batch of each input shape and size pays
  the exactness check of inference/batching.py, about two batches' backbone passes).

With --rounds N the modes run N times, interleaved, and the medians are printed.

Sets: `shapes`, the fixture tiny model on N synthetic 256x256 PNGs; `photos`, a seeded
(untrained) ResNet-50 FPN Mask R-CNN in a maskdesk checkpoint on N 1024x768 JPEGs; `big`,
the tiny model on N 4000x3000 JPEGs, where decoding costs more than the model. The COCO
files of all modes are compared (without info.date_created): batching and read-ahead must
not change them. The device is named (the GPU's name with CUDA, else the CPU model) with
the load average, since this machine's cores are shared. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURE = ROOT / "tests" / "fixtures" / "shapes-tiny.pt"
SAMPLES = sorted((ROOT / "resources" / "samples").glob("*.jpg"))
MODES = [(1, 1), (2, 1), (3, 1), (2, 4)]  # (decoders, batch) of the command
RATE = re.compile(r"\(([0-9.]+) images/s\)")


def sequential(argv: list[str]) -> int:
    """Child: the same command, with the file loop replaced by decode, predict, next."""
    import maskdesk.inference.predictor as predictor_module
    from maskdesk.cli import main as cli_main
    from maskdesk.core.images import load_rgb
    from maskdesk.core.prelabel import ImageResult
    from maskdesk.inference.file_loop import _failure

    def one_at_a_time(
        predictor: Any, paths: Any, *, decode: Any = load_rgb, cancel: Any = None, **_: Any
    ) -> Iterator[ImageResult]:
        for path in paths:
            if cancel is not None and cancel():
                return
            started = time.perf_counter()
            try:
                pixels = decode(path)
                instances = predictor.predict(pixels)
            except Exception as exc:
                yield ImageResult(path, None, _failure(exc), time.perf_counter() - started)
                continue
            yield ImageResult(path, instances, None, time.perf_counter() - started, pixels)
            del pixels

    predictor_module.predict_files = one_at_a_time
    return cli_main(argv)


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cores = len(os.sched_getaffinity(0))
    return f"CPU {model}, {cores} cores (torch {torch.__version__}, no GPU)"


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _shapes(folder: Path, count: int) -> None:
    from PIL import Image

    from maskdesk.datasets.shapes import generate

    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(generate(2024, i).image).save(folder / f"{i:03d}.png")


def _photos(folder: Path, count: int, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        with Image.open(SAMPLES[i % len(SAMPLES)]) as im:
            picture = im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        pixels = np.asarray(picture).astype(np.int16)
        if i // len(SAMPLES) % 2:
            pixels = pixels[:, ::-1]
        # Sensor-like noise, so the JPEG costs what a photo's does to decode.
        pixels = pixels + rng.normal(0, 6, pixels.shape).astype(np.int16)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            folder / f"{i:03d}.jpg", quality=90
        )


def _resnet50(path: Path) -> None:
    import torch

    from maskdesk.core.categories import Category
    from maskdesk.inference.architectures import RESNET50_FPN, build_architecture
    from maskdesk.inference.checkpoints import Checkpoint, save_checkpoint

    torch.manual_seed(0)
    categories = [Category(1, "cat"), Category(2, "cup"), Category(3, "rocket")]
    model = build_architecture(RESNET50_FPN, len(categories) + 1)
    save_checkpoint(Checkpoint(RESNET50_FPN, categories, model.state_dict(), 800, 1333), path)


def _coco(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    data["info"].pop("date_created", None)
    return data


def _rate(command: list[str]) -> float:
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return float(RATE.findall(done.stderr)[-1])


def _run_set(
    name: str,
    what: str,
    folder: Path,
    model: str,
    work: Path,
    rounds: int,
    modes: list[tuple[int, int]] = MODES,
) -> list[str]:
    count = len(list(folder.iterdir()))
    print(f"{name}: {what}, {count} images", file=sys.stderr, flush=True)
    modes = [(0, 1), *modes]  # 0 decoders: the baseline, decode then predict in one thread
    rates: dict[tuple[int, int], list[float]] = {mode: [] for mode in modes}
    outputs = []
    for _ in range(rounds):  # interleaved, so that other load on the machine hits all alike
        for decoders, batch in modes:
            out = work / f"{name}-d{decoders}-b{batch}.json"
            args = [str(folder), "-o", str(out), "--model", model, "--no-store"]
            if decoders == 0:
                command = [sys.executable, __file__, "--sequential", "predict", *args]
            else:
                command = [sys.executable, "-m", "maskdesk", "predict", *args]
                command += ["--decoders", str(decoders), "--batch", str(batch)]
            rates[(decoders, batch)].append(_rate(command))
            print(f"  d{decoders} b{batch}: {rates[(decoders, batch)][-1]:.2f}", file=sys.stderr)
            outputs.append(_coco(out))
    base = statistics.median(rates[(0, 1)])
    lines = [f"\n{name}: {what}, {count} images", f"{'mode':<50}{'images/s':>10}{'ratio':>8}"]
    for decoders, batch in modes:
        rate = statistics.median(rates[(decoders, batch)])
        if decoders == 0:
            label = "one at a time (decode, then predict; no thread)"
        else:
            label = f"predict --decoders {decoders} --batch {batch}"
            label += " (as before)" if (decoders, batch) == (1, 1) else ""
        lines.append(f"{label:<50}{rate:>10.2f}{rate / base:>8.2f}")
    same = all(o == outputs[0] for o in outputs[1:])
    annotations = len(outputs[0]["annotations"])  # type: ignore[arg-type]
    lines.append(
        f"COCO files of all modes identical: {'yes' if same else 'NO'} ({annotations} annotations)"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs of every mode; medians (1)")
    parser.add_argument("--sets", default="shapes,photos,big")
    parser.add_argument("--shapes", type=int, default=60, help="256x256 shapes images (60)")
    parser.add_argument("--photos", type=int, default=8, help="1024x768 JPEGs (8)")
    parser.add_argument("--big", type=int, default=8, help="4000x3000 JPEGs (8)")
    parser.add_argument("--keep", type=Path, help="build the images and models here and keep them")
    if sys.argv[1:2] == ["--sequential"]:
        return sequential(sys.argv[2:])
    args = parser.parse_args()
    sets = args.sets.split(",")
    with tempfile.TemporaryDirectory(prefix="maskdesk-throughput-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        load_before = _load()
        lines = [f"device: {_device()}"]
        if "shapes" in sets:
            _shapes(work / "shapes", args.shapes)
            lines += _run_set(
                "shapes",
                "fixture tiny model, 256x256 PNG",
                work / "shapes",
                str(FIXTURE),
                work,
                args.rounds,
            )
        if "photos" in sets:
            _photos(work / "photos", args.photos, 1024, 768)
            _resnet50(work / "resnet50.pt")
            lines += _run_set(
                "photos",
                "seeded ResNet-50 FPN (800/1333), 1024x768 JPEG",
                work / "photos",
                str(work / "resnet50.pt"),
                work,
                args.rounds,
                [mode for mode in MODES if mode != (3, 1)],  # decoding is 1% of the time
            )
        if "big" in sets:
            _photos(work / "big", args.big, 4000, 3000)
            lines += _run_set(
                "big",
                "fixture tiny model, 4000x3000 JPEG",
                work / "big",
                str(FIXTURE),
                work,
                args.rounds,
            )
        lines.append(
            f"\nload average {load_before} at the start, {_load()} at the end; "
            f"{time.perf_counter() - started:.0f} s in all"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
