"""The window's requests to the model on the inference thread: which model is chosen and which
one the worker holds, what waits for a load, Cancel, closing, and the answers that come back
(progress, box masks, errors).

A request remembers the folder it was made in: one waiting for a load, or a box answered after
another folder was opened, is dropped, never applied to the new folder's image of that id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from maskdesk.core.project import Project
from maskdesk.ui import folder_models

if TYPE_CHECKING:
    from maskdesk.ui.main_window import MainWindow

# Closing the window waits this long for the worker; a model load still running then ends on
# its own after the window has gone (workers.InferenceThread.close with detach).
CLOSE_WAIT_MS = 300


class ModelRuns(QObject):
    """Detect, Pre-label folder, box to mask and an imported file's boxes made into masks for
    `window`, through `window.inference`."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.ready: str | None = None  # the model the worker holds, as the window named it
        self.loading: str | None = None  # the model asked for last, until it answers
        self.cancelled: str | None = None  # a load the person cancelled: no error dialog
        # What waits for the chosen model: task, argument, and the project it was asked in.
        self.waiting: list[tuple[str, object, Project]] = []
        self.boxes: dict[int, tuple[Project, int]] = {}  # box ticket -> project, image id
        self.doing = "Pre-labeling"  # the progress line's label: the last batch sent
        w = window.inference
        w.modelLoaded.connect(self._loaded)
        w.modelFailed.connect(self._load_failed)
        w.progress.connect(self._progress)
        w.failed.connect(self._failed)
        w.busyChanged.connect(self._busy)
        w.boxMasked.connect(self._box_masked)

    def choose(self, name: str) -> None:
        """Use this model from now on (loaded when first needed); remembered as the open
        folder's model, and for other folders unless it is one this folder trained."""
        w = self.window
        w.model_name = name
        if not folder_models.remember(w, name):
            w.settings.setValue("model", name)
        folder_models.mark_model(w)

    def folder_opened(self) -> None:
        """Use the folder's own model when it has one (Model ▸ Models of this folder)."""
        folder_models.use_folder_model(self.window)

    def may_close(self) -> bool:
        """Whether the window may close: a running training is stopped only when the person
        says so."""
        return folder_models.may_close(self.window)

    def request(self, task: str, arg: object) -> None:
        """Run `task` ("detect", "prelabel", "box", or "boxes": an imported ParsedCoco's
        box-only annotations) with the chosen model, loading it first when the worker holds
        another (or none)."""
        project = self.window.project
        if project is None:
            return
        # While any load is on its way the worker will hold that model next: wait for it.
        if self.ready == self.window.model_name and self.loading is None:
            self._run(task, arg, project)
            return
        self.waiting.append((task, arg, project))
        self.load()

    def load(self, offline: bool = True) -> None:
        """Ask the worker for the chosen model, unless that load is already on its way."""
        name = self.window.model_name
        if self.loading == name:
            return
        self.loading, self.cancelled = name, None
        self.window.statusBar().showMessage(f"Loading the model {name}...")
        # Offline: missing weights are never fetched unasked; the dialog offers the download.
        self.window.inference.load_model(name, self.window.device, offline=offline)

    def cancel(self) -> None:
        """The Cancel action: the running task, the queued ones, and those waiting for a
        load (the load itself goes on: the model is there for the next run)."""
        self.waiting.clear()
        self.cancelled = self.loading
        self.window.inference.cancel()

    def close(self) -> None:
        """The window closes: nothing more runs, and a load still going ends on its own."""
        self.waiting.clear()
        self.boxes.clear()
        self.window.inference.close(CLOSE_WAIT_MS, detach=True)

    def _run(self, task: str, arg: object, project: Project) -> None:
        w = self.window
        if project is not w.project:
            return  # asked in a folder that has been closed since
        if task == "detect":
            self.doing = "Pre-labeling"
            w.inference.detect(int(arg))  # type: ignore[call-overload]
        elif task == "box":
            image_id, box, forced = cast("tuple[int, tuple[float, float, float, float], str]", arg)
            self.boxes = {t: asked for t, asked in self.boxes.items() if asked[0] is project}
            self.boxes[w.inference.box_to_mask(image_id, box, forced)] = (project, image_id)
        elif task == "boxes":
            self.doing = "Boxes to masks"
            w.inference.boxes_to_masks(arg)
        else:
            self.doing = "Pre-labeling"
            w.inference.prelabel_folder(bool(arg))

    def _loaded(self, name: str, categories: list, note: str) -> None:
        self.ready = name
        if name == self.loading:
            self.loading = None
        self.window.statusBar().showMessage(
            f"Model {name}: {len(categories)} classes. {note}".strip()
        )
        if name != self.window.model_name or self.loading is not None:
            # Another model was chosen while this one loaded, or another load is on its way:
            # what waits runs once the worker holds the chosen one.
            if self.waiting:
                self.load()
            return
        pending, self.waiting = self.waiting, []
        for task, arg, project in pending:
            self._run(task, arg, project)

    def _load_failed(self, message: str, failure: object) -> None:
        from maskdesk.ui.menus import model_failed

        name = getattr(failure, "name", None)
        if name == self.loading:
            self.loading = None
        if name != self.window.model_name or name == self.cancelled:
            # Cancelled, or a model chosen before the current one (which is what waits).
            self.window.statusBar().showMessage(message)
            if self.waiting:
                self.load()
            return
        waiting, self.waiting = self.waiting, []
        if model_failed(self.window, message, failure):
            self.waiting = waiting  # downloading: Detect goes on once it is loaded

    def _box_masked(
        self, image_id: int, instances: list, names: dict, forced: str, ticket: int
    ) -> None:
        asked = self.boxes.pop(ticket, None)
        if asked is None or asked[0] is not self.window.project or asked[1] != image_id:
            self.window.statusBar().showMessage(
                "Box to mask: the answer came after its folder was closed; it was dropped."
            )
            return
        self.window.editor.box_masked(image_id, instances, names, forced)

    def _progress(self, done: int, total: int, rate: float, left: float) -> None:
        bar = self.window.progress
        bar.setMaximum(max(total, 1))
        bar.setValue(done)
        eta = f", {left:.0f} s left" if left >= 0 else ""
        self.window.statusBar().showMessage(
            f"{self.doing}: {done} / {total}, {rate:.2f} images/s{eta}"
        )

    def _failed(self, message: str) -> None:
        QMessageBox.warning(self.window, "maskdesk", message)

    def _busy(self, busy: bool) -> None:
        a = self.window.acts
        self.window.progress.setVisible(busy)
        a["actionCancel"].setEnabled(busy)
        a["actionPrelabelFolder"].setEnabled(not busy)
        a["actionDetect"].setEnabled(not busy)
