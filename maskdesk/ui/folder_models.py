"""The folder's own model in the window: which model a folder uses when it opens, the Model
menu's "Models of this folder", opening the training dialog, adopting a trained model, and
not closing the window under a running training unasked.

A folder's model is kept in its project (core.project_models), so each folder opens with its
own; the global "model" setting is what a folder without one uses.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu

from maskdesk.core.errors import MaskdeskError
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.project_models import current_model, list_models, set_current_model
from maskdesk.ui.dialogs import confirm
from maskdesk.ui.menus import MODELS

if TYPE_CHECKING:
    from maskdesk.ui.main_window import MainWindow
    from maskdesk.ui.training_dialog import TrainingDialog

NOTE = "folderModelNote"  # the status bar's word on the folder's model, while it matters


def same_model(a: str, b: str) -> bool:
    """Whether two model specs name the same model (a file by its real path)."""
    if a == b:
        return True
    if a in MODELS or b in MODELS:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def is_folder_model(project: Project | None, spec: str) -> bool:
    """Whether `spec` is one of the folder's own trained models (under its store)."""
    if project is None or spec in MODELS:
        return False
    try:
        return Path(spec).resolve().parent == project.models_dir.resolve()
    except OSError:
        return False


def mark_model(window: MainWindow) -> None:
    """Check the Model menu's entry of the model in use, and only that one."""
    name = window.model_name
    for action in window.findChildren(QAction):
        key = action.objectName()
        if key.startswith("actionModel_"):
            action.setChecked(key == f"actionModel_{name}")
        elif key.startswith("actionFolderModel_"):
            action.setChecked(same_model(str(action.data()), name))
        elif key == "actionActiveModel":
            action.setText(f"Active: {Path(str(name)).name or name}")


def remember(window: MainWindow, name: str) -> bool:
    """The person chose `name`: it becomes the open folder's model. True when it is one of
    the folder's own models (the global setting, for other folders, is then left alone)."""
    project = window.project
    if project is None:
        return False
    try:
        set_current_model(project, name)
    except MaskdeskError as exc:
        window.statusBar().showMessage(f"The folder's model was not saved: {exc}", 10000)
    return is_folder_model(project, name)


def _note(window: MainWindow, text: str) -> None:
    label = window.statusBar().findChild(QLabel, NOTE)
    if label is None:
        label = QLabel()
        label.setObjectName(NOTE)
        window.statusBar().addPermanentWidget(label)
    label.setText(text)
    label.setVisible(bool(text))
    if text:
        window.statusBar().showMessage(text, 20000)


def use_folder_model(window: MainWindow) -> None:
    """A folder opened: use its own model when it has one (without touching the global
    setting), else the global one; a missing model file is said in the status bar."""
    project = window.project
    fallback = str(window.settings.value("model", "coco-v1"))
    spec = current_model(project) if project is not None else None
    note = ""
    if spec is None:
        name = fallback
    elif spec in MODELS or Path(spec).is_file():
        name = spec
    else:
        name = fallback
        note = f"This folder's model {spec} is missing; using {Path(fallback).name}."
    window.model_name = name
    _note(window, note)
    mark_model(window)


def fill_menu(window: MainWindow, menu: QMenu) -> None:
    """Models of this folder: one checkable entry per trained model, the one in use checked."""
    menu.clear()
    cards = list_models(window.project) if window.project is not None else []
    if not cards:
        empty = menu.addAction("No trained models yet (Train on reviewed images…)")
        empty.setEnabled(False)
        return
    for card in cards:
        action = QAction(card.summary(), menu)
        action.setObjectName(f"actionFolderModel_{card.name}")
        action.setCheckable(True)
        action.setData(str(card.path))
        action.setChecked(same_model(str(card.path), window.model_name))
        action.triggered.connect(lambda _=False, p=str(card.path): window.choose_model(p))
        menu.addAction(action)


# -- training --------------------------------------------------------------------------------


def training_dialog(window: MainWindow) -> TrainingDialog | None:
    from maskdesk.ui.training_dialog import TrainingDialog

    return window.findChild(TrainingDialog, "trainDialog")


def open_training(window: MainWindow) -> TrainingDialog | None:
    """Show the training dialog: the running or shown one, else a new one for the folder."""
    from maskdesk.ui.training_dialog import TrainingDialog

    dialog = training_dialog(window)
    if dialog is not None and (dialog.running() or dialog.isVisible()):
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog
    if window.project is None:
        window.statusBar().showMessage("Open a folder of images first, and review some.", 10000)
        return None
    if dialog is not None and (dialog.run is None or not dialog.run.running()):
        dialog.setObjectName("")  # findChild must not see it before it is deleted
        dialog.deleteLater()
    dialog = TrainingDialog(window)
    dialog.show()
    return dialog


def adopt(window: MainWindow, model: Path, folder: Path) -> bool:
    """Make a trained model the folder's and the window's, then offer to pre-label the images
    not yet reviewed with it. False when its folder is no longer the open one."""
    project = window.project
    if project is None or project.folder != folder:
        window.statusBar().showMessage(
            f"{folder} is no longer open: open it and choose {model.stem} under Model ▸ "
            "Models of this folder.",
            20000,
        )
        return False
    try:
        set_current_model(project, str(model))
    except MaskdeskError as exc:
        window.statusBar().showMessage(f"Not done: {exc}", 20000)
        return False
    window.choose_model(str(model))
    window.statusBar().showMessage(f"Using the new model {model.stem}.", 10000)
    waiting = sum(1 for r in project.images() if r.status is not ImageStatus.REVIEWED)
    if waiting:
        s = "s" if waiting != 1 else ""
        question = (
            f"Pre-label the {waiting} image{s} not yet reviewed with {model.stem}? Pending "
            "predictions of older models are replaced; accepted, rejected and drawn instances, "
            "and reviewed images, stay."
        )
        if confirm(window, "Pre-label again", question):
            window.prelabel_folder()
    return True


def may_close(window: MainWindow) -> bool:
    """The window is closing: while a training runs, ask; Yes stops the child (and waits
    for it, briefly: no process is left behind)."""
    dialog = training_dialog(window)
    if dialog is None or dialog.run is None or not dialog.run.running():
        return True
    question = "Training is running. Stop it and close?"
    if dialog.running() and not confirm(window, "Stop training", question):
        return False
    with contextlib.suppress(RuntimeError):
        dialog.run.stop_now()
        dialog.hide()
    return True
