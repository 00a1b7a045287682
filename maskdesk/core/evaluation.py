"""How good a model's predictions are on held-out ground truth: COCO mask AP and AP50
(pycocotools' COCOeval, unchanged), AP per class, and the share of objects a person would
accept unedited.

Accepted unedited: a prediction shown at the window's default score (>= 0.5) of the object's
class whose mask overlaps the object with IoU >= 0.9; each prediction answers for one object,
the highest-scored first (crowd regions are not objects to accept).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ACCEPT_IOU = 0.9
SHOWN_SCORE = 0.5
RULE = (
    f"accepted unedited: a prediction of the object's class, score >= {SHOWN_SCORE}, whose mask "
    f"overlaps the object with IoU >= {ACCEPT_IOU}"
)


@dataclass
class Figures:
    """One model on the held-out images. AP values are None where nothing was there to find."""

    ap: float | None
    ap50: float | None
    per_class: dict[str, float | None] = field(default_factory=dict)
    accepted: int = 0
    objects: int = 0
    predictions: int = 0

    @property
    def accepted_share(self) -> float | None:
        return self.accepted / self.objects if self.objects else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"accepted_share": self.accepted_share}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figures:
        keys = ("ap", "ap50", "per_class", "accepted", "objects", "predictions")
        return cls(**{k: data[k] for k in keys if k in data})


def _ground_truth(gt: dict) -> COCO:
    coco = COCO()
    coco.dataset = {k: gt[k] for k in ("images", "annotations", "categories")}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _score(value: float) -> float | None:
    return None if value < 0 else float(value)


def evaluate(gt: dict, results: list[dict]) -> Figures:
    """Figures of `results` (COCO results: image_id, category_id, segmentation RLE, score)
    against the COCO dict `gt`."""
    coco_gt = _ground_truth(gt)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    objects = [a for a in gt["annotations"] if not a.get("iscrowd")]
    figures = Figures(None, None, {}, 0, len(objects), len(results))
    if not results:
        # loadRes cannot take an empty list; nothing found scores 0 wherever there was something.
        present = {a["category_id"] for a in objects}
        figures.per_class = {n: (0.0 if i in present else None) for i, n in names.items()}
        if present:
            figures.ap = figures.ap50 = 0.0
        return figures
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        ev = COCOeval(coco_gt, coco_dt, "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    figures.ap, figures.ap50 = _score(ev.stats[0]), _score(ev.stats[1])
    precision = ev.eval["precision"]  # [iou, recall, class, area, max dets]
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        figures.per_class[names[cat_id]] = float(np.mean(p[p > -1])) if (p > -1).any() else None
    figures.accepted = _accepted(coco_gt, coco_dt)
    return figures


def _accepted(coco_gt: COCO, coco_dt: COCO) -> int:
    accepted = 0
    for image_id in coco_gt.getImgIds():
        for cat_id in coco_gt.getCatIds():
            gts = [
                a
                for a in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=[image_id], catIds=[cat_id]))
                if not a.get("iscrowd")
            ]
            dts = [
                d
                for d in coco_dt.loadAnns(coco_dt.getAnnIds(imgIds=[image_id], catIds=[cat_id]))
                if d["score"] >= SHOWN_SCORE
            ]
            if not gts or not dts:
                continue
            dts.sort(key=lambda d: -d["score"])
            ious = mask_util.iou(
                [coco_dt.annToRLE(d) for d in dts],
                [coco_gt.annToRLE(g) for g in gts],
                [0] * len(gts),
            )
            free = np.ones(len(gts), bool)
            for row in np.atleast_2d(ious):
                candidates = np.where(free, row, -1.0)
                best = int(np.argmax(candidates))
                if candidates[best] >= ACCEPT_IOU:
                    free[best] = False
                    accepted += 1
    return accepted
