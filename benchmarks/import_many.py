"""Importing (and re-importing) a COCO file with thousands of instances on one image, against
the way import worked before: one transaction per instance, and each new instance compared
with every instance already on the image, masks first.

    python benchmarks/import_many.py [--count 3000]

Prints the times of both and their ratio. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maskdesk.core.categories import Category, plan_merge  # noqa: E402
from maskdesk.core.coco import CocoImage, build_coco  # noqa: E402
from maskdesk.core.coco_read import parse_coco, read_coco  # noqa: E402
from maskdesk.core.importing import import_coco  # noqa: E402
from maskdesk.core.instances import Instance, Origin  # noqa: E402
from maskdesk.core.masks import CropMask  # noqa: E402
from maskdesk.core.project import Project  # noqa: E402

WIDTH, HEIGHT = 2000, 1500


def make_file(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(folder / "crowded.png")
    rng = np.random.default_rng(0)
    instances = []
    for i in range(count):
        w, h = (int(v) for v in rng.integers(10, 60, 2))
        bits = rng.random((h, w)) > 0.3
        x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
        instances.append(Instance(1 + i % 3, CropMask(x, y, bits), origin=Origin.HUMAN))
    cats = [Category(1, "a"), Category(2, "b"), Category(3, "c")]
    path = folder.parent / "many.json"
    path.write_text(
        json.dumps(build_coco([CocoImage("crowded.png", WIDTH, HEIGHT, instances)], cats))
    )
    return path


def import_before(folder: Path, coco_path: Path) -> int:
    """The earlier importer's loop: all masks decoded, then per instance a linear scan of
    what is present (mask comparison first) and one transaction per add."""
    coco = read_coco(coco_path)
    added = 0
    with Project.open(folder) as project:
        mapping, new = plan_merge(project.categories, coco.categories)
        if new:
            project.ensure_categories(new)
        record = project.images()[0]
        present = project.instances(record.id)
        for instance in coco.images[0].instances:
            moved = instance.with_changes(category_id=mapping[instance.category_id], id=None)
            if any(p.mask == moved.mask and p.category_id == moved.category_id for p in present):
                continue
            present.append(project.add_instance(record.id, moved))
            added += 1
    return added


def import_now(folder: Path, coco_path: Path) -> int:
    with Project.open(folder) as project:
        return import_coco(project, parse_coco(coco_path), coco_path).instances_added


def timed(fn, *args) -> tuple[float, int]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "photos"
        coco_path = make_file(base, args.count)
        rows = []
        for name, fn in (("before", import_before), ("now", import_now)):
            folder = Path(tmp) / name
            shutil.copytree(base, folder)
            first, n1 = timed(fn, folder, coco_path)
            again, n2 = timed(fn, folder, coco_path)
            rows.append((name, first, again))
            print(
                f"{name:>6}: import {first:6.2f} s ({n1} added), again {again:6.2f} s ({n2} added)"
            )
        (_, b1, b2), (_, n1, n2) = rows
        print(f"ratio before/now: import {b1 / n1:.1f}x, re-import {b2 / n2:.1f}x")


if __name__ == "__main__":
    main()
