"""A training round in a child process (`maskdesk train FOLDER --json`), seen from the window.

The child does everything (snapshot of the reviewed images, training, measuring both models,
publishing the new one); this side starts it with QProcess, reads its JSON Lines as they come,
stops it on request (terminate, then kill), and removes its run folder when it ended without a
model. A crash, an out-of-memory kill or a CUDA error ends the child, never the window, and
nothing here waits on the UI thread.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

KILL_AFTER_MS = 3000  # a child that ignores terminate() is killed this long after
STDERR_LINES = 12  # what an error message quotes of the child's own words
EXIT_ERROR = 2  # the child said why in an {"event": "error"} line
EXIT_INTERRUPTED = 130
UNCHANGED = "The current model is unchanged; nothing stored was lost."


@dataclass(frozen=True)
class TrainSettings:
    """What the person chose in the dialog; exactly one of `budget_s` and `epochs` is set."""

    folder: str
    base: str
    current: str
    device: str
    budget_s: int | None = None
    epochs: int | None = None

    def __post_init__(self) -> None:
        if (self.budget_s is None) == (self.epochs is None):
            raise ValueError("give a time budget or a number of epochs, not both")


def train_command(settings: TrainSettings) -> list[str]:
    """The child's command line: the installed program in a frozen build, else this Python."""
    if getattr(sys, "frozen", False):
        command = [sys.executable, "train"]
    else:
        command = [sys.executable, "-m", "maskdesk", "train"]
    command += [settings.folder, "--json", "--base", settings.base, "--current", settings.current]
    if settings.budget_s is not None:
        command += ["--budget", str(settings.budget_s)]
    else:
        command += ["--epochs", str(settings.epochs)]
    return command + ["--device", settings.device]


def parse_line(line: bytes) -> dict[str, Any] | None:
    """One event of the child's output; None for anything else (a library's stray print)."""
    try:
        event = json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    return event


class TrainingRun(QObject):
    """One child process: its events as signals, Cancel, and what is left when it ends.

    `finished` comes last, once the child is gone and its run folder removed: with the card
    when a model was made, else with a sentence saying why there is none."""

    started = Signal(dict)  # the "started" event: run folder, name, images, classes, base
    progress = Signal(dict)  # an "iteration" event
    evaluating = Signal(dict)  # an "evaluating" event: which model is measured
    done = Signal(dict)  # the "done" event: model path and card
    failed = Signal(str)  # why no model came, for the person (cancel included)
    finished = Signal()  # the child is gone; `model` is set when it made one

    def __init__(self, settings: TrainSettings, store_dir: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.store_dir = store_dir  # a run folder is removed only under here
        self.run_dir: Path | None = None
        self.model: Path | None = None
        self.card: dict[str, Any] | None = None
        self.error: str | None = None  # the child's own {"event": "error"} message
        self.cancelled = False
        self.stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._out = b""
        self._err = b""
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self._read_out)
        self.process.readyReadStandardError.connect(self._read_err)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        self._kill = QTimer(self)
        self._kill.setSingleShot(True)
        self._kill.timeout.connect(self.process.kill)
        self._ended = False

    # -- control -----------------------------------------------------------------------------

    def start(self) -> None:
        command = train_command(self.settings)
        self.process.start(command[0], command[1:])

    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def pid(self) -> int:
        return int(self.process.processId())

    def cancel(self) -> None:
        """Ask the child to stop, and kill it if it has not after KILL_AFTER_MS; returns at once."""
        if not self.running():
            return
        self.cancelled = True
        self.process.terminate()
        if not self._kill.isActive():
            self._kill.start(KILL_AFTER_MS)

    def stop_now(self, wait_ms: int = 5000) -> None:
        """Stop the child and wait for it (the window is closing: nothing else runs after)."""
        if not self.running():
            return
        self.cancelled = True
        self.process.terminate()
        if not self.process.waitForFinished(min(KILL_AFTER_MS, wait_ms)):
            self.process.kill()
            self.process.waitForFinished(max(wait_ms - KILL_AFTER_MS, 1000))
        if not self._ended:  # waitForFinished emits `finished` itself; once, in any case
            self._finished(self.process.exitCode(), self.process.exitStatus())

    # -- the child's output ----------------------------------------------------------------------

    def _read_out(self) -> None:
        self._out += bytes(self.process.readAllStandardOutput().data())
        *lines, self._out = self._out.split(b"\n")
        for line in lines:
            event = parse_line(line)
            if event is not None:
                self._event(event)

    def _read_err(self) -> None:
        self._err += bytes(self.process.readAllStandardError().data())
        *lines, self._err = self._err.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self.stderr.append(text)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "started":
            run = event.get("run")
            self.run_dir = Path(run) if isinstance(run, str) and run else None
            self.started.emit(event)
        elif kind == "iteration":
            self.progress.emit(event)
        elif kind == "evaluating":
            self.evaluating.emit(event)
        elif kind == "done":
            model, card = event.get("model"), event.get("card")
            if isinstance(model, str) and isinstance(card, dict):
                self.model, self.card = Path(model), card
                self.done.emit(event)
        elif kind == "error":
            self.error = str(event.get("message") or "Training failed.")

    # -- the end ---------------------------------------------------------------------------------

    def _error(self, error: QProcess.ProcessError) -> None:
        if error is QProcess.ProcessError.FailedToStart and not self._ended:
            self._ended = True
            self.failed.emit(
                f"Training could not start: {self.process.errorString()} "
                f"({' '.join(train_command(self.settings)[:3])}). {UNCHANGED}"
            )
            self.finished.emit()

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self._ended:
            return
        self._ended = True
        self._kill.stop()
        self._read_out()
        if self._out.strip():
            event = parse_line(self._out)  # a last line without its newline
            self._out = b""
            if event is not None:
                self._event(event)
        self._read_err()
        if self._err.strip():
            self.stderr.append(self._err.decode("utf-8", "replace").rstrip())
            self._err = b""
        if self.model is None:
            self._remove_run_dir()
            self.failed.emit(self.why(code, status))
        self.finished.emit()

    def why(self, code: int, status: QProcess.ExitStatus) -> str:
        """Why the child ended without a model, in the person's words."""
        if self.cancelled:
            return f"Training cancelled. {UNCHANGED}"
        if self.error is not None:
            return f"Training stopped: {self.error} {UNCHANGED}"
        if status is QProcess.ExitStatus.CrashExit:
            what = f"the training process was killed (signal {code})"
            if code == 9:
                what += ", perhaps because the computer ran out of memory"
            return f"Training stopped: {what}. {UNCHANGED}"
        if code == EXIT_INTERRUPTED:
            return f"Training stopped: the training process was interrupted. {UNCHANGED}"
        said = "\n".join(self.stderr)
        ended = f"ended with exit code {code}" if code else "ended without a model"
        tail = f"\n\nIts last words:\n{said}" if said else ""
        return f"Training stopped: the training process {ended}. {UNCHANGED}{tail}"

    def _remove_run_dir(self) -> None:
        """The unfinished run's folder, once its process is gone; only inside the store's."""
        run = self.run_dir
        if run is None or not run.exists():
            return
        try:
            inside = run.resolve().is_relative_to(self.store_dir.resolve())
        except OSError:
            inside = False
        # Never the store's folder itself, nor the folder of every trained model.
        if inside and run.resolve() not in (
            self.store_dir.resolve(),
            (self.store_dir / "models").resolve(),
        ):
            shutil.rmtree(run, ignore_errors=True)
