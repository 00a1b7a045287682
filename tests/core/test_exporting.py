"""Which images a project's export takes: a failed image without a person's work is left out
and named, one with a person's work stays with it; real files, a real project store."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdesk.core.categories import Category
from maskdesk.core.exporting import (
    LeftOut,
    Scope,
    export_project,
    left_out_summary,
    project_images,
)
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project

TRUNCATED = "Cannot read image: the file is damaged or incomplete (image file is truncated)."


def truncated_jpeg(path: Path, width: int = 80, height: int = 60) -> None:
    """A JPEG cut in half: its header (and size) reads, its pixels do not."""
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])


def square(x: int, y: int, side: int = 10) -> CropMask:
    return CropMask(x, y, np.ones((side, side), dtype=bool))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """good.png, and five truncated JPEGs marked failed as predict marks them, each holding
    a different kind of work: none, a pending prediction, a rejected one, an accepted one, a
    human one."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((60, 80, 3), 90, dtype=np.uint8)).save(folder / "good.png")
    kinds = {
        "bare.jpg": None,
        "pending.jpg": Instance(1, square(5, 5), score=0.9),
        "rejected.jpg": Instance(1, square(5, 5), score=0.9, review=Review.REJECTED),
        "accepted.jpg": Instance(1, square(5, 5), score=0.9, review=Review.ACCEPTED),
        "human.jpg": Instance(1, square(20, 20), origin=Origin.HUMAN, review=Review.ACCEPTED),
    }
    for name in kinds:
        truncated_jpeg(folder / name)
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "thing")])
        for name, instance in kinds.items():
            record = project.image_by_path(name)
            assert record is not None and record.width == 80  # the header reads
            if instance is not None:
                project.add_instance(record.id, instance)
            project.set_status(record.id, ImageStatus.FAILED, TRUNCATED)
    return folder


def test_a_failed_image_without_work_is_left_out_and_named(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with Project.open(folder) as project:
        exported = export_project(project, out, min_score=0.5)
    data = json.loads(out.read_text())
    assert exported.data == data
    names = {im["id"]: im["file_name"] for im in data["images"]}
    assert sorted(names.values()) == ["accepted.jpg", "good.png", "human.jpg", "rejected.jpg"]
    assert exported.left_out == [
        LeftOut("bare.jpg", TRUNCATED),
        LeftOut("pending.jpg", TRUNCATED),
    ]
    # the failed images with a person's work keep it
    kept = sorted((names[a["image_id"]], a["maskdesk"]["origin"]) for a in data["annotations"])
    assert kept == [("accepted.jpg", "model"), ("human.jpg", "human")]


def test_scopes_decide_on_all_the_work_of_a_failed_image(folder: Path) -> None:
    with Project.open(folder) as project:
        # rejected.jpg holds no accepted instance, but a person decided on it: still listed
        accepted = [im.file_name for im in project_images(project, Scope.ACCEPTED)]
        reviewed = project_images(project, Scope.REVIEWED)
    assert accepted == ["accepted.jpg", "good.png", "human.jpg", "rejected.jpg"]
    assert reviewed == []


def test_an_image_whose_size_never_read_is_named_too(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "empty.png").write_bytes(b"")
    out = tmp_path / "out.json"
    with Project.open(folder) as project:
        exported = export_project(project, out)
    assert json.loads(out.read_text())["images"] == []
    assert [item.path for item in exported.left_out] == ["empty.png"]
    assert exported.left_out[0].reason  # the reason the scan recorded


def test_the_summary_names_each_image_and_counts_past_the_limit() -> None:
    one = [LeftOut("a/broken.jpg", "image file is truncated")]
    assert left_out_summary(one) == (
        "left out 1 image that failed and holds no person's work (an empty entry would say "
        "it has no objects): a/broken.jpg (image file is truncated)"
    )
    many = [LeftOut(f"{i}.jpg", "truncated") for i in range(5)]
    text = left_out_summary(many, limit=2)
    assert text.startswith("left out 5 images that failed and hold no person's work")
    assert text.endswith(": 0.jpg (truncated); 1.jpg (truncated); and 3 more")
    assert left_out_summary([]) == ""


def test_info_counts_what_the_export_writes_for_failed_images(folder: Path, tmp_path: Path) -> None:
    # `maskdesk info` must agree with the export it describes: the bare and pending failed
    # images are not listed, and the pending prediction on one is not counted as exported.
    out = tmp_path / "out.json"
    with Project.open(folder) as project:
        counts = project.counts(0.5)
        export_project(project, out, min_score=0.5)
    data = json.loads(out.read_text())
    assert counts["listed"] == len(data["images"]) == 4
    assert counts["exported"] == len(data["annotations"]) == 2
