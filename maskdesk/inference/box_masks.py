"""Masks for a COCO file's box-only annotations: the model's box prompt on each box, stored as
pending model instances of the file's class (issue 16 item 3). Runs after `import_coco`."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from maskdesk.core import images as image_io
from maskdesk.core.categories import plan_merge
from maskdesk.core.coco_read import BoxOnly, ParsedCoco
from maskdesk.core.importing import ImportReport, match_images, size_mismatch
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.prelabel import Progress
from maskdesk.core.project import ImageRecord, ImageStatus, Project
from maskdesk.inference.predictor import Predictor
from maskdesk.progress import ProgressBar

SAME_OBJECT_IOU = 0.5  # the import's own "same object" threshold


@dataclass
class BoxMaskReport:
    made: int = 0
    images: int = 0
    already: int = 0
    failed: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        lines = [f"{self.made} boxes made into masks on {self.images} images (pending review)"]
        if self.already:
            lines.append(f"  {self.already} boxes already have a mask of their class, not added")
        for note in self.failed:
            lines.append(f"  skipped: {note}")
        if self.cancelled:
            lines.append("  cancelled: the boxes of the images not reached were not made")
        return "\n".join(lines)

    def line(self) -> str:
        """The summary in one line, for the window's status bar."""
        parts = [f"{self.made} boxes made into masks on {self.images} images (pending review)"]
        if self.already:
            parts.append(f"{self.already} already had a mask of their class")
        if self.failed:
            first = self.failed[0] + (
                f" (and {len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
            )
            parts.append(f"{len(self.failed)} images skipped: {first}")
        if self.cancelled:
            parts.append("cancelled")
        return "; ".join(parts)


def boxes_to_masks(
    project: Project,
    coco: ParsedCoco,
    predictor: Predictor,
    *,
    max_pixels: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_stored: Callable[[ImageRecord], None] | None = None,
) -> BoxMaskReport:
    """One pending model instance per box of `coco.box_only`, image by image, each image's
    stored as it is done. Images the import refused for their size are skipped (into
    `failed`). `cancel()` is checked between images: what is stored stays. Without a
    `progress` callback a progress bar is drawn on stderr (the command line's)."""
    report = BoxMaskReport()
    by_image: dict[str, list[BoxOnly]] = defaultdict(list)
    for box in coco.box_only:
        by_image[box.image.file_name].append(box)
    if not by_image:
        return report
    pairs = match_images(project.images(), [b[0].image for b in by_image.values()], ImportReport())
    mapping, added = plan_merge(project.categories, coco.categories)
    if added:
        project.ensure_categories(added)
    names = {c.id: c.name for c in coco.categories}
    stop = cancel or (lambda: False)
    bar = (
        ProgressBar("boxes to masks", total=len(pairs), unit="images") if progress is None else None
    )
    started = time.perf_counter()
    if progress is not None:
        progress(Progress(0, len(pairs), "", 0.0))
    try:
        for done, (image, record) in enumerate(pairs, start=1):
            if stop():
                report.cancelled = True
                break
            boxes = by_image[image.file_name]
            mismatch = size_mismatch(image, record)
            if mismatch is not None:
                report.failed.append(
                    f"{image.file_name}: {len(boxes)} boxes, size differs from the image on "
                    f"disk: {mismatch}"
                )
            else:
                try:
                    rgb = image_io.load_rgb(project.absolute_path(record), max_pixels=max_pixels)
                except Exception as exc:  # an unreadable image loses only its own boxes
                    report.failed.append(f"{record.path}: {len(boxes)} boxes, {exc}")
                    rgb = None
                stored = rgb is not None and _one_image(
                    project, predictor, record, rgb, boxes, mapping, names, report
                )
                if stored and on_stored is not None:
                    on_stored(record)
            if bar is not None:
                bar.advance()
            if progress is not None:
                progress(Progress(done, len(pairs), record.path, time.perf_counter() - started))
    finally:
        if bar is not None:
            bar.close()
    return report


def _one_image(
    project: Project,
    predictor: Predictor,
    record: ImageRecord,
    rgb: np.ndarray,
    boxes: list[BoxOnly],
    mapping: dict[int, int],
    names: dict[int, str],
    report: BoxMaskReport,
) -> bool:
    """The masks of one image's boxes, stored unless one of their class covers them already;
    whether anything was stored."""
    present = project.instances(record.id)
    try:
        made = _masks_of(predictor, rgb, boxes, names)
    finally:
        predictor.forget_image()
    new = []
    for box, instance in zip(boxes, made, strict=True):
        category = mapping[box.category_id]
        same = [p for p in present if p.category_id == category]
        if any(p.mask.iou(instance.mask) >= SAME_OBJECT_IOU for p in same):
            report.already += 1
            continue
        ours = instance.with_changes(
            category_id=category,
            origin=Origin.MODEL,
            review=Review.PENDING,
            id=None,
            image_id=None,
        )
        present.append(ours)
        new.append(ours)
    if not new:
        return False
    project.add_instances(record.id, new)
    # Pre-labeled, as the import marks an image it gave instances: a Pre-label run leaves it
    # alone (it would replace these pending masks with the model's own guesses).
    if project.image(record.id).status is ImageStatus.NEW:
        project.set_status(record.id, ImageStatus.PRELABELED)
    report.made += len(new)
    report.images += 1
    return True


def _masks_of(
    predictor: Predictor, rgb: np.ndarray, boxes: list[BoxOnly], names: dict[int, str]
) -> list[Instance]:
    """One mask per box, in order; a box whose class the model knows by name gets that class's
    mask head (as the window's box tool does), the others the model's likeliest class."""
    known = {c.name: c.id for c in predictor.categories}
    out: dict[int, Instance] = {}
    groups: dict[int | None, list[int]] = defaultdict(list)
    for k, box in enumerate(boxes):
        groups[known.get(names.get(box.category_id, ""))].append(k)
    for forced, order in groups.items():
        made = predictor.predict_boxes(rgb, [boxes[k].box for k in order], category_id=forced)
        out.update(zip(order, made, strict=True))
    return [out[k] for k in range(len(boxes))]


def load_box_predictor(spec: str, *, device: str = "auto") -> Predictor:
    """The model `spec` (a name or a model file) ready for box prompts."""
    from maskdesk.inference.models import load_model

    return Predictor(load_model(spec), device=device)
