"""Box to mask in the real window: a box belongs to the picture it was drawn on and the folder
it was drawn in; one dragged beyond the picture is clipped to it, or ignored when nothing of it
is inside."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF

from maskdesk.core.project import Project
from maskdesk.datasets.shapes import generate
from maskdesk.ui.main_window import MainWindow
from tests.ui.mouse import send

WAIT_MS = 120_000


def _drag(window: MainWindow, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A left drag on the canvas between two image points (which may lie beside the picture)."""
    canvas = window.canvas
    for kind, (x, y) in (
        (QEvent.Type.MouseButtonPress, start),
        (QEvent.Type.MouseMove, ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)),
        (QEvent.Type.MouseMove, end),
        (QEvent.Type.MouseButtonRelease, end),
    ):
        pos = canvas.image_to_widget(QPointF(x, y))
        assert canvas.rect().contains(pos.toPoint()), "the drag must stay on the canvas"
        send(canvas, kind, x, y)


def _folder(tmp_path: Path, name: str, seed: int) -> tuple[Path, list[tuple[float, ...]]]:
    """One 256 x 256 shapes picture; the boxes (a pixel of margin) around its shapes."""
    folder = tmp_path / name
    folder.mkdir()
    sample = generate(seed, 0, 256)
    cv2.imwrite(str(folder / "s.png"), sample.image[:, :, ::-1])
    boxes = []
    for visible in sample.visible:
        ys, xs = np.nonzero(visible)
        boxes.append((xs.min() - 1.0, ys.min() - 1.0, xs.max() + 2.0, ys.max() + 2.0))
    return folder, boxes


def _open(window: MainWindow, qtbot, folder: Path) -> Project:
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)
    assert window.project is not None
    return window.project


def _asked(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """What the box tool asks the model for (the model itself is not needed here)."""
    asked: list[tuple] = []
    monkeypatch.setattr(window, "box_to_mask", lambda *args: asked.append(args))
    return asked


def test_a_box_answered_after_another_folder_opened_is_dropped(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    first, boxes = _folder(tmp_path, "a", 1000)
    second, _ = _folder(tmp_path, "b", 1001)
    project = _open(window, qtbot, first)
    image = window.image_id
    window.acts["actionToolBox"].trigger()
    x0, y0, x1, y1 = boxes[0]
    with qtbot.waitSignal(window.inference.boxMasked, timeout=WAIT_MS):
        _drag(window, (x0, y0), (x1, y1))  # loads the model; the answer lands in folder a
    assert len(project.instances(image)) == 1

    # A second box, and folder b opened before the answer comes: b's image (the same id)
    # gets nothing, and neither does a's, which is closed.
    x0, y0, x1, y1 = boxes[-1]
    with qtbot.waitSignal(window.inference.boxMasked, timeout=WAIT_MS):
        _drag(window, (x0, y0), (x1, y1))
        window.open_folder(second)
    qtbot.wait(50)
    assert window.project is not None and window.image_id == image
    assert window.project.instances(image) == []
    with Project.open(first) as again:
        assert len(again.instances(image)) == 1


def test_a_box_drawn_before_the_new_picture_is_shown_asks_nothing(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, boxes = _folder(tmp_path, "a", 1000)
    sample = generate(1000, 1, 256)
    cv2.imwrite(str(folder / "t.png"), sample.image[:, :, ::-1])
    _open(window, qtbot, folder)
    asked = _asked(window, monkeypatch)
    shown = window.picture_id
    monkeypatch.setattr(window.pictures, "request", lambda image_id, path: None)  # still decoding
    window.acts["actionNextImage"].trigger()
    assert window.image_id != shown and window.picture_id == shown
    window.acts["actionToolBox"].trigger()
    x0, y0, x1, y1 = boxes[0]
    _drag(window, (x0, y0), (x1, y1))  # drawn on the previous picture, still on screen
    assert asked == []


def test_a_box_beyond_the_picture_is_clipped_to_it_and_one_beside_it_is_ignored(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = _folder(tmp_path, "a", 1000)
    _open(window, qtbot, folder)
    asked = _asked(window, monkeypatch)
    window.acts["actionToolBox"].trigger()
    window.canvas.zoom_at(0.5, QPointF(window.canvas.rect().center()))  # room around it
    _drag(window, (200.0, -30.0), (300.0, 40.0))  # over the top right corner
    ((image_id, box, forced),) = asked
    assert image_id == window.image_id and forced == ""
    assert box == pytest.approx((200.0, 0.0, 256.0, 40.0))
    asked.clear()
    _drag(window, (235.4, -18.0), (357.2, -0.3))  # the box: all above the picture
    _drag(window, (-40.0, 10.0), (-5.0, 60.0))  # beside it
    assert asked == []
    assert "outside the picture" in window.statusBar().currentMessage()
