"""What a person decided survives export -> import -> export at a real threshold, failed
images keep their work, and info counts what export writes; through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from maskdesk.cli import main
from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project


def _disc(cx: int, cy: int, r: int) -> CropMask:
    yy, xx = np.mgrid[: 2 * r + 1, : 2 * r + 1]
    return CropMask(cx - r, cy - r, (xx - r) ** 2 + (yy - r) ** 2 <= r * r)


@pytest.fixture
def reviewed_folder(tmp_path: Path) -> Path:
    """Three photos; instances of every kind: pending above and below 0.5, accepted below 0.5,
    rejected, hidden, human, crowd."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / name)
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "cat"), Category(2, "dog")])
        ids = {r.path: r.id for r in project.images()}
        project.set_predictions(
            ids["a.png"],
            [
                Instance(
                    1 + i % 2, _disc(8 + 9 * i, 10 + 4 * (i % 3), 4), score=round(0.1 * i + 0.05, 2)
                )
                for i in range(8)
            ],
            "coco-v1",
        )
        stored = project.instances(ids["a.png"])
        for inst in stored[:3]:  # scores 0.05, 0.15, 0.25: accepted by a person
            project.update_instance(inst.with_changes(review=Review.ACCEPTED))
        project.update_instance(stored[6].with_changes(review=Review.REJECTED))  # 0.65
        project.update_instance(stored[7].with_changes(visible=False))  # 0.75
        project.add_instance(
            ids["b.png"], Instance(2, _disc(30, 30, 9), origin=Origin.HUMAN, review=Review.ACCEPTED)
        )
        project.add_instance(
            ids["b.png"],
            Instance(1, _disc(60, 30, 7), origin=Origin.HUMAN, review=Review.ACCEPTED, crowd=True),
        )
        project.add_instance(ids["c.png"], Instance(1, _disc(40, 30, 6), score=0.9))
    return folder


def _annotations(path: Path) -> list[tuple]:
    data = json.loads(path.read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    return sorted(
        (
            names[a["image_id"]],
            a["category_id"],
            a.get("score"),
            a["iscrowd"],
            a["area"],
            tuple(a["bbox"]),
            a["maskdesk"]["origin"],
            a["maskdesk"]["review"],
        )
        for a in data["annotations"]
    )


def test_decisions_survive_a_round_trip_at_a_real_threshold(
    reviewed_folder: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first.json"
    assert main(["export", str(reviewed_folder), "-o", str(first), "--score", "0.5"]) == 0
    # accepted 0.05/0.15/0.25, pending 0.55, human, crowd, c's 0.9; not 0.35/0.45, rejected,
    # hidden
    assert len(_annotations(first)) == 7
    copy = tmp_path / "copy"
    shutil.copytree(reviewed_folder, copy, ignore=shutil.ignore_patterns(".maskdesk"))
    assert main(["import", str(copy), str(first)]) == 0
    second = tmp_path / "second.json"
    assert main(["export", str(copy), "-o", str(second), "--score", "0.5"]) == 0
    assert _annotations(second) == _annotations(first)
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    for data in (a, b):
        data["info"].pop("date_created")
    assert a == b
    with Project.open(copy) as project:
        record = project.image_by_path("a.png")
        assert record is not None
        reviews = sorted((i.score, i.review) for i in project.instances(record.id))
    assert reviews[:3] == [
        (0.05, Review.ACCEPTED),
        (0.15, Review.ACCEPTED),
        (0.25, Review.ACCEPTED),
    ]
    crowd = [a for a in COCO(str(second)).dataset["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and isinstance(crowd[0]["segmentation"]["counts"], list)


def test_a_failed_image_keeps_its_work_and_info_agrees_with_export(
    reviewed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Project.open(reviewed_folder) as project:
        b = project.image_by_path("b.png")
        assert b is not None
        project.set_status(b.id, ImageStatus.FAILED, "the disk hiccupped")
    out = tmp_path / "out.json"
    capsys.readouterr()
    assert main(["export", str(reviewed_folder), "-o", str(out), "--score", "0.5"]) == 0
    exported = _annotations(out)
    assert [a[0] for a in exported].count("b.png") == 2  # the human and the crowd region
    assert main(["info", str(reviewed_folder), "--score", "0.5"]) == 0
    info = capsys.readouterr().out
    assert "exported at score >= 0.5: 7 instances on 3 images" in info
    assert "instances stored: 11 (pending 5, accepted 5, rejected 1)" in info
    assert "  cat: 4\n  dog: 3\n" in info  # per class, as export writes them
    assert "  failed: 1\n" in info
    assert main(["info", str(reviewed_folder), "--score", "0"]) == 0
    assert "exported at score >= 0.0: 9 instances" in capsys.readouterr().out


def test_clear_removes_pending_predictions_and_keeps_decisions(
    reviewed_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["clear", str(reviewed_folder)]) == 0
    # The prediction a person hid on a.png is a decision and stays.
    assert "4 pending model instances removed from 2 images" in capsys.readouterr().err
    with Project.open(reviewed_folder) as project:
        kinds = sorted(
            (r.path, i.origin.value, i.review.value)
            for r in project.images()
            for i in project.instances(r.id)
        )
        c = project.image_by_path("c.png")
        assert c is not None and c.status is ImageStatus.NEW
    assert kinds == [
        ("a.png", "model", "accepted"),
        ("a.png", "model", "accepted"),
        ("a.png", "model", "accepted"),
        ("a.png", "model", "pending"),
        ("a.png", "model", "rejected"),
        ("b.png", "human", "accepted"),
        ("b.png", "human", "accepted"),
    ]


def test_export_of_reviewed_images_or_accepted_instances_only(
    reviewed_folder: Path, tmp_path: Path
) -> None:
    with Project.open(reviewed_folder) as project:
        b = project.image_by_path("b.png")
        assert b is not None
        project.set_status(b.id, ImageStatus.REVIEWED)
    reviewed = tmp_path / "reviewed.json"
    assert main(["export", str(reviewed_folder), "-o", str(reviewed), "--only", "reviewed"]) == 0
    data = json.loads(reviewed.read_text())
    assert [im["file_name"] for im in data["images"]] == ["b.png"]
    assert len(data["annotations"]) == 2
    accepted = tmp_path / "accepted.json"
    assert main(["export", str(reviewed_folder), "-o", str(accepted), "--only", "accepted"]) == 0
    kept = _annotations(accepted)
    assert [im["file_name"] for im in json.loads(accepted.read_text())["images"]] == [
        "a.png",
        "b.png",
        "c.png",
    ]
    assert {a[7] for a in kept} == {"accepted"} and len(kept) == 5  # 3 on a, 2 human on b
