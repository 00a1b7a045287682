"""Peak memory and time of one 12 MP prediction: maskdesk's Predictor against the seed's way.

    python benchmarks/predict_memory.py [--width 4000 --height 3000] [--only ours|seed]

The model is the biased, untrained torchvision Mask R-CNN of the tests (100 detections) at
the real models' input size (min_size 800, max_size 1333, 1000 proposals). The picture is
a sample photo resized to WIDTH x HEIGHT and saved as JPEG; both sides decode it with
core.images.load_rgb before their clocks start.

- ours: `Predictor.predict(rgb)` (compact masks: each 28x28 mask resized into its own box).
- seed: the tutorial's pipeline: `to_tensor`, `torch.no_grad()`, the model with
  torchvision's post-processing (every mask pasted into a full-frame float32 frame),
  `(masks > 0.5).squeeze().numpy()`, then `masks[scores >= 0.5]`.

Each runs in its own child process, which reports its own peak RSS (VmHWM) and the RSS
just before the measured step. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "resources" / "samples" / "coffee.jpg"


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(which: str, image: Path) -> None:
    import torch
    from torchvision.transforms.functional import to_tensor

    from maskdesk.core.images import load_rgb
    from maskdesk.inference.predictor import Predictor
    from tests.biased_model import build_biased_model

    loaded = build_biased_model(min_size=800, max_size=1333, proposals=None)
    rgb = load_rgb(image)
    if which == "ours":
        predictor = Predictor(loaded, device="cpu")
        before = _status_kib("VmRSS")
        started = time.perf_counter()
        instances = predictor.predict(rgb)
        seconds = time.perf_counter() - started
        detections = len(instances)
        kept_bytes = sum(i.mask.bits.nbytes for i in instances)
    else:
        model = loaded.model.eval()
        before = _status_kib("VmRSS")
        started = time.perf_counter()
        img_tensor = to_tensor(rgb)
        with torch.no_grad():
            pred = model([img_tensor])
        pred_data = pred[0]
        scores = pred_data["scores"].detach().cpu().numpy()
        masks = (pred_data["masks"] > 0.5).squeeze().detach().cpu().numpy()
        valid = scores >= 0.5
        kept = masks[valid]
        seconds = time.perf_counter() - started
        detections = len(scores)
        kept_bytes = int(kept.nbytes)
    print(
        json.dumps(
            {
                "which": which,
                "detections": detections,
                "seconds": seconds,
                "rss_before_mib": before / 1024,
                "peak_rss_mib": _status_kib("VmHWM") / 1024,
                "mask_bytes_kept_mib": kept_bytes / 2**20,
                "threads": torch.get_num_threads(),
            }
        )
    )


def make_picture(path: Path, width: int, height: int) -> None:
    from PIL import Image

    with Image.open(SAMPLE) as im:
        im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC).save(path, quality=92)


def run_child(which: str, image: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--image", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{which} child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--only", choices=["ours", "seed"])
    parser.add_argument("--child", choices=["ours", "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.image)
        return

    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "photo.jpg"
        make_picture(image, args.width, args.height)
        print(f"picture: {args.width} x {args.height} ({args.width * args.height / 1e6:.1f} MP)")
        results = {}
        for which in ("ours", "seed"):
            if args.only and which != args.only:
                continue
            r = results[which] = run_child(which, image)
            added = r["peak_rss_mib"] - r["rss_before_mib"]
            print(
                f"{which:>4}: {int(r['detections'])} detections, {r['seconds']:.2f} s, "
                f"peak RSS {r['peak_rss_mib']:,.0f} MiB (before the step "
                f"{r['rss_before_mib']:,.0f} MiB, the step added {added:,.0f} MiB), "
                f"masks kept {r['mask_bytes_kept_mib']:,.1f} MiB, {int(r['threads'])} threads"
            )
    if len(results) == 2:
        ours, seed = results["ours"], results["seed"]
        print(
            f"peak RSS: seed / ours = {seed['peak_rss_mib'] / ours['peak_rss_mib']:.1f}x lower; "
            f"time: seed / ours = {seed['seconds'] / ours['seconds']:.2f}x"
        )


if __name__ == "__main__":
    main()
