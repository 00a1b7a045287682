"""Edits the review window relies on: undo-friendly results, batches, threads, change notices,
superseding, clearing; each against a real SQLite store on real image files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdesk.core.categories import Category
from maskdesk.core.errors import ProjectError
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.store import SCHEMA_VERSION


def _disc(cx: int, cy: int, r: int) -> CropMask:
    yy, xx = np.mgrid[: 2 * r + 1, : 2 * r + 1]
    return CropMask(cx - r, cy - r, (xx - r) ** 2 + (yy - r) ** 2 <= r * r)


@pytest.fixture
def project(tmp_path: Path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, (w, h) in {"a.png": (80, 60), "b.png": (50, 40)}.items():
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(folder / name)
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "cat"), Category(2, "dog")])
        yield project


def _id(project: Project, path: str) -> int:
    record = project.image_by_path(path)
    assert record is not None
    return record.id


def test_edits_return_what_they_replaced_so_undo_is_exact(project: Project) -> None:
    a = _id(project, "a.png")
    first = project.add_instance(a, Instance(1, _disc(20, 20, 5), score=0.4))
    second = project.add_instance(a, Instance(2, _disc(50, 30, 6), score=0.9))
    assert first.image_id == a and project.instance(first.id).mask == _disc(20, 20, 5)

    old = project.update_instance(first.with_changes(category_id=2, review=Review.ACCEPTED))
    assert (old.category_id, old.review, old.id) == (1, Review.PENDING, first.id)
    project.update_instance(old)  # undo
    assert project.instance(first.id) == first

    gone = project.delete_instances([second.id, first.id])
    assert [g.id for g in gone] == [second.id, first.id]
    assert project.instances(a) == []
    project.add_instances(a, list(reversed(gone)))  # undo of a multi-delete
    again = project.instances(a)
    assert [(i.id, i.score, i.category_id) for i in again] == [
        (first.id, 0.4, 1),
        (second.id, 0.9, 2),
    ]
    assert again[0].mask == first.mask

    before = project.set_status(a, ImageStatus.REVIEWED)
    assert before.status is ImageStatus.NEW
    assert project.set_status(a, before.status).status is ImageStatus.REVIEWED


def test_a_changed_mask_brings_its_own_box_and_masks_do_not_share_pixels(
    project: Project,
) -> None:
    a = _id(project, "a.png")
    detected = Instance(1, _disc(20, 20, 5), score=0.8, box=(14.2, 14.9, 26.1, 25.7))
    stored = project.add_instance(a, detected)
    assert stored.box == (14.2, 14.9, 26.1, 25.7)  # the detector's own box is kept
    moved = stored.with_changes(mask=_disc(60, 40, 3))
    assert moved.box == (57.0, 37.0, 64.0, 44.0)  # follows the new mask
    project.update_instance(moved)
    assert project.instance(stored.id).box == (57.0, 37.0, 64.0, 44.0)
    with pytest.raises(AttributeError):
        stored.score = 0.1  # type: ignore[misc]


def test_a_batch_is_all_or_nothing(project: Project) -> None:
    a = _id(project, "a.png")
    kept = project.add_instance(a, Instance(1, _disc(20, 20, 5), score=0.4))
    with pytest.raises(RuntimeError), project.batch():
        project.update_instance(kept.with_changes(review=Review.ACCEPTED))
        project.add_category("bird")
        project.add_instance(a, Instance(2, _disc(40, 30, 4)))
        raise RuntimeError("the person pressed cancel")
    assert project.instances(a) == [kept]
    assert project.instance(kept.id).review is Review.PENDING
    assert project.categories.by_name("bird") is None

    with project.batch():
        for instance in project.instances(a):
            project.update_instance(instance.with_changes(review=Review.ACCEPTED))
        project.add_instance(a, Instance(2, _disc(40, 30, 4)))
    with Project.open(project.folder) as other:
        assert [i.review for i in other.instances(a)] == [Review.ACCEPTED, Review.PENDING]


def test_misuse_of_a_connection_is_a_programming_error_not_damage(project: Project) -> None:
    a = _id(project, "a.png")
    with pytest.raises(sqlite3.ProgrammingError), project.batch(), project.batch():
        pass
    with (
        pytest.raises(sqlite3.ProgrammingError),
        project._store.transaction(),
        project._store.transaction(),
    ):
        pass
    errors: list[BaseException] = []

    def use_from_another_thread() -> None:
        try:
            project.instances(a)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=use_from_another_thread)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], sqlite3.ProgrammingError)
    assert not isinstance(errors[0], ProjectError)
    project.close()
    with pytest.raises(sqlite3.ProgrammingError):
        project.instances(a)
    with pytest.raises(sqlite3.ProgrammingError):
        project.add_instance(a, Instance(1, _disc(5, 5, 2)))


def test_a_worker_connection_needs_no_rescan_and_the_window_notices_its_writes(
    project: Project,
) -> None:
    a = _id(project, "a.png")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(project.folder / "late.png")
    assert project.changed() is False
    results: list[object] = []

    def worker() -> None:
        other = project.connect_again()
        try:
            results.append([r.path for r in other.images()])
            other.set_predictions(a, [Instance(1, _disc(20, 20, 5), score=0.7)], "coco-v1")
        finally:
            other.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert results == [["a.png", "b.png"]]  # the new file is not scanned in by the worker
    assert project.changed() is True
    assert project.changed() is False  # once per change
    project.add_instance(a, Instance(2, _disc(40, 40, 4)))
    assert project.changed() is False  # our own edits are not news
    assert [i.score for i in project.instances(a)] == [0.7, None]


def test_edits_are_durable_without_an_fsync_each(project: Project) -> None:
    assert project._store.query("PRAGMA synchronous")[0][0] == 1  # NORMAL
    assert project._store.query("PRAGMA journal_mode")[0][0] == "wal"


def test_predictions_never_propose_again_what_was_accepted_in_between(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _id(project, "a.png")
    project.set_predictions(a, [Instance(1, _disc(20, 20, 6), score=0.3)], "coco-v1")
    window = project.connect_again()
    (proposal,) = window.instances(a)
    store = project._store
    original = type(store).transaction

    def accept_then_begin(self):  # the person accepts while the worker is about to store
        window.update_instance(proposal.with_changes(review=Review.ACCEPTED))
        return original(self)

    monkeypatch.setattr(store, "transaction", accept_then_begin.__get__(store))
    again = Instance(1, _disc(21, 20, 6), score=0.35)
    assert project.set_predictions(a, [again], "coco-v1")
    window.close()
    stored = project.instances(a)
    assert [(i.review, i.score) for i in stored] == [(Review.ACCEPTED, 0.3)]


def test_a_persons_instance_supersedes_the_prediction_it_covers(project: Project) -> None:
    a = _id(project, "a.png")
    project.set_predictions(
        a,
        [
            Instance(1, _disc(20, 20, 6), score=0.8),  # the same cat
            Instance(2, _disc(21, 20, 6), score=0.6),  # another class: stays
            Instance(1, _disc(60, 40, 6), score=0.9),  # elsewhere: stays
        ],
        "coco-v1",
    )
    before = project.instances(a)
    added = project.add_instances(a, [Instance(1, _disc(20, 21, 6), origin=Origin.HUMAN)])
    assert [s.id for s in added.superseded] == [before[0].id]
    after = project.instances(a)
    assert [(i.category_id, i.origin) for i in after] == [
        (2, Origin.MODEL),
        (1, Origin.MODEL),
        (1, Origin.HUMAN),
    ]
    # Undo: the drawn one goes, the superseded prediction comes back with its id.
    project.delete_instance(added.instances[0].id)
    project.add_instances(a, added.superseded)
    assert project.instances(a) == before
    assert [i.id for i in project.instances(a)] == [i.id for i in before]


def test_clear_removes_pending_predictions_only_unless_told(project: Project) -> None:
    a, b = _id(project, "a.png"), _id(project, "b.png")
    project.set_predictions(
        a, [Instance(1, _disc(20, 20, 5), score=0.8), Instance(2, _disc(50, 30, 5), score=0.2)], "m"
    )
    project.set_predictions(b, [Instance(1, _disc(20, 20, 5), score=0.5)], "m")
    accepted = project.instances(a)[0]
    project.update_instance(accepted.with_changes(review=Review.ACCEPTED))
    project.add_instance(b, Instance(2, _disc(40, 30, 4), origin=Origin.HUMAN))
    assert project.clear_predictions() == (2, 2)
    assert [(i.id, i.review) for i in project.instances(a)] == [(accepted.id, Review.ACCEPTED)]
    assert [i.origin for i in project.instances(b)] == [Origin.HUMAN]
    assert project.image(a).status is ImageStatus.PRELABELED  # accepted work stays
    assert project.clear_predictions(decided=True) == (1, 1)
    assert project.image(a).status is ImageStatus.NEW and project.image(a).model is None


def test_an_older_project_file_is_upgraded_keeping_its_work(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / "x.png")
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "cat")])
        rid = _id(project, "x.png")
        kept = project.add_instance(rid, Instance(1, _disc(10, 10, 4), score=0.6))
        path = project.store_path
    conn = sqlite3.connect(path)  # what maskdesk 0.1 wrote: schema 1, no crowd, no stamps
    conn.execute("ALTER TABLE instances DROP COLUMN crowd")
    for statement in (
        "DROP TRIGGER images_stamp_insert",
        "DROP TRIGGER images_stamp_update",
        "DROP INDEX images_by_stamp",
        "ALTER TABLE images DROP COLUMN stamp",
    ):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Project.open(folder) as project:
        assert project.instances(rid) == [kept]
        assert project._store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        crowd = project.add_instance(rid, Instance(1, _disc(25, 15, 4), crowd=True))
        assert project.instance(crowd.id).crowd is True
        stamp = project.stamp()
        assert project.images_since(stamp) == []
        project.set_status(rid, ImageStatus.REVIEWED)  # rows changed from now on are stamped
        assert [r.path for r in project.images_since(stamp)] == ["x.png"]


def test_rows_changed_since_a_stamp_by_any_connection(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / name)
    with Project.open(folder) as reader, Project.open(folder) as writer:
        stamp = reader.stamp()
        assert reader.images_since(stamp) == []
        b = _id(writer, "b.png")
        writer.set_status(b, ImageStatus.REVIEWED)
        changed = reader.images_since(stamp)
        assert [(r.path, r.status) for r in changed] == [("b.png", ImageStatus.REVIEWED)]
        stamp = reader.stamp()
        writer.set_status(_id(writer, "a.png"), ImageStatus.FAILED, "cannot decode")
        writer.set_status(b, ImageStatus.NEW)
        assert sorted(r.path for r in reader.images_since(stamp)) == ["a.png", "b.png"]
        assert reader.images_since(reader.stamp()) == []
