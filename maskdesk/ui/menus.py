"""The window's menus and toolbar, and the file and model commands behind them.

Kept apart from main_window.py so the window stays composition; these functions take the
window and act through its public parts.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from maskdesk.core.errors import MaskdeskError
from maskdesk.ui import help_menu
from maskdesk.ui.settings import remember_recent, setting_list

if TYPE_CHECKING:
    from maskdesk.ui.main_window import MainWindow

MODELS = ("coco-v1", "coco-v2")


def build_menus(window: MainWindow) -> None:
    a = window.acts
    bar = window.menuBar()
    menu = bar.addMenu("&File")
    for name in ("actionOpenFolder",):
        menu.addAction(a[name])
    window.recent_menu = menu.addMenu("Open &recent")
    window.recent_menu.aboutToShow.connect(lambda: _fill_recent(window))
    menu.addSeparator()
    menu.addAction(a["actionSave"])
    for name in ("actionImportCoco", "actionExportCoco", "actionExportPicture"):
        menu.addAction(a[name])
    menu.addSeparator()
    menu.addAction(a["actionQuit"])

    menu = bar.addMenu("&Edit")
    for name in ("actionUndo", "actionRedo"):
        menu.addAction(a[name])
    menu.addSeparator()
    for name in (
        "actionAcceptInstance",
        "actionRejectInstance",
        "actionToggleInstance",
        "actionRelabelInstance",
        "actionDeleteInstance",
        "actionAcceptAll",
    ):
        menu.addAction(a[name])

    menu = bar.addMenu("&Review")
    for name in (
        "actionMarkReviewed",
        "actionNextImage",
        "actionPreviousImage",
        "actionNextUnreviewed",
    ):
        menu.addAction(a[name])

    menu = bar.addMenu("&View")
    for name in ("actionFit", "actionActualSize", "actionZoomIn", "actionZoomOut"):
        menu.addAction(a[name])

    menu = bar.addMenu("&Model")
    active = QAction(window)
    active.setObjectName("actionActiveModel")
    active.setEnabled(False)
    menu.addAction(active)
    menu.addSeparator()
    for name in ("actionDetect", "actionPrelabelFolder", "actionCancel"):
        menu.addAction(a[name])
    menu.addSeparator()
    group = QActionGroup(window)
    for model in MODELS:
        choice = QAction(model, window, checkable=True)
        choice.setObjectName(f"actionModel_{model}")
        choice.setChecked(model == window.model_name)
        choice.triggered.connect(lambda _=False, m=model: window.choose_model(m))
        group.addAction(choice)
        menu.addAction(choice)
    menu.addAction(a["actionOpenModel"])
    window.recent_models_menu = menu.addMenu("Recent model files")
    window.recent_models_menu.aboutToShow.connect(lambda: _fill_recent_models(window))
    menu.addSeparator()
    menu.addAction(a["actionTrainModel"])
    folder_menu = menu.addMenu("Models of this &folder")
    folder_menu.setObjectName("menuFolderModels")
    folder_menu.aboutToShow.connect(lambda: _fill_folder_models(window, folder_menu))
    from maskdesk.ui.folder_models import mark_model

    mark_model(window)

    menu = bar.addMenu("&Help")
    menu.setObjectName("menuHelp")
    menu.addAction(a["actionShortcuts"])
    menu.addAction(a["actionAbout"])

    tools = window.addToolBar("Main")
    tools.setObjectName("mainToolBar")
    for name in (
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
    ):
        tools.addAction(a[name])
    # Shortcuts of actions that sit in no menu or toolbar still work while the window has focus.
    for action in a.values():
        if action.objectName() != "actionHideMasks":
            window.addAction(action)


def file_actions(window: MainWindow) -> None:
    a = window.acts
    a["actionOpenFolder"].triggered.connect(lambda: ask_folder(window))
    a["actionExportCoco"].triggered.connect(lambda: export_coco(window))
    a["actionImportCoco"].triggered.connect(lambda: import_coco(window))
    a["actionExportPicture"].triggered.connect(lambda: export_picture(window))
    a["actionOpenModel"].triggered.connect(lambda: ask_model_file(window))
    help_menu.connect(window)  # F1, About, Save, zoom keys
    a["actionTrainModel"].triggered.connect(lambda: open_training(window))


def open_folder(window: MainWindow, folder: str | Path) -> None:
    try:
        window.open_folder(folder)
    except MaskdeskError as exc:
        QMessageBox.warning(window, "maskdesk", str(exc))


def ask_folder(window: MainWindow) -> None:
    start = str(window.project.folder) if window.project else str(Path.home())
    folder = QFileDialog.getExistingDirectory(window, "Open a folder of images", start)
    if folder:
        open_folder(window, folder)


def _fill_recent(window: MainWindow) -> None:
    window.recent_menu.clear()
    for folder in setting_list(window.settings, "recentFolders"):
        action = window.recent_menu.addAction(folder)
        action.triggered.connect(lambda _=False, f=folder: open_folder(window, f))


def _fill_recent_models(window: MainWindow) -> None:
    window.recent_models_menu.clear()
    for path in setting_list(window.settings, "recentModels"):
        action = window.recent_models_menu.addAction(path)
        action.triggered.connect(lambda _=False, p=path: window.choose_model(p))


def _fill_folder_models(window: MainWindow, menu: QMenu) -> None:
    from maskdesk.ui.folder_models import fill_menu

    fill_menu(window, menu)


def open_training(window: MainWindow) -> None:
    from maskdesk.ui.folder_models import open_training

    open_training(window)


def ask_model_file(window: MainWindow) -> None:
    path, _ = QFileDialog.getOpenFileName(
        window, "Open a model file", str(Path.home()), "PyTorch models (*.pt *.pth);;All files (*)"
    )
    if path:
        remember_recent(window.settings, "recentModels", path, keep=8)
        window.choose_model(path)


def export_coco(window: MainWindow) -> None:
    from maskdesk.core.exporting import export_project
    from maskdesk.ui import dialogs

    if window.project is None:
        return
    default = window.project.folder.parent / f"{window.project.folder.name}.json"
    choice = dialogs.ask_export(window, default, window.min_score)
    if choice is None:
        return
    try:
        exported = export_project(
            window.project,
            choice.path,
            polygons=choice.polygons,
            min_score=choice.min_score,
            scope=choice.scope,
        )
    except MaskdeskError as exc:
        QMessageBox.warning(window, "maskdesk", str(exc))
        return
    data = exported.data
    written = (
        f"{len(data['images'])} images, {len(data['annotations'])} annotations written to "
        f"{choice.path}"
    )
    window.statusBar().showMessage(written)
    if exported.left_out:
        dialogs.show_left_out(window, written, exported.left_out)


def import_coco(window: MainWindow) -> None:
    from maskdesk.core.coco_read import parse_coco
    from maskdesk.core.importing import import_coco as run_import
    from maskdesk.ui import box_import

    if window.project is None:
        return
    path, _ = QFileDialog.getOpenFileName(
        window, "Import a COCO file", str(window.project.folder), "COCO JSON (*.json)"
    )
    if not path:
        return
    try:
        coco = parse_coco(path)
        report = run_import(window.project, coco, path)
    except MaskdeskError as exc:
        QMessageBox.warning(window, "maskdesk", str(exc))
        return
    window.refresh_images()
    window.refresh_instances(reset=True)
    QMessageBox.information(window, "Import", report.summary(Path(path), window.project.folder))
    box_import.offer(window, coco, Path(path), report)  # box-only annotations: masks?


def export_picture(window: MainWindow) -> None:
    from maskdesk.core.fileio import atomic_write_bytes
    from maskdesk.core.images import load_rgb
    from maskdesk.core.render import render_overlay
    from maskdesk.ui import dialogs

    if window.project is None or window.image_id is None:
        return
    folder = window.project.folder
    record = window.project.image(window.image_id)
    # Never inside the image folder: the picture would become an image of the project.
    remembered = str(window.settings.value(dialogs.PICTURE_FOLDER, "") or "")
    default = dialogs.picture_default(folder, record.path, remembered)
    path = dialogs.ask_picture_path(window, folder, default)
    if path is None:
        return
    try:
        rgb = load_rgb(window.project.absolute_path(record))
        picture = render_overlay(
            rgb,
            window.project.instances(window.image_id),
            window.project.categories,
            min_score=window.min_score,
        )
        try:
            ok, encoded = cv2.imencode(path.suffix, picture[:, :, ::-1])
        except cv2.error:
            ok = False
        if not ok:
            raise MaskdeskError(f"Cannot encode {path}; use .png or .jpg.")
        atomic_write_bytes(path, encoded.tobytes())
    except MaskdeskError as exc:
        QMessageBox.warning(window, "maskdesk", str(exc))
        return
    window.settings.setValue(dialogs.PICTURE_FOLDER, str(path.parent))
    window.statusBar().showMessage(f"Picture written to {path}")


def model_failed(window: MainWindow, message: str, failure: object) -> bool:
    """Missing weights: offer to download (with a progress dialog whose Cancel works) or to
    open a model file; any other model error: a plain message. True when a download of the
    same model started (what waited for the model can go on when it is loaded)."""
    from maskdesk.ui.dialogs import DownloadDialog, ask_missing_weights, show_model_error

    if not getattr(failure, "missing_weights", False) or getattr(failure, "cancelled", False):
        show_model_error(window, message)
        return False
    answer = ask_missing_weights(window, failure, message)  # type: ignore[arg-type]
    if answer == "open":
        before = window.model_name
        ask_model_file(window)
        if window.model_name == before:
            return False
        window.runs.load()  # what waited (Detect) goes on with the chosen model
        return True
    elif answer == "download":
        dialog = DownloadDialog(window, window.model_name)
        window.inference.downloadProgress.connect(dialog.update_progress)
        dialog.canceled.connect(window.inference.cancel)

        def done(*_: object) -> None:
            dialog.finish()
            for signal, slot in (
                (window.inference.downloadProgress, dialog.update_progress),
                (window.inference.modelLoaded, done),
                (window.inference.modelFailed, done),
            ):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect(slot)

        window.inference.modelLoaded.connect(done)
        window.inference.modelFailed.connect(done)
        dialog.show()
        window.runs.load(offline=False)
        return True
    return False


__all__ = ["build_menus", "file_actions", "model_failed"]
