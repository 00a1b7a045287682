"""The window's actions: names for automation, texts, shortcuts; one table, one place.

Keyboard-first review: every review step has a key, and the shortcuts dialog lists them
from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class ActionSpec:
    name: str  # objectName, for tests and accessibility tools
    text: str
    keys: tuple[str, ...] = ()
    tip: str = ""


SPECS = (
    ActionSpec("actionOpenFolder", "&Open folder...", ("Ctrl+O",), "Open a folder of images"),
    ActionSpec("actionExportCoco", "&Export COCO...", ("Ctrl+E",), "Write the folder as COCO JSON"),
    ActionSpec("actionImportCoco", "&Import COCO...", ("Ctrl+I",), "Bring in a COCO file"),
    ActionSpec("actionExportPicture", "Export &picture...", (), "Save the picture with its masks"),
    # Every edit is stored at once; Ctrl+S only says so, and where (a habit of other tools).
    ActionSpec("actionSave", "&Save", ("Ctrl+S",), "Every edit is saved as it is made"),
    ActionSpec("actionQuit", "&Quit", ("Ctrl+Q",)),
    ActionSpec("actionUndo", "&Undo", ("Ctrl+Z",)),
    ActionSpec("actionRedo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y")),
    ActionSpec("actionDeleteInstance", "&Delete instance", ("Delete", "Backspace")),
    ActionSpec("actionToggleInstance", "&Toggle visibility", ("V",)),
    ActionSpec("actionAcceptInstance", "&Accept instance", ("A",)),
    ActionSpec("actionRejectInstance", "Re&ject instance", ("R",)),
    ActionSpec("actionRelabelInstance", "Re&label instance", ("L", "F2")),
    ActionSpec("actionAcceptAll", "Accept all &shown", ("Shift+A",)),
    # Not Space: Space+drag pans the canvas.
    ActionSpec("actionMarkReviewed", "&Mark reviewed and go on", ("Ctrl+Return", "M")),
    # D and Shift+D as in labelme and X-AnyLabeling (their A, previous image, accepts here).
    ActionSpec("actionNextImage", "&Next image", ("PgDown", "N", "D")),
    ActionSpec("actionPreviousImage", "&Previous image", ("PgUp", "P", "Shift+D")),
    ActionSpec("actionNextUnreviewed", "Next &unreviewed image", ("U",)),
    ActionSpec("actionFit", "&Fit to window", ("F",)),
    ActionSpec("actionActualSize", "&1:1", ("1",)),
    ActionSpec("actionZoomIn", "Zoom &in", ("Ctrl++", "Ctrl+=")),
    ActionSpec("actionZoomOut", "Zoom &out", ("Ctrl+-",)),
    # Listed in the shortcuts dialog; the window handles the key itself (press and release).
    ActionSpec("actionHideMasks", "&Hide masks while held", ("H",)),
    ActionSpec("actionDetect", "&Detect", ("Ctrl+D",), "Run the model on this image"),
    ActionSpec(
        "actionPrelabelFolder",
        "&Pre-label folder",
        ("Ctrl+Shift+D",),
        "Run the model on every image not reviewed; continues where it stopped",
    ),
    ActionSpec("actionCancel", "&Cancel", ("Ctrl+.",), "Stop after the current image"),
    ActionSpec("actionOpenModel", "Open model &file...", ()),
    ActionSpec(
        "actionTrainModel",
        "&Train on reviewed images…",
        (),
        "Train a new model on the reviewed images and compare it with the current one",
    ),
    # Repair tools (tools.py, editing.py). Esc also leaves a tool for Select.
    ActionSpec("actionToolSelect", "&Select", ("S", "Esc"), "Click to select instances"),
    ActionSpec(
        "actionToolBox",
        "&Box to mask",
        ("X",),
        "Drag a box: the model draws the mask inside it (Shift+drag keeps the chosen class)",
    ),
    ActionSpec("actionToolBrush", "&Brush", ("B",), "Paint on the selected instance, or a new one"),
    ActionSpec("actionToolEraser", "&Eraser", ("E",), "Erase from the selected instance"),
    ActionSpec(
        "actionToolPolygon",
        "P&olygon",
        ("G",),
        "Click points; Enter or a click on the first point closes, Esc drops it",
    ),
    ActionSpec("actionBrushSmaller", "Smaller brush", ("[",)),
    ActionSpec("actionBrushLarger", "Larger brush", ("]",)),
    ActionSpec("actionSplitInstance", "S&plit into parts", ("Shift+S",)),
    ActionSpec("actionMergeInstances", "&Merge selected", ("Shift+M",)),
    ActionSpec("actionFillHoles", "&Fill holes", ("Shift+F",)),
    ActionSpec("actionRemoveSpecks", "Remove spec&ks", ("Shift+K",), "Drop parts below the size"),
    ActionSpec("actionShortcuts", "&Keyboard shortcuts and mouse", ("F1",)),
    ActionSpec("actionAbout", "&About maskdesk", ()),
)


def make_actions(parent: QWidget) -> dict[str, QAction]:
    """Every action, by objectName, with its shortcuts (active while the window has focus)."""
    actions = {}
    for spec in SPECS:
        action = QAction(spec.text, parent)
        action.setObjectName(spec.name)
        if spec.keys:
            action.setShortcuts([QKeySequence(k) for k in spec.keys])
        if spec.tip:
            action.setToolTip(spec.tip)
            action.setStatusTip(spec.tip)
        actions[spec.name] = action
    return actions
