"""Import onto a folder's images: matching names, sizes, decisions, crowd regions, ground truth
onto predictions, one transaction; real files and a real project store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from maskdesk.core.categories import Category
from maskdesk.core.coco import CocoImage, build_coco
from maskdesk.core.coco_read import parse_coco
from maskdesk.core.errors import CocoError
from maskdesk.core.importing import import_coco
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project


def _photo(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(path)


def _disc(cx: int, cy: int, r: int) -> CropMask:
    yy, xx = np.mgrid[: 2 * r + 1, : 2 * r + 1]
    return CropMask(cx - r, cy - r, (xx - r) ** 2 + (yy - r) ** 2 <= r * r)


def _write(path: Path, images: list[CocoImage], categories: list[Category]) -> Path:
    path.write_text(json.dumps(build_coco(images, categories)))
    return path


def _import(folder: Path, coco_path: Path):
    with Project.open(folder) as project:
        report = import_coco(project, parse_coco(coco_path), coco_path)
        stored = {r.path: project.instances(r.id) for r in project.images()}
    return report, stored


CATS = [Category(1, "cat"), Category(2, "dog")]


def test_a_base_name_only_matches_when_unique_in_the_file_and_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _photo(folder / "val" / "a.png", 40, 30)
    _photo(folder / "only" / "c.png", 40, 30)
    _photo(folder / "x" / "d.png", 40, 30)
    _photo(folder / "y" / "d.png", 40, 30)
    coco = _write(
        tmp_path / "in.json",
        [
            CocoImage("train/a.png", 40, 30, [Instance(1, _disc(10, 10, 3))]),
            CocoImage("val/a.png", 40, 30, [Instance(2, _disc(20, 10, 3))]),
            CocoImage("elsewhere/c.png", 40, 30, [Instance(1, _disc(5, 5, 2))]),
            CocoImage("d.png", 40, 30, [Instance(1, _disc(5, 5, 2))]),
            CocoImage("root/x/d.png", 40, 30, [Instance(2, _disc(8, 8, 2))]),
        ],
        CATS,
    )
    report, stored = _import(folder, coco)
    # val/a.png exactly; train/a.png's base name is shared in the file: not put on val/a.png
    assert [i.category_id for i in stored["val/a.png"]] == [2]
    assert "train/a.png" in report.unmatched
    assert [i.mask for i in stored["only/c.png"]] == [_disc(5, 5, 2)]  # unique both sides
    assert "d.png" in report.unmatched  # two d.png in the folder
    assert [i.category_id for i in stored["x/d.png"]] == [2]  # leading folder dropped
    assert stored["y/d.png"] == []
    assert report.images_matched == 3 and report.instances_added == 3


def test_a_fallback_never_claims_an_image_another_entry_matches(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _photo(folder / "a.png", 40, 30)
    coco = _write(
        tmp_path / "in.json",
        [
            CocoImage("a.png", 40, 30, [Instance(1, _disc(10, 10, 3))]),
            CocoImage("old/a.png", 40, 30, [Instance(2, _disc(20, 10, 3))]),
        ],
        CATS,
    )
    report, stored = _import(folder, coco)
    assert [i.category_id for i in stored["a.png"]] == [1]
    assert report.ambiguous == ["old/a.png"]
    assert "old/a.png" in report.summary(coco, folder)


def test_a_size_mismatch_is_reported_and_nothing_of_it_decoded(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _photo(folder / "a.png", 40, 30)
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 50000, "height": 40000}],
        "categories": [{"id": 1, "name": "cat"}],
        # counts that would need 2 GB to decode, and are not even valid
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": {"size": [40000, 50000], "counts": [0, 2_000_000_000]},
            }
        ],
    }
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    report, stored = _import(folder, path)
    assert report.wrong_size == ["a.png: file says 50000x40000, a.png is 40x30"]
    assert stored["a.png"] == [] and report.images_matched == 0


def test_decisions_and_crowd_regions_survive_an_import(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _photo(folder / "a.png", 60, 40)
    instances = [
        Instance(1, _disc(10, 10, 4), score=0.2, review=Review.ACCEPTED),
        Instance(2, _disc(30, 10, 4), score=0.9),
        Instance(1, _disc(50, 30, 5), origin=Origin.HUMAN, review=Review.ACCEPTED),
        Instance(2, _disc(10, 30, 6), origin=Origin.HUMAN, review=Review.ACCEPTED, crowd=True),
    ]
    coco = _write(tmp_path / "in.json", [CocoImage("a.png", 60, 40, instances)], CATS)
    crowd_ann = json.loads(coco.read_text())["annotations"][3]
    assert crowd_ann["iscrowd"] == 1 and isinstance(crowd_ann["segmentation"]["counts"], list)
    _, stored = _import(folder, coco)
    got = stored["a.png"]
    assert [(i.origin, i.review, i.score, i.crowd) for i in got] == [
        (Origin.MODEL, Review.ACCEPTED, 0.2, False),
        (Origin.MODEL, Review.PENDING, 0.9, False),
        (Origin.HUMAN, Review.ACCEPTED, None, False),
        (Origin.HUMAN, Review.ACCEPTED, None, True),
    ]
    assert [i.mask for i in got] == [i.mask for i in instances]


def test_ground_truth_onto_predictions_replaces_them_instead_of_doubling(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _photo(folder / "a.png", 80, 60)
    with Project.open(folder) as project:
        project.ensure_categories(CATS)
        rid = project.images()[0].id
        project.set_predictions(
            rid,
            [
                Instance(1, _disc(20, 20, 8), score=0.9),  # the labelled cat, slightly off
                Instance(2, _disc(21, 20, 8), score=0.4),  # called a dog: another class
                Instance(1, _disc(60, 40, 6), score=0.7),  # nothing labelled there
            ],
            "coco-v1",
        )
    truth = _write(
        tmp_path / "gt.json",
        [CocoImage("a.png", 80, 60, [Instance(1, _disc(21, 21, 8), origin=Origin.HUMAN)])],
        CATS,
    )
    report, stored = _import(folder, truth)
    assert report.superseded == 1 and report.instances_added == 1
    assert [(i.category_id, i.origin, i.score) for i in stored["a.png"]] == [
        (2, Origin.MODEL, 0.4),
        (1, Origin.MODEL, 0.7),
        (1, Origin.HUMAN, None),
    ]


def test_an_import_is_all_or_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _photo(folder / "a.png", 40, 30)
    _photo(folder / "b.png", 40, 30)
    rle = mask_util.encode(np.asfortranarray(np.ones((30, 40), np.uint8)))
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 7, "name": "newt"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 7,
                "segmentation": {"size": [30, 40], "counts": rle["counts"].decode()},
            },
            {
                "id": 2,
                "image_id": 2,
                "category_id": 1,
                "segmentation": {"size": [30, 40], "counts": [5, 5]},
            },  # does not cover 30 x 40
        ],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with Project.open(folder) as project, pytest.raises(CocoError, match="annotation 2"):
        import_coco(project, parse_coco(path), path)
    with Project.open(folder) as project:
        assert all(project.instances(r.id) == [] for r in project.images())
        assert project.categories.by_name("newt") is None
        assert {r.status for r in project.images()} == {ImageStatus.NEW}


def test_importing_again_adds_nothing_and_many_instances_stay_cheap(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _photo(folder / "a.png", 400, 300)
    rng = np.random.default_rng(0)
    instances = [
        Instance(
            1 + i % 2,
            CropMask(
                int(rng.integers(0, 380)), int(rng.integers(0, 280)), rng.random((12, 15)) > 0.3
            ),
            origin=Origin.HUMAN,
        )
        for i in range(600)
    ]
    coco = _write(tmp_path / "many.json", [CocoImage("a.png", 400, 300, instances)], CATS)
    first, _ = _import(folder, coco)
    second, stored = _import(folder, coco)
    assert first.instances_added == 600 and second.instances_added == 0
    assert second.duplicates == 600
    assert [i.mask for i in stored["a.png"]] == [i.mask for i in instances]
