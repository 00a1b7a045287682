"""Masks for a COCO file's box-only annotations: the model's box prompt on each box, stored as
pending model instances of the file's class (issue 16 item 3). Runs after `import_coco`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from maskdesk.core import images as image_io
from maskdesk.core.categories import plan_merge
from maskdesk.core.coco_read import BoxOnly, ParsedCoco
from maskdesk.core.importing import ImportReport, match_images
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.project import Project
from maskdesk.inference.predictor import Predictor
from maskdesk.progress import ProgressBar

SAME_OBJECT_IOU = 0.5  # the import's own "same object" threshold


@dataclass
class BoxMaskReport:
    made: int = 0
    images: int = 0
    already: int = 0
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.made} boxes made into masks on {self.images} images (pending review)"]
        if self.already:
            lines.append(f"  {self.already} boxes already have a mask of their class, not added")
        for note in self.failed:
            lines.append(f"  skipped: {note}")
        return "\n".join(lines)


def boxes_to_masks(
    project: Project, coco: ParsedCoco, predictor: Predictor, *, max_pixels: int | None = None
) -> BoxMaskReport:
    """One pending model instance per box of `coco.box_only`, image by image."""
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
    bar = ProgressBar("boxes to masks", total=len(pairs), unit="images")
    try:
        for image, record in pairs:
            boxes = by_image[image.file_name]
            try:
                rgb = image_io.load_rgb(project.absolute_path(record), max_pixels=max_pixels)
            except Exception as exc:  # an unreadable image loses only its own boxes
                report.failed.append(f"{record.path}: {len(boxes)} boxes, {exc}")
                bar.advance()
                continue
            present = project.instances(record.id)
            made = _masks_of(predictor, rgb, boxes, names)
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
            predictor.forget_image()
            if new:
                project.add_instances(record.id, new)
                report.made += len(new)
                report.images += 1
            bar.advance()
    finally:
        bar.close()
    return report


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
