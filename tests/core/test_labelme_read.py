"""labelme folder import: rasterization as labelme's shape_to_mask, group_id, broken files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from maskdesk.core.labelme import encode_mask_png, import_labelme
from maskdesk.core.project import Project
from tests.labelme_docs import labelme_doc, shape


def test_import_labelme_folder(tmp_path: Path) -> None:
    w, h = 40, 30
    Image.new("RGB", (w, h)).save(tmp_path / "a.png")
    Image.new("RGB", (w, h)).save(tmp_path / "b.png")
    poly = [[2.5, 3.2], [20.7, 4.1], [11.3, 18.9]]
    crop = np.zeros((6, 5), dtype=bool)
    crop[1:4, 2:5] = True
    shapes = [
        shape("cat", poly, "polygon"),
        shape("dog", [[25, 2], [35, 12]], "rectangle"),
        shape("dog", [[30, 20], [34, 25]], "mask", mask=encode_mask_png(crop)),
        shape("cat", [[0, 25], [3, 25], [3, 28], [0, 28]], "polygon", 7),
        shape("cat", [[10, 25], [13, 25], [13, 28]], "polygon", 7),
        shape("cat", [[1, 1], [3, 3]], "line"),
    ]
    (tmp_path / "a.json").write_text(json.dumps(labelme_doc(shapes, "a.png", w, h)))
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


def _read(tmp_path: Path, docs: dict[str, dict | str], images: tuple[str, ...] = ("a.png",)):
    from maskdesk.core.labelme import read_labelme_folder

    for name, doc in docs.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return read_labelme_folder(tmp_path, set(images))


def test_x_anylabeling_and_labelme6_shapes(tmp_path: Path) -> None:
    """4-corner rectangles (X-AnyLabeling), `rotation` and `oriented_rectangle` (polygons to
    labelme's shape_to_mask); unknown types and short polygons are skipped, not fatal."""
    quad = [[10.0, 4.0], [20.0, 8.0], [16.0, 16.0], [6.0, 12.0]]
    shapes = [
        shape("box", [[5.5, 2], [30, 2], [30, 20.5], [5.5, 20.5]], "rectangle"),
        shape("car", quad, "rotation"),
        shape("sign", quad, "oriented_rectangle"),
        shape("car", [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, 6], [7, 7], [8, 8]], "cuboid"),
        shape("car", [[1, 1], [5, 5]], "polygon"),
    ]
    read = _read(tmp_path, {"a.json": labelme_doc(shapes, "a.png", 40, 30)})
    assert read.broken == []
    coco = read.coco
    assert [b.box for b in coco.box_only] == [(5.5, 2.0, 30.0, 20.5)]
    ref = Image.new("L", (40, 30))
    ImageDraw.Draw(ref).polygon([tuple(p) for p in quad], outline=1, fill=1)
    fulls = [i.mask.to_full(40, 30) for i in coco.images[0].instances]
    assert len(fulls) == 2 and all(np.array_equal(f, np.asarray(ref, bool)) for f in fulls)
    assert coco.skipped["labelme cuboid shapes (not supported)"] == 1
    assert coco.skipped["labelme polygons with fewer than 3 points"] == 1
    assert sorted(c.name for c in coco.categories) == ["box", "car", "sign"]


def test_mask_shape_edges(tmp_path: Path) -> None:
    """Crops pasted at int(points[0]) as labelme's shapes_to_label does; parts outside the
    image are cut; a crop whose size disagrees with its points is placed and noted."""
    crop = np.ones((4, 5), dtype=bool)
    crop[1, 1] = False
    shapes = [
        shape("a", [[37.9, 27.2], [41.9, 30.2]], "mask", mask=encode_mask_png(crop)),
        shape("b", [[-2.0, -1.0], [2.0, 2.0]], "mask", mask=encode_mask_png(crop)),
        shape("c", [[10.0, 10.0], [20.0, 20.0]], "mask", mask=encode_mask_png(crop)),
    ]
    read = _read(tmp_path, {"a.json": labelme_doc(shapes, "a.png", 40, 30)})
    assert read.broken == []
    fulls = {
        read.coco.categories[i.category_id - 1].name: i.mask.to_full(40, 30)
        for i in read.coco.images[0].instances
    }
    want = np.zeros((30, 40), bool)
    want[27:30, 37:40] = crop[:3, :3]  # int(37.9) == 37, as astype(int)
    assert np.array_equal(fulls["a"], want)
    want = np.zeros((30, 40), bool)
    want[0:3, 0:3] = crop[1:, 2:]
    assert np.array_equal(fulls["b"], want)
    want = np.zeros((30, 40), bool)
    want[10:14, 10:15] = crop  # its own size, at its first point (labelme's canvas)
    assert np.array_equal(fulls["c"], want)
    assert sum(read.coco.notes.values()) == 1  # only "c" disagrees with its points


def test_image_path_as_labelme_resolves_it(tmp_path: Path) -> None:
    """imagePath relative to the JSON (Windows or POSIX separators); one leading outside the
    folder never lands on an image inside it; a stem match is the fallback."""
    images = ("a.png", "sub/b.png", "x/c.png")
    for name in images:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30)).save(tmp_path / name)
    poly = [shape("cat", [[1, 1], [9, 1], [5, 8]], "polygon")]
    docs: dict[str, dict | str] = {
        "labels/one.json": labelme_doc(poly, "..\\sub\\b.png", 40, 30),
        "two.json": labelme_doc(poly, "../x/c.png", 40, 30),  # outside: not x/c.png
        "x/c.json": labelme_doc(poly, "elsewhere/c.png", 40, 30),  # stem beside it
        "three.json": labelme_doc(poly, str(tmp_path / "a.png"), 40, 30),  # absolute, inside
    }
    read = _read(tmp_path, docs, images)
    assert sorted(i.file_name for i in read.coco.images) == ["a.png", "sub/b.png", "x/c.png"]
    assert read.coco.skipped["labelme file whose image is not in the folder"] == 1


def test_broken_file_adds_nothing(tmp_path: Path) -> None:
    """A file that fails half-way leaves no box, class or count behind; imageWidth and
    imageHeight may be null (labelme 6 allows it): the image's own size is used."""
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    Image.new("RGB", (40, 30)).save(tmp_path / "b.png")
    bad = [
        shape("ghost", [[1, 1], [9, 9]], "rectangle"),
        shape("ghost", [[1, 1], [9, 1], [5, 8]], "mask", mask="not base64 png"),
    ]
    good = labelme_doc([shape("cat", [[1, 1], [9, 1], [5, 8]], "polygon")], "b.png", 40, 30)
    good["imageWidth"] = good["imageHeight"] = None
    read = _read(
        tmp_path,
        {"a.json": labelme_doc(bad, "a.png", 40, 30), "b.json": good},
        ("a.png", "b.png"),
    )
    assert [b.split(":")[0] for b in read.broken] == ["a.json"]
    assert read.coco.box_only == [] and "box only, no mask" not in read.coco.skipped
    assert [c.name for c in read.coco.categories] == ["cat"]
    assert [(i.file_name, i.width, i.height) for i in read.coco.images] == [("b.png", 40, 30)]


def test_shapes_drawn_on_their_own_canvas_equal_labelme_s_full_frame_drawing() -> None:
    """shape_mask keeps a crop, drawn on a canvas ending at the shape's far corner; the pixels
    must be those of ImageDraw on the full frame, as labelme's shape_to_mask draws them,
    also for shapes reaching outside the image and far from its origin (where shifting the
    shape to its own box changed a few edge pixels)."""
    from maskdesk.core.labelme import shape_mask

    rng = np.random.default_rng(7)
    for w, h, far, count in ((41, 29, 0.0, 300), (2600, 1900, 2500.0, 40)):
        for _ in range(count):
            if rng.random() < 0.7:
                n = int(rng.integers(3, 9))
                points = (far + rng.uniform(-8, 48, size=(n, 2)) * (7 if far else 1)).round(2)
                doc = shape("p", points.tolist(), "polygon")
                full = Image.new("L", (w, h))
                ImageDraw.Draw(full).polygon([tuple(p) for p in points], outline=1, fill=1)
            else:
                cx, cy = (far + rng.uniform(-5, 45, size=2)).round(2)
                r = float(rng.uniform(0.3, 12)) * (9 if far else 1)
                doc = shape("c", [[cx, cy], [cx + r, cy]], "circle")
                r = math.hypot(r, 0.0)
                full = Image.new("L", (w, h))
                box = [cx - r, cy - r, cx + r, cy + r]
                ImageDraw.Draw(full).ellipse(box, outline=1, fill=1)
            want = np.asarray(full, dtype=bool)
            got = shape_mask(doc, w, h).to_full(w, h)
            assert np.array_equal(got, want), doc
