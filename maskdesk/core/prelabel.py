"""Pre-labeling a folder's project with any model: which images, each result stored as it
arrives, failures marked, progress and cancel as callbacks.

The CLI's `predict` and the window's worker both call `prelabel`; the model is passed in as a
function from image paths to results, so torch stays out of core. A crash or a cancel loses
nothing already stored, and a second run continues where the first stopped: images already
pre-labeled by the same model are skipped unless `redo`, reviewed images always are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maskdesk.core.categories import Category, plan_merge
from maskdesk.core.instances import Instance
from maskdesk.core.project import ImageRecord, ImageStatus, Project


@dataclass
class ImageResult:
    """One image's outcome: instances (model category ids), or the error that stopped it."""

    path: Path
    instances: list[Instance] | None
    error: Exception | None
    seconds: float
    pixels: np.ndarray | None = None  # the decoded upright image, for callers that draw it
    frame: tuple[int, int] | None = None  # (width, height), from engines that keep the pixels

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the upright image, when it was decoded."""
        if self.pixels is None:
            return self.frame
        return (self.pixels.shape[1], self.pixels.shape[0])


# paths, cancel() -> one ImageResult per path, in order (fewer when cancelled)
RunModel = Callable[[Sequence[Path], Callable[[], bool]], Iterable[ImageResult]]


@dataclass(frozen=True)
class Progress:
    """Where a run stands, after `done` of `total` images."""

    done: int
    total: int
    path: str
    elapsed: float

    @property
    def images_per_s(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.images_per_s
        return (self.total - self.done) / rate if rate > 0 else None


@dataclass
class PrelabelReport:
    """What a run did: images stored, instances stored, failures (path, reason), skips."""

    total: int = 0
    stored: int = 0
    instances: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped_reviewed: int = 0
    skipped_done: int = 0
    cancelled: bool = False


def plan(
    project: Project,
    model_name: str,
    *,
    redo: bool = False,
    images: Sequence[ImageRecord] | None = None,
    report: PrelabelReport | None = None,
) -> list[ImageRecord]:
    """The images a run should predict: not reviewed, and not already pre-labeled by this
    model unless `redo` (failed ones are tried again: the file may have been fixed)."""
    todo = []
    for record in project.images() if images is None else images:
        if record.status is ImageStatus.REVIEWED:
            if report is not None:
                report.skipped_reviewed += 1
        elif not redo and record.status is ImageStatus.PRELABELED and record.model == model_name:
            if report is not None:
                report.skipped_done += 1
        else:
            todo.append(record)
    return todo


def prelabel(
    project: Project,
    model_name: str,
    categories: Sequence[Category],
    run: RunModel,
    *,
    redo: bool = False,
    images: Sequence[ImageRecord] | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_result: Callable[[ImageRecord, ImageResult], None] | None = None,
) -> PrelabelReport:
    """Predict the planned images of `project` and store each result as it arrives.

    `categories` are the model's; they are merged into the project's by name. A failing
    image is marked failed with its reason and the run goes on. `cancel()` is checked
    between images.
    """
    report = PrelabelReport()
    todo = plan(project, model_name, redo=redo, images=images, report=report)
    report.total = len(todo)
    mapping, added = plan_merge(project.categories, categories)
    if added:
        project.ensure_categories(added)
    stop = cancel or (lambda: False)
    started = time.perf_counter()
    results = iter(run([project.absolute_path(r) for r in todo], stop))
    processed = 0
    for done, record in enumerate(todo, start=1):
        result = next(results, None)
        if result is None:
            break
        processed = done
        if result.instances is None:
            reason = str(result.error) or type(result.error).__name__
            report.failed.append((record.path, reason))
            project.set_status(record.id, ImageStatus.FAILED, reason)
        else:
            remapped = [
                i.with_changes(category_id=mapping[i.category_id]) for i in result.instances
            ]
            if project.set_predictions(record.id, remapped, model_name):
                report.stored += 1
                report.instances += len(remapped)
        if on_result is not None:
            on_result(record, result)
        if progress is not None:
            progress(Progress(done, len(todo), record.path, time.perf_counter() - started))
    report.cancelled = processed < len(todo) and stop()
    return report
