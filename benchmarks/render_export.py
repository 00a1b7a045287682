"""Overlay rendering and COCO export speed, against the seed's way, in one script.

    python benchmarks/render_export.py [--repeat 3]

1. 50 instances on a 12 MP (4000 x 3000) picture: `render_overlay` against the seed-style
   loop (per instance: three full-frame colour channels filled under a full-frame bool mask,
   one full-frame `cv2.addWeighted`, then `cv2.rectangle` and `cv2.putText`). The seed's
   full-frame bool masks come from its model output, so they are made before its clock starts.
2. `export_coco` of 10,000 instances (100 images of 1000 x 750, 100 instances each), with
   compressed RLE and with polygons; `read_coco` of each file for reference.

Prints best-of-N times and ratios. Not part of the test run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maskdesk.core.categories import Category, CategoryTable  # noqa: E402
from maskdesk.core.coco import CocoImage, export_coco  # noqa: E402
from maskdesk.core.coco_read import read_coco  # noqa: E402
from maskdesk.core.instances import Instance  # noqa: E402
from maskdesk.core.masks import CropMask  # noqa: E402
from maskdesk.core.render import render_overlay  # noqa: E402


def elliptical_instances(
    rng: np.random.Generator, count: int, height: int, width: int, lo: float, hi: float
) -> list[Instance]:
    """Instances with boxes of lo..hi of each side and an ellipse filling each box."""
    out = []
    for _ in range(count):
        w = int(rng.uniform(lo, hi) * width)
        h = int(rng.uniform(lo, hi) * height)
        x = int(rng.integers(0, width - w))
        y = int(rng.integers(0, height - h))
        bits = np.zeros((h, w), dtype=np.uint8)
        cv2.ellipse(bits, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 1, cv2.FILLED)
        score = float(rng.uniform(0.5, 1.0))
        out.append(Instance(int(rng.integers(1, 4)), CropMask(x, y, bits.astype(bool)), score))
    return out


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def seed_overlay(
    img: np.ndarray, full_masks: list[np.ndarray], instances: list[Instance], names: CategoryTable
) -> np.ndarray:
    """The seed tutorial's picture: one full-frame colour image and blend per instance."""
    rng = np.random.default_rng(0)
    out = img.copy()
    for mask, inst in zip(full_masks, instances, strict=True):
        color = [int(v) for v in rng.integers(0, 256, 3)]
        r = np.zeros_like(mask).astype(np.uint8)
        g = np.zeros_like(mask).astype(np.uint8)
        b = np.zeros_like(mask).astype(np.uint8)
        r[mask == 1], g[mask == 1], b[mask == 1] = color
        rgb_mask = np.stack([r, g, b], axis=2)
        out = cv2.addWeighted(out, 1, rgb_mask, 0.5, 0)
        assert inst.box is not None
        x0, y0, x1, y1 = (int(v) for v in inst.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, 3)
        label = f"{names.name(inst.category_id)} {inst.score:.2f}"
        cv2.putText(out, label, (x0, y0), cv2.FONT_HERSHEY_SIMPLEX, 2, color, 3)
    return out


def bench_render(repeat: int) -> None:
    rng = np.random.default_rng(0)
    height, width = 3000, 4000
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    instances = elliptical_instances(rng, 50, height, width, 0.05, 0.40)
    names = CategoryTable([Category(1, "person"), Category(2, "car"), Category(3, "dog")])
    full_masks = [inst.mask.to_full(width, height) for inst in instances]
    covered = sum(inst.mask.area for inst in instances) / (height * width)

    ours = best_of(repeat, lambda: render_overlay(img, instances, names))
    seed = best_of(repeat, lambda: seed_overlay(img, full_masks, instances, names))
    print(f"overlay, 50 instances on 4000x3000 (masks cover {covered:.1f}x the frame):")
    print(f"  seed-style (full-frame blend per instance): {seed * 1000:8.1f} ms")
    print(f"  render_overlay (crops, one pass):           {ours * 1000:8.1f} ms")
    print(f"  speed-up: {seed / ours:.1f}x (target >= 30x)")


def bench_export(repeat: int) -> None:
    rng = np.random.default_rng(1)
    height, width = 750, 1000
    images = [
        CocoImage(
            f"batch/img_{i:03d}.jpg",
            width,
            height,
            elliptical_instances(rng, 100, height, width, 0.03, 0.25),
        )
        for i in range(100)
    ]
    categories = [Category(1, "person"), Category(2, "car"), Category(3, "dog")]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export.json"
        for polygons in (False, True):

            def run(polygons: bool = polygons) -> None:
                export_coco(out, images, categories, polygons=polygons)

            seconds = best_of(repeat, run)
            kind = "polygons" if polygons else "RLE"
            size = out.stat().st_size / 1e6
            print(f"export_coco, 10,000 instances, {kind:8s}: {seconds:6.2f} s ({size:.1f} MB)")
            reading = best_of(1, lambda: read_coco(out))
            print(f"  read_coco of that file (for reference):  {reading:6.2f} s")
    print("  target: under 3 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}, NumPy {np.__version__}, {cv2.getNumThreads()} threads")
    bench_render(args.repeat)
    bench_export(args.repeat)


if __name__ == "__main__":
    main()
