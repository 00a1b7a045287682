"""Image in, instances out, with box-local masks: never a full-frame float mask.

torchvision's post-processing pastes every 28x28 mask into a float32 frame the size of the
photo (4.5 GiB for 100 detections at 12 MP). The predictor installs a post-processing step
that only rescales the boxes and keeps the small masks, then resizes each mask into its own
box with exactly torchvision's arithmetic, so the binary masks are the same bit for bit.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

from maskdesk.core.categories import Category
from maskdesk.core.errors import ModelError
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.inference import box_prompt
from maskdesk.inference.batching import BatchRunner
from maskdesk.inference.file_loop import _failure, predict_files  # noqa: F401  (their old home)
from maskdesk.inference.models import LoadedModel

MASK_THRESHOLD = 0.5  # what torchvision users apply to paste_masks_in_image's output
DEFAULT_SCORE_FLOOR = 0.05  # torchvision's own box_score_thresh

_threads_set = False


def pick_device(choice: str = "auto") -> torch.device:
    """auto: CUDA when present, else cpu. Asking for CUDA without one is a ModelError."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelError(
                f"The device {choice} was asked for, but PyTorch finds no usable CUDA GPU here "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                "use the CPU or let maskdesk choose",
                setting="device",
                value="auto",
            )
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(
                f"The device {choice} does not exist: there are only "
                f"{torch.cuda.device_count()} CUDA devices.",
                setting="device",
                value="cuda",
            )
        return device
    raise ModelError(f"Unknown device {choice!r}; use auto, cpu or cuda.")


def default_batch(device: torch.device) -> int:
    """Images per forward pass when not told: 1 on the CPU, where a batch is slower (a
    ResNet-50 FPN on 1024x768 images at batch 4: 0.77x the images/s of one at a time, v2
    0.93x, on a 2-core Xeon; benchmarks/throughput.py), up to 4 on a GPU, fewer when its
    free memory is short (3 GiB per image kept free)."""
    if device.type != "cuda":
        return 1
    free, _total = torch.cuda.mem_get_info(device)
    return int(max(1, min(4, free // (3 << 30))))


class _Handover(list):
    """Images handed to the model for good: normalized in place, dropped once resized."""


def install_compact_masks(model: torch.nn.Module) -> None:
    """Make `model` return its raw (N, 1, 28, 28) mask probabilities with rescaled boxes.

    Images passed in a `_Handover` list are also normalized in place and released as soon
    as they are resized, so a 12 MP input is held once, not three times, and not during the
    backbone. Other callers see torchvision's behaviour. Idempotent.
    """
    transform: Any = model.transform
    if getattr(transform, "_maskdesk_compact", False):
        return
    preprocess = transform.forward
    normalize_copy = transform.normalize
    postprocess_boxes = transform.postprocess

    def forward(
        images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> tuple[Any, Any]:
        handover = isinstance(images, _Handover)
        transform._maskdesk_in_place = handover
        try:
            return preprocess(images, targets)
        finally:
            transform._maskdesk_in_place = False
            if handover:
                images.clear()

    def normalize(image: Tensor) -> Tensor:
        if not transform._maskdesk_in_place or not image.is_floating_point():
            return normalize_copy(image)
        mean = torch.as_tensor(transform.image_mean, dtype=image.dtype, device=image.device)
        std = torch.as_tensor(transform.image_std, dtype=image.dtype, device=image.device)
        # The same operations as torchvision's (image - mean) / std, in place.
        return image.sub_(mean[:, None, None]).div_(std[:, None, None])

    def postprocess(
        result: list[dict[str, Tensor]],
        image_shapes: list[tuple[int, int]],
        original_image_sizes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        # torchvision's own step with the masks taken out: it rescales the boxes only.
        raw = [pred.pop("masks", None) for pred in result]
        result = postprocess_boxes(result, image_shapes, original_image_sizes)
        for pred, masks in zip(result, raw, strict=True):
            if masks is not None:
                pred["masks"] = masks
        return result

    transform.forward = forward
    transform.normalize = normalize
    transform.postprocess = postprocess
    transform._maskdesk_in_place = False
    transform._maskdesk_compact = True


def mask_crops(masks: Tensor, boxes: Tensor, height: int, width: int) -> list[CropMask]:
    """Box-local binary masks, equal to `paste_masks_in_image(masks, boxes, (h, w)) > 0.5`.

    `masks` (N, 1, M, M) probabilities and `boxes` (N, 4) in image pixels, as the model
    gives them. Each mask is resized to its (expanded, integer) box as torchvision does,
    and only the part inside the image is kept: the slice of the frame torchvision would
    have written.
    """
    if masks.shape[0] == 0:
        return []
    padded, scale = expand_masks(masks, padding=1)
    int_boxes = expand_boxes(boxes, scale).to(dtype=torch.int64).tolist()
    crops = []
    for mask, (bx0, by0, bx1, by1) in zip(padded, int_boxes, strict=True):
        # torchvision's paste_mask_in_image, restricted to [y0:y1, x0:x1] of the frame.
        w = max(bx1 - bx0 + 1, 1)
        h = max(by1 - by0 + 1, 1)
        x0, x1 = max(bx0, 0), min(bx1 + 1, width)
        y0, y1 = max(by0, 0), min(by1 + 1, height)
        if x1 <= x0 or y1 <= y0:
            crops.append(CropMask(min(x0, width), min(y0, height), np.zeros((0, 0), bool)))
            continue
        resized = F.interpolate(
            mask.expand((1, 1, -1, -1)), size=(h, w), mode="bilinear", align_corners=False
        )[0, 0]
        local = resized[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0] > MASK_THRESHOLD
        crops.append(CropMask(x0, y0, local.cpu().numpy()).tight())
    return crops


def _use_cores(threads: int | None) -> None:
    """`threads` CPU threads for torch when given (for good: a run that shares the machine
    with its siblings, such as a Ray actor or an array job, says how many), else all cores."""
    global _threads_set
    if threads is not None:
        torch.set_num_threads(max(1, threads))
        _threads_set = True
    elif not _threads_set:
        # The cores this process may use (a container or taskset may allow fewer than exist).
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        torch.set_num_threads(cores or os.cpu_count() or 1)
        _threads_set = True


class Predictor:
    """Runs one loaded model on upright RGB images; the model is moved once and reused."""

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "auto",
        score_floor: float = DEFAULT_SCORE_FLOOR,
        threads: int | None = None,
    ) -> None:
        self.device = pick_device(device)
        _use_cores(threads)
        self.model_name = loaded.name
        self.categories: list[Category] = list(loaded.categories)
        self._label_to_category = dict(loaded.label_to_category)
        self.model = loaded.model
        install_compact_masks(self.model)
        roi_heads: Any = self.model.roi_heads
        roi_heads.score_thresh = score_floor
        self.model.to(self.device).eval()
        # Labels that name a category (COCO's "N/A" slots do not): the box classes to pick from.
        self._labels = torch.tensor(sorted(self._label_to_category), dtype=torch.int64)
        self._features = box_prompt.FeatureCache()
        self._batches = BatchRunner(self.model)

    def raw(
        self, rgb: np.ndarray, *, keep_features: bool = False, image_key: Hashable | None = None
    ) -> dict[str, Tensor]:
        """The model's output for one image: boxes, labels, scores, raw (N, 1, M, M) masks.

        `keep_features` keeps the image's backbone features for `predict_boxes` (see there).
        """
        with torch.inference_mode(), self._enough_memory(rgb):
            if not keep_features:
                return self.model(self._batch(rgb))[0]
            self._features.clear()  # never two images' features at once
            with box_prompt.features_kept(self.model, rgb.shape[:2]) as kept:
                out = self.model(self._batch(rgb))[0]
            self._features.store(rgb, image_key, kept[0])
            return out

    def predict(
        self, rgb: np.ndarray, *, keep_features: bool = False, image_key: Hashable | None = None
    ) -> list[Instance]:
        """Every detection down to the model's score floor, with box-local masks.

        `keep_features=True` also keeps this image's features, so that a box drawn after a
        Detect costs only the heads; by default the feature cache is neither used nor touched.
        """
        out = self.raw(rgb, keep_features=keep_features, image_key=image_key)
        return self._instances(out, rgb.shape[0], rgb.shape[1])

    def predict_batch(self, rgbs: Sequence[np.ndarray]) -> list[list[Instance]]:
        """`[predict(rgb) for rgb in rgbs]`, bit for bit, with one backbone pass for images
        whose resized inputs have the same shape (see batching for how equality is kept).

        Running out of device memory retries the images one at a time.
        """
        if len(rgbs) <= 1:
            return [self.predict(rgb) for rgb in rgbs]
        for rgb in rgbs:
            _check_rgb(rgb)
        try:
            with torch.inference_mode():
                outputs = self._batches.forward(self._batch(rgb) for rgb in rgbs)
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return [self.predict(rgb) for rgb in rgbs]
        return [
            self._instances(out, rgb.shape[0], rgb.shape[1])
            for out, rgb in zip(outputs, rgbs, strict=True)
        ]

    def _instances(self, out: dict[str, Tensor], height: int, width: int) -> list[Instance]:
        with torch.inference_mode():
            crops = mask_crops(out["masks"], out["boxes"], height, width)
        instances = []
        for box, label, score, crop in zip(
            out["boxes"].tolist(),
            out["labels"].tolist(),
            out["scores"].tolist(),
            crops,
            strict=True,
        ):
            category_id = self._label_to_category.get(int(label))
            if category_id is None:
                continue  # a label with no category (COCO's "N/A" slots): nothing to call it
            instances.append(
                Instance(
                    category_id=category_id,
                    mask=crop,
                    score=min(max(float(score), 0.0), 1.0),
                    box=(box[0], box[1], box[2], box[3]),
                    origin=Origin.MODEL,
                    review=Review.PENDING,
                )
            )
        return instances

    def predict_boxes(
        self,
        rgb: np.ndarray,
        boxes: Sequence[Sequence[float]] | np.ndarray,
        category_id: int | None = None,
        *,
        image_key: Hashable | None = None,
    ) -> list[Instance]:
        """One instance per box (x0, y0, x1, y1 in image pixels), in order: the model's own
        heads name and segment what each box holds (box_prompt). Boxes are clipped to the
        image (under a pixel left: ValueError). Class: the likeliest that has a category, or
        `category_id`'s label; score: its probability; box: the mask's tight box. Features
        are kept for the next call on the same array object (held weakly, pixels unchanged)
        or the same `image_key`; another image replaces them, `forget_image()` frees them.
        """
        _check_rgb(rgb)
        height, width = rgb.shape[:2]
        given = box_prompt.boxes_in_image(boxes, width, height)
        forced = None
        if category_id is not None:
            forced = box_prompt.label_of(self._label_to_category, category_id, self.model_name)
        if given.shape[0] == 0:
            return []
        with torch.inference_mode(), self._enough_memory(rgb):
            image = self._features.lookup(rgb, image_key)
            if image is None:
                self._features.clear()  # the last image's features go before this one's come
                image = box_prompt.image_features(self.model, self._batch(rgb))
                self._features.store(rgb, image_key, image)
            with self._heads_threads():
                labels, scores, masks = box_prompt.run_heads(
                    self.model, image, given, self._labels, forced
                )
                crops = mask_crops(masks, given.to(masks.device), height, width)
        return box_prompt.instances(labels, scores, crops, given, self._label_to_category)

    def forget_image(self) -> None:
        """Free the kept features of the last image (when the person leaves it)."""
        self._features.clear()

    def _batch(self, rgb: np.ndarray) -> _Handover:
        """The model's input: one float image in [0, 1] on the device, handed over."""
        _check_rgb(rgb)
        with warnings.catch_warnings():
            # A read-only array is fine: the uint8 tensor is only read, never written.
            warnings.simplefilter("ignore", UserWarning)
            pixels = torch.from_numpy(rgb)
        # Move the uint8 pixels (4x smaller) before widening: one float copy, scaled here
        # and normalized in place by the model's transform, which releases it once resized.
        return _Handover([pixels.to(self.device).permute(2, 0, 1).to(torch.float32).div_(255)])

    @contextmanager
    def _heads_threads(self) -> Iterator[None]:
        """The heads alone are small work: one CPU thread does a box in about 35 ms whether
        the machine is busy or not, where every core takes 24 ms idle but about 300 ms when
        another process holds a core. (Process-wide: only the caller's thread runs torch.)"""
        if self.device.type != "cpu":
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    @contextmanager
    def _enough_memory(self, rgb: np.ndarray) -> Iterator[None]:
        try:
            yield
        except torch.OutOfMemoryError as exc:
            height, width = rgb.shape[:2]
            raise ModelError(
                f"Not enough memory on {self.device} for a {width}x{height} image; "
                "try the CPU or a smaller image.",
                setting="device",
                value="cpu",
            ) from exc


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
