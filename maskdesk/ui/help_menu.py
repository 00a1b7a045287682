"""Help ▸ Keyboard shortcuts and mouse (F1), Help ▸ About, File ▸ Save (Ctrl+S), the zoom
keys, and the status bar's line about the image shown.

Kept apart from main_window.py so the window stays composition; these functions take the
window and act through its public parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
)

import maskdesk
from maskdesk.core.project import ImageStatus
from maskdesk.ui.canvas import WHEEL_STEP

if TYPE_CHECKING:
    from maskdesk.core.instances import Instance
    from maskdesk.core.project import ImageRecord
    from maskdesk.ui.main_window import MainWindow

# What the mouse does, as canvas.py and tools.py do it; shown under the shortcuts (F1).
MOUSE = (
    ("Click an instance", "Select it (the smallest one under the cursor)"),
    ("Ctrl+click", "Add it to the selection, or take it out"),
    ("Shift+click", "Add it to the selection"),
    ("Click the background", "Clear the selection"),
    ("Wheel", "Zoom around the cursor"),
    ("Middle drag, or Space+drag", "Pan"),
    ("Hover", "Outline the instance under the cursor"),
    ("Box to mask tool: drag", "The model draws a mask inside the box (Shift: keep the class)"),
    ("Brush / Eraser tool: drag", "Paint on, or erase from, the selected instance"),
    ("Polygon tool: clicks", "Add points; a double click or a click on the first one closes"),
    ("Table: double-click a class", "Relabel the instance"),
    ("Table: check box", "Show or hide the instance (a rejected one stays unticked)"),
)

NOTES = (
    "Coming from labelme or X-AnyLabeling? D and Shift+D go to the next and previous image "
    "here too; A accepts the selected instance (it is not Previous image).\n"
    "On the canvas a dashed outline is an instance still to review; a solid one is decided "
    "(accepted, drawn or hidden by a person).\n"
    "With the toolbar's class box empty, the window asks for the class after you draw.\n"
    "Every edit is saved as it is made: Ctrl+S only says where."
)


def add_mouse_help(dialog: object) -> None:
    """Put the mouse gestures and the notes under the shortcuts table of the F1 dialog."""
    layout = dialog.layout()  # type: ignore[attr-defined]
    table = QTableWidget(len(MOUSE), 2)
    table.setObjectName("mouseTable")
    table.setHorizontalHeaderLabels(["Mouse", "Does"])
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for row, (gesture, does) in enumerate(MOUSE):
        table.setItem(row, 0, QTableWidgetItem(gesture))
        table.setItem(row, 1, QTableWidgetItem(does))
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setWordWrap(True)
    table.resizeRowsToContents()
    rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
    table.setMaximumHeight(rows + table.horizontalHeader().sizeHint().height() + 4)
    notes = QLabel(NOTES)
    notes.setObjectName("shortcutsNotes")
    notes.setWordWrap(True)
    layout.insertWidget(layout.count() - 1, table)  # above the Close button
    layout.insertWidget(layout.count() - 1, notes)
    dialog.resize(680, 780)  # type: ignore[attr-defined]


def show_shortcuts(window: MainWindow) -> None:
    from maskdesk.ui.dialogs import ShortcutsDialog

    dialog = ShortcutsDialog(window, list(window.acts.values()))
    dialog.setWindowTitle("Keyboard shortcuts and mouse")
    add_mouse_help(dialog)
    dialog.exec()


def about_text() -> str:
    return (
        f"maskdesk {maskdesk.__version__}\n\n"
        "Review, repair and export Mask R-CNN instance masks, one folder at a time."
    )


def show_about(window: MainWindow) -> QMessageBox:
    """Help ▸ About: the version; window-modal, so the window's loop goes on."""
    box = QMessageBox(QMessageBox.Icon.Information, "About maskdesk", about_text(), parent=window)
    box.setObjectName("aboutDialog")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def save_message(window: MainWindow) -> str:
    if window.project is None:
        return "Nothing to save: open a folder of images (Ctrl+O)"
    return f"Saved automatically: every edit is stored at once in {window.project.store_path}"


def zoom(window: MainWindow, steps: float) -> None:
    """Zoom the canvas around its centre, as `steps` wheel notches would."""
    canvas = window.canvas
    canvas.zoom_at(WHEEL_STEP**steps, QPointF(canvas.width() / 2, canvas.height() / 2))


def connect(window: MainWindow) -> None:
    """Help, Save and the View menu's zoom actions."""
    a = window.acts
    a["actionShortcuts"].triggered.connect(lambda: show_shortcuts(window))
    a["actionAbout"].triggered.connect(lambda: show_about(window))
    a["actionSave"].triggered.connect(
        lambda: window.statusBar().showMessage(save_message(window), 15000)
    )
    a["actionFit"].triggered.connect(window.canvas.fit)
    a["actionActualSize"].triggered.connect(window.canvas.actual_size)
    a["actionZoomIn"].triggered.connect(lambda: zoom(window, 1))
    a["actionZoomOut"].triggered.connect(lambda: zoom(window, -1))


def image_note(record: ImageRecord, instances: list[Instance], rows: int, min_score: float) -> str:
    """The status line of the image shown: `rows` is what the instance table lists now."""
    size = f"{record.width}x{record.height}, " if record.width and record.height else ""
    reason = f" ({record.reason})" if record.reason else ""
    if not instances:
        empty = {
            ImageStatus.NEW: "no instances yet: Detect (Ctrl+D) runs the model on it",
            ImageStatus.PRELABELED: "the model found no instances",
            ImageStatus.REVIEWED: "no instances, reviewed",
        }
        return f"{record.path}: {size}{empty.get(record.status, record.status.value)}{reason}"
    return (
        f"{record.path}: {size}{rows} shown of {len(instances)} "
        f"instances at score ≥ {min_score:.2f}, {record.status.value}{reason}"
    )


def finished_line(window: MainWindow, summary: str) -> str:
    """A run's summary counts instances at any score: say what the table shows beside it."""
    if window.project is None or window.image_id is None:
        return summary
    rows = window.instance_proxy.rowCount()
    return f"{summary}; {rows} shown here at score ≥ {window.min_score:.2f}"
