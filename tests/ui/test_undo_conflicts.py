"""Undo in the real window while something else writes the same project: the model (Detect),
the command line (`clear`, `predict --redo`) and a second window. An undo or redo never
writes over a change it did not make: no duplicate, no resurrection, no exception, no open
macro; the image's history is dropped with one line on the status bar instead.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui.commands import UndoStacks, review
from maskdesk.ui.main_window import MainWindow

WAIT_MS = 120_000


def _square(x: int, y: int, size: int = 10) -> CropMask:
    return CropMask(x, y, np.ones((size, size), dtype=bool))


PREDICTIONS = [
    Instance(1, _square(5, 5), score=0.9),
    Instance(1, _square(30, 5), score=0.8),
    Instance(2, _square(5, 30), score=0.7),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(folder / "a.png")
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "cat"), Category(2, "dog")])
        project.set_predictions(project.images()[0].id, PREDICTIONS, "model-1")
    return folder


@pytest.fixture
def other(folder: Path):
    """The program beside the window (a CLI, a second window): its own connection."""
    with Project.open(folder) as project:
        yield project


def _open(window: MainWindow, folder: Path) -> tuple[Project, int]:
    window.open_folder(folder)
    assert window.project is not None and window.image_id is not None
    return window.project, window.image_id


def _status_line(window: MainWindow) -> str:
    return window.statusBar().currentMessage()


def _ids(project: Project, image_id: int) -> list[int]:
    return [i.id for i in project.instances(image_id) if i.id is not None]


def _exported(project: Project) -> int:
    """What an export at score 0.5 writes."""
    return sum(sum(1 for i in project.instances(r.id) if i.exported(0.5)) for r in project.images())


def test_undoing_a_delete_after_the_model_ran_again_never_duplicates(
    window: MainWindow, other: Project
) -> None:
    project, image = _open(window, other.folder)
    first = _ids(project, image)[0]
    window.select_ids([first])
    window.acts["actionDeleteInstance"].trigger()
    assert first not in _ids(project, image)
    # `maskdesk predict --redo` (or Detect): the model proposes the same objects again.
    other.set_predictions(image, PREDICTIONS, "model-1")
    again = _ids(project, image)
    assert len(again) == 3

    window.acts["actionUndo"].trigger()
    assert _ids(project, image) == again  # no second copy of the deleted object
    assert "Undo history of this image dropped" in _status_line(window)
    assert "a.png was changed meanwhile" in _status_line(window)
    assert not window.acts["actionUndo"].isEnabled()


def test_undoing_a_delete_after_clear_never_brings_a_prediction_back(
    window: MainWindow, folder: Path
) -> None:
    project, image = _open(window, folder)
    window.select_ids(_ids(project, image))
    window.acts["actionDeleteInstance"].trigger()
    assert _ids(project, image) == []
    done = subprocess.run(
        [sys.executable, "-m", "maskdesk", "clear", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert project.image(image).status is ImageStatus.NEW

    window.acts["actionUndo"].trigger()
    assert _ids(project, image) == []
    assert project.image(image).status is ImageStatus.NEW
    assert "Undo history of this image dropped" in _status_line(window)


def test_a_hidden_prediction_stays_hidden_through_predict_redo_and_its_undo_works(
    window: MainWindow, other: Project
) -> None:
    project, image = _open(window, other.folder)
    assert _exported(project) == 3
    hidden = _ids(project, image)[1]
    window.select_ids([hidden])
    window.acts["actionToggleInstance"].trigger()
    assert _exported(project) == 2

    other.set_predictions(image, PREDICTIONS, "model-1")  # `predict --redo`
    assert _exported(project) == 2  # the hide is a decision the model's next run keeps
    assert project.instance(hidden).visible is False
    assert len(project.instances(image)) == 3  # and it was not proposed again beside it

    window.acts["actionUndo"].trigger()  # only `visible` changed, and it still holds
    assert project.instance(hidden).visible is True
    assert _exported(project) == 3
    window.acts["actionRedo"].trigger()
    assert project.instance(hidden).visible is False


def test_accepting_a_row_deleted_meanwhile_is_refused_and_leaves_no_step(
    window: MainWindow, other: Project
) -> None:
    project, image = _open(window, other.folder)
    gone = _ids(project, image)[0]
    window.select_ids([gone])
    other.delete_instance(gone)  # the table still shows it until the next look (1 s)
    window.acts["actionAcceptInstance"].trigger()
    assert "Accept: not done" in _status_line(window)
    assert "no longer on a.png" in _status_line(window)
    assert window.undo.stack(image).count() == 0
    assert gone not in [i.id for i in window.instance_model.instances()]  # shown as stored


def test_an_eraser_edit_that_cannot_be_stored_leaves_undo_working(
    window: MainWindow, qtbot, other: Project
) -> None:
    project, image = _open(window, other.folder)
    qtbot.waitUntil(lambda: window.picture_id == image, timeout=WAIT_MS)
    small, kept = _ids(project, image)[0], _ids(project, image)[1]
    window.select_ids([small, kept])
    other.delete_instance(kept)
    # One stroke empties the first square and cuts into the second (deleted meanwhile).
    window.editor.stroke([(4.0, 10.0), (34.0, 10.0)], 6.0, True)
    assert "not done" in _status_line(window)
    assert window.undo.stack(image).count() == 0
    assert small in _ids(project, image)  # all or nothing: the other half was not stored

    # No macro was left open: the next edit is a step of its own and undoes.
    window.select_ids([small])
    window.acts["actionAcceptInstance"].trigger()
    assert window.undo.stack(image).count() == 1
    assert project.instance(small).review is Review.ACCEPTED
    window.acts["actionUndo"].trigger()
    assert project.instance(small).review is Review.PENDING


def test_an_undo_in_one_window_keeps_what_another_window_did(
    window: MainWindow, other: Project
) -> None:
    project, image = _open(window, other.folder)
    target = _ids(project, image)[2]
    window.select_ids([target])
    window.acts["actionToggleInstance"].trigger()  # A hides
    second = UndoStacks()
    second.activate(image)
    # B accepts the same instance.
    second.push(image, review(other, [other.instance(target)], Review.ACCEPTED, lambda _: None))
    window.acts["actionUndo"].trigger()  # A undoes its hide
    now = project.instance(target)
    assert (now.visible, now.review) == (True, Review.ACCEPTED)  # B's accept is kept
    # B's undo still applies: its field holds what B left.
    second.undo()
    assert project.instance(target).review is Review.PENDING
    assert project.instance(target).visible is True


def test_an_edit_while_another_program_holds_the_write_lock_says_busy(
    window: MainWindow, folder: Path
) -> None:
    project, image = _open(window, folder)
    row = _ids(project, image)[0]
    conn = project._store.conn
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 20  # about a frame
    writer = sqlite3.connect(project.store_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        window.select_ids([row])
        window.acts["actionAcceptInstance"].trigger()
        assert "another program is writing it" in _status_line(window)
        assert window.undo.stack(image).count() == 0
    finally:
        writer.execute("ROLLBACK")
    window.acts["actionAcceptInstance"].trigger()
    assert project.instance(row).review is Review.ACCEPTED

    writer.execute("BEGIN IMMEDIATE")
    try:
        window.acts["actionUndo"].trigger()
        assert "Accept: not undone" in _status_line(window)
        assert window.undo.stack(image).index() == 1  # still there, to try again
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    window.acts["actionUndo"].trigger()
    assert project.instance(row).review is Review.PENDING


def test_a_class_name_the_project_refuses_keeps_the_polygon(
    window: MainWindow, qtbot, folder: Path
) -> None:
    project, image = _open(window, folder)
    qtbot.waitUntil(lambda: window.picture_id == image, timeout=WAIT_MS)
    window.editor.use("polygon")
    window.editor.class_chooser.setCurrentText("N/A")
    points = [(50.0, 40.0), (70.0, 40.0), (70.0, 55.0)]
    window.editor.polygon_tool.polygonDone.emit(points)
    assert "N/A" in _status_line(window) and "Choose another class" in _status_line(window)
    assert len(project.instances(image)) == 3
    assert window.editor.polygon_tool.points == points  # the drawing is still there

    window.editor.class_chooser.setCurrentText("scratch")
    window.editor.polygon_tool.close()  # Enter
    drawn = project.instances(image)[-1]
    assert project.categories.name(drawn.category_id) == "scratch"
    assert window.undo.stack(image).count() == 1
