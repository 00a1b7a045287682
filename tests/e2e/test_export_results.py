"""`maskdesk export --results`: a COCO results list that pycocotools' loadRes and COCOeval
take, with ids of the folder's own export or of a ground-truth file; through the real CLI."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskdesk.cli import main
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.datasets.shapes import categories_of, generate, sample_instances

SIZE = 96
PICTURES = {"a.png": 0, "b.png": 1, "c.png": 3, "d.png": 2}  # name -> index of the picture


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four pictures of shapes: a and b drawn by a person (b with a crowd region), c
    pre-labeled by a model (scores 0.9, 0.3 accepted, 0.2 pending, 0.6), d without objects."""
    from maskdesk.core.project import Project

    folder = tmp_path / "photos"
    folder.mkdir()
    samples = {name: generate(7, i, SIZE) for name, i in PICTURES.items()}
    for name, sample in samples.items():
        Image.fromarray(sample.image).save(folder / name)
    with Project.open(folder) as project:
        project.ensure_categories(categories_of(("circle", "rectangle", "triangle")))
        ids = {r.path: r.id for r in project.images()}
        project.add_instances(ids["a.png"], sample_instances(samples["a.png"]))
        project.add_instances(ids["b.png"], sample_instances(samples["b.png"]))
        crowd = CropMask(0, 0, np.ones((4, 4), dtype=bool))
        project.add_instance(
            ids["b.png"],
            Instance(1, crowd, origin=Origin.HUMAN, review=Review.ACCEPTED, crowd=True),
        )
        predictions = [
            inst.with_changes(origin=Origin.MODEL, review=Review.PENDING, score=score)
            for inst, score in zip(
                sample_instances(samples["c.png"]), (0.9, 0.3, 0.2, 0.6), strict=True
            )
        ]
        project.set_predictions(ids["c.png"], predictions, "coco-v1")
        low = next(i for i in project.instances(ids["c.png"]) if i.score == 0.3)
        project.update_instance(low.with_changes(review=Review.ACCEPTED))  # kept below 0.5
    return folder


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _export(folder: Path, out: Path, *extra: str) -> tuple[int, str]:
    return _run(["export", str(folder), "-o", str(out), *extra])


def _ap(gt_path: Path, results_path: Path) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(results_path))
        ev = COCOeval(gt, dt, "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def test_identical_predictions_score_ap_one(folder: Path, tmp_path: Path) -> None:
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    assert _export(folder, gt)[0] == 0
    code, err = _export(folder, res, "--results", "--image-ids-from", str(gt))
    assert code == 0, err
    entries = _load(res)
    dataset = _load(gt)
    regular = [a for a in dataset["annotations"] if not a["iscrowd"]]
    assert len(entries) == len(regular) > 0
    for entry in entries:
        assert set(entry) == {"image_id", "category_id", "segmentation", "bbox", "score"}
        assert isinstance(entry["segmentation"]["counts"], str)
        assert len(entry["bbox"]) == 4
    # human instances have no score: they get 1.0; predictions keep theirs
    human = [a for a in regular if a["maskdesk"]["origin"] == "human"]
    assert sum(e["score"] == 1.0 for e in entries) == len(human)
    assert sorted(e["score"] for e in entries if e["score"] != 1.0) == sorted(
        a["score"] for a in regular if a["maskdesk"]["origin"] == "model"
    )
    assert "1 crowd region left out" in err
    assert _ap(gt, res) == pytest.approx(1.0)


def test_without_ground_truth_ids_pair_with_the_same_export(folder: Path, tmp_path: Path) -> None:
    for n, extra in enumerate((["--score", "0.5"], ["--score", "0.75"], ["--only", "accepted"])):
        gt, res = tmp_path / f"gt{n}.json", tmp_path / f"res{n}.json"
        assert _export(folder, gt, *extra)[0] == 0
        code, err = _export(folder, res, "--results", *extra)
        assert code == 0, err
        dataset = _load(gt)
        expected = sorted(
            (a["image_id"], a["category_id"], a["segmentation"]["counts"], a.get("score", 1.0))
            for a in dataset["annotations"]
            if not a["iscrowd"]
        )
        got = sorted(
            (e["image_id"], e["category_id"], e["segmentation"]["counts"], e["score"])
            for e in _load(res)
        )
        assert got == expected
        assert _ap(gt, res) == pytest.approx(1.0)


def test_prefixed_and_renumbered_ground_truth_still_maps_ids(folder: Path, tmp_path: Path) -> None:
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    assert _export(folder, gt)[0] == 0
    data = _load(gt)
    image_ids = {im["id"]: 100 + 7 * im["id"] for im in data["images"]}
    cat_ids = {c["id"]: 50 - c["id"] for c in data["categories"]}
    for im in data["images"]:
        im["id"] = image_ids[im["id"]]
        im["file_name"] = "train/" + im["file_name"]
    data["images"].reverse()
    for c in data["categories"]:
        c["id"] = cat_ids[c["id"]]
    for a in data["annotations"]:
        a["image_id"] = image_ids[a["image_id"]]
        a["category_id"] = cat_ids[a["category_id"]]
    other = tmp_path / "prefixed.json"
    other.write_text(json.dumps(data))

    code, err = _export(folder, res, "--results", "--image-ids-from", str(other))
    assert code == 0, err
    entries = _load(res)
    assert {e["image_id"] for e in entries} <= set(image_ids.values())
    assert {e["category_id"] for e in entries} <= set(cat_ids.values())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    assert {names[e["image_id"]] for e in entries} == {"train/a.png", "train/b.png", "train/c.png"}
    assert _ap(other, res) == pytest.approx(1.0)


def test_image_and_class_missing_from_ground_truth_are_left_out(
    folder: Path, tmp_path: Path
) -> None:
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    assert _export(folder, gt)[0] == 0
    data = _load(gt)
    gone = next(im["id"] for im in data["images"] if im["file_name"] == "a.png")
    on_gone = sum(a["image_id"] == gone and not a["iscrowd"] for a in data["annotations"])
    data["images"] = [im for im in data["images"] if im["id"] != gone]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != gone]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(data))

    code, err = _export(folder, res, "--results", "--image-ids-from", str(partial))
    assert code == 1
    assert f"1 image ({on_gone} instances) left out" in err
    assert "a.png (no image of that name)" in err
    entries = _load(res)
    assert gone not in {e["image_id"] for e in entries}
    assert _ap(partial, res) == pytest.approx(1.0)

    # a class the ground truth calls otherwise is left out too, and named
    triangle = next(c for c in data["categories"] if c["name"] == "triangle")
    triangle["name"] = "trigon"
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(data))
    code, err = _export(folder, res, "--results", "--image-ids-from", str(renamed))
    assert code == 1
    on_b = sum(a["category_id"] == triangle["id"] for a in data["annotations"])
    assert on_b > 0
    assert f"1 class ({on_b} instance{'s' if on_b > 1 else ''}) left out" in err
    assert "triangle (" in err
    assert triangle["id"] not in {e["category_id"] for e in _load(res)}


def test_ground_truth_with_a_mismatched_size_is_left_out(folder: Path, tmp_path: Path) -> None:
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    assert _export(folder, gt)[0] == 0
    data = _load(gt)
    data["images"][0]["width"] += 1
    gt.write_text(json.dumps(data))
    code, err = _export(folder, res, "--results", "--image-ids-from", str(gt))
    assert code == 1
    assert f"this image {SIZE}x{SIZE}" in err


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ('[{"image_id": 1, "category_id": 1, "score": 0.5}]', "JSON list"),
        ('{"images": []}', "'categories'"),
        ('{"images": [{"id": 1}], "categories": []}', "image #1 needs"),
    ],
)
def test_bad_ground_truth_is_a_message_naming_it(
    folder: Path, tmp_path: Path, content: str | None, words: str
) -> None:
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    if content is not None:
        gt.write_text(content)
    code, err = _export(folder, res, "--results", "--image-ids-from", str(gt))
    assert code == 2
    assert str(gt) in err and words in err
    assert "--image-ids-from" in err
    assert "Traceback" not in err
    assert not res.exists()


def test_flags_that_do_not_go_together_are_refused(folder: Path, tmp_path: Path) -> None:
    res = tmp_path / "res.json"
    code, err = _export(folder, res, "--image-ids-from", str(tmp_path / "gt.json"))
    assert code == 2 and "--results" in err
    code, err = _export(folder, res, "--results", "--polygons")
    assert code == 2 and "--polygons" in err
    assert not res.exists()
    gt = tmp_path / "gt.json"
    assert _export(folder, gt)[0] == 0
    before = gt.read_bytes()
    code, err = _export(folder, gt, "--results", "--image-ids-from", str(gt))
    assert code == 2 and "is the ground truth" in err
    assert gt.read_bytes() == before


def test_help_says_human_instances_score_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "score 1.0" in text
    assert "pair the list with this folder's export" in text
