"""Peak memory and time of `maskdesk merge` over 100,000 image records, against a naive merge.

    python benchmarks/merge_memory.py [--images 100000 --files 8] [--only ours|naive]

The part files are generated as `maskdesk predict` writes them (core.parts.PartWriter): 640 x 480
images, 0 to 5 instances each (3 on average) from a pool of 48 ellipses 12 to 180 pixels wide
encoded once, about 1 % failed images and 1 % retried ones (a failure, then a success in a later
file), spread over FILES part files.

- ours: `core.parts_merge.merge` (two passes; only a per-path index in memory).
- naive: what one writes first: every line loaded (`json.loads`), the last success per path
  kept, every record turned into instances (`parts.instances_of`), `build_coco` over all the
  images and `write_coco` of the whole dict.

Each runs in its own child process and reports its peak RSS (VmHWM) and its RSS after imports;
the parent also reads ru_maxrss of its children. The two output files must be byte-identical
apart from `info.date_created`. Not part of the test run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "coco-v1"
WIDTH, HEIGHT = 640, 480


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def generate(parts: Path, images: int, files: int) -> int:
    """Write the part files; returns the number of records written."""
    import cv2
    import numpy as np

    from maskdesk.core.categories import Category
    from maskdesk.core.masks import CropMask
    from maskdesk.core.parts import PartWriter, header

    rng = np.random.default_rng(15)
    pool = []
    for _ in range(48):
        w, h = int(rng.integers(12, 181)), int(rng.integers(12, 161))
        x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
        bits = np.zeros((h, w), dtype=np.uint8)
        cv2.ellipse(bits, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 1, cv2.FILLED)
        rle = CropMask(x, y, bits.astype(bool)).to_rle(WIDTH, HEIGHT)
        pool.append((rle, [float(x), float(y), float(x + w), float(y + h)]))
    names = ["person", "bicycle", "car", "dog", "cat", "chair"]
    categories = [Category(i + 1, n) for i, n in enumerate(names)]
    counts = rng.integers(0, 6, images)
    shapes = rng.integers(0, len(pool), (images, 5))
    scores = rng.integers(5, 100, (images, 5)) / 100
    fate = rng.random(images)  # < 0.01 failed; < 0.02 failed first, then retried
    writers = [
        PartWriter(parts / f"part-host{i}-{1000 + i}.jsonl", header(MODEL, categories, "/data"))
        for i in range(files)
    ]
    written = 0
    for i in range(images):
        path = f"batch{i % 97:02d}/img{i}.jpg"
        writer = writers[i % files]
        if fate[i] < 0.02:
            failure = {"path": path, "model": MODEL, "error": "CUDA out of memory; retry"}
            writer.write(failure)
            written += 1
            if fate[i] < 0.01:
                continue
            writer = writers[(i + 1) % files]
        instances = [
            {
                "category": names[(i + k) % len(names)],
                "score": float(scores[i, k]),
                "segmentation": pool[shapes[i, k]][0],
                "box": pool[shapes[i, k]][1],
            }
            for k in range(int(counts[i]))
        ]
        record = {
            "path": path,
            "width": WIDTH,
            "height": HEIGHT,
            "model": MODEL,
            "instances": instances,
        }
        writer.write(record)
        written += 1
    for writer in writers:
        writer.close()
    return written


def naive_merge(parts: Path, output: Path, min_score: float) -> tuple[int, int]:
    from maskdesk.core.categories import Category
    from maskdesk.core.coco import CocoImage, build_coco, write_coco
    from maskdesk.core.images import natural_key
    from maskdesk.core.parts import instances_of

    records: dict[str, dict] = {}
    categories = None
    for file in sorted(parts.glob("*.jsonl")):
        lines = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
        categories = lines[0]["categories"]
        for record in lines[1:]:
            if "error" not in record or "error" in records.get(record["path"], {"error": ""}):
                records[record["path"]] = record
    assert categories is not None
    ids = {c["name"]: c["id"] for c in categories}
    images = [
        CocoImage(p, r["width"], r["height"], instances_of(r, ids))
        for p, r in sorted(records.items(), key=lambda item: natural_key(item[0]))
        if "error" not in r
    ]
    data = build_coco(
        images, [Category(c["id"], c["name"]) for c in categories], min_score=min_score
    )
    write_coco(data, output)
    return len(data["images"]), len(data["annotations"])


def child(which: str, parts: Path, output: Path, min_score: float) -> None:
    from maskdesk.core.parts_merge import merge

    before = _status_kib("VmRSS")
    started = time.perf_counter()
    if which == "ours":
        report = merge([parts], output, min_score=min_score)
        images, annotations = report.images, report.annotations
    else:
        images, annotations = naive_merge(parts, output, min_score)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "seconds": seconds,
                "rss_before_mib": before / 1024,
                "peak_rss_mib": _status_kib("VmHWM") / 1024,
            }
        )
    )


def run_child(which: str, parts: Path, output: Path, min_score: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--parts", str(parts)]
        + ["--output", str(output), "--score", str(min_score)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{which} child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def digest(path: Path) -> str:
    """sha256 of the file with its date_created blanked."""
    data = path.read_bytes()
    head = re.sub(rb'"date_created":"[^"]*"', b'"date_created":""', data[:400], count=1)
    return hashlib.sha256(head + data[400:]).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--score", type=float, default=0.5)
    parser.add_argument("--only", choices=["ours", "naive"])
    parser.add_argument("--child", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--parts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.parts, args.output, args.score)
        return

    with tempfile.TemporaryDirectory() as tmp:
        parts = Path(tmp) / "out.json.parts"
        started = time.perf_counter()
        records = generate(parts, args.images, args.files)
        size = sum(p.stat().st_size for p in parts.glob("*.jsonl"))
        print(
            f"parts: {records:,} records of {args.images:,} images in {args.files} files, "
            f"{size / 2**20:,.0f} MiB, generated in {time.perf_counter() - started:.0f} s"
        )
        results = {}
        # ours first: ru_maxrss of the children is a running maximum over all of them.
        for which in ("ours", "naive"):
            if args.only and which != args.only:
                continue
            output = Path(tmp) / f"{which}.json"
            r = results[which] = run_child(which, parts, output, args.score)
            r["digest"] = digest(output)  # type: ignore[assignment]
            print(
                f"{which:>5}: {int(r['images']):,} images, {int(r['annotations']):,} annotations "
                f"in {r['seconds']:.1f} s; peak RSS {r['peak_rss_mib']:,.0f} MiB (after imports "
                f"{r['rss_before_mib']:,.0f} MiB, the merge added "
                f"{r['peak_rss_mib'] - r['rss_before_mib']:,.0f} MiB); children's ru_maxrss "
                f"so far {r['ru_maxrss_mib']:,.0f} MiB; output "
                f"{output.stat().st_size / 2**20:,.0f} MiB"
            )
    if len(results) == 2:
        ours, naive = results["ours"], results["naive"]
        same = "identical" if ours["digest"] == naive["digest"] else "DIFFERENT"
        added = (naive["peak_rss_mib"] - naive["rss_before_mib"]) / (
            ours["peak_rss_mib"] - ours["rss_before_mib"]
        )
        print(
            f"peak RSS: naive / ours = {naive['peak_rss_mib'] / ours['peak_rss_mib']:.1f}x "
            f"({added:.1f}x for what the merge adds); time: naive / ours = "
            f"{naive['seconds'] / ours['seconds']:.2f}x; outputs {same} (date aside)"
        )


if __name__ == "__main__":
    main()
