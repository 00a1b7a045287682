"""After File ▸ Import COCO: the file's box-only annotations (a box, no mask) made into masks
by the model, when the person says so (issue 16 item 3).

The question is asked on the UI thread; the masks are made on the inference thread (the
worker's `boxes_to_masks`, after the model loads like Detect's), with the progress bar,
Cancel, and the summary in the status bar when it ends. Nothing torch-heavy runs here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox

if TYPE_CHECKING:
    from maskdesk.core.coco_read import ParsedCoco
    from maskdesk.core.importing import ImportReport
    from maskdesk.ui.main_window import MainWindow

QUESTION = "boxesToMasksQuestion"  # the question's objectName


def offer(window: MainWindow, coco: ParsedCoco, path: Path, report: ImportReport) -> bool:
    """Ask whether to make masks of the file's box-only annotations; when yes, queue it on
    the inference thread. Returns whether it was queued."""
    boxes = len(coco.box_only)
    if not boxes or window.project is None or not report.images_matched:
        return False
    if not ask(window, boxes, path, window.model_name):
        return False
    window.runs.request("boxes", coco)
    return True


def ask(window: MainWindow, boxes: int, path: Path, model: str) -> bool:
    """The yes/no question; Yes is the default (the masks are pending, to review)."""
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    s = "es" if boxes != 1 else ""
    have = "have" if boxes != 1 else "has"
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Boxes without masks",
        f"{boxes} box{s} in {path.name} {have} no mask. Make masks of them with the model "
        f"({Path(model).name or model})? They are added as pending instances to review.",
        yes | no,
        window,
    )
    box.setObjectName(QUESTION)
    box.setDefaultButton(yes)
    return box.exec() == yes
