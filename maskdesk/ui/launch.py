"""Start the window: QApplication, the folder to open, and user-facing start-up errors."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"


def launch(args: Sequence[str]) -> int:
    from PySide6.QtWidgets import QApplication, QMessageBox

    from maskdesk.core.errors import MaskdeskError
    from maskdesk.ui.main_window import MainWindow

    folder = Path(args[0]) if args else SAMPLES
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("maskdesk")
    app.setOrganizationName("maskdesk")
    window = MainWindow()
    window.show()
    try:
        window.open_folder(folder)
    except MaskdeskError as exc:
        QMessageBox.warning(window, "maskdesk", str(exc))
    return int(app.exec())
