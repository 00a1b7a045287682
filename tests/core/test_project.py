"""The project as the app and the CLI use it: real image files, a real SQLite store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdesk.core.categories import Category
from maskdesk.core.errors import ProjectError
from maskdesk.core.images import scan_folder
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project


def _photo(path: Path, width: int, height: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _disc(cx: int, cy: int, r: int) -> CropMask:
    yy, xx = np.mgrid[: 2 * r + 1, : 2 * r + 1]
    return CropMask(cx - r, cy - r, (xx - r) ** 2 + (yy - r) ** 2 <= r * r)


def _predictions(n: int, category_id: int = 1, seed: int = 0) -> list[Instance]:
    rng = np.random.default_rng(seed)
    return [
        Instance(
            category_id,
            CropMask(int(rng.integers(0, 40)), int(rng.integers(0, 30)), rng.random((9, 12)) > 0.4),
            score=float(rng.random()),
        )
        for _ in range(n)
    ]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    _photo(folder / "img10.png", 64, 48, 1)
    _photo(folder / "img2.png", 40, 30, 2)
    _photo(folder / "left" / "same.png", 20, 10, 3)
    _photo(folder / "right" / "same.png", 30, 15, 4)
    return folder


def _record(project: Project, path: str) -> int:
    record = project.image_by_path(path)
    assert record is not None, path
    return record.id


def test_opening_lists_every_image_with_its_size(tmp_path: Path) -> None:
    # Names on which a per-folder order and a whole-path string order disagree: the project
    # lists them in the one natural order (numbers by value, case ignored, folders kept
    # together and placed among the files by name).
    sizes = {
        "a/x.png": (21, 11),
        "A.png": (25, 15),
        "a b/x.png": (22, 12),
        "a-1.png": (26, 16),
        "a1/x.png": (23, 13),
        "a2.png": (27, 17),
        "a10.png": (28, 18),
        "b.png": (29, 19),
        "img2.png": (40, 30),
        "img02.png": (41, 31),
        "img10.png": (64, 48),
        "left/same.png": (20, 10),
        "right/same.png": (30, 15),
        "ünï/fötö.png": (24, 14),
        "写真.png": (31, 21),
    }
    folder = tmp_path / "photos"
    for seed, (rel, (width, height)) in enumerate(reversed(sizes.items())):
        _photo(folder / rel, width, height, seed)
    expected = list(sizes)
    with Project.open(folder) as project:
        records = project.images()
        assert [r.path for r in records] == expected
        assert scan_folder(folder) == expected
        assert {r.path: (r.width, r.height) for r in records} == sizes
        assert {r.status for r in records} == {ImageStatus.NEW}
        left, right = (
            project.image_by_path("left/same.png"),
            project.image_by_path("right/same.png"),
        )
        assert left is not None and right is not None and left.id != right.id
        assert project.absolute_path(right) == folder.resolve() / "right" / "same.png"
        assert project.image(left.id) == left
    # A file added later is stored last but listed in its place.
    _photo(folder / "a3.png", 9, 9)
    with Project.open(folder) as project:
        paths = [r.path for r in project.images()]
    assert paths == [*expected[:6], "a3.png", *expected[6:]]
    assert paths[5:8] == ["a2.png", "a3.png", "a10.png"]


def test_reopening_keeps_everything(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person"), Category(18, "dog")])
        cat = project.add_category("cat")
        a, b = _record(project, "img10.png"), _record(project, "left/same.png")
        project.set_predictions(a, _predictions(5), "coco-v1")
        human = project.add_instance(
            a,
            Instance(cat.id, _disc(30, 20, 6), origin=Origin.HUMAN, review=Review.ACCEPTED),
        )
        hidden = project.add_instance(
            b, Instance(18, _disc(8, 5, 3), score=0.4, box=(4.5, 1.0, 12.25, 9.0), visible=False)
        )
        project.set_status(b, ImageStatus.REVIEWED)
        project.set_status(_record(project, "img2.png"), ImageStatus.FAILED, "model crashed")
        saved_records = project.images()
        saved_a, saved_b = project.instances(a), project.instances(b)
        saved_categories = list(project.categories)
    with Project.open(folder) as project:
        assert project.images() == saved_records
        assert list(project.categories) == saved_categories
        assert [c.name for c in project.categories] == ["person", "dog", "cat"]
        again_a, again_b = project.instances(a), project.instances(b)
        assert again_a == saved_a and again_b == saved_b
        assert [i.id for i in again_a] == [i.id for i in saved_a]
        assert again_a[-1].id == human.id and again_a[-1].mask == _disc(30, 20, 6)
        assert again_b[0].box == (4.5, 1.0, 12.25, 9.0) and not again_b[0].visible
        assert again_b[0].id == hidden.id
        for before, after in zip(saved_a, again_a, strict=True):
            assert np.array_equal(before.mask.to_full(64, 48), after.mask.to_full(64, 48))
        failed = project.image(_record(project, "img2.png"))
        assert (failed.status, failed.reason) == (ImageStatus.FAILED, "model crashed")
        assert project.image(a).model == "coco-v1"


def test_new_files_appear_and_vanished_ones_come_back_with_their_work(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person")])
        img2 = _record(project, "img2.png")
        project.add_instance(img2, Instance(1, _disc(10, 10, 4)))
    _photo(folder / "deeper" / "new.png", 12, 8)
    (folder / "img2.png").rename(folder.parent / "away.png")
    with Project.open(folder) as project:
        paths = [r.path for r in project.images()]
        assert "deeper/new.png" in paths and "img2.png" not in paths
        new = project.image_by_path("deeper/new.png")
        assert new is not None and (new.width, new.height, new.status) == (12, 8, ImageStatus.NEW)
        gone = project.image_by_path("img2.png")
        assert gone is not None and gone.missing
        assert project.counts()["missing"] == 1
    (folder.parent / "away.png").rename(folder / "img2.png")
    with Project.open(folder) as project:
        assert "img2.png" in [r.path for r in project.images()]
        assert project.image_by_path("img2.png") == project.image(img2)
        assert len(project.instances(img2)) == 1


def test_a_changed_file_is_measured_again(folder: Path) -> None:
    target = folder / "img2.png"
    with Project.open(folder) as project:
        img2 = _record(project, "img2.png")
        project.set_status(img2, ImageStatus.PRELABELED)
    stat = target.stat()
    _photo(target, 50, 20)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    with Project.open(folder) as project:
        record = project.image(img2)
        assert (record.width, record.height, record.status) == (50, 20, ImageStatus.PRELABELED)


def test_an_unreadable_file_is_failed_not_fatal(folder: Path) -> None:
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with Project.open(folder) as project:
        broken = project.image_by_path("broken.jpg")
        assert broken is not None
        assert broken.status is ImageStatus.FAILED
        assert broken.reason and "broken.jpg" in broken.reason
        assert len(project.images()) == 5
        assert project.counts()["status"]["failed"] == 1
    _photo(folder / "broken.jpg", 16, 16)  # fixed by the user: measured again, no longer failed
    os.utime(folder / "broken.jpg", ns=(0, 10**18))
    with Project.open(folder) as project:
        fixed = project.image_by_path("broken.jpg")
        assert fixed is not None
        assert (fixed.status, fixed.reason, fixed.width) == (ImageStatus.NEW, None, 16)


def test_predictions_replace_only_pending_model_instances(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person"), Category(2, "car")])
        image = _record(project, "img10.png")
        assert project.set_predictions(image, _predictions(4, seed=1), "coco-v1")
        first = project.instances(image)
        project.update_instance(first[0].with_changes(review=Review.ACCEPTED))
        project.update_instance(first[1].with_changes(review=Review.REJECTED))
        human = project.add_instance(image, Instance(2, _disc(20, 20, 5), origin=Origin.HUMAN))

        new = _predictions(3, category_id=2, seed=2)
        assert project.set_predictions(image, new, "coco-v2")
        after = project.instances(image)
        kept_ids = [first[0].id, first[1].id, human.id]
        assert [i.id for i in after[:3]] == kept_ids
        assert [i.review for i in after[:2]] == [Review.ACCEPTED, Review.REJECTED]
        assert after[3:] == new
        record = project.image(image)
        assert (record.status, record.model) == (ImageStatus.PRELABELED, "coco-v2")


def test_running_the_model_again_does_not_propose_decided_objects_again(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person"), Category(2, "car")])
        image = _record(project, "img10.png")
        run = [
            Instance(1, _disc(10, 10, 6), score=0.9),
            Instance(1, _disc(40, 20, 6), score=0.8),
            Instance(1, _disc(25, 35, 5), score=0.7),
        ]
        project.set_predictions(image, run, "coco-v1")
        accepted, rejected, _pending = project.instances(image)
        project.update_instance(accepted.with_changes(review=Review.ACCEPTED))
        project.update_instance(rejected.with_changes(review=Review.REJECTED))

        # the same detections again, plus a car where the accepted person is
        again = [*run, Instance(2, _disc(10, 10, 6), score=0.6)]
        assert project.set_predictions(image, again, "coco-v1")
        after = project.instances(image)
        assert [(i.category_id, i.review) for i in after] == [
            (1, Review.ACCEPTED),
            (1, Review.REJECTED),
            (1, Review.PENDING),
            (2, Review.PENDING),
        ]
        assert after[2].mask == _disc(25, 35, 5)


def test_reviewed_images_are_never_overwritten(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person")])
        image = _record(project, "img10.png")
        project.set_predictions(image, _predictions(3), "coco-v1")
        project.set_status(image, ImageStatus.REVIEWED)
        before = project.instances(image)
        assert project.set_predictions(image, _predictions(7, seed=5), "coco-v2") is False
        assert project.instances(image) == before
        record = project.image(image)
        assert (record.status, record.model) == (ImageStatus.REVIEWED, "coco-v1")


def test_a_failing_edit_leaves_the_previous_state_whole(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person")])
        image = _record(project, "img10.png")
        project.set_predictions(image, _predictions(3), "coco-v1")
        before = project.instances(image)
        # category 99 does not exist: the database refuses the second row, after the old
        # predictions were already deleted inside the transaction
        bad = [*_predictions(1, seed=7), *_predictions(1, category_id=99), *_predictions(1)]
        with pytest.raises(ValueError, match="99"):
            project.set_predictions(image, bad, "coco-v2")
        assert project.instances(image) == before
        assert project.image(image).model == "coco-v1"
    with Project.open(folder) as project:
        assert project.instances(image) == before


def test_instance_edits(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person"), Category(2, "car")])
        image = _record(project, "img2.png")
        added = project.add_instance(image, Instance(1, _disc(10, 10, 4), score=0.9))
        assert added.id is not None
        moved = _disc(20, 12, 3)
        project.update_instance(
            added.with_changes(category_id=2, mask=moved, box=None, visible=False, score=0.5)
        )
        (stored,) = project.instances(image)
        assert (stored.category_id, stored.visible, stored.score) == (2, False, 0.5)
        assert stored.mask == moved
        with pytest.raises(ValueError, match="unknown category"):
            project.add_instance(image, Instance(7, _disc(5, 5, 2)))
        with pytest.raises(ValueError, match="unknown category"):
            project.update_instance(stored.with_changes(category_id=7))
        project.delete_instance(added.id)
        assert project.instances(image) == []
        with pytest.raises(ValueError):
            project.delete_instance(added.id)
        restored = project.add_instance(image, stored)  # undoing the delete: same id again
        assert restored.id == added.id
        with pytest.raises(ValueError, match="already used"):
            project.add_instance(image, stored)
        with pytest.raises(ValueError):
            project.instances(10_000)


def test_many_predictions_round_trip(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person")])
        image = _record(project, "img10.png")
        predictions = _predictions(100, seed=11)
        project.set_predictions(image, predictions, "coco-v1")
        stored = project.instances(image)
        assert stored == predictions
        assert len({i.id for i in stored}) == 100


def test_categories(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person"), Category(18, "dog")])
        project.ensure_categories([Category(18, "dog")])  # idempotent
        assert project.add_category("cat").id == 19
        assert project.add_category("dog").id == 18
        with pytest.raises(ValueError):
            project.ensure_categories([Category(18, "wolf")])
        with pytest.raises(ValueError):
            project.rename_category(19, "dog")
        project.rename_category(19, "kitten")
        project.categories.add("leak")  # a copy: not stored
        assert "leak" not in [c.name for c in project.categories]
    with Project.open(folder) as project:
        assert [(c.id, c.name) for c in project.categories] == [
            (1, "person"),
            (18, "dog"),
            (19, "kitten"),
        ]


def test_counts(folder: Path) -> None:
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "person"), Category(2, "car"), Category(3, "bus")])
        a, b = _record(project, "img10.png"), _record(project, "img2.png")
        project.set_predictions(a, _predictions(3, category_id=1), "coco-v1")
        project.add_instance(a, Instance(2, _disc(10, 10, 3), review=Review.REJECTED))
        project.add_instance(b, Instance(2, _disc(10, 10, 3), visible=False))
        project.add_instance(b, Instance(2, _disc(12, 12, 3), origin=Origin.HUMAN))
        project.set_status(b, ImageStatus.REVIEWED)
        counts = project.counts()
    assert counts["images"] == 4
    assert counts["status"] == {"new": 2, "pre-labeled": 1, "reviewed": 1, "failed": 0}
    assert counts["instances"] == 6
    assert counts["review"] == {"pending": 5, "accepted": 0, "rejected": 1}
    assert counts["categories"] == {"person": 3, "car": 1}
    assert counts["exported"] == 4


def test_two_openers_see_each_others_edits(folder: Path) -> None:
    # The GUI keeps the project open while `maskdesk predict` writes to it.
    with Project.open(folder) as gui, Project.open(folder) as cli:
        cli.ensure_categories([Category(1, "person")])
        image = _record(cli, "img10.png")
        cli.set_predictions(image, _predictions(2), "coco-v1")
        assert len(gui.instances(image)) == 2
        assert [c.name for c in gui.categories] == ["person"]
        assert gui.image(image).status is ImageStatus.PRELABELED


def test_opening_something_that_is_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not a folder"):
        Project.open(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ProjectError, match="not a folder"):
        Project.open(tmp_path / "file.png")
