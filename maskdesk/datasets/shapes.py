"""Seeded synthetic data: filled shapes on textured backgrounds, with an exact COCO file.

Shapes overlap; the ground-truth mask of a shape is the part left visible by the shapes
drawn after it, and a shape that would end up mostly hidden is left out of the picture
altogether (so every visible object is annotated). The same seed gives byte-identical
files.

    python -m maskdesk.datasets.shapes OUTDIR --count N --seed S [--size PX]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance, Origin
from maskdesk.core.masks import CropMask

CLASSES = ("circle", "rectangle", "triangle")  # the default set
ALL_CLASSES = (*CLASSES, "star")
CATEGORIES = [Category(i + 1, name) for i, name in enumerate(CLASSES)]
MAX_SHAPES = 5
MIN_VISIBLE = 0.6  # a shape with less than this share of itself visible is left out
MIN_PIXELS = 120  # at 256 px; scaled with the image area


@dataclass
class Shape:
    """One drawn object: its class, colour and full (unoccluded) mask."""

    category_id: int
    color: tuple[int, int, int]
    mask: np.ndarray  # bool, full frame


@dataclass
class Sample:
    """One generated picture and its visible-part masks, in drawing order."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    shapes: list[Shape]
    visible: list[np.ndarray]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    kind = rng.integers(3)
    c0 = rng.uniform(0, 255, 3)
    c1 = rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    if kind == 0:  # noise over a flat colour
        img = np.broadcast_to(c0, (size, size, 3)) + rng.normal(0, 25, (size, size, 3))
    elif kind == 1:  # linear gradient
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = c0 * (1 - t) + c1 * t + rng.normal(0, 6, (size, size, 3))
    else:  # soft stripes
        period = rng.uniform(0.04, 0.2)
        s = 0.5 + 0.5 * np.sin(2 * np.pi * t / period)
        img = c0 * (1 - s) + c1 * s + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, category: str, size: int) -> np.ndarray:
    canvas = np.zeros((size, size), dtype=np.uint8)
    lo, hi = 0.07 * size, 0.2 * size  # half-extent range
    cx, cy = rng.uniform(0.1 * size, 0.9 * size, 2)
    if category == "circle":
        r = rng.uniform(lo, hi)
        cv2.circle(canvas, (round(cx), round(cy)), round(r), 1, thickness=-1, lineType=cv2.LINE_8)
    elif category == "rectangle":
        w, h = rng.uniform(lo, hi, 2)
        angle = rng.uniform(-30, 30)
        box = cv2.boxPoints(((float(cx), float(cy)), (2 * float(w), 2 * float(h)), angle))
        cv2.fillPoly(canvas, [np.round(box).astype(np.int32)], 1, lineType=cv2.LINE_8)
    elif category == "star":
        r = rng.uniform(lo * 1.2, hi * 1.2)
        angles = rng.uniform(0, 2 * np.pi) + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1, lineType=cv2.LINE_8)
    else:
        # Vertices spread around the centre so triangles are never slivers.
        r = rng.uniform(lo * 1.2, hi * 1.2)
        base = rng.uniform(0, 2 * np.pi)
        angles = base + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.4, 0.4, 3)
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1, lineType=cv2.LINE_8)
    return canvas.astype(bool)


def _contrasting_color(rng: np.random.Generator, under: np.ndarray) -> tuple[int, int, int]:
    mean = under.reshape(-1, 3).mean(axis=0) if under.size else np.full(3, 128.0)
    for _ in range(20):
        color = rng.integers(0, 256, 3)
        if np.abs(color - mean).sum() > 120:
            break
    return (int(color[0]), int(color[1]), int(color[2]))


def _visible(shapes: list[Shape]) -> list[np.ndarray]:
    """Each shape minus everything drawn after it."""
    covered = np.zeros_like(shapes[0].mask) if shapes else np.zeros((0, 0), bool)
    out: list[np.ndarray] = []
    for shape in reversed(shapes):
        out.append(shape.mask & ~covered)
        covered |= shape.mask
    return out[::-1]


def categories_of(classes: Sequence[str]) -> list[Category]:
    return [Category(i + 1, name) for i, name in enumerate(classes)]


def generate(seed: int, index: int, size: int = 256, classes: Sequence[str] = CLASSES) -> Sample:
    """The `index`-th picture of the set made with `seed`; independent of the others.

    Category ids are 1-based positions in `classes`.
    """
    rng = np.random.default_rng([seed, index])
    image = _background(rng, size)
    min_pixels = MIN_PIXELS * (size / 256) ** 2
    shapes: list[Shape] = []
    for _ in range(int(rng.integers(1, MAX_SHAPES + 1))):
        category_id = int(rng.integers(len(classes))) + 1
        mask = _shape_mask(rng, classes[category_id - 1], size)
        if mask.sum() < min_pixels:
            continue
        shapes.append(Shape(category_id, _contrasting_color(rng, image[mask]), mask))
    # Leaving a hidden shape out uncovers the ones below it, so repeat until stable.
    while shapes:
        visible = _visible(shapes)
        hidden = [
            i
            for i, (s, v) in enumerate(zip(shapes, visible, strict=True))
            if v.sum() < max(MIN_VISIBLE * s.mask.sum(), min_pixels)
        ]
        if not hidden:
            break
        del shapes[hidden[0]]
    visible = _visible(shapes) if shapes else []
    for shape in shapes:
        # A little shading noise so shapes are not perfectly flat colour.
        shade = rng.normal(0, 8, (int(shape.mask.sum()), 3))
        image[shape.mask] = np.clip(np.array(shape.color) + shade, 0, 255).astype(np.uint8)
    return Sample(image, shapes, visible)


def sample_instances(sample: Sample) -> list[Instance]:
    return [
        Instance(s.category_id, CropMask.from_full(v), origin=Origin.HUMAN)
        for s, v in zip(sample.shapes, sample.visible, strict=True)
    ]


def write_dataset(
    outdir: Path, count: int, seed: int, size: int = 256, classes: Sequence[str] = CLASSES
) -> Path:
    """Write `count` pictures and their COCO file; returns the annotations path."""
    from maskdesk.core.coco import CocoImage, build_coco, write_coco

    images_dir = outdir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    coco_images: list[CocoImage] = []
    for index in range(count):
        sample = generate(seed, index, size, classes)
        name = f"shapes_{index:05d}.png"
        ok, encoded = cv2.imencode(".png", sample.image[:, :, ::-1])
        if not ok:
            raise RuntimeError(f"could not encode {name}")
        (images_dir / name).write_bytes(encoded.tobytes())
        coco_images.append(CocoImage(name, size, size, sample_instances(sample)))
    data = build_coco(
        coco_images, categories_of(classes), description=f"maskdesk synthetic shapes, seed {seed}"
    )
    # No creation date: the same seed must give the same bytes.
    data["info"].pop("date_created", None)
    path = outdir / "annotations.json"
    write_coco(data, path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maskdesk.datasets.shapes",
        description="Write seeded synthetic shape pictures and an exact COCO file.",
    )
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="picture side in pixels (256)")
    parser.add_argument(
        "--classes",
        default=",".join(CLASSES),
        help=f"comma-separated, from {', '.join(ALL_CLASSES)} (default {','.join(CLASSES)})",
    )
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 32:
        parser.error("--count must be at least 1 and --size at least 32")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = sorted(set(classes) - set(ALL_CLASSES))
    if unknown or not classes or len(set(classes)) != len(classes):
        parser.error(f"--classes takes distinct names from {', '.join(ALL_CLASSES)}")
    path = write_dataset(args.outdir, args.count, args.seed, args.size, classes)
    print(
        f"{args.count} images in {args.outdir / 'images'}; annotations in {path}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
