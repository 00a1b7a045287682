"""Model ▸ Train on reviewed images, driven through the window as a person would: the dialog's
split and settings, a real `maskdesk train FOLDER --json` child trained for one epoch, the
figures, adopting and pre-labeling again; a child killed, cancelled, or left running when the
window closes; and the Model menu's models of the folder.

The children are real processes of the real command (each costs a torch import and a few
seconds of training on the tiny fixture model), so the window's part is checked against what
the training actually writes.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QProcess, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QLabel,
    QListWidget,
    QMenu,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
)

from maskdesk.core.holdout import hash_fraction
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.project_models import (
    current_model,
    list_models,
    publish,
    read_card,
    set_current_model,
)
from maskdesk.datasets.reviewing import review, truth, write_folder
from maskdesk.datasets.shapes import ALL_CLASSES
from maskdesk.ui.main_window import MainWindow
from maskdesk.ui.training_run import TrainSettings, train_command
from tests.ui.conftest import FIXTURE_MODEL

SEED = 5
WAIT_MS = 120_000
# The reviewed images shapes_00000..09 hold these out (1 in 5, at least 2, by a hash of the
# path); worked out by hand from hash_fraction, below 0.2 for exactly these three.
HELD_OUT = ["shapes_00001.png", "shapes_00007.png", "shapes_00008.png"]

Yes, No = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No


def _folder(tmp_path: Path, count: int = 16, reviewed: int = 10, name: str = "shapes") -> Path:
    folder = tmp_path / name
    names = write_folder(folder, count, seed=SEED)
    with Project.open(folder) as project:
        review(project, names[:reviewed], seed=SEED)
    return folder


def _reviewed_instances(project: Project) -> dict[str, list[tuple]]:
    """Every reviewed image's instances, as values (masks as bytes)."""
    shot = {}
    for record in project.images():
        if record.status is ImageStatus.REVIEWED:
            shot[record.path] = sorted(
                (
                    i.id,
                    i.category_id,
                    i.origin.value,
                    i.review.value,
                    i.visible,
                    i.mask.x,
                    i.mask.y,
                    i.mask.bits.shape,
                    i.mask.bits.tobytes(),
                )
                for i in project.instances(record.id)
            )
    return shot


def _models_listing(project: Project) -> set[str]:
    folder = project.models_dir
    return set(os.listdir(folder)) if folder.is_dir() else set()


class Answers:
    """QMessageBox.question answered as scripted (the one edge replaced: a modal box)."""

    def __init__(self, *answers: QMessageBox.StandardButton) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, parent, title, text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        self.asked.append(text)
        return self.answers.pop(0) if self.answers else No


def _open_dialog(window: MainWindow) -> QDialog:
    window.acts["actionTrainModel"].trigger()
    dialog = window.findChild(QDialog, "trainDialog")
    assert dialog is not None and dialog.isVisible()
    return dialog


def _start(qtbot, dialog: QDialog, epochs: int = 1) -> None:
    dialog.findChild(QRadioButton, "trainUseEpochs").setChecked(True)
    dialog.findChild(QSpinBox, "trainEpochs").setValue(epochs)
    device = dialog.findChild(QComboBox, "trainDevice")
    device.setCurrentIndex(device.findText("cpu"))
    start = dialog.findChild(QPushButton, "trainStart")
    assert start.isEnabled()
    qtbot.mouseClick(start, Qt.MouseButton.LeftButton)


def _child(dialog: QDialog) -> int:
    process = dialog.findChild(QProcess)
    assert process is not None
    pid = int(process.processId())
    assert pid > 0
    return pid


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _text(dialog: QDialog, name: str) -> str:
    return dialog.findChild(QLabel, name).text()


def _wait_for_iteration(qtbot, dialog: QDialog) -> None:
    qtbot.waitUntil(lambda: "Iteration" in _text(dialog, "trainProgress"), timeout=WAIT_MS)


def test_the_command_is_the_cli_s_own() -> None:
    """The window's command parses with the real `maskdesk train` parser, as meant."""
    from maskdesk.cli import build_parser

    settings = TrainSettings("/data/f", "tiny", "/m/a.pt", "cpu", epochs=3)
    command = train_command(settings)
    assert command[:4] == [sys.executable, "-m", "maskdesk", "train"]
    args = build_parser().parse_args(command[3:])
    assert (str(args.folder), args.json, args.base, args.current) == (
        "/data/f",
        True,
        "tiny",
        "/m/a.pt",
    )
    assert (args.epochs, args.budget, args.device) == (3, None, "cpu")
    budget = train_command(TrainSettings("/f", "coco-v2", "coco-v2", "auto", budget_s=90))
    assert budget[budget.index("--budget") + 1] == "90" and "--epochs" not in budget


def test_the_setup_shows_the_split_and_refuses_too_few(window: MainWindow, tmp_path) -> None:
    assert sorted(p for p in HELD_OUT) == sorted(
        f"shapes_{i:05d}.png" for i in range(10) if hash_fraction(f"shapes_{i:05d}.png") < 0.2
    )
    window.open_folder(_folder(tmp_path))
    dialog = _open_dialog(window)
    held = dialog.findChild(QListWidget, "trainHeldOut")
    assert [held.item(i).text() for i in range(held.count())] == HELD_OUT
    assert "10 reviewed images" in _text(dialog, "trainSummary")
    assert "7 to train on, 3 held out" in _text(dialog, "trainSummary")
    # Instances per class, counted from the pictures' own ground truth.
    expected: dict[str, list[int]] = {}
    for i in range(10):
        path = f"shapes_{i:05d}.png"
        for inst in truth(path, SEED):
            tally = expected.setdefault(ALL_CLASSES[inst.category_id - 1], [0, 0])
            tally[path in HELD_OUT] += 1
    counts = dialog.findChild(QTableWidget, "trainCounts")
    shown = {
        counts.verticalHeaderItem(r).text(): [int(counts.item(r, c).text()) for c in (0, 1)]
        for r in range(counts.rowCount())
    }
    assert shown == expected
    assert dialog.findChild(QComboBox, "trainBase").currentData() == "current"
    assert dialog.findChild(QSpinBox, "trainBudget").value() == 120
    assert dialog.findChild(QPushButton, "trainStart").isEnabled()
    dialog.close()

    window.open_folder(_folder(tmp_path, count=4, reviewed=2, name="few"))
    dialog = _open_dialog(window)
    assert not dialog.findChild(QPushButton, "trainStart").isEnabled()
    assert "2 images are marked reviewed; training needs at least 3" in _text(
        dialog, "trainWarnings"
    )


def test_train_adopt_and_prelabel_again(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.open_folder(_folder(tmp_path))
    project = window.project
    assert project is not None
    before = _reviewed_instances(project)
    assert len(before) == 10
    dialog = _open_dialog(window)
    _start(qtbot, dialog)
    table = dialog.findChild(QTableWidget, "trainResult")
    qtbot.waitUntil(lambda: table.isVisible() and table.rowCount() > 0, timeout=WAIT_MS)
    # The progress area showed the round (the last iteration stays in the curve).
    assert len(dialog.findChild(object, "trainLossCurve").losses) >= 1

    models = list_models(project)
    assert [m.name for m in models] == ["model-1"]
    card = read_card(models[0].path)
    assert card is not None
    figures = card.data["evaluation"]
    rows = {table.verticalHeaderItem(r).text(): r for r in range(table.rowCount())}

    def cell(row: str, column: int) -> str:
        return table.item(rows[row], column).text()

    def ap(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    for column, side in enumerate(("current", "new")):
        assert cell("Mask AP", column) == ap(figures[side]["ap"])
        assert cell("AP50", column) == ap(figures[side]["ap50"])
        for name in card.classes:
            assert cell(f"AP {name}", column) == ap(figures[side]["per_class"].get(name))
        share = re.fullmatch(r"(\d+)% \((\d+) of (\d+)\)", cell("Accepted unedited", column))
        assert share is not None
        assert (int(share[2]), int(share[3])) == (
            figures[side]["accepted"],
            figures[side]["objects"],
        )
    assert set(card.classes) == {"circle", "rectangle", "triangle", "star"}
    assert table.horizontalHeaderItem(0).text() == "Current (shapes-tiny.pt)"
    assert table.horizontalHeaderItem(1).text() == "New (model-1)"
    rule = figures["rule"]
    assert _text(dialog, "trainRule") == rule[:1].upper() + rule[1:]
    adopt = dialog.findChild(QPushButton, "trainAdopt")
    keep = dialog.findChild(QPushButton, "trainKeep")
    assert (adopt.isDefault(), keep.isDefault()) == (card.data["adopt"], not card.data["adopt"])
    if not card.data["adopt"]:
        assert "dropped" in _text(dialog, "trainVerdict")
    # Nothing changed yet: the person has not chosen.
    assert window.model_name == str(FIXTURE_MODEL)
    assert current_model(project) is None

    answers = Answers(Yes)
    monkeypatch.setattr(QMessageBox, "question", answers)
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        qtbot.mouseClick(adopt, Qt.MouseButton.LeftButton)
    assert answers.asked == [
        "Pre-label the 6 images not yet reviewed with model-1? Pending predictions of older "
        "models are replaced; accepted, rejected and drawn instances, and reviewed images, stay."
    ]
    new_model = str(models[0].path)
    assert current_model(project) == new_model
    assert window.model_name == new_model
    waiting = [r for r in project.images() if r.status is not ImageStatus.REVIEWED]
    assert len(waiting) == 6
    assert {(r.status, r.model) for r in waiting} == {(ImageStatus.PRELABELED, new_model)}
    assert _reviewed_instances(project) == before
    # A folder's own model is not every folder's default.
    assert window.settings.value("model") == str(FIXTURE_MODEL)

    # The Model menu lists it, checked.
    menu = window.findChild(QMenu, "menuFolderModels")
    menu.aboutToShow.emit()
    entry = menu.findChild(QAction, "actionFolderModel_model-1")
    assert entry is not None and entry.isChecked()
    assert entry.text() == card.summary()


def test_a_killed_training_leaves_everything_as_it_was(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    window.open_folder(_folder(tmp_path, count=12))
    project = window.project
    assert project is not None
    before, listing = _reviewed_instances(project), _models_listing(project)
    dialog = _open_dialog(window)
    _start(qtbot, dialog, epochs=3)
    _wait_for_iteration(qtbot, dialog)
    run_dirs = [project.models_dir / name for name in _models_listing(project) - listing]
    assert len(run_dirs) == 1 and run_dirs[0].is_dir()  # the child's work in progress
    os.kill(_child(dialog), signal.SIGKILL)
    status = dialog.findChild(QLabel, "trainStatus")
    qtbot.waitUntil(lambda: "killed" in status.text(), timeout=WAIT_MS)
    assert "the training process was killed (signal 9)" in status.text()
    assert "The current model is unchanged; nothing stored was lost." in status.text()
    assert window.model_name == str(FIXTURE_MODEL)
    assert current_model(project) is None
    assert _reviewed_instances(project) == before
    assert _models_listing(project) == listing
    assert not run_dirs[0].exists()
    assert dialog.findChild(QPushButton, "trainStart").isVisible()  # it may be tried again


def test_cancel_stops_the_child_within_five_seconds(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.open_folder(_folder(tmp_path, count=12))
    project = window.project
    assert project is not None
    listing = _models_listing(project)
    dialog = _open_dialog(window)
    _start(qtbot, dialog, epochs=3)
    _wait_for_iteration(qtbot, dialog)
    pid = _child(dialog)
    # Closing the dialog asks first; No: it stays, and so does the training.
    answers = Answers(No)
    monkeypatch.setattr(QMessageBox, "question", answers)
    dialog.close()
    assert answers.asked == ["Training is running. Stop it and close? The current model stays."]
    assert dialog.isVisible() and not _gone(pid)

    # The window's event loop keeps turning while the child stops: no wait on this thread.
    ticks = [time.monotonic()]
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(5)
    cancel = dialog.findChild(QPushButton, "trainCancel")
    started = time.monotonic()
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _gone(pid), timeout=10_000)
    assert time.monotonic() - started < 5
    timer.stop()
    assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 0.25
    qtbot.waitUntil(lambda: "cancelled" in _text(dialog, "trainStatus"), timeout=5_000)
    assert window.model_name == str(FIXTURE_MODEL)
    assert current_model(project) is None
    assert _models_listing(project) == listing


def test_the_child_s_own_error_is_said_plainly(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.open_folder(_folder(tmp_path, count=12))
    project = window.project
    assert project is not None
    listing = _models_listing(project)
    broken = tmp_path / "broken.pt"
    broken.write_text("not a model")
    dialog = _open_dialog(window)
    # Start from a model file: the file dialog answers with the broken one.
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(broken), ""))
    base = dialog.findChild(QComboBox, "trainBase")
    base.activated.emit(base.findData("file"))
    assert (base.currentText(), base.currentData()) == ("broken.pt", str(broken))
    _start(qtbot, dialog)
    status = dialog.findChild(QLabel, "trainStatus")
    qtbot.waitUntil(lambda: "Training stopped" in status.text(), timeout=WAIT_MS)
    assert f"{broken} is not a maskdesk checkpoint" in status.text()
    assert status.text().endswith("The current model is unchanged; nothing stored was lost.")
    assert window.model_name == str(FIXTURE_MODEL)
    assert _models_listing(project) == listing


def test_closing_the_window_during_training_asks_and_leaves_no_process(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.open_folder(_folder(tmp_path, count=12))
    dialog = _open_dialog(window)
    _start(qtbot, dialog, epochs=3)
    qtbot.waitUntil(lambda: "held out" in _text(dialog, "trainProgress"), timeout=WAIT_MS)
    pid = _child(dialog)
    answers = Answers(No, Yes)
    monkeypatch.setattr(QMessageBox, "question", answers)
    window.close()
    assert window.isVisible() and not _gone(pid)  # No: the window and the training go on
    started = time.monotonic()
    window.close()
    assert answers.asked == ["Training is running. Stop it and close?"] * 2
    assert not window.isVisible()
    assert _gone(pid)
    assert time.monotonic() - started < 6


def test_models_of_this_folder_in_the_menu_and_per_folder(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, count=4, reviewed=0)
    with Project.open(folder) as project:
        for n, ap in ((1, 0.25), (2, 0.5)):
            copy = tmp_path / f"weights-{n}.pt"
            copy.write_bytes(FIXTURE_MODEL.read_bytes())
            card = {
                "classes": ["circle", "rectangle", "triangle"],
                "train_images": 8 * n,
                "held_out": ["shapes_00001.png"],
                "date": f"2025-0{n}-01T10:00:00+00:00",
                "evaluation": {"new": {"ap": ap}},
            }
            publish(project, f"model-{n}", copy, card)
        set_current_model(project, str(project.models_dir / "model-1.pt"))
        first, second = (str(m.path) for m in list_models(project))

    window.open_folder(folder)
    assert window.model_name == first  # the folder's own model
    assert window.settings.value("model") == str(FIXTURE_MODEL)
    menu = window.findChild(QMenu, "menuFolderModels")
    menu.aboutToShow.emit()
    entries = [a for a in menu.actions() if a.objectName().startswith("actionFolderModel_")]
    assert [a.text() for a in entries] == [
        "model-1: AP 0.25, circle, rectangle, triangle; 8 images, 2025-01-01",
        "model-2: AP 0.50, circle, rectangle, triangle; 16 images, 2025-02-01",
    ]
    assert [a.isChecked() for a in entries] == [True, False]
    entries[1].trigger()
    assert window.model_name == second
    assert current_model(window.project) == second
    menu.aboutToShow.emit()
    entries = [a for a in menu.actions() if a.objectName().startswith("actionFolderModel_")]
    assert [a.isChecked() for a in entries] == [False, True]

    # Another folder without a model of its own uses the global choice; back again, its own.
    window.open_folder(_folder(tmp_path, count=2, reviewed=0, name="other"))
    assert window.model_name == str(FIXTURE_MODEL)
    window.open_folder(folder)
    assert window.model_name == second

    # The folder's model file went missing: the global choice, and the status bar says so.
    Path(second).unlink()
    window.open_folder(_folder(tmp_path, count=2, reviewed=0, name="third"))
    window.open_folder(folder)
    assert window.model_name == str(FIXTURE_MODEL)
    note = window.statusBar().findChild(QLabel, "folderModelNote")
    assert note is not None and note.isVisible()
    assert note.text() == f"This folder's model {second} is missing; using shapes-tiny.pt."

    # A model chosen in the menu becomes the folder's, and stays the global choice too.
    window.findChild(QAction, "actionModel_coco-v2").trigger()
    assert current_model(window.project) == "coco-v2"
    assert window.settings.value("model") == "coco-v2"
    window.open_folder(tmp_path / "other")
    assert not note.isVisible()
    assert window.model_name == "coco-v2"
    window.open_folder(folder)
    assert window.model_name == "coco-v2"
    assert window.findChild(QAction, "actionModel_coco-v2").isChecked()
