"""Box in, mask out, with the loaded Mask R-CNN's own RoI heads: the person's box is the proposal.

The image goes through the model's transform and backbone+FPN once; those features are kept
for the image the person is on (`FeatureCache`), so each further box only costs the box and
mask heads. Boxes are not regressed: the person drew the box, the model names the class and
draws the mask inside it. The predictor turns the outputs into instances (`predict_boxes`).
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.transform import resize_boxes

from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask

MIN_BOX_SIDE = 1.0  # pixels, inside the image: anything thinner is a click, not a box


@dataclass(frozen=True)
class ImageFeatures:
    """Backbone+FPN features of one image and the sizes the boxes are scaled between."""

    features: OrderedDict[str, Tensor]
    original: tuple[int, int]  # (height, width) of the image as given
    resized: tuple[int, int]  # (height, width) after the model's resize, before padding


def image_features(model: torch.nn.Module, batch: list[Tensor]) -> ImageFeatures:
    """Run `model.transform` and `model.backbone` on a one-image batch, as `model(batch)` does.

    `batch` holds one (3, H, W) float image in [0, 1]; the predictor's hand-over list lets the
    transform normalize it in place and drop it once resized.
    """
    height, width = batch[0].shape[-2:]
    transform: Any = model.transform
    backbone: Any = model.backbone
    images, _ = transform(batch)
    features = _as_dict(backbone(images.tensors))
    resized = images.image_sizes[0]
    return ImageFeatures(features, (int(height), int(width)), (int(resized[0]), int(resized[1])))


def _as_dict(features: Tensor | OrderedDict[str, Tensor]) -> OrderedDict[str, Tensor]:
    # GeneralizedRCNN's own rule for backbones that return a single map.
    return OrderedDict([("0", features)]) if isinstance(features, Tensor) else features


@contextmanager
def features_kept(
    model: torch.nn.Module, original: tuple[int, int]
) -> Iterator[list[ImageFeatures]]:
    """Within the block, a `model(batch)` call of one image also leaves its ImageFeatures in
    the yielded list: the transform's output size and the backbone's output, caught by hooks.
    """
    kept: list[ImageFeatures] = []
    sizes: list[tuple[int, int]] = []

    def on_transform(_module: Any, _args: Any, output: Any) -> None:
        height, width = output[0].image_sizes[0]
        sizes.append((int(height), int(width)))

    def on_backbone(_module: Any, _args: Any, output: Any) -> None:
        kept.append(ImageFeatures(_as_dict(output), original, sizes[-1]))

    transform: Any = model.transform
    backbone: Any = model.backbone
    handles = [
        transform.register_forward_hook(on_transform),
        backbone.register_forward_hook(on_backbone),
    ]
    try:
        yield kept
    finally:
        for handle in handles:
            handle.remove()


def boxes_in_image(
    boxes: Sequence[Sequence[float]] | np.ndarray, width: int, height: int
) -> Tensor:
    """(N, 4) float32 boxes clipped to the image, corners in order (a drag may go any way).

    A box that is not four finite numbers, or that keeps less than MIN_BOX_SIDE of width or
    height inside the image (a click, or a box beside the picture), is a ValueError.
    """
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return torch.zeros((0, 4), dtype=torch.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be (x0, y0, x1, y1) quadruples, got shape {array.shape}")
    clipped = []
    for index, (ax, ay, bx, by) in enumerate(array.tolist()):
        if not all(math.isfinite(v) for v in (ax, ay, bx, by)):
            raise ValueError(f"box {index} {(ax, ay, bx, by)} has a coordinate that is not finite")
        x0, x1 = max(min(ax, bx), 0.0), min(max(ax, bx), float(width))
        y0, y1 = max(min(ay, by), 0.0), min(max(ay, by), float(height))
        if x1 - x0 < MIN_BOX_SIDE or y1 - y0 < MIN_BOX_SIDE:
            raise ValueError(
                f"box {index} {(ax, ay, bx, by)} covers less than {MIN_BOX_SIDE:g} pixel of "
                f"width or height inside the {width}x{height} image"
            )
        clipped.append((x0, y0, x1, y1))
    return torch.tensor(clipped, dtype=torch.float32)


def run_heads(
    model: torch.nn.Module,
    image: ImageFeatures,
    boxes: Tensor,
    allowed_labels: Tensor,
    forced_label: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(labels, scores, mask probabilities (N, 1, M, M)) for `boxes` given in image pixels.

    The label is the most probable of `allowed_labels` (softmax over every class, background
    included, as torchvision scores detections) unless `forced_label` is given; the score is
    that label's probability and the mask is that label's mask, sigmoid applied.
    """
    roi: Any = model.roi_heads
    device = next(iter(image.features.values())).device
    proposals = [resize_boxes(boxes.to(device), list(image.original), list(image.resized))]
    sizes = [image.resized]
    box_features = roi.box_head(roi.box_roi_pool(image.features, proposals, sizes))
    class_logits, _ = roi.box_predictor(box_features)  # box regression unused: the box is given
    probabilities = F.softmax(class_logits, -1)
    if forced_label is None:
        allowed = allowed_labels.to(device)
        labels = allowed[probabilities[:, allowed].argmax(dim=1)]
    else:
        labels = torch.full((boxes.shape[0],), forced_label, dtype=torch.int64, device=device)
    scores = probabilities.gather(1, labels[:, None])[:, 0]
    mask_features = roi.mask_head(roi.mask_roi_pool(image.features, proposals, sizes))
    mask_logits = roi.mask_predictor(mask_features)
    index = torch.arange(boxes.shape[0], device=device)
    masks = mask_logits[index, labels][:, None].sigmoid()
    return labels, scores, masks


def label_of(label_to_category: dict[int, int], category_id: int, model_name: str) -> int:
    """The model label standing for `category_id`; a category it lacks is a ValueError."""
    for label, category in label_to_category.items():
        if category == category_id:
            return label
    raise ValueError(f"category {category_id} is not one of the model {model_name}'s categories")


def instances(
    labels: Tensor,
    scores: Tensor,
    crops: list[CropMask],
    boxes: Tensor,
    label_to_category: dict[int, int],
) -> list[Instance]:
    """Pending model instances; the box is the mask's tight box, or the given (clipped) box
    when the mask came out empty, so that the person still sees where they asked."""
    return [
        Instance(
            category_id=label_to_category[label],
            mask=crop,
            score=min(max(score, 0.0), 1.0),
            box=(box[0], box[1], box[2], box[3]) if crop.is_empty() else None,
            origin=Origin.MODEL,
            review=Review.PENDING,
        )
        for label, score, crop, box in zip(
            labels.tolist(), scores.tolist(), crops, boxes.tolist(), strict=True
        )
    ]


@dataclass
class _Entry:
    features: ImageFeatures
    shape: tuple[int, ...]
    key: Hashable | None
    array: weakref.ref[np.ndarray] | None = None


class FeatureCache:
    """The features of one image at a time: the image a person is drawing boxes on.

    An entry is found again by `image_key` when one was given (with the same array shape),
    otherwise by the identity of the array object, held weakly: when the caller drops the
    array, the features go too. The array's pixels must not change while it is cached.
    """

    def __init__(self) -> None:
        self._entry: _Entry | None = None

    def lookup(self, rgb: np.ndarray, image_key: Hashable | None) -> ImageFeatures | None:
        entry = self._entry
        if entry is None or entry.shape != rgb.shape or entry.key != image_key:
            return None
        if image_key is None and (entry.array is None or entry.array() is not rgb):
            return None
        return entry.features

    def store(self, rgb: np.ndarray, image_key: Hashable | None, features: ImageFeatures) -> None:
        entry = _Entry(features, rgb.shape, image_key)
        if image_key is None:
            # The callback holds neither the cache nor the entry strongly: a reference cycle
            # would keep the features (GPU memory too) until the garbage collector ran.
            cache, token = weakref.ref(self), weakref.ref(entry)
            entry.array = weakref.ref(rgb, lambda _: _drop(cache, token))
        self._entry = entry

    def clear(self) -> None:
        self._entry = None


def _drop(cache: weakref.ref[FeatureCache], entry: weakref.ref[_Entry]) -> None:
    owner = cache()
    if owner is not None and owner._entry is not None and owner._entry is entry():
        owner._entry = None
