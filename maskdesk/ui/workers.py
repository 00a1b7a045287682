"""The inference worker: a QObject living in its own QThread that owns the loaded model and
the worker's own project connection, runs Detect and Pre-label folder through core.prelabel
and an imported file's box-only annotations through inference.box_masks, and reports
everything (progress, stored images, errors) as signals.

torch is imported only inside the worker's slots, so importing this module costs no torch.
Only signals cross threads, except `cancel()`, a thread-safe plain method that works while
the worker is busy. `InferenceThread` creates the thread, moves the worker, and joins it on
close (or, when a window closes during a model load, keeps it until it ends on its own).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from maskdesk.core.errors import MaskdeskError, ModelError
from maskdesk.core.images import load_rgb
from maskdesk.core.prelabel import (
    ImageResult,
    PrelabelReport,
    Progress,
    RunModel,
    plan,
    prelabel,
)
from maskdesk.core.project import ImageRecord, Project

if TYPE_CHECKING:
    from maskdesk.core.coco_read import ParsedCoco
    from maskdesk.inference.predictor import Predictor

log = logging.getLogger(__name__)

# How much nicer than the window the worker's threads run (torch's intra-op pool and the image
# decoder inherit it): with few cores they would otherwise hold every core while the UI thread
# waits for one, and the window's update when the shown image's predictions land took 40-80 ms
# instead of 20-30 on 2 cores (benchmarks/ui_responsiveness.py). 10 is what `nice` adds.
WORKER_NICENESS = 10


def yield_cpu_to_the_window() -> None:
    """Lower the calling thread's CPU priority by WORKER_NICENESS; threads it starts later
    inherit it. Linux only (a thread's nice value is its own there); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))
    except OSError:
        log.debug("Could not lower the inference thread's priority", exc_info=True)


@dataclass(frozen=True)
class ModelFailure:
    """Why a model did not load, for the dialog: missing weights (where to put them, where
    to fetch them), a cancelled download, or the setting that would fix it."""

    name: str
    missing_weights: bool = False
    url: str = ""  # where the missing weights can be downloaded from
    path: str = ""  # where the missing weights must be placed
    cancelled: bool = False
    setting: str | None = None


def summarize(report: PrelabelReport) -> str:
    """One line for the status bar: what a Detect or Pre-label run did."""
    parts = [
        f"{report.stored} of {report.total} image{'s' if report.total != 1 else ''} "
        f"pre-labeled, {report.instances} instance{'s' if report.instances != 1 else ''}"
    ]
    if report.failed:
        parts.append(f"{len(report.failed)} failed")
    if report.skipped_reviewed:
        parts.append(f"{report.skipped_reviewed} reviewed left as they are")
    if report.skipped_done:
        parts.append(f"{report.skipped_done} already pre-labeled by this model")
    if report.cancelled:
        parts.append("cancelled")
    return "; ".join(parts)


class InferenceWorker(QObject):
    """Loads a model once and predicts with it, in the thread it was moved to.

    Slots take an optional `ticket` (from `ticket()`, taken when the request is queued) so
    that `cancel()` also stops requests still waiting in the queue; without one a slot takes
    a ticket when it starts.
    """

    modelLoaded = Signal(str, list, str)  # name, category names, note ("" or a caveat)
    modelFailed = Signal(str, object)  # message, ModelFailure
    # bytes done, bytes total (0: unknown); 64-bit: a weights file may pass 2 GiB
    downloadProgress = Signal("qint64", "qint64")  # type: ignore[arg-type]
    progress = Signal(int, int, float, float)  # done, total, images/s, seconds left or -1
    imageStored = Signal(int)  # image id whose result (instances or failure) is stored
    imageFailed = Signal(int, str)  # image id, reason (also stored as the image's status)
    finished = Signal(str, object)  # summary line, PrelabelReport (or BoxMaskReport)
    failed = Signal(str)  # message for the user; the worker stays usable
    busyChanged = Signal(bool)  # True when a task starts, False when it ends (any outcome)
    # image id, instances (model category ids), model category names by id, forced class name,
    # the request's ticket (the window knows from it which folder the box was drawn in)
    boxMasked = Signal(int, list, object, str, int)
    closed = Signal()  # after shutdown(): connection closed, model dropped

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._issued = 0
        self._cancelled_upto = 0
        self._project: Project | None = None
        self._predictor: Predictor | None = None
        self._model_key: tuple[str, str] | None = None
        self._note = ""
        self._picture: tuple[int, np.ndarray] | None = None  # the image box-to-mask works on

    # -- thread-safe: called from any thread --------------------------------------------

    def ticket(self) -> int:
        """A number for one request; `cancel()` stops every request numbered so far."""
        with self._lock:
            self._issued += 1
            return self._issued

    def cancel(self) -> None:
        """Stop the running task (within one image, or one download chunk) and every task
        queued before this call. Thread-safe; never queued, so it works while busy."""
        with self._lock:
            self._cancelled_upto = self._issued

    def _cancelled(self, ticket: int) -> bool:
        with self._lock:
            return ticket <= self._cancelled_upto

    # -- slots: run in the worker thread --------------------------------------------------

    @Slot(object)
    def set_project(self, project: Project | None) -> None:
        """Open this thread's own connection to `project` (the window's object; only its
        folder and path are read), closing the previous one. None closes it."""
        try:
            self._close_project()
            if project is not None:
                self._project = project.connect_again()
        except Exception as exc:
            self._report_error("Opening the project for the worker", exc)

    @Slot(str, str, bool)
    @Slot(str, str, bool, int)
    def load_model(self, name: str, device: str, offline: bool, ticket: int = 0) -> None:
        """Load `name` (coco-v1, coco-v2 or a model file) on `device`; reused when the same
        model and device are asked for again. A failure keeps the model loaded before."""
        ticket = ticket or self.ticket()
        self.busyChanged.emit(True)
        try:
            self._load_model(name, device, offline, ticket)
        except MaskdeskError as exc:
            self.modelFailed.emit(str(exc), self._failure(name, exc))
        except Exception as exc:
            log.exception("Loading the model %s failed", name)
            self.modelFailed.emit(
                f"Loading the model {name} failed unexpectedly ({type(exc).__name__}: {exc}).",
                ModelFailure(name),
            )
        finally:
            self.busyChanged.emit(False)

    @Slot(int)
    @Slot(int, int)
    def detect(self, image_id: int, ticket: int = 0) -> None:
        """Predict one image and store its result (redo: it replaces earlier predictions;
        a reviewed image is left as it is)."""
        ticket = ticket or self.ticket()

        def one_image(project: Project) -> list[ImageRecord]:
            return [project.image(image_id)]

        self._task("Detect", lambda: self._predict(ticket, redo=True, select=one_image))

    @Slot(bool)
    @Slot(bool, int)
    def prelabel_folder(self, redo: bool, ticket: int = 0) -> None:
        """Pre-label every image not reviewed; without `redo`, images this model already
        did are skipped, so a second run continues where the first stopped."""
        ticket = ticket or self.ticket()
        self._task("Pre-label folder", lambda: self._predict(ticket, redo=redo, select=None))

    @Slot(int, object, str)
    @Slot(int, object, str, int)
    def box_to_mask(
        self, image_id: int, box: tuple[float, float, float, float], forced: str, ticket: int = 0
    ) -> None:
        """The loaded model's own heads on one box of an image: emits `boxMasked` with the
        instance (class and score from the model, or the mask for class `forced` when the
        model knows that name). The image and its features stay for the next box."""
        ticket = ticket or self.ticket()
        if self._cancelled(ticket):
            return
        try:
            project, predictor = self._project, self._predictor
            if project is None or predictor is None:
                raise ModelError("No model is loaded: choose one in the Model menu first.")
            rgb = self._picture_of(project, predictor, image_id)
            known = [c.id for c in predictor.categories if c.name == forced]
            instances = predictor.predict_boxes(rgb, [box], category_id=known[0] if known else None)
            names = {c.id: c.name for c in predictor.categories}
            self.boxMasked.emit(image_id, instances, names, forced, ticket)
        except Exception as exc:
            self._report_error("Box to mask", exc)

    @Slot(object)
    @Slot(object, int)
    def boxes_to_masks(self, coco: object, ticket: int = 0) -> None:
        """Masks for the box-only annotations of an imported file (a ParsedCoco), stored as
        pending instances image by image (`imageStored`, `progress`); Cancel stops between
        images and keeps what is stored. Ends with `finished` and a BoxMaskReport."""
        ticket = ticket or self.ticket()
        self._task("Boxes to masks", lambda: self._boxes(cast("ParsedCoco", coco), ticket))

    def _boxes(self, coco: ParsedCoco, ticket: int) -> None:
        from maskdesk.inference.box_masks import BoxMaskReport, boxes_to_masks

        project, predictor = self._ready()
        self._picture = None  # the box tool's image: its features go with the first box
        if self._cancelled(ticket):
            report = BoxMaskReport(cancelled=True)
        else:
            report = boxes_to_masks(
                project,
                coco,
                predictor,
                progress=self._on_progress,
                cancel=lambda: self._cancelled(ticket),
                on_stored=lambda record: self.imageStored.emit(record.id),
            )
        self.finished.emit(report.line(), report)

    @Slot(int)
    def keep_only(self, image_id: int) -> None:
        """The person moved to `image_id`: free another image's pixels and features."""
        if self._picture is not None and self._picture[0] != image_id:
            self._picture = None
            if self._predictor is not None:
                self._predictor.forget_image()

    @Slot()
    def shutdown(self) -> None:
        """Close the connection and drop the model in this thread, then end the thread."""
        try:
            self._close_project()
        except Exception:
            log.exception("Closing the worker's project connection failed")
        self._predictor = None
        self._model_key = None
        self._picture = None
        self.closed.emit()

    # -- inside the worker thread ---------------------------------------------------------

    def _picture_of(self, project: Project, predictor: Predictor, image_id: int) -> np.ndarray:
        """The image's pixels, decoded once while box-to-mask stays on it."""
        if self._picture is None or self._picture[0] != image_id:
            self._picture = None
            predictor.forget_image()
            record = project.image(image_id)
            self._picture = (image_id, load_rgb(project.absolute_path(record)))
        return self._picture[1]

    def _load_model(self, name: str, device: str, offline: bool, ticket: int) -> None:
        if self._model_key == (name, device) and self._predictor is not None:
            self.modelLoaded.emit(
                self._predictor.model_name, [c.name for c in self._predictor.categories], self._note
            )
            return
        if self._cancelled(ticket):
            raise ModelError(f"Loading the model {name} was cancelled.")
        # torch is imported here, in the worker thread, the first time a model is needed,
        # in the way that does not stall the UI thread (see inference/preload.py).
        from maskdesk.inference.preload import import_torch_quietly

        import_torch_quietly()
        from maskdesk.inference.models import load_model
        from maskdesk.inference.predictor import Predictor

        def on_bytes(done: int, total: int) -> bool:
            self.downloadProgress.emit(done, total)
            return not self._cancelled(ticket)

        loaded = load_model(name, offline=offline, progress=on_bytes)
        predictor = Predictor(loaded, device=device)
        self._predictor, self._model_key, self._note = predictor, (name, device), loaded.note
        self.modelLoaded.emit(
            predictor.model_name, [c.name for c in predictor.categories], loaded.note
        )

    def _failure(self, name: str, exc: MaskdeskError) -> ModelFailure:
        from maskdesk.inference import models

        cancelled = isinstance(exc, models.DownloadCancelled)
        if name in models.MODEL_NAMES:
            path = models.weights_path(name)
            if not path.is_file():
                return ModelFailure(
                    name,
                    missing_weights=True,
                    url=models.weights_url(name),
                    path=str(path),
                    cancelled=cancelled,
                    setting=exc.setting,
                )
        return ModelFailure(name, cancelled=cancelled, setting=exc.setting)

    def _task(self, what: str, run: Callable[[], None]) -> None:
        """Run a batch task between busyChanged(True) and (False); errors become `failed`."""
        self.busyChanged.emit(True)
        try:
            run()
        except Exception as exc:
            self._report_error(what, exc)
        finally:
            self.busyChanged.emit(False)

    def _ready(self) -> tuple[Project, Predictor]:
        """The open project and the loaded model, or the reason one is missing."""
        project, predictor = self._project, self._predictor
        if project is None:
            raise MaskdeskError("No folder is open: open a folder of images first.")
        if predictor is None:
            raise ModelError("No model is loaded: choose one in the Model menu first.")
        return project, predictor

    def _predict(
        self,
        ticket: int,
        *,
        redo: bool,
        select: Callable[[Project], Sequence[ImageRecord]] | None,
    ) -> None:
        project, predictor = self._ready()
        name = predictor.model_name
        skips = PrelabelReport()
        candidates = select(project) if select is not None else None
        todo = plan(project, name, redo=redo, images=candidates, report=skips)
        if self._cancelled(ticket):
            report = PrelabelReport(total=len(todo), cancelled=True)
        else:
            self.progress.emit(0, len(todo), 0.0, -1.0)
            report = prelabel(
                project,
                name,
                predictor.categories,
                self._runner(predictor),
                redo=True,  # planned above; plan again would skip nothing more
                images=todo,
                progress=self._on_progress,
                cancel=lambda: self._cancelled(ticket),
                on_result=self._on_result,
            )
        report.skipped_reviewed += skips.skipped_reviewed
        report.skipped_done += skips.skipped_done
        self.finished.emit(summarize(report), report)

    @staticmethod
    def _runner(predictor: Predictor) -> RunModel:
        from maskdesk.inference.predictor import predict_files

        def run(paths: Sequence[Path], cancel: Callable[[], bool]) -> Iterable[ImageResult]:
            return predict_files(predictor, paths, cancel=cancel)

        return run

    def _on_progress(self, step: Progress) -> None:
        left = step.seconds_left
        self.progress.emit(step.done, step.total, step.images_per_s, -1.0 if left is None else left)

    def _on_result(self, record: ImageRecord, result: ImageResult) -> None:
        if result.instances is None:
            self.imageFailed.emit(record.id, str(result.error) or type(result.error).__name__)
        self.imageStored.emit(record.id)

    def _report_error(self, what: str, exc: Exception) -> None:
        if isinstance(exc, MaskdeskError):
            self.failed.emit(str(exc))
        else:
            log.exception("%s failed", what)
            self.failed.emit(f"{what} failed unexpectedly ({type(exc).__name__}: {exc}).")

    def _close_project(self) -> None:
        self._picture = None
        project, self._project = self._project, None
        if project is not None:
            project.close()


# Threads that closing a window left to end on their own (a model load cannot stop halfway),
# with their workers: kept alive until joined, because a QThread destroyed while it runs
# aborts the process.
_LEFTOVERS: list[tuple[QThread, QObject]] = []
_HOOKED = False


def wait_for_leftovers() -> None:
    """Join the threads closed windows left running (when the application quits, at exit)."""
    while _LEFTOVERS:
        thread, _worker = _LEFTOVERS.pop()
        thread.wait()


def _leave_running(thread: QThread, worker: QObject) -> None:
    global _HOOKED
    if not _HOOKED:
        _HOOKED = True
        atexit.register(wait_for_leftovers)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(wait_for_leftovers)
    _LEFTOVERS[:] = [(t, w) for t, w in _LEFTOVERS if not t.isFinished() and t is not thread]
    _LEFTOVERS.append((thread, worker))


_REPEATED = (
    "modelLoaded",
    "modelFailed",
    "downloadProgress",
    "progress",
    "imageStored",
    "imageFailed",
    "finished",
    "failed",
    "busyChanged",
    "boxMasked",
)


class InferenceThread(QObject):
    """Owns the worker's QThread: starts it, queues requests to the worker, cancels, and
    joins it on `close()` (also called when the application is about to quit).

    It repeats the worker's signals from the thread it lives in (the UI thread), so anything
    connected to them, a lambda included, runs there: connect to these, not to the worker's.
    """

    modelLoaded = Signal(str, list, str)
    modelFailed = Signal(str, object)
    downloadProgress = Signal("qint64", "qint64")  # type: ignore[arg-type]
    progress = Signal(int, int, float, float)
    imageStored = Signal(int)
    imageFailed = Signal(int, str)
    finished = Signal(str, object)
    failed = Signal(str)
    busyChanged = Signal(bool)
    boxMasked = Signal(int, list, object, str, int)

    _setProject = Signal(object)
    _loadModel = Signal(str, str, bool, int)
    _detect = Signal(int, int)
    _prelabel = Signal(bool, int)
    _boxToMask = Signal(int, object, str, int)
    _boxesToMasks = Signal(object, int)
    _keepOnly = Signal(int)
    _shutdown = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = InferenceWorker()
        # No Qt parent: a parent deleting a running QThread would abort the process.
        self._thread = QThread()
        self._thread.setObjectName("maskdeskInference")
        self._closing = False
        self.worker.moveToThread(self._thread)
        self._setProject.connect(self.worker.set_project)
        self._loadModel.connect(self.worker.load_model)
        self._detect.connect(self.worker.detect)
        self._prelabel.connect(self.worker.prelabel_folder)
        self._boxToMask.connect(self.worker.box_to_mask)
        self._boxesToMasks.connect(self.worker.boxes_to_masks)
        self._keepOnly.connect(self.worker.keep_only)
        self._shutdown.connect(self.worker.shutdown)
        for name in _REPEATED:
            # Queued: this object lives in the UI thread, the worker's signals come from its own.
            getattr(self.worker, name).connect(getattr(self, name))
        # Direct: quit() is thread-safe and must come after shutdown() ran in the worker.
        self.worker.closed.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.close)
        # Direct: runs in the new thread as it starts, before torch makes its threads there.
        self._thread.started.connect(yield_cpu_to_the_window, Qt.ConnectionType.DirectConnection)
        self._thread.start()

    @property
    def thread_handle(self) -> QThread:
        return self._thread

    def set_project(self, project: Project | None) -> None:
        self._setProject.emit(project)

    def load_model(self, name: str, device: str = "auto", offline: bool = False) -> None:
        self._loadModel.emit(name, device, offline, self.worker.ticket())

    def detect(self, image_id: int) -> None:
        self._detect.emit(image_id, self.worker.ticket())

    def prelabel_folder(self, redo: bool = False) -> None:
        self._prelabel.emit(redo, self.worker.ticket())

    def box_to_mask(
        self, image_id: int, box: tuple[float, float, float, float], forced: str = ""
    ) -> int:
        """Ask for the mask in `box` (image pixels); the answer comes as `boxMasked` with the
        ticket returned here."""
        ticket = self.worker.ticket()
        self._boxToMask.emit(image_id, box, forced, ticket)
        return ticket

    def boxes_to_masks(self, coco: object) -> None:
        """Masks for an imported file's box-only annotations (a ParsedCoco)."""
        self._boxesToMasks.emit(coco, self.worker.ticket())

    def keep_only(self, image_id: int) -> None:
        """Box to mask keeps one image's features: free them once the person leaves it."""
        self._keepOnly.emit(image_id)

    def cancel(self) -> None:
        self.worker.cancel()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def close(self, timeout_ms: int = -1, *, detach: bool = False) -> bool:
        """Cancel everything, let the worker close its connection in its thread, and join
        it. Returns whether the thread ended (always True without a timeout).

        With `detach`, a thread still busy after `timeout_ms` (a model load cannot stop
        halfway) ends on its own: it is kept alive until then, and joined when the
        application quits, so a window closes at once."""
        if not self._thread.isRunning():
            return True
        self.worker.cancel()
        if not self._closing:
            self._closing = True
            self._shutdown.emit()  # queued after the (cancelled) requests before it
        ended = self._thread.wait() if timeout_ms < 0 else self._thread.wait(timeout_ms)
        if not ended and detach:
            _leave_running(self._thread, self.worker)
        elif not ended:
            log.warning("The inference thread did not end within %d ms", timeout_ms)
        return bool(ended)
