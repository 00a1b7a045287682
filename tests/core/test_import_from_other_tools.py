"""COCO files as other tools write them (issue 16): Label Studio's classes counted from 0,
Roboflow's numbers written as strings, CVAT's box-only rectangles, COCOeval results lists.
Real files in tmp_path, imported into a real project store; what a user gets is checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from maskdesk.cli import main
from maskdesk.core.categories import Category
from maskdesk.core.coco_read import BOX_IGNORED, BOX_ONLY, parse_coco
from maskdesk.core.importing import ImportReport, import_coco
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import Project

W, H = 64, 48


def _folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in names:
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / name)
    return folder


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def _import(folder: Path, coco_path: Path) -> tuple[ImportReport, dict[str, list[Instance]]]:
    with Project.open(folder) as project:
        report = import_coco(project, parse_coco(coco_path), coco_path)
        stored = {r.path: project.instances(r.id) for r in project.images()}
    return report, stored


def _names(folder: Path) -> dict[int, str]:
    with Project.open(folder) as project:
        return {c.id: c.name for c in project.categories}


def _polygon_pixels(polygon: list[float]) -> np.ndarray:
    """What pycocotools draws for a polygon: the reference."""
    rle = mask_util.merge(mask_util.frPyObjects([polygon], H, W))
    return mask_util.decode(rle).astype(bool)


def _full(instance: Instance) -> np.ndarray:
    return instance.mask.to_full(W, H)


SQUARE = [4.0, 4.0, 20.0, 4.0, 20.0, 18.0, 4.0, 18.0]
TRIANGLE = [30.0, 5.0, 60.0, 10.0, 40.0, 40.0]


def _label_studio_file(path: Path) -> Path:
    """Label Studio's COCO converter numbers its classes from 0."""
    return _write(
        path,
        {
            "images": [{"id": 0, "file_name": "images/a.png", "width": W, "height": H}],
            "categories": [{"id": 0, "name": "Airplane"}, {"id": 1, "name": "Car"}],
            "annotations": [
                {
                    "id": 0,
                    "image_id": 0,
                    "category_id": 0,
                    "segmentation": [SQUARE],
                    "bbox": [4, 4, 16, 14],
                    "iscrowd": 0,
                },
                {
                    "id": 1,
                    "image_id": 0,
                    "category_id": 1,
                    "segmentation": [TRIANGLE],
                    "bbox": [30, 5, 30, 35],
                    "iscrowd": 0,
                },
            ],
        },
    )


def test_a_class_numbered_0_is_imported_with_its_name_and_annotations(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "a.png")
    report, stored = _import(folder, _label_studio_file(tmp_path / "result.json"))
    names = _names(folder)
    got = {names[i.category_id]: _full(i) for i in stored["a.png"]}
    assert sorted(got) == ["Airplane", "Car"]
    assert np.array_equal(got["Airplane"], _polygon_pixels(SQUARE))
    assert np.array_equal(got["Car"], _polygon_pixels(TRIANGLE))
    assert report.instances_added == 2 and report.skipped == {}
    assert list(report.notes) == [
        "category 0 'Airplane' imported as id 2 (class ids start at 1 here)"
    ]


def test_the_renumbering_note_names_the_id_the_class_has_in_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "a.png")
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "dog"), Category(2, "bird")])
    coco = _label_studio_file(tmp_path / "result.json")
    assert main(["import", str(folder), str(coco)]) == 0
    names = _names(folder)
    airplane = next(i for i, n in names.items() if n == "Airplane")
    assert airplane not in (1, 2) and names[1] == "dog"
    err = capsys.readouterr().err
    assert "2 instances added to 1 images" in err
    assert f"note: category 0 'Airplane' imported as id {airplane} (class ids start" in err
    # Importing again adds nothing: the class is found by its name.
    assert main(["import", str(folder), str(coco)]) == 0
    assert "2 already present" in capsys.readouterr().err
    assert _names(folder) == names


def test_an_unused_background_placeholder_numbered_0_is_skipped_with_a_note(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path, "a.png")
    coco = _write(
        tmp_path / "labelme.json",
        {
            "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
            "categories": [{"id": 0, "name": "_background_"}, {"id": 1, "name": "cat"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [SQUARE]},
            ],
        },
    )
    report, stored = _import(folder, coco)
    assert list(_names(folder).values()) == ["cat"]
    assert len(stored["a.png"]) == 1
    (note,) = report.notes
    assert "'_background_'" in note and "no annotation uses it; skipped" in note
    assert note in report.summary(coco, folder)


def test_a_roboflow_file_with_numbers_written_as_strings_imports_every_mask(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path, "a.png")
    rle = mask_util.encode(np.asfortranarray(_polygon_pixels(TRIANGLE).astype(np.uint8)))
    rle_json = {"size": [H, W], "counts": rle["counts"].decode("ascii")}
    small = [41.0, 30.0, 50.0, 30.0, 50.0, 41.0, 41.0, 41.0]
    coco = _write(
        tmp_path / "_annotations.coco.json",
        {
            "images": [{"id": 0, "file_name": "a.png", "width": W, "height": H}],
            "categories": [
                {"id": 0, "name": "shapes", "supercategory": "none"},
                {"id": 1, "name": "square", "supercategory": "shapes"},
                {"id": 2, "name": "triangle", "supercategory": "shapes"},
            ],
            "annotations": [
                {
                    "id": 0,
                    "image_id": 0,
                    "category_id": 1,
                    "segmentation": [SQUARE],
                    "bbox": [4, 4, "16", "14"],
                    "area": 224,
                    "iscrowd": 0,
                },
                {
                    "id": 1,
                    "image_id": "0",
                    "category_id": "2",
                    "segmentation": rle_json,
                    "bbox": ["30", "5.0", "30", "35"],
                    "score": "0.87",
                    "iscrowd": 0,
                },
                {  # a box that is no box, on a mask that is fine
                    "id": 2,
                    "image_id": 0,
                    "category_id": 1,
                    "segmentation": [small],
                    "bbox": [41, 30, "nine", 11],
                    "iscrowd": 0,
                },
            ],
        },
    )
    report, stored = _import(folder, coco)
    names = _names(folder)
    first, second, third = stored["a.png"]
    assert (names[first.category_id], names[second.category_id]) == ("square", "triangle")
    assert np.array_equal(_full(first), _polygon_pixels(SQUARE))
    assert np.array_equal(_full(second), mask_util.decode(rle).astype(bool))
    assert np.array_equal(_full(third), _polygon_pixels(small))
    assert first.box == (4.0, 4.0, 20.0, 18.0)  # the file's box, read from its strings
    assert (second.score, second.origin, second.review) == (0.87, Origin.MODEL, Review.PENDING)
    x, y, w, h = third.mask.bbox()
    assert third.box == (x, y, x + w, y + h)  # the mask's own box
    assert report.instances_added == 3 and report.skipped == {}
    assert report.notes == {
        BOX_IGNORED: 1,
        "category 0 'shapes' (the other classes' supercategory): not a class, and no "
        "annotation uses it; skipped": 1,
    }
    assert f"note: {BOX_IGNORED}" in report.summary(coco, folder)
    # Roboflow's entry 0 is its dataset's name, no class: unused, it is left out.
    assert sorted(names.values()) == ["square", "triangle"]


def test_box_only_annotations_are_counted_as_such_and_kept_for_later(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "a.png")
    coco = _write(
        tmp_path / "cvat.json",
        {
            "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
            "categories": [{"id": 1, "name": "car"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [SQUARE]},
                {
                    "id": 2,
                    "image_id": 1,
                    "category_id": 1,
                    "segmentation": [],
                    "bbox": [30, 5, 20, 10],
                },
                {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                {"id": 4, "image_id": 1, "category_id": 1, "segmentation": []},  # nothing at all
            ],
        },
    )
    parsed = parse_coco(coco)
    assert [(b.image.file_name, b.category_id, b.box) for b in parsed.box_only] == [
        ("a.png", 1, (30.0, 5.0, 50.0, 15.0)),
        ("a.png", 1, (1.0, 2.0, 4.0, 6.0)),
    ]
    report, stored = _import(folder, coco)
    assert len(stored["a.png"]) == 1
    assert report.skipped == {BOX_ONLY: 2, "no segmentation": 1}
    summary = report.summary(coco, folder)
    assert "2 skipped: box only, no mask" in summary and "empty mask" not in summary


def test_a_results_list_is_named_and_refused_without_touching_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "a.png")
    assert main(["import", str(folder), str(_label_studio_file(tmp_path / "gt.json"))]) == 0
    rle = mask_util.encode(np.asfortranarray(_polygon_pixels(SQUARE).astype(np.uint8)))
    entry = {
        "image_id": 0,
        "category_id": 1,
        "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")},
        "score": 0.9,
    }
    results = _write(tmp_path / "segm_results.json", [entry, entry, dict(entry, score=0.3)])
    capsys.readouterr()
    assert main(["import", str(folder), str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"maskdesk: {results} is a COCO results list")
    assert "loadRes: 3 entries with image_id, category_id and score" in err
    assert "not a dataset" in err and "no image files" in err
    assert "Import the dataset file it was made for" in err
    assert "Traceback" not in err and err.count("\n") == 1
    _, stored = _import(folder, _label_studio_file(tmp_path / "gt.json"))
    assert len(stored["a.png"]) == 2  # what was there is all still there


def test_other_json_lists_are_not_called_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "a.png")
    for data, said in (([], "an empty JSON list"), ([{"file_name": "a.png"}], "a JSON list")):
        path = _write(tmp_path / "list.json", data)
        assert main(["import", str(folder), str(path)]) == 2
        err = capsys.readouterr().err
        assert said in err and str(path) in err and "results" not in err


def test_a_mask_and_box_round_trip_keeps_crop_masks_equal(tmp_path: Path) -> None:
    """String numbers do not change what an ordinary file means: same instance either way."""
    folder = _folder(tmp_path, "a.png")
    plain = _label_studio_file(tmp_path / "plain.json")
    data = json.loads(plain.read_text())
    for ann in data["annotations"]:
        ann["bbox"] = [str(v) for v in ann["bbox"]]
        ann["category_id"] = str(ann["category_id"])
    strings = _write(tmp_path / "strings.json", data)
    report, _ = _import(folder, plain)
    again, stored = _import(folder, strings)
    assert report.instances_added == 2 and again.duplicates == 2
    assert all(isinstance(i.mask, CropMask) for i in stored["a.png"])


def test_an_unused_real_class_numbered_0_keeps_its_name_and_a_namesake_is_reused(
    tmp_path: Path,
) -> None:
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
        "categories": [
            {"id": 0, "name": "human"},
            {"id": -1, "name": "bicycle"},
            {"id": 4, "name": "bicycle"},
        ],
        "annotations": [{"id": 1, "image_id": 1, "category_id": -1, "segmentation": [SQUARE]}],
    }
    parsed = parse_coco(_write(tmp_path / "visdrone.json", data))
    assert [(c.id, c.name) for c in parsed.categories] == [(4, "bicycle"), (5, "human")]
    (image,) = parsed.images
    assert [raw.category_id for raw in image.raw] == [4]
    assert sorted(parsed.notes) == [
        "category -1 'bicycle' imported as id 4 (class ids start at 1 here)",
        "category 0 'human' imported as id 5 (class ids start at 1 here)",
    ]
