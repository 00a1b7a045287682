"""Habits a newcomer brings (Ctrl+S, A/D, Ctrl++), the F1 help, Help ▸ About, and a status
line that says what the table shows: the real window, real key presses, what a person reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMenu, QMessageBox, QTableWidget

import maskdesk
from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask
from maskdesk.core.project import Project
from maskdesk.ui.main_window import MainWindow

WAIT_MS = 120_000


def _folder(tmp_path: Path) -> Path:
    """Three grey pictures; the first has 5 predictions scored 0.02, 0.1, 0.3, 0.6, 0.9."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.full((60, 80, 3), 128, dtype=np.uint8)).save(folder / name)
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "square")])
        record = project.image_by_path("a.png")
        assert record is not None
        for n, score in enumerate((0.02, 0.1, 0.3, 0.6, 0.9)):
            mask = CropMask(5 + 10 * n, 5, np.ones((8, 8), bool))
            project.add_instance(record.id, Instance(1, mask, score=score))
    return folder


def _open(window: MainWindow, qtbot, tmp_path: Path) -> None:
    window.open_folder(_folder(tmp_path))
    window.activateWindow()
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)
    qtbot.waitUntil(window.isActiveWindow)
    window.canvas.setFocus()


def _status(window: MainWindow) -> str:
    return window.statusBar().currentMessage()


def _keys(window: MainWindow, name: str) -> list[str]:
    return [k.toString() for k in window.acts[name].shortcuts()]


def _current(window: MainWindow) -> str:
    return window.image_list.currentIndex().data()


def test_ctrl_s_says_every_edit_is_saved_and_where(window: MainWindow, qtbot, tmp_path) -> None:
    window.acts["actionSave"].trigger()
    assert _status(window).startswith("Nothing to save")
    _open(window, qtbot, tmp_path)
    assert window.project is not None
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert _status(window).startswith("Saved automatically")
    assert str(window.project.store_path) in _status(window)
    file_menu: Any = window.menuBar().actions()[0].menu()
    assert window.acts["actionSave"] in file_menu.actions()


def test_d_and_shift_d_move_between_images_and_a_still_accepts(
    window: MainWindow, qtbot, tmp_path
) -> None:
    assert "D" in _keys(window, "actionNextImage")
    assert "Shift+D" in _keys(window, "actionPreviousImage")
    assert _keys(window, "actionAcceptInstance") == ["A"]
    # No key does two things.
    every = [k for a in window.acts.values() for k in a.shortcuts()]
    assert len(every) == len(set(every))
    _open(window, qtbot, tmp_path)
    assert _current(window) == "a.png"
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    assert _current(window) == "b.png"
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    assert _current(window) == "c.png"
    qtbot.keyClick(window.canvas, Qt.Key.Key_D, Qt.KeyboardModifier.ShiftModifier)
    assert _current(window) == "b.png"


def test_ctrl_plus_and_minus_zoom_the_canvas(window: MainWindow, qtbot, tmp_path) -> None:
    assert _keys(window, "actionZoomIn") == ["Ctrl++", "Ctrl+="]
    assert _keys(window, "actionZoomOut") == ["Ctrl+-"]
    _open(window, qtbot, tmp_path)
    fitted = window.canvas.scale()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.scale() == fitted * 1.25
    qtbot.keyClick(window.canvas, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert abs(window.canvas.scale() - fitted / 1.25) < 1e-9
    window.acts["actionZoomIn"].trigger()
    assert abs(window.canvas.scale() - fitted) < 1e-9


def test_f1_lists_keys_mouse_gestures_and_the_habits_of_other_tools(
    window: MainWindow, qtbot
) -> None:
    seen: dict[str, object] = {}

    def read_and_close() -> None:
        dialog: Any = QApplication.activeModalWidget()
        try:
            keys: Any = dialog.findChild(QTableWidget, "shortcutsTable")
            mouse: Any = dialog.findChild(QTableWidget, "mouseTable")
            seen["keys"] = {
                keys.item(r, 0).text(): keys.item(r, 1).text() for r in range(keys.rowCount())
            }
            seen["mouse"] = [mouse.item(r, 0).text() for r in range(mouse.rowCount())]
            seen["notes"] = dialog.findChild(QLabel, "shortcutsNotes").text()
        finally:
            if dialog is not None:
                dialog.reject()  # a failed look must not leave the test waiting on it

    QTimer.singleShot(200, read_and_close)
    window.acts["actionShortcuts"].trigger()  # modal: returns once the dialog is closed
    native = QKeySequence.SequenceFormat.NativeText
    keys = seen["keys"]
    assert isinstance(keys, dict)
    assert keys["Next image"].endswith(", D")
    assert keys["Previous image"].endswith(QKeySequence("Shift+D").toString(native))
    assert keys["Save"] == QKeySequence("Ctrl+S").toString(native)
    assert QKeySequence("Ctrl+-").toString(native) in keys["Zoom out"]
    mouse = seen["mouse"]
    assert isinstance(mouse, list)
    for gesture in ("Wheel", "Middle drag, or Space+drag", "Ctrl+click", "Click the background"):
        assert gesture in mouse
    notes = str(seen["notes"])
    assert "D and Shift+D" in notes and "A accepts" in notes and "dashed" in notes


def test_help_about_shows_the_version(window: MainWindow, qtbot) -> None:
    help_menu: Any = window.menuBar().findChild(QMenu, "menuHelp")
    about = window.acts["actionAbout"]
    assert about.objectName() == "actionAbout" and about in help_menu.actions()
    about.trigger()
    box = window.findChild(QMessageBox, "aboutDialog")
    assert box is not None and box.isVisible()
    assert f"maskdesk {maskdesk.__version__}" in box.text()
    box.accept()


def test_the_status_line_follows_the_slider_and_counts_the_table_rows(
    window: MainWindow, qtbot, tmp_path
) -> None:
    window.score_slider.setValue(50)
    _open(window, qtbot, tmp_path)
    rows = window.instance_proxy.rowCount
    assert rows() == 2
    assert "2 shown of 5 instances at score ≥ 0.50" in _status(window)
    window.score_slider.setValue(4)
    assert rows() == 4
    assert "4 shown of 5 instances at score ≥ 0.04" in _status(window)
    assert "0.50" not in _status(window)
    window.score_slider.setValue(0)
    assert "5 shown of 5 instances at score ≥ 0.00" in _status(window)
    # A run's summary counts every instance it found; the line says what the table shows.
    window.score_slider.setValue(50)
    window.inference.finished.emit("1 of 1 image pre-labeled, 5 instances", None)
    assert _status(window) == "1 of 1 image pre-labeled, 5 instances; 2 shown here at score ≥ 0.50"
