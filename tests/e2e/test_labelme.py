"""`maskdesk import --labelme` and `export --labelme`, through maskdesk.cli.main."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from maskdesk.cli import main
from maskdesk.core.labelme import encode_mask_png
from tests.labelme_docs import labelme_doc, shape, stored_masks

W, H = 48, 36
POLY = [[3.4, 2.2], [30.6, 5.5], [17.1, 27.8], [5.0, 20.3]]


def _folder(root: Path) -> Path:
    """Files laid out as labelme's LabelFile.save writes them (key order, version 5.x)."""
    root.mkdir()
    (root / "sub").mkdir()
    Image.new("RGB", (W, H), (9, 9, 9)).save(root / "a.png")
    Image.new("RGB", (W, H), (9, 9, 9)).save(root / "sub" / "b.png")
    Image.new("RGB", (W, H), (9, 9, 9)).save(root / "c.png")
    crop = np.zeros((7, 9), dtype=bool)
    crop[1:6, 2:8] = True
    crop[3, 4] = False  # a hole survives mask shapes
    shapes = [
        shape("cat", POLY, "polygon"),
        shape("dog", [[35, 2], [45, 12]], "rectangle"),
        shape("dog", [[36, 25], [44, 31]], "mask", mask=encode_mask_png(crop)),
        shape("cat", [[0, 30], [4, 30], [4, 34], [0, 34]], "polygon", 3),
        shape("cat", [[10, 30], [14, 30], [14, 34]], "polygon", 3),
        shape("cat", [[20, 30], [22, 32]], "circle"),
        shape("cat", [[1, 1], [3, 3]], "line"),
        shape("cat", [[5, 5]], "point"),
    ]
    doc = labelme_doc(shapes, "a.png", W, H)
    (root / "a.json").write_text(json.dumps(doc, indent=2))
    doc2 = dict(doc, shapes=[shape("bird", POLY, "polygon")], imagePath="..\\sub\\b.png")
    (root / "sub" / "b.json").write_text(json.dumps(doc2))  # matched by stem
    (root / "c.json").write_text('{"version": "5.5.0", "shapes": [')
    return root


def test_import_labelme_folder(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path / "f")
    assert main(["import", str(folder), "--labelme"]) == 1  # c.json is broken
    err = capsys.readouterr().err
    assert "c.json" in err and "box only, no mask" in err
    masks = stored_masks(folder, packed=True)
    assert [n for n, _ in masks["a.png"]] == ["cat", "cat", "cat", "dog"]
    assert [n for n, _ in masks["sub/b.png"]] == ["bird"]
    ref = Image.new("L", (W, H))
    ImageDraw.Draw(ref).polygon([tuple(p) for p in POLY], outline=1, fill=1)  # shape_to_mask
    want = np.packbits(np.asarray(ref, bool)).tobytes()
    assert ("cat", want) in masks["a.png"] and ("bird", want) in masks["sub/b.png"]
    # importing again adds nothing
    main(["import", str(folder), "--labelme"])
    assert stored_masks(folder, packed=True) == masks


def test_export_import_round_trip(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "f")
    (folder / "c.json").unlink()
    assert main(["import", str(folder), "--labelme"]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("*.json", ".maskdesk"))
    assert main(["export", str(folder), "--labelme", str(copy)]) == 0
    data = json.loads((copy / "a.json").read_text())
    assert list(data) == [
        "version",
        "flags",
        "shapes",
        "imagePath",
        "imageData",
        "imageHeight",
        "imageWidth",
    ]
    assert {s["shape_type"] for s in data["shapes"]} == {"mask"}
    assert (copy / data["imagePath"]).resolve() == (folder / "a.png").resolve()
    assert main(["import", str(copy), "--labelme"]) == 0
    assert stored_masks(copy, packed=True) == stored_masks(folder, packed=True)


def test_export_polygons_hole_free(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "f")
    (folder / "c.json").unlink()
    (folder / "sub" / "b.json").unlink()
    main(["import", str(folder), "--labelme"])
    out = tmp_path / "poly"
    assert main(["export", str(folder), "--labelme", str(out), "--polygons"]) == 0
    data = json.loads((out / "a.json").read_text())
    assert {s["shape_type"] for s in data["shapes"]} == {"polygon"}
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("*.json", ".maskdesk"))
    shutil.copy(out / "a.json", copy / "a.json")
    main(["import", str(copy), "--labelme"])
    src, back = stored_masks(folder, packed=True)["a.png"], stored_masks(copy, packed=True)["a.png"]
    assert len(back) == len(src)
    # the polygon (no hole) comes back exactly; the mask with a hole does not
    assert [m for m in src if m[0] == "cat"][0] in back


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "labelme"


def test_cli_on_files_written_by_labelme(tmp_path: Path, capsys) -> None:
    """The committed files written by labelme 6.3.1's own code (tests/fixtures/labelme):
    import, export as mask shapes, and import the export again, all pixel-exact."""
    folder = tmp_path / "f"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("*.py", "*.txt", "expected*"))
    assert main(["import", str(folder), "--labelme"]) == 0
    err = capsys.readouterr().err
    assert "1 box-only annotations" in err  # the rectangle
    masks = stored_masks(folder, packed=True)
    assert [n for n, _ in masks["a.png"]] == ["ball", "cat", "cat", "dog", "sign"]
    assert [n for n, _ in masks["sub/b.png"]] == ["cat", "dog", "dog", "vögel"]
    expected = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
    for image, found in masks.items():  # labelme's own pixels of its mask shapes
        e = expected[image]
        for inst in e["instances"]:
            if inst["shape_types"] == ["mask"]:
                bits = base64.b64decode(inst["packbits"])
                assert (inst["label"], bits) in found
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("*.json", ".maskdesk"))
    assert main(["export", str(folder), "--labelme", str(copy)]) == 0
    assert main(["import", str(copy), "--labelme"]) == 0
    assert stored_masks(copy, packed=True) == masks
