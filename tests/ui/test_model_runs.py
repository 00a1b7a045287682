"""The window and the model on its thread while a model loads: choosing another model, Cancel,
and closing the window. The load is held at a gate (the real load runs once the gate opens),
so each step happens while the worker is inside it."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from maskdesk.core.project import ImageStatus
from maskdesk.ui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MODEL = REPO / "tests" / "fixtures" / "shapes-tiny.pt"
WAIT_MS = 120_000


@dataclass
class Gate:
    """Loads wait here: `started` tells which loads have begun, `open()` lets them go on."""

    started: list[str] = field(default_factory=list)
    _open: threading.Event = field(default_factory=threading.Event)
    hold_s: float = 60.0

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    from maskdesk.inference import models

    held = Gate()
    real = models.load_model

    def gated(spec: str, **kwargs):  # noqa: ANN003, ANN202
        held.started.append(spec)
        held._open.wait(held.hold_s)
        return real(spec, **kwargs)

    monkeypatch.setattr(models, "load_model", gated)
    return held


def _shapes(tmp_path: Path, count: int) -> Path:
    from maskdesk.datasets.shapes import main as shapes_main

    shapes_main([str(tmp_path / "set"), "--count", str(count), "--seed", "3", "--size", "96"])
    return tmp_path / "set" / "images"


def _idle(qtbot, window: MainWindow) -> None:
    """Wait until the worker has done everything queued so far (a load of the model it holds
    answers at once, after whatever was queued before it)."""
    with qtbot.waitSignal(window.inference.modelLoaded, timeout=WAIT_MS):
        window.inference.load_model(window.inference.worker._model_key[0], window.device, True)


def test_a_model_chosen_while_another_loads_is_the_one_that_detects(
    window: MainWindow, qtbot, tmp_path: Path, gate: Gate
) -> None:
    other = tmp_path / "other-model.pt"
    shutil.copyfile(FIXTURE_MODEL, other)
    window.open_folder(_shapes(tmp_path, 1))
    assert window.project is not None and window.image_id is not None
    window.acts["actionDetect"].trigger()
    qtbot.waitUntil(lambda: gate.started == [str(FIXTURE_MODEL)], timeout=WAIT_MS)
    window.choose_model(str(other))  # while the first model loads
    gate.open()
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        pass
    record = window.project.image(window.image_id)
    assert (record.status, record.model) == (ImageStatus.PRELABELED, str(other))
    assert gate.started == [str(FIXTURE_MODEL), str(other)]
    assert window.inference.worker._model_key[0] == str(other)


def test_cancel_while_the_model_loads_drops_the_run_waiting_for_it(
    window: MainWindow, qtbot, tmp_path: Path, gate: Gate
) -> None:
    window.open_folder(_shapes(tmp_path, 3))
    finished: list[str] = []
    window.inference.finished.connect(lambda summary, report: finished.append(summary))
    window.acts["actionPrelabelFolder"].trigger()
    qtbot.waitUntil(lambda: gate.started != [], timeout=WAIT_MS)
    cancel = window.acts["actionCancel"]
    qtbot.waitUntil(cancel.isEnabled, timeout=WAIT_MS)
    cancel.trigger()
    with qtbot.waitSignal(window.inference.modelLoaded, timeout=WAIT_MS):
        gate.open()  # the load itself goes on: the model is there for the next run
    _idle(qtbot, window)
    assert window.project is not None
    assert {r.status for r in window.project.images()} == {ImageStatus.NEW}
    assert finished == []
    qtbot.waitUntil(lambda: not cancel.isEnabled(), timeout=WAIT_MS)

    # The model is loaded: the next Pre-label runs at once and is not cancelled.
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        window.acts["actionPrelabelFolder"].trigger()
    assert {r.status for r in window.project.images()} == {ImageStatus.PRELABELED}


def test_closing_the_window_while_the_model_loads_is_prompt(
    window: MainWindow, qtbot, tmp_path: Path, gate: Gate
) -> None:
    gate.hold_s = 6.0  # the old window waited for the whole load
    window.open_folder(_shapes(tmp_path, 2))
    folder = window.project.folder  # type: ignore[union-attr]
    thread = window.inference.thread_handle
    window.acts["actionDetect"].trigger()
    qtbot.waitUntil(lambda: gate.started != [], timeout=WAIT_MS)
    started = time.perf_counter()
    window.close()
    assert time.perf_counter() - started < 2.5  # a loaded 2-core machine; was over 6 s
    assert not window.isVisible() and window.project is None
    assert thread.isRunning()  # the load finishes in the background
    gate.open()
    qtbot.waitUntil(lambda: not thread.isRunning(), timeout=WAIT_MS)
    from maskdesk.core.project import Project

    with Project.open(folder) as project:  # the Detect waiting for the load did not run
        assert {r.status for r in project.images()} == {ImageStatus.NEW}


def test_cancel_before_a_queued_load_starts_says_so_without_an_error_dialog(
    window: MainWindow, qtbot, tmp_path: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    import maskdesk.ui.dialogs as dialogs

    errors: list[str] = []
    monkeypatch.setattr(dialogs, "show_model_error", lambda parent, message: errors.append(message))
    other = tmp_path / "other-model.pt"
    shutil.copyfile(FIXTURE_MODEL, other)
    window.open_folder(_shapes(tmp_path, 1))
    window.acts["actionDetect"].trigger()
    qtbot.waitUntil(lambda: gate.started == [str(FIXTURE_MODEL)], timeout=WAIT_MS)
    window.choose_model(str(other))
    window.detect()  # the load of `other` waits behind the first one
    cancel = window.acts["actionCancel"]
    qtbot.waitUntil(cancel.isEnabled, timeout=WAIT_MS)
    cancel.trigger()
    with qtbot.waitSignal(window.inference.modelFailed, timeout=WAIT_MS) as failed:
        gate.open()
    assert "cancelled" in failed.args[0] and errors == []
    assert "cancelled" in window.statusBar().currentMessage()
    assert gate.started == [str(FIXTURE_MODEL)]  # `other` was never loaded
    assert window.project is not None
    assert {r.status for r in window.project.images()} == {ImageStatus.NEW}


def test_the_model_menu_says_which_model_is_active(window: MainWindow) -> None:
    """The Model menu's first entry names the model in use, disabled, and follows changes."""
    from PySide6.QtGui import QAction

    active = window.findChild(QAction, "actionActiveModel")
    assert active is not None and not active.isEnabled()
    model_menu = next(m for m in window.menuBar().actions() if m.text() == "&Model").menu()
    assert model_menu.actions()[0] is active
    window.choose_model("coco-v2")
    assert active.text() == "Active: coco-v2"
    window.choose_model(str(FIXTURE_MODEL))
    assert active.text() == "Active: shapes-tiny.pt"
    assert not window.findChild(QAction, "actionModel_coco-v2").isChecked()


def test_open_model_file_in_the_missing_weights_dialog_runs_the_waiting_detect(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detect with absent weights -> the dialog -> "Open model file..." -> Detect goes on with
    the chosen file."""
    from PySide6.QtWidgets import QFileDialog

    import maskdesk.inference.models as models
    import maskdesk.ui.dialogs as dialogs

    monkeypatch.setattr(models, "weights_path", lambda name: tmp_path / f"absent-{name}.pth")
    monkeypatch.setattr(dialogs, "ask_missing_weights", lambda *args: "open")
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(FIXTURE_MODEL), ""))
    )
    window.open_folder(_shapes(tmp_path, 1))
    assert window.project is not None and window.image_id is not None
    window.choose_model("coco-v2")
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        window.acts["actionDetect"].trigger()
    record = window.project.image(window.image_id)
    assert (record.status, record.model) == (ImageStatus.PRELABELED, str(FIXTURE_MODEL))
