"""The toolbars' icons: one set (Lucide, ISC; resources/icons/LICENSE), icon-only buttons whose
tooltips give the action's text and keys.

The SVGs draw with `currentColor`, which Qt's SVG renderer takes as black; they are drawn
here in the palette's button-text colour instead (and its disabled colour), so they follow
a dark palette too. They are package data found through `resource_files`, as in a wheel or
the bundle.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt
from PySide6.QtGui import (
    QAction,
    QColor,
    QGuiApplication,
    QIcon,
    QImageReader,
    QKeySequence,
    QPalette,
    QPixmap,
)
from PySide6.QtWidgets import QToolBar

from maskdesk.resource_files import resource_path

if TYPE_CHECKING:
    from maskdesk.ui.main_window import MainWindow

log = logging.getLogger(__name__)

# objectName of the action -> Lucide file in resources/icons/.
ICONS = {
    "actionOpenFolder": "folder-open.svg",
    "actionDetect": "scan-search.svg",
    "actionPrelabelFolder": "wand-sparkles.svg",
    "actionCancel": "circle-stop.svg",
    "actionUndo": "undo-2.svg",
    "actionRedo": "redo-2.svg",
    "actionAcceptInstance": "circle-check.svg",
    "actionRejectInstance": "circle-x.svg",
    "actionDeleteInstance": "trash-2.svg",
    "actionMarkReviewed": "check-check.svg",
    "actionExportCoco": "file-output.svg",
    "actionToolSelect": "mouse-pointer-2.svg",
    "actionToolBox": "square-dashed.svg",
    "actionToolBrush": "brush.svg",
    "actionToolEraser": "eraser.svg",
    "actionToolPolygon": "pentagon.svg",
    "actionSplitInstance": "ungroup.svg",
    "actionMergeInstances": "group.svg",
    "actionFillHoles": "paint-bucket.svg",
    "actionRemoveSpecks": "brush-cleaning.svg",
}
TOOLBARS = ("mainToolBar", "toolsToolBar")
# Lucide is drawn on a 24 px grid with 2 px strokes: crisp at 24 and its multiples.
ICON_SIZE = 24
MENU_SIZE = 16  # the same icons beside menu entries


def _sizes() -> list[int]:
    """Device pixels to draw: menu and toolbar sizes at the screen's scale (1x, 1.5x, 2x...).
    Only these are drawn at start (benchmarks/startup.py: five sizes of every icon took
    70 ms of a 0.66 s start, two take 50 ms)."""
    screen = QGuiApplication.primaryScreen()
    scale = screen.devicePixelRatio() if screen is not None else 1.0
    return sorted({round(MENU_SIZE * scale), round(ICON_SIZE * scale)})


def icon_file(name: str) -> str:
    """The path of one icon of the set, as installed (source tree, wheel or bundle)."""
    return str(resource_path("icons", name))


def load(name: str, palette: QPalette | None = None) -> QIcon:
    """An icon of the set drawn in the palette's button-text colours (black without one)."""
    svg = resource_path("icons", name).read_bytes()
    icon = QIcon()
    modes = [(QIcon.Mode.Normal, QColor("black"))]
    if palette is not None:
        group = QPalette.ColorGroup
        role = QPalette.ColorRole.ButtonText
        modes = [
            (QIcon.Mode.Normal, palette.color(group.Active, role)),
            (QIcon.Mode.Disabled, palette.color(group.Disabled, role)),
        ]
    sizes = _sizes()
    for mode, color in modes:
        data = svg.replace(b"currentColor", color.name().encode("ascii"))
        for size in sizes:
            pixmap = _render(data, size)
            if pixmap is None:
                # Without Qt's qsvg plugin a button shows its text instead: still usable.
                log.warning("Qt cannot draw the SVG icon %s (is its qsvg plugin missing?)", name)
                return QIcon()
            icon.addPixmap(pixmap, mode)
    return icon


def _render(svg: bytes, size: int) -> QPixmap | None:
    buffer = QBuffer()
    buffer.setData(QByteArray(svg))
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buffer, QByteArray(b"svg"))
    reader.setScaledSize(QSize(size, size))  # drawn at this size, never a scaled bitmap
    image = reader.read()
    return None if image.isNull() else QPixmap.fromImage(image)


def tooltip(action: QAction) -> str:
    """'Accept instance (A)', with the action's longer tip, when it has one, below."""
    text = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
    text = text.removesuffix("...").removesuffix("…")
    keys = " or ".join(
        k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()
    )
    line = f"{text} ({keys})" if keys else text
    tip = action.statusTip()  # set only from the action table's own tip
    return f"{line}\n{tip}" if tip else line


def apply(window: MainWindow) -> None:
    """Icons and tooltips on the window's actions; the toolbars show icons only."""
    palette = window.palette()
    for name, file in ICONS.items():
        action = window.acts[name]
        action.setIcon(load(file, palette))
        action.setToolTip(tooltip(action))
    for bar_name in TOOLBARS:
        bar = window.findChild(QToolBar, bar_name)
        if bar is None:
            raise LookupError(f"the window has no toolbar {bar_name}")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        bar.setIconSize(QSize(ICON_SIZE, ICON_SIZE))


__all__ = ["ICONS", "TOOLBARS", "apply", "icon_file", "load", "tooltip"]
