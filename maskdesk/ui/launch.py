"""Start the window: QApplication, the folder to open, and user-facing start-up errors."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

EXIT_NO_DISPLAY = 2


def display_missing(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """True where Qt would find no screen: Linux without X11 or Wayland and no chosen platform.

    Qt itself aborts there (SIGABRT, advising a reinstall), so we ask first. Windows and macOS
    always have one; QT_QPA_PLATFORM (offscreen, vnc, ...) is the user's explicit choice.
    """
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return False
    return not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def window_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskdesk",
        description="Open the review window (headless commands: maskdesk help).",
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, help="folder of images (default: a copy of the samples)"
    )
    parser.add_argument("--model", help="coco-v1, coco-v2 or a model file (remembered)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where it runs")
    return parser


def launch(args: Sequence[str]) -> int:
    if display_missing():
        from maskdesk.app import commands

        print(
            "maskdesk: no display found to open the window; the headless commands work "
            f"without one: maskdesk {'|'.join(commands())} ...",
            file=sys.stderr,
        )
        return EXIT_NO_DISPLAY

    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from maskdesk.resource_files import icon_files, user_samples
    from maskdesk.ui.main_window import MainWindow
    from maskdesk.ui.menus import open_folder
    from maskdesk.ui.safety import install_excepthook, install_sigint

    options = window_parser().parse_args(list(args))
    folder = options.folder or user_samples()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("maskdesk")
    app.setOrganizationName("maskdesk")
    # Wayland finds the icon (and the launcher entry) through the .desktop file's name.
    QApplication.setDesktopFileName("maskdesk")
    icon = QIcon()
    for png in icon_files():
        icon.addFile(str(png))
    QApplication.setWindowIcon(icon)
    window = MainWindow()
    if options.device:
        window.settings.setValue("device", options.device)

    def show(text: str) -> None:
        QMessageBox.critical(window, "maskdesk", text)

    install_excepthook(show)
    install_sigint(app)
    window.show()
    app.processEvents()  # the window is on screen before the folder is read
    open_folder(window, folder)
    if options.model:  # after the folder: it wins over the folder's own model, and stays its
        window.choose_model(options.model)
    return int(app.exec())
