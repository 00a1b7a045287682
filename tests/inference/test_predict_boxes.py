"""Box to mask with the committed tiny model's own heads: held-out quality, the same masks as
the model's own pipeline on its own boxes, the per-image feature cache, forced classes, and
what happens to boxes that leave the picture."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util

from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.datasets import shapes
from maskdesk.inference.models import load_model
from maskdesk.inference.predictor import Predictor

FIXTURE = Path(__file__).parents[1] / "fixtures" / "shapes-tiny.pt"
HELD_OUT_SEED = 1000  # the fixture was trained on seed 0
SIZE = 256
CIRCLE, RECTANGLE, TRIANGLE = (c.id for c in shapes.CATEGORIES)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(load_model(str(FIXTURE)), device="cpu")


@pytest.fixture
def backbone_runs(predictor: Predictor) -> Iterator[list[Any]]:
    """The backbone's outputs, one per run, while the test lasts."""
    runs: list[Any] = []
    handle = predictor.model.backbone.register_forward_hook(
        lambda _m, _a, out: runs.append(weakref.ref(out["0"]))
    )
    predictor.forget_image()
    yield runs
    handle.remove()
    predictor.forget_image()


def _truth(index: int) -> tuple[np.ndarray, list[tuple[float, ...]], list[int], list[np.ndarray]]:
    """A held-out picture, its objects' tight boxes (as training takes them), classes, masks."""
    sample = shapes.generate(HELD_OUT_SEED, index, SIZE)
    boxes, classes, masks = [], [], []
    for shape, visible in zip(sample.shapes, sample.visible, strict=True):
        x, y, w, h = CropMask.from_full(visible).bbox()
        boxes.append((float(x), float(y), float(x + w), float(y + h)))
        classes.append(shape.category_id)
        masks.append(visible)
    return sample.image, boxes, classes, masks


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    rle = [mask_util.encode(np.asfortranarray(m.astype(np.uint8))) for m in (a, b)]
    return float(mask_util.iou([rle[0]], [rle[1]], [0])[0, 0])


def _same(a: list[Instance], b: list[Instance]) -> bool:
    return [(i.category_id, i.score, i.box) for i in a] == [
        (i.category_id, i.score, i.box) for i in b
    ] and all(x.mask == y.mask for x, y in zip(a, b, strict=True))


def test_held_out_boxes_give_their_objects_masks_and_classes(predictor: Predictor) -> None:
    ious, right, count = [], 0, 0
    for index in range(20):
        image, boxes, classes, masks = _truth(index)
        found = predictor.predict_boxes(image, boxes)
        assert len(found) == len(boxes)
        for inst, category, truth in zip(found, classes, masks, strict=True):
            assert inst.origin is Origin.MODEL and inst.review is Review.PENDING
            assert inst.score is not None and 0.0 <= inst.score <= 1.0
            x, y, w, h = inst.mask.bbox()
            assert inst.box == (x, y, x + w, y + h)  # the mask's tight box
            ious.append(_iou(inst.mask.to_full(SIZE, SIZE), truth))
            right += inst.category_id == category
            count += 1
    assert count >= 40
    assert float(np.mean(ious)) >= 0.80
    assert right / count >= 0.90


@pytest.mark.parametrize("size", [(256, 256), (320, 400)], ids=["model-size", "rescaled"])
def test_on_the_models_own_boxes_the_masks_are_the_models_own(
    predictor: Predictor, size: tuple[int, int]
) -> None:
    # predict() runs torchvision's RoI heads on its regressed boxes: the same boxes and
    # classes given here must give the same masks, pixel for pixel (also when the model's
    # transform resizes the picture, 320x400 -> 205x256, and the boxes with it).
    compared = 0
    for index in range(3):
        image = cv2.resize(_truth(index)[0], size, interpolation=cv2.INTER_LINEAR)
        detections = predictor.predict(image)
        for category in {d.category_id for d in detections}:
            mine = [d for d in detections if d.category_id == category]
            boxes = [d.box for d in mine if d.box is not None]
            again = predictor.predict_boxes(image, boxes, category)
            assert len(again) == len(mine)
            assert all(a.mask == d.mask for a, d in zip(again, mine, strict=True))
            compared += len(mine)
    assert compared >= 10


def test_the_second_box_on_an_image_reuses_its_features(
    predictor: Predictor, backbone_runs: list[Any]
) -> None:
    image, boxes, _, _ = _truth(0)
    first = predictor.predict_boxes(image, boxes)
    assert len(backbone_runs) == 1
    second = predictor.predict_boxes(image, boxes)
    assert len(backbone_runs) == 1 and _same(first, second)
    one = predictor.predict_boxes(image, boxes[-1:])
    assert len(backbone_runs) == 1 and _same(one, first[-1:])
    # A new array is a new image, even with the same pixels.
    copy = image.copy()
    assert _same(predictor.predict_boxes(copy, boxes), first)
    assert len(backbone_runs) == 2
    # An explicit key stands for the image whatever array carries it.
    predictor.predict_boxes(image, boxes, image_key="a.png")
    assert len(backbone_runs) == 3
    assert _same(predictor.predict_boxes(image.copy(), boxes, image_key="a.png"), first)
    assert len(backbone_runs) == 3
    predictor.forget_image()
    predictor.predict_boxes(image, boxes, image_key="a.png")
    assert len(backbone_runs) == 4


def test_features_are_freed_when_forgotten_or_when_the_image_goes(
    predictor: Predictor, backbone_runs: list[Any]
) -> None:
    image, boxes, _, _ = _truth(1)
    gc.disable()  # freed by reference counting, not at the next collection
    try:
        predictor.predict_boxes(image, boxes)
        assert backbone_runs[-1]() is not None
        predictor.forget_image()
        assert backbone_runs[-1]() is None
        copy = image.copy()
        predictor.predict_boxes(copy, boxes)
        assert backbone_runs[-1]() is not None
        del copy
        assert backbone_runs[-1]() is None
        # The next image frees the last one's features before its own are computed.
        predictor.predict_boxes(image, boxes)
        kept = backbone_runs[-1]
        alive_during_next: list[bool] = []
        handle = predictor.model.backbone.register_forward_pre_hook(
            lambda _m, _a: alive_during_next.append(kept() is not None)
        )
        predictor.predict_boxes(_truth(2)[0], boxes)
        handle.remove()
        assert alive_during_next == [False]
    finally:
        gc.enable()


def test_predict_neither_uses_nor_disturbs_the_features_unless_asked(
    predictor: Predictor, backbone_runs: list[Any]
) -> None:
    image, boxes, _, _ = _truth(3)
    first = predictor.predict_boxes(image, boxes)
    predictor.predict(image)
    assert len(backbone_runs) == 2
    assert _same(predictor.predict_boxes(image, boxes), first)
    assert len(backbone_runs) == 2
    # Detect with keep_features: the boxes drawn after it cost only the heads.
    other, other_boxes, _, _ = _truth(4)
    detections = predictor.predict(other, keep_features=True)
    assert detections == predictor.predict(other)
    runs = len(backbone_runs)
    after_detect = predictor.predict_boxes(other, other_boxes)
    assert len(backbone_runs) == runs
    predictor.forget_image()
    assert _same(predictor.predict_boxes(other, other_boxes), after_detect)


def test_a_forced_category_gives_that_category_and_its_probability(
    predictor: Predictor,
) -> None:
    image, boxes, classes, _ = _truth(0)
    free = predictor.predict_boxes(image, boxes)
    forced = {c: predictor.predict_boxes(image, boxes, c) for c in (CIRCLE, RECTANGLE, TRIANGLE)}
    for index, inst in enumerate(free):
        by_class = {c: found[index] for c, found in forced.items()}
        assert all(i.category_id == c for c, i in by_class.items())
        scores = {c: i.score for c, i in by_class.items()}
        assert sum(s for s in scores.values() if s is not None) <= 1.0 + 1e-6  # with background
        assert inst.score == max(s for s in scores.values() if s is not None)
        assert _same([by_class[inst.category_id]], [inst])
    assert any(f.category_id != c for f, c in zip(forced[RECTANGLE], classes, strict=True))
    with pytest.raises(ValueError, match="category 9 is not one of"):
        predictor.predict_boxes(image, boxes, 9)


def test_labels_without_a_category_are_never_chosen(predictor: Predictor) -> None:
    loaded = load_model(str(FIXTURE))
    # As COCO's "N/A" slots: the model has the label, the categories have nothing for it.
    loaded.label_to_category = {k: v for k, v in loaded.label_to_category.items() if v != CIRCLE}
    no_circles = Predictor(loaded, device="cpu")
    image, boxes, classes, _ = _truth(0)
    assert CIRCLE in classes
    found = no_circles.predict_boxes(image, boxes)
    assert CIRCLE not in {i.category_id for i in found}
    # The best of the labels left, as the full model scores them when asked for each.
    forced = [predictor.predict_boxes(image, boxes, c) for c in (RECTANGLE, TRIANGLE)]
    for inst, *candidates in zip(found, *forced, strict=True):
        best = max(candidates, key=lambda i: i.score or 0.0)
        assert _same([inst], [best])
    with pytest.raises(ValueError, match="not one of"):
        no_circles.predict_boxes(image, boxes, CIRCLE)


def test_boxes_reaching_outside_are_clipped_and_keep_their_order(predictor: Predictor) -> None:
    image, boxes, _, _ = _truth(5)
    x0, y0, x1, y1 = boxes[0]
    wild = [
        (-40.0, -30.0, 120.5, 90.0),
        (200.0, 150.0, 400.0, 300.0),
        (x1, y1, x0, y0),  # dragged from bottom-right to top-left
        (-10.0, 100.0, 300.0, 140.0),
    ]
    clipped = [
        (0.0, 0.0, 120.5, 90.0),
        (200.0, 150.0, 256.0, 256.0),
        (x0, y0, x1, y1),
        (0.0, 100.0, 256.0, 140.0),
    ]
    found = predictor.predict_boxes(image, wild)
    assert len(found) == 4
    assert _same(found, predictor.predict_boxes(image, clipped))
    for inst, (cx0, cy0, cx1, cy1) in zip(found, clipped, strict=True):
        mask = inst.mask
        assert mask.x >= 0 and mask.y >= 0
        assert mask.x + mask.width <= SIZE and mask.y + mask.height <= SIZE
        # Within the clipped box, up to torchvision's one-pixel paste margin.
        if not mask.is_empty():
            assert cx0 - 1 <= mask.x and mask.x + mask.width <= cx1 + 2
            assert cy0 - 1 <= mask.y and mask.y + mask.height <= cy1 + 2
    assert _same(found[2:3], predictor.predict_boxes(image, boxes[:1]))


@pytest.mark.parametrize(
    "box",
    [
        (10.0, 10.0, 10.0, 50.0),  # no width: a click
        (10.0, 20.0, 50.0, 20.5),  # half a pixel tall
        (300.0, 10.0, 400.0, 50.0),  # beside the picture
        (-50.0, -50.0, -1.0, 100.0),
        (10.0, float("nan"), 50.0, 60.0),
    ],
)
def test_degenerate_boxes_are_value_errors(predictor: Predictor, box: tuple[float, ...]) -> None:
    image = _truth(0)[0]
    with pytest.raises(ValueError, match="box 1"):
        predictor.predict_boxes(image, [(0.0, 0.0, 50.0, 50.0), box])


def test_no_boxes_no_work_and_malformed_boxes_are_errors(
    predictor: Predictor, backbone_runs: list[Any]
) -> None:
    image = _truth(0)[0]
    assert predictor.predict_boxes(image, []) == []
    assert backbone_runs == []
    with pytest.raises(ValueError, match="quadruples"):
        predictor.predict_boxes(image, [(0.0, 0.0, 10.0)])
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict_boxes(image.astype(np.float32), [(0.0, 0.0, 10.0, 10.0)])
