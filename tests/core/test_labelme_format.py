"""labelme's real file format, on files written by labelme 6.3.1's own code.

`tests/fixtures/labelme/` (see its README.txt) holds two images, their JSON files as labelme's
app writes them, and `expected.json`: labelme's own rasterisation (`LabelFile` +
`utils.shapes_to_label`) of every instance. The reference reader below is labelme's mask
branch of `shapes_to_label`, line for line, so maskdesk's written files are checked the way
labelme will read them.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from maskdesk.core.labelme import import_labelme
from maskdesk.core.labelme_write import export_labelme
from maskdesk.core.project import Project
from tests.labelme_docs import stored_masks

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "labelme"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
IMAGES = ("a.png", "sub/b.png")


def _unpack(entry: dict, width: int, height: int) -> np.ndarray:
    bits = np.frombuffer(base64.b64decode(entry["packbits"]), np.uint8)
    return np.unpackbits(bits)[: width * height].reshape(height, width).astype(bool)


def _expected(image: str) -> list[tuple[str, bytes]]:
    e = EXPECTED[image]
    return sorted(
        (i["label"], _unpack(i, e["width"], e["height"]).tobytes()) for i in e["instances"]
    )


def _labelme_folder(tmp_path: Path) -> Path:
    """The fixture's images and labelme files only (not its generator or answers)."""
    folder = tmp_path / "labelme"
    shutil.copytree(
        FIXTURE, folder, ignore=shutil.ignore_patterns("*.py", "expected.json", "*.txt")
    )
    return folder


def _labelme_reads(path: Path) -> list[tuple[str, bytes]]:
    """A maskdesk-written file read as labelme 6.3.1 reads mask shapes:
    `_load_shape_json_obj` (img_b64_to_arr(...).astype(bool)), then `shapes_to_label`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for shape in data["shapes"]:
        assert shape["shape_type"] == "mask"
        with Image.open(io.BytesIO(base64.b64decode(shape["mask"]))) as png:
            assert png.mode == "L"  # img_arr_to_b64(mask.astype(np.uint8)): 8-bit gray, 0/1
            arr = np.array(png)
        assert set(np.unique(arr)) <= {0, 1}
        crop = arr.astype(bool)
        mask = np.zeros((data["imageHeight"], data["imageWidth"]), dtype=bool)
        (x1, y1), (x2, y2) = np.asarray(shape["points"]).astype(int)
        assert crop.shape == (y2 - y1 + 1, x2 - x1 + 1)  # else labelme cannot paste it
        mask[y1 : y2 + 1, x1 : x2 + 1] = crop
        out.append((shape["label"], mask.tobytes()))
    return sorted(out)


def test_fixture_is_labelmes_own() -> None:
    """The fixture records what the tests rely on: labelme's conventions, as written."""
    a = json.loads((FIXTURE / "a.json").read_text(encoding="utf-8"))
    b = json.loads((FIXTURE / "labels" / "b.json").read_text(encoding="utf-8"))
    assert a["version"] == EXPECTED["labelme"] == "6.3.1"
    assert a["imagePath"] == "a.png" and a["imageData"] is None
    assert b["imagePath"] == "../sub/b.png" and isinstance(b["imageData"], str)
    masks = [s for s in a["shapes"] + b["shapes"] if s["shape_type"] == "mask"]
    assert len(masks) == 4
    for shape in masks:  # points = inclusive pixel box of the crop
        with Image.open(io.BytesIO(base64.b64decode(shape["mask"]))) as png:
            w, h = png.size
        (x1, y1), (x2, y2) = shape["points"]
        assert (x2 - x1 + 1, y2 - y1 + 1) == (w, h)
    assert sum(1 for s in masks if s["points"][0] != [0.0, 0.0]) == 3


def test_import_equals_labelmes_rasterisation(tmp_path: Path) -> None:
    folder = _labelme_folder(tmp_path)
    with Project.open(folder) as project:
        report, read = import_labelme(project, folder)
    assert read.broken == []
    assert report.instances_added == 9
    stored = stored_masks(folder)
    for image in IMAGES:
        # polygons, circles, oriented rectangles: both call ImageDraw.polygon/ellipse, so
        # they are equal under the Pillow that drew the fixture (mask shapes: always, below)
        if EXPECTED["pillow"] == PIL.__version__:
            assert stored[image] == _expected(image), f"{image} differs from labelme's pixels"
        assert [n for n, _ in stored[image]] == [n for n, _ in _expected(image)]
    # grouped shapes are one instance: 'cat' group 1 (two polygons), 'dog' group 2 (mask+polygon)
    assert Counter(n for n, _ in stored["a.png"]) == {"cat": 2, "dog": 1, "ball": 1, "sign": 1}
    assert Counter(n for n, _ in stored["sub/b.png"]) == {"dog": 2, "cat": 1, "vögel": 1}
    # the labelme point is skipped, the rectangle is a box-only entry with its corners
    assert read.coco.skipped["labelme point shapes (no area)"] == 1
    assert [(b.image.file_name, b.box) for b in read.coco.box_only] == [
        ("a.png", tuple(EXPECTED["a.png"]["rectangles"][0]["box"]))
    ]
    assert read.coco.notes == {}


def test_mask_shapes_pixel_exact_whatever_pillow(tmp_path: Path) -> None:
    folder = _labelme_folder(tmp_path)
    with Project.open(folder) as project:
        import_labelme(project, folder)
    stored = stored_masks(folder)
    for image in IMAGES:
        e = EXPECTED[image]
        for entry in e["instances"]:
            if entry["shape_types"] == ["mask"]:
                want = (entry["label"], _unpack(entry, e["width"], e["height"]).tobytes())
                assert want in stored[image]
    counts = {
        (img, i["label"], i["pixels"])
        for img in IMAGES
        for i in EXPECTED[img]["instances"]
        if i["shape_types"] == ["mask"]
    }
    assert counts == {("a.png", "dog", 177), ("sub/b.png", "dog", 69), ("sub/b.png", "cat", 14)}


def test_export_is_read_by_labelme_as_the_same_pixels(tmp_path: Path) -> None:
    folder = _labelme_folder(tmp_path)
    with Project.open(folder) as project:
        import_labelme(project, folder)
        out = tmp_path / "out"
        done = export_labelme(project, out)
    assert done.files == 2 and done.shapes == 9
    stored = stored_masks(folder)
    for image, written in (("a.png", out / "a.json"), ("sub/b.png", out / "sub" / "b.json")):
        data = json.loads(written.read_text(encoding="utf-8"))
        assert list(data) == [
            "version",
            "flags",
            "shapes",
            "imagePath",
            "imageData",
            "imageHeight",
            "imageWidth",
        ]
        assert data["imageData"] is None
        assert (written.parent / data["imagePath"]).resolve() == (folder / image).resolve()
        assert list(data["shapes"][0]) == [
            "label",
            "points",
            "group_id",
            "description",
            "shape_type",
            "flags",
            "mask",
        ]
        assert _labelme_reads(written) == stored[image]
        if EXPECTED["pillow"] == PIL.__version__:
            assert _labelme_reads(written) == _expected(image)


def test_round_trip_pixel_exact(tmp_path: Path) -> None:
    folder = _labelme_folder(tmp_path)
    with Project.open(folder) as project:
        import_labelme(project, folder)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("*.json", ".maskdesk"))
    with Project.open(folder) as project:
        export_labelme(project, copy)  # beside the images, as labelme keeps them
    with Project.open(copy) as project:
        report, read = import_labelme(project, copy)
    assert read.broken == [] and report.instances_added == 9
    assert stored_masks(copy) == stored_masks(folder)


def _holes_filled(mask: np.ndarray) -> np.ndarray:
    outside = np.pad(~mask, 1, constant_values=True)
    reached = np.zeros_like(outside)
    reached[0, :] = reached[-1, :] = reached[:, 0] = reached[:, -1] = True
    reached &= outside
    while True:  # 4-connected flood of the background from the border
        grown = reached.copy()
        grown[1:, :] |= reached[:-1, :]
        grown[:-1, :] |= reached[1:, :]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= outside
        if np.array_equal(grown, reached):
            return ~reached[1:-1, 1:-1]
        reached = grown


def test_polygon_export_is_exact_but_for_holes(tmp_path: Path) -> None:
    """`--polygons`: labelme's shape_to_mask (PIL polygon, outline counted) of the written
    polygons, united per (label, group_id), is each mask with its holes filled."""
    from PIL import ImageDraw

    folder = _labelme_folder(tmp_path)
    with Project.open(folder) as project:
        import_labelme(project, folder)
        export_labelme(project, tmp_path / "poly", polygons=True)
    stored = stored_masks(folder)
    for image, name in (("a.png", "a.json"), ("sub/b.png", "sub/b.json")):
        data = json.loads((tmp_path / "poly" / name).read_text(encoding="utf-8"))
        w, h = data["imageWidth"], data["imageHeight"]
        groups: dict[tuple[str, int], np.ndarray] = {}
        for shape in data["shapes"]:
            canvas = Image.new("L", (w, h))
            ImageDraw.Draw(canvas).polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
            key = (shape["label"], shape["group_id"])
            groups[key] = groups.get(key, np.zeros((h, w), bool)) | np.asarray(canvas, bool)
        back = sorted((label, m.tobytes()) for (label, _), m in groups.items())
        want = sorted(
            (label, _holes_filled(np.frombuffer(bits, bool).reshape(h, w)).tobytes())
            for label, bits in stored[image]
        )
        assert back == want
