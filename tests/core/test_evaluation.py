"""Held-out figures: AP as pycocotools' COCOeval computes it from files, accepted unedited
counted by hand."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskdesk.core.evaluation import evaluate

W = H = 64


def _rle(full: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(full.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def _square(x: int, y: int, side: int) -> np.ndarray:
    full = np.zeros((H, W), bool)
    full[y : y + side, x : x + side] = True
    return full


def _gt(objects: list[tuple[int, np.ndarray]]) -> dict:
    anns = []
    for n, (cat, full) in enumerate(objects, 1):
        ys, xs = np.nonzero(full)
        anns.append(
            {
                "id": n,
                "image_id": 1,
                "category_id": cat,
                "segmentation": _rle(full),
                "area": int(full.sum()),
                "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
                "iscrowd": 0,
            }
        )
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "blob"}],
    }


def _cocoeval(tmp_path: Path, gt: dict, results: list[dict], cat: int | None = None) -> float:
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(tmp_path / "gt.json"))
        ev = COCOeval(coco_gt, coco_gt.loadRes(str(tmp_path / "dt.json")), "segm")
        if cat is not None:
            ev.params.catIds = [cat]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


A1, A2, A3 = _square(2, 2, 20), _square(30, 2, 20), _square(2, 30, 20)
B1 = _square(34, 34, 24)
SHIFTED = _square(32, 2, 20)  # IoU with A2: 360 / 440 = 0.82


def _result(cat: int, full: np.ndarray, score: float) -> dict:
    return {"image_id": 1, "category_id": cat, "segmentation": _rle(full), "score": score}


def test_ap_and_ap_per_class_are_cocoeval_s(tmp_path: Path) -> None:
    gt = _gt([(1, A1), (1, A2), (1, A3), (2, B1)])
    results = [
        _result(1, A1, 0.9),
        _result(1, SHIFTED, 0.95),
        _result(1, A3, 0.4),
        _result(1, B1, 0.8),  # the blob called a box
        _result(2, _square(40, 40, 10), 0.7),  # a poor blob
    ]
    figures = evaluate(gt, results)
    assert figures.ap == pytest.approx(_cocoeval(tmp_path, gt, results), abs=1e-12)
    assert figures.per_class["box"] == pytest.approx(_cocoeval(tmp_path, gt, results, 1), abs=1e-12)
    assert figures.per_class["blob"] == pytest.approx(
        _cocoeval(tmp_path, gt, results, 2), abs=1e-12
    )
    assert 0 < figures.ap < 1


def test_accepted_unedited_needs_the_class_a_shown_score_and_iou_09() -> None:
    gt = _gt([(1, A1), (1, A2), (1, A3), (2, B1)])
    results = [
        _result(1, A1, 0.9),  # accepted
        _result(1, A1, 0.85),  # a second answer for the same object counts once
        _result(1, SHIFTED, 0.95),  # IoU 0.82: would need editing
        _result(1, A3, 0.4),  # exact, but hidden at the window's default score
        _result(1, B1, 0.8),  # exact, wrong class
    ]
    figures = evaluate(gt, results)
    assert (figures.accepted, figures.objects) == (1, 4)
    assert figures.accepted_share == 0.25
    nearly = _square(2, 2, 20)
    nearly[2, 2:20] = False  # IoU 382 / 400 = 0.955: still accepted
    assert evaluate(gt, [_result(1, nearly, 0.6)]).accepted == 1


def test_nothing_found_scores_zero_where_there_was_something() -> None:
    gt = _gt([(1, A1)])
    figures = evaluate(gt, [])
    assert (figures.ap, figures.ap50, figures.accepted, figures.objects) == (0.0, 0.0, 0, 1)
    assert figures.per_class == {"box": 0.0, "blob": None}
