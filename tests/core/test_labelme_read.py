"""labelme folder import: rasterization as labelme's shape_to_mask, group_id, broken files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from maskdesk.core.labelme import encode_mask_png, import_labelme
from maskdesk.core.project import Project


def _labelme(shapes: list[dict], image: str, w: int, h: int) -> dict:
    # key order as labelme's LabelFile.save writes it
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image,
        "imageData": None,
        "imageHeight": h,
        "imageWidth": w,
    }


def _shape(label: str, points: list, kind: str, group: int | None = None, **kw: object) -> dict:
    return {
        "label": label,
        "points": points,
        "group_id": group,
        "description": "",
        "shape_type": kind,
        "flags": {},
        "mask": None,
        **kw,
    }


def test_import_labelme_folder(tmp_path: Path) -> None:
    w, h = 40, 30
    Image.new("RGB", (w, h)).save(tmp_path / "a.png")
    Image.new("RGB", (w, h)).save(tmp_path / "b.png")
    poly = [[2.5, 3.2], [20.7, 4.1], [11.3, 18.9]]
    crop = np.zeros((6, 5), dtype=bool)
    crop[1:4, 2:5] = True
    shapes = [
        _shape("cat", poly, "polygon"),
        _shape("dog", [[25, 2], [35, 12]], "rectangle"),
        _shape("dog", [[30, 20], [34, 25]], "mask", mask=encode_mask_png(crop)),
        _shape("cat", [[0, 25], [3, 25], [3, 28], [0, 28]], "polygon", 7),
        _shape("cat", [[10, 25], [13, 25], [13, 28]], "polygon", 7),
        _shape("cat", [[1, 1], [3, 3]], "line"),
    ]
    (tmp_path / "a.json").write_text(json.dumps(_labelme(shapes, "a.png", w, h)))
    (tmp_path / "b.json").write_text("{not json")
    with Project.open(tmp_path) as project:
        report, read = import_labelme(project, tmp_path)
        record = next(r for r in project.images() if r.path == "a.png")
        instances = project.instances(record.id)
        names = {c.id: c.name for c in project.categories}
    assert [b.split(":")[0] for b in read.broken] == ["b.json"]
    assert report.instances_added == 3
    assert read.coco.skipped["box only, no mask"] == 1
    assert sorted(names[i.category_id] for i in instances) == ["cat", "cat", "dog"]
    # labelme's shape_to_mask: PIL polygon outline=1 fill=1 on the full frame
    ref = Image.new("L", (w, h))
    ImageDraw.Draw(ref).polygon([tuple(p) for p in poly], outline=1, fill=1)
    fulls = [i.mask.to_full(w, h) for i in instances]
    assert any(np.array_equal(f, np.asarray(ref, bool)) for f in fulls)
    expected = np.zeros((h, w), bool)
    expected[20:26, 30:35] = crop
    assert any(np.array_equal(f, expected) for f in fulls)
    grouped = [f for f in fulls if f[25:29, 0:14].any()]
    assert len(grouped) == 1  # the group_id pair is one instance
    with Project.open(tmp_path) as project:
        again, _ = import_labelme(project, tmp_path)
    assert again.instances_added == 0 and again.duplicates == 3
