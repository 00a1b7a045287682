"""The one pre-labeling path, with a plain thresholding function as the model: which images
run, results stored as they arrive, failures, categories merged by name, progress, cancel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdesk.core.categories import Category
from maskdesk.core.errors import ImageError
from maskdesk.core.images import load_rgb
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask
from maskdesk.core.prelabel import ImageResult, Progress, prelabel
from maskdesk.core.project import ImageStatus, Project

# The "model" calls bright pixels label 5, which it names "blob".
MODEL_CATEGORIES = [Category(5, "blob")]


def bright_pixels(paths: Sequence[Path], cancel: Callable[[], bool]):
    for path in paths:
        if cancel():
            return
        try:
            rgb = load_rgb(path)
        except ImageError as exc:
            yield ImageResult(path, None, exc, 0.0)
            continue
        mask = CropMask.from_full(rgb[:, :, 0] > 128)
        yield ImageResult(path, [Instance(5, mask, score=0.9)], None, 0.0, rgb)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        rgb = np.zeros((20, 30, 3), np.uint8)
        rgb[2 + i : 8 + i, 3:12] = 255
        Image.fromarray(rgb).save(folder / f"p{i}.png")
    return folder


def test_results_are_stored_as_they_arrive_and_categories_merge_by_name(folder: Path) -> None:
    seen: list[Progress] = []
    with Project.open(folder) as project:
        project.add_category("cat")  # id 1
        project.ensure_categories([Category(7, "blob")])  # the project already knows "blob"
        p3 = project.image_by_path("p3.png")
        assert p3 is not None
        project.set_status(p3.id, ImageStatus.REVIEWED)

        def check_stored(record, result) -> None:
            # by the time the caller hears of an image, it is in the store
            assert project.image(record.id).status is ImageStatus.PRELABELED

        report = prelabel(
            project,
            "bright",
            MODEL_CATEGORIES,
            bright_pixels,
            progress=seen.append,
            on_result=check_stored,
        )
        stored = {r.path: project.instances(r.id) for r in project.images()}
    assert (report.total, report.stored, report.skipped_reviewed) == (3, 3, 1)
    assert [p.done for p in seen] == [1, 2, 3] and seen[-1].total == 3
    assert stored["p3.png"] == []
    assert [i.category_id for i in stored["p1.png"]] == [7]  # "blob" keeps the project's id
    assert stored["p1.png"][0].mask.bbox() == (3, 3, 9, 6)


def test_a_second_run_continues_and_a_cancel_stops_between_images(folder: Path) -> None:
    with Project.open(folder) as project:
        calls = []

        def cancel_after_two() -> bool:
            calls.append(1)
            return len(calls) > 2

        first = prelabel(
            project, "bright", MODEL_CATEGORIES, bright_pixels, cancel=cancel_after_two
        )
        assert (first.stored, first.cancelled) == (2, True)
        statuses = [r.status for r in project.images()]
        assert statuses == [ImageStatus.PRELABELED] * 2 + [ImageStatus.NEW] * 2
        second = prelabel(project, "bright", MODEL_CATEGORIES, bright_pixels)
        assert (second.total, second.stored, second.skipped_done) == (2, 2, 2)
        again = prelabel(project, "bright", MODEL_CATEGORIES, bright_pixels, redo=True)
        assert again.stored == 4
        other = prelabel(project, "another model", MODEL_CATEGORIES, bright_pixels)
        assert other.stored == 4  # a different model is not "already done"


def test_a_failing_image_is_marked_and_the_run_goes_on(folder: Path) -> None:
    (folder / "p1.png").write_bytes(b"not a picture")
    with Project.open(folder) as project:
        report = prelabel(project, "bright", MODEL_CATEGORIES, bright_pixels)
        records = {r.path: r for r in project.images()}
        assert report.stored == 3
        assert [path for path, _ in report.failed] == ["p1.png"]
        assert records["p1.png"].status is ImageStatus.FAILED
        assert "p1.png" in (records["p1.png"].reason or "")
        # a failure is tried again on the next run: the file may have been fixed
        assert prelabel(project, "bright", MODEL_CATEGORIES, bright_pixels).total == 1
