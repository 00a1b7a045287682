"""Issue 16's "a window that looks like it works", on the real window: the class picker after
drawing with no class chosen, a rejected instance's checkbox, one colour per instance, whole
labels, box to mask keeping the model's score, and the status line of an image with nothing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QRectF, Qt, QTimer
from PySide6.QtGui import QFontMetricsF
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit

from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import Project
from maskdesk.core.render import distinct_colors
from maskdesk.ui import label_picker
from maskdesk.ui.instance_model import CLASS, SCORE, SWATCH, VISIBLE
from maskdesk.ui.labels import lay_out
from maskdesk.ui.main_window import MainWindow
from tests.ui.mouse import send
from tests.ui.test_editing import _open

WAIT_MS = 60_000


def _folder(tmp_path: Path, squares: int = 1) -> Path:
    """a.png (80 x 60) with `squares` stored 6 x 6 predictions along a row; b.png untouched."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), np.full((60, 80, 3), 128, dtype=np.uint8))
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "square")])
        record = project.image_by_path("a.png")
        assert record is not None
        bits = np.ones((6, 6), dtype=bool)
        for k in range(squares):
            x, y = (k % 10) * 8, (k // 10) * 8
            project.add_instance(record.id, Instance(1, CropMask(x, y, bits), score=0.9))
    return folder


def _polygon(window: MainWindow, corners: list[tuple[float, float]]) -> None:
    window.acts["actionToolPolygon"].trigger()
    for x, y in corners:
        send(window.canvas, QEvent.Type.MouseButtonPress, x, y)
        send(window.canvas, QEvent.Type.MouseButtonRelease, x, y)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)


def _answer_picker(typed: str | None, seen: list[list[str]]) -> None:
    """When the picker shows, note its classes, then type `typed` and press OK (None: Cancel)."""

    def act() -> None:
        picker = QApplication.activeModalWidget()
        if not isinstance(picker, label_picker.LabelPicker):
            QTimer.singleShot(20, act)
            return
        items = [picker.list.item(k).text() for k in range(picker.list.count())]
        seen.append(items)
        if typed is None:
            picker.reject()
            return
        line = picker.findChild(QLineEdit, "labelPickerText")
        line.clear()
        QTest.keyClicks(line, typed)
        picker.buttons.button(picker.buttons.StandardButton.Ok).click()

    QTimer.singleShot(0, act)


def test_drawing_with_no_class_chosen_asks_once_with_the_project_classes(
    window: MainWindow, qtbot, tmp_path
):
    project = _open(window, qtbot, _folder(tmp_path))
    assert window.editor.class_chooser.currentText() == ""  # nothing chosen for the person
    seen: list[list[str]] = []

    # Cancel: nothing is added and the polygon stays to be closed again.
    _answer_picker(None, seen)
    _polygon(window, [(20, 20), (40, 20), (40, 40), (20, 40)])
    assert seen == [["square"]]
    assert len(project.instances(window.image_id)) == 1
    assert len(window.editor.polygon_tool.points) == 4
    assert "no class chosen" in window.statusBar().currentMessage()

    # Enter again: asked again; a typed new name makes the class and fills the toolbar's box.
    _answer_picker("roof", seen)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert len(seen) == 2
    roof = project.categories.by_name("roof")
    assert roof is not None
    (drawn,) = [i for i in project.instances(window.image_id) if i.category_id == roof.id]
    assert drawn.origin is Origin.HUMAN and drawn.review is Review.ACCEPTED
    assert window.editor.class_chooser.currentText() == "roof"

    # The next drawing takes the chosen class without asking.
    _polygon(window, [(50, 20), (70, 20), (70, 40), (50, 40)])
    assert len(seen) == 2
    assert len([i for i in project.instances(window.image_id) if i.category_id == roof.id]) == 2


def test_the_picker_completes_any_part_of_a_class_name(qtbot):
    picker = label_picker.LabelPicker(["traffic light", "truck", "person"])
    qtbot.addWidget(picker)
    completer = picker.line.completer()
    completer.setCompletionPrefix("LIGHT")
    assert completer.currentCompletion() == "traffic light"
    ok = picker.buttons.button(picker.buttons.StandardButton.Ok)
    assert not ok.isEnabled()  # an empty name cannot be chosen
    picker.list.setCurrentRow(2)  # sorted: person, traffic light, truck
    assert picker.name() == "truck" and ok.isEnabled()


def test_a_rejected_instance_is_unticked_and_cannot_be_ticked(window: MainWindow, qtbot, tmp_path):
    project = _open(window, qtbot, _folder(tmp_path, squares=2))
    model = window.instance_model
    first = model.instance(0)
    window.select_ids([first.id])
    window.acts["actionRejectInstance"].trigger()
    assert project.instance(first.id).review is Review.REJECTED
    row = model.row_of(first.id)
    check = model.index(row, VISIBLE)
    assert check.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    assert not model.flags(check) & Qt.ItemFlag.ItemIsUserCheckable
    assert "Rejected" in check.data(Qt.ItemDataRole.ToolTipRole)
    other = model.index(1 - row, VISIBLE)
    assert other.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    assert model.flags(other) & Qt.ItemFlag.ItemIsUserCheckable
    # Undo brings it back, ticked.
    window.acts["actionUndo"].trigger()
    check = model.index(model.row_of(first.id), VISIBLE)
    assert check.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked


def test_no_two_instances_of_an_image_share_a_colour(window: MainWindow, qtbot, tmp_path):
    # Ids 1..33 on one image: by id alone, 1 and 33 had the same colour of the 32.
    project = _open(window, qtbot, _folder(tmp_path, squares=32))
    record = project.image(window.image_id)
    bits = np.ones((4, 4), dtype=bool)
    project.add_instance(record.id, Instance(1, CropMask(2, 50, bits), score=0.8))
    window.refresh_instances(reset=True)
    model = window.instance_model
    swatches = {
        model.index(r, SWATCH).data(Qt.ItemDataRole.DecorationRole).rgb()
        for r in range(model.rowCount())
    }
    assert model.rowCount() == 33 and len(swatches) == 32  # 33 on a palette of 32: one repeat
    ids = [model.instance(r).id for r in range(32)]
    assert len({distinct_colors(ids)[i] for i in ids}) == 32


def test_colours_stay_put_when_an_instance_is_added():
    before = distinct_colors([3, 35, 7])
    after = distinct_colors([3, 35, 7, 67])
    assert {k: after[k] for k in before} == before
    assert len(set(after.values())) == 4


def test_labels_keep_the_class_name_whole_beside_small_objects(qtbot):
    metrics = QFontMetricsF(QApplication.font())
    bounds = QRectF(0, 0, 800, 600)
    small = QRectF(100, 100, 20, 20)
    placed = lay_out([(1, small, ("triangle 0.93", "triangle"))], metrics, bounds)
    assert placed[1][1] == "triangle 0.93"  # wider than the object, and whole
    long_name = "a very long class name from a fine-tuned model"
    placed = lay_out([(2, small, (f"{long_name} 0.93", long_name))], metrics, bounds)
    text = placed[2][1]
    assert "0.93" not in text  # the score goes before the name is cut
    assert text.startswith("a very long class")


def test_box_to_mask_keeps_the_model_score(window: MainWindow, qtbot, tmp_path):
    project = _open(window, qtbot, _folder(tmp_path))
    bits = np.ones((8, 8), dtype=bool)
    answer = Instance(1, CropMask(40, 30, bits), score=0.87)
    window.editor.box_masked(window.image_id, [answer], {1: "square"}, "")
    (made,) = [i for i in project.instances(window.image_id) if i.origin is Origin.HUMAN]
    assert made.score == 0.87 and made.review is Review.ACCEPTED
    row = window.instance_model.row_of(made.id)
    assert window.instance_model.index(row, SCORE).data() == "0.87"
    assert window.instance_model.index(row, CLASS).data() == "square"


def test_the_status_line_of_an_image_without_instances_says_so(window: MainWindow, qtbot, tmp_path):
    project = _open(window, qtbot, _folder(tmp_path))
    b = project.image_by_path("b.png")
    assert b is not None
    assert window.show_image(b.id)
    qtbot.waitUntil(lambda: window.picture_id == b.id, timeout=WAIT_MS)
    window.show_note(True)
    line = window.statusBar().currentMessage()
    assert "b.png" in line and "no instances yet" in line
    assert "0 shown of 0" not in line
