"""The window's look (issue 16): toolbar icons from one set, a minimum size at which nothing
overlaps, and a picture that follows the window's size until the person zooms."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPalette
from PySide6.QtWidgets import QToolBar, QToolButton, QWidget

from maskdesk.ui import icons
from maskdesk.ui.main_window import MainWindow

WAIT_MS = 120_000
MAIN_TOOLBAR = [
    "actionOpenFolder",
    "actionDetect",
    "actionPrelabelFolder",
    "actionCancel",
    "actionUndo",
    "actionRedo",
    "actionAcceptInstance",
    "actionRejectInstance",
    "actionDeleteInstance",
    "actionMarkReviewed",
    "actionExportCoco",
]
TOOLS_TOOLBAR = [
    "actionToolSelect",
    "actionToolBox",
    "actionToolBrush",
    "actionToolEraser",
    "actionToolPolygon",
    "actionSplitInstance",
    "actionMergeInstances",
    "actionFillHoles",
    "actionRemoveSpecks",
]
PICTURE = (200, 100, 50)  # one colour, found again in the canvas's grab
PICTURE_W, PICTURE_H = 400, 300


def _buttons(window: MainWindow, name: str) -> dict[str, QToolButton]:
    bar = window.findChild(QToolBar, name)
    assert bar is not None, name
    found = {}
    for action in bar.actions():
        button = bar.widgetForAction(action)
        if isinstance(button, QToolButton):
            found[action.objectName()] = button
    return found


def _open_picture(window: MainWindow, qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    picture = np.zeros((PICTURE_H, PICTURE_W, 3), np.uint8)
    picture[:] = PICTURE
    Image.fromarray(picture).save(folder / "a.png")
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)


def _picture_on_screen(window: MainWindow) -> QRect:
    """Where the canvas shows the picture: the bounding box of its colour in a grab."""
    image = window.canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    width, height = image.width(), image.height()
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(height, image.bytesPerLine())
    rgb = pixels[:, : width * 3].reshape(height, width, 3)
    ys, xs = np.nonzero(np.all(np.abs(rgb.astype(int) - PICTURE) <= 2, axis=2))
    assert len(xs), "the picture is not on the canvas"
    return QRect(QPoint(int(xs.min()), int(ys.min())), QPoint(int(xs.max()), int(ys.max())))


def _assert_fitted(window: MainWindow) -> None:
    """The whole picture shows, as large as the canvas allows (one side touches its edges)."""
    canvas, shown = window.canvas, _picture_on_screen(window)
    assert canvas.rect().contains(shown)
    assert shown.width() >= canvas.width() - 2 or shown.height() >= canvas.height() - 2
    # Its proportions are the picture's: nothing is cut off on the other side.
    assert abs(shown.width() / shown.height() - PICTURE_W / PICTURE_H) < 0.03
    scale = canvas.scale()
    assert PICTURE_W * scale <= canvas.width() + 0.5
    assert PICTURE_H * scale <= canvas.height() + 0.5


def _resize(window: MainWindow, qtbot, width: int, height: int) -> None:
    window.resize(width, height)
    qtbot.waitUntil(lambda: window.size() == QSize(width, height).expandedTo(window.minimumSize()))


# -- icons ---------------------------------------------------------------------------------


def test_every_toolbar_action_has_an_icon_and_a_tooltip_with_its_text_and_keys(
    window: MainWindow,
) -> None:
    # Names unchanged and in their places: tests and automation find them by these.
    assert list(_buttons(window, "mainToolBar")) == MAIN_TOOLBAR
    assert list(_buttons(window, "toolsToolBar")) == TOOLS_TOOLBAR
    for bar_name in icons.TOOLBARS:
        bar = window.findChild(QToolBar, bar_name)
        assert bar is not None
        assert bar.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly
        assert bar.iconSize() == QSize(24, 24)
        for name, button in _buttons(window, bar_name).items():
            action = window.acts[name]
            assert button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly, name
            assert not action.icon().isNull(), name
            assert not action.icon().pixmap(24, 24).isNull(), name
            text = action.text().replace("&", "").removesuffix("...").removesuffix("…")
            tip = action.toolTip()
            assert tip.splitlines()[0].startswith(f"{text} ("), (name, tip)
            for key in action.shortcuts():
                assert key.toString() in tip.splitlines()[0], (name, tip)
    accept = window.acts["actionAcceptInstance"]
    assert accept.toolTip() == "Accept instance (A)"
    assert window.acts["actionDetect"].toolTip() == "Detect (Ctrl+D)\nRun the model on this image"
    # Menus keep their text.
    assert accept.text() == "&Accept instance"


def test_the_icons_are_drawn_in_the_palette_text_colour(window: MainWindow) -> None:
    palette = QPalette(window.palette())
    palette.setColor(QPalette.ColorRole.ButtonText, QColor(30, 160, 220))
    palette.setColor(
        QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(90, 90, 90)
    )
    window.setPalette(palette)
    icons.apply(window)

    def ink(mode: QIcon.Mode) -> set[tuple[int, int, int]]:
        image = window.acts["actionUndo"].icon().pixmap(QSize(24, 24), mode).toImage()
        solid = set()
        for y in range(image.height()):
            for x in range(image.width()):
                color = image.pixelColor(x, y)
                if color.alpha() == 255:
                    solid.add((color.red(), color.green(), color.blue()))
        return solid

    assert ink(QIcon.Mode.Normal) == {(30, 160, 220)}
    assert ink(QIcon.Mode.Disabled) == {(90, 90, 90)}


def test_the_icon_files_are_installed_with_their_licence_and_qt_draws_them() -> None:
    for file in sorted(set(icons.ICONS.values())):
        path = Path(icons.icon_file(file))
        assert path.is_file(), path
        assert (path.parent / "LICENSE").is_file()
        # Plain Qt, not the loader: the qsvg image-format plugin is there.
        assert not QIcon(str(path)).pixmap(24, 24).isNull(), path


# -- minimum size --------------------------------------------------------------------------


def test_the_window_stops_at_its_minimum_where_nothing_overlaps(window: MainWindow, qtbot) -> None:
    window.resize(300, 200)
    least = window.minimumSize()
    assert window.size() == least
    assert least.width() >= 600 and least.height() >= 300  # not the bare layout's sum
    left = window.splitter.widget(0)
    parts: list[QWidget] = [*window.filters.findChildren(QWidget), window.image_list]
    parts = [w for w in parts if w.isVisible() and w.parent() in (window.filters, left)]
    assert len(parts) == 5  # status, name, class, low-score filters and the image list
    rects = [QRect(w.mapTo(left, QPoint(0, 0)), w.size()) for w in parts]
    for part, rect in zip(parts, rects, strict=True):
        assert left.rect().contains(rect), part.objectName()
        assert rect.height() >= part.minimumSizeHint().height(), part.objectName()
    for a, b in combinations(rects, 2):
        assert not a.intersects(b), (a, b)
    # The list still shows a whole thumbnail row; the picture keeps room to work on.
    assert window.image_list.viewport().height() >= 100
    assert window.canvas.width() >= 240 and window.canvas.height() >= 180


# -- the picture follows the window --------------------------------------------------------


def test_shrinking_and_growing_the_window_refits_the_picture(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    _resize(window, qtbot, 1280, 800)
    _open_picture(window, qtbot, tmp_path)
    _assert_fitted(window)
    large = window.canvas.scale()
    _resize(window, qtbot, 760, 420)
    _assert_fitted(window)
    assert window.canvas.scale() < large * 0.8
    _resize(window, qtbot, 1280, 800)
    _assert_fitted(window)
    assert window.canvas.scale() == large


def test_a_manual_zoom_survives_a_resize_and_fit_brings_fitting_back(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    _resize(window, qtbot, 1280, 800)
    _open_picture(window, qtbot, tmp_path)
    fitted = window.canvas.scale()
    window.acts["actionZoomIn"].trigger()
    zoomed = window.canvas.scale()
    assert zoomed > fitted
    _resize(window, qtbot, 760, 420)
    assert window.canvas.scale() == zoomed
    window.acts["actionFit"].trigger()
    _assert_fitted(window)
    _resize(window, qtbot, 1280, 800)
    _assert_fitted(window)


def test_a_middle_click_that_does_not_drag_keeps_the_view_fitted(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    _resize(window, qtbot, 1280, 800)
    _open_picture(window, qtbot, tmp_path)
    spot = window.canvas.rect().center()
    qtbot.mousePress(window.canvas, Qt.MouseButton.MiddleButton, pos=spot)
    qtbot.mouseMove(window.canvas, spot)
    qtbot.mouseRelease(window.canvas, Qt.MouseButton.MiddleButton, pos=spot)
    _resize(window, qtbot, 760, 420)
    _assert_fitted(window)
