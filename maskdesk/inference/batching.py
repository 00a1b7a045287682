"""Several images through one Mask R-CNN forward pass, with exactly the one-image results.

Only the backbone+FPN sees several images at once; the transform's resize, the RPN, the RoI
heads and the post-processing run image by image (on that image's slice of the features),
as they would alone. What was measured on a 2-core Xeon CPU (torch 2.14, oneDNN/MKL) with
torchvision's own batched `model([a, b, c, d])`, against four one-image calls:

- Seeded ResNet-50 FPN v1 and v2 at 1024x768 (input 800x1066, padded 800x1088), batch 4:
  every output bit for bit equal, heads included.
- The tiny fixture model (tests/fixtures/shapes-tiny.pt) at 256x256, batch 2, 4 and 8:
  detections differ by up to 6.1e-5 (boxes, scores, mask probabilities). The backbone body
  is equal; the FPN's 1x1 convolution on the 8x8 map is not (4.8e-7, features up to 4.3e-6):
  the kernel, and so the order of its sums, depends on the batch size. Matrix products
  depend on their row count the same way (a Linear of 100 rows against the same rows inside
  300: up to 1.8e-6), which is why the heads, whose rows are all RoIs of the batch in
  torchvision, run per image here.
- The transform pads a batch to its largest image, which moves border results; so only
  images whose padded inputs have the same shape are stacked (each resized and padded
  alone first, so its pixels are those it has alone). Others run in their own group.

So before an input shape is batched, the backbone is checked on seeded random input of
that exact shape (batched against one image at a time, bit for bit), once per shape, batch
size, device and thread count. When it differs, every convolution is checked the same way,
those that differ run image by image inside the batched pass, and the whole is checked
again; when even that differs, the images go through the backbone one at a time. Kernels
are chosen by shape, not by values, so what holds for the probe holds for every image of
that shape. With this, batch results equal one-image results on both models above (the
tiny one splits 3 of its FPN convolutions). Not measured on a GPU: the same check runs
there (cuDNN also picks kernels by shape; with torch.backends.cudnn.benchmark on it picks
them by timing, which the check cannot vouch for).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

_PROBE_SEED = 20240615


@dataclass(frozen=True)
class BackbonePlan:
    """How a batch of one input shape goes through the backbone with one-image results."""

    batched: bool  # False: one image at a time (no layer split was exact)
    split: frozenset[str] = frozenset()  # convolutions run image by image in a batched pass

    def describe(self) -> str:
        if not self.batched:
            return "one image at a time"
        if not self.split:
            return "batched"
        return f"batched, {len(self.split)} convolutions image by image"


class BatchRunner:
    """Runs a model's forward pass on several images; remembers one plan per input shape."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.plans: dict[tuple[Any, ...], BackbonePlan] = {}
        backbone: Any = model.backbone
        self._convs = {
            name: module
            for name, module in backbone.named_modules()
            if isinstance(module, nn.Conv2d)
        }

    def forward(self, handovers: Iterable[list[Tensor]]) -> list[dict[str, Tensor]]:
        """The model's outputs for one-image hand-over lists (see Predictor._batch), as
        `model(handover)[0]` for each: same keys, same bits. Call under inference_mode."""
        transform: Any = self.model.transform
        originals: list[tuple[int, int]] = []
        inputs: list[ImageList | None] = []
        for handover in handovers:
            # Resized and padded one by one, as alone; the hand-over list is emptied, so
            # (with a lazy iterable) one full-size float image exists at a time.
            originals.append((int(handover[0].shape[-2]), int(handover[0].shape[-1])))
            inputs.append(transform(handover)[0])
        outputs: list[dict[str, Tensor] | None] = [None] * len(inputs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, images in enumerate(inputs):
            assert images is not None
            groups.setdefault(tuple(images.tensors.shape), []).append(index)
        for members in groups.values():
            parts = [inputs[i] for i in members]
            sizes = [p.image_sizes[0] for p in parts if p is not None]
            stacked = torch.cat([p.tensors for p in parts if p is not None])
            for i in members:
                inputs[i] = None  # the stacked copy is the only one kept
            del parts
            for i, features, tensors, size in zip(
                members, self._features(stacked), stacked.split(1), sizes, strict=True
            ):
                outputs[i] = self._heads(features, tensors, size, originals[i])
            del stacked
        assert all(out is not None for out in outputs)
        return [out for out in outputs if out is not None]

    def plan(
        self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> BackbonePlan:
        """The plan for a stacked input of `shape`, checked on random input once."""
        key = (shape, dtype, str(device), torch.get_num_threads())
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = self._probe(shape, dtype, device)
        return plan

    def _features(self, stacked: Tensor) -> Iterator[OrderedDict[str, Tensor]]:
        """Each image's backbone features, bit for bit what it gets alone."""
        backbone: Any = self.model.backbone
        if stacked.shape[0] == 1:
            yield _as_dict(backbone(stacked))
            return
        plan = self.plan(tuple(stacked.shape), stacked.dtype, stacked.device)
        if not plan.batched:
            for image in stacked.split(1):
                yield _as_dict(backbone(image))
            return
        with self._split(plan.split):
            features = _as_dict(backbone(stacked))
        for index in range(stacked.shape[0]):
            yield OrderedDict((k, v[index : index + 1]) for k, v in features.items())

    def _heads(
        self,
        features: OrderedDict[str, Tensor],
        tensors: Tensor,
        size: tuple[int, int],
        original: tuple[int, int],
    ) -> dict[str, Tensor]:
        # GeneralizedRCNN.forward after the backbone, for one image.
        model: Any = self.model
        images = ImageList(tensors, [size])
        proposals, _ = model.rpn(images, features)
        detections, _ = model.roi_heads(features, proposals, images.image_sizes)
        result: dict[str, Tensor] = model.transform.postprocess(
            detections, images.image_sizes, [original]
        )[0]
        return result

    def _probe(
        self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> BackbonePlan:
        backbone: Any = self.model.backbone
        generator = torch.Generator().manual_seed(_PROBE_SEED)
        probe = torch.randn(shape, generator=generator, dtype=dtype).to(device)
        alone = [_as_dict(backbone(image)) for image in probe.split(1)]
        if _same(_as_dict(backbone(probe)), alone):
            return BackbonePlan(batched=True)
        split: set[str] = set()
        with self._split(frozenset(), differing=split):
            backbone(probe)
        with self._split(frozenset(split)):
            together = _as_dict(backbone(probe))
        if split and _same(together, alone):
            return BackbonePlan(batched=True, split=frozenset(split))
        return BackbonePlan(batched=False)

    @contextmanager
    def _split(self, names: frozenset[str], differing: set[str] | None = None) -> Iterator[None]:
        """Within the block, the convolutions in `names` run image by image. With
        `differing`, every convolution is checked instead: batched against image by image,
        the names of those that differ are added, and the image-by-image result is used."""
        patched = [n for n in self._convs if differing is not None or n in names]
        for name in patched:
            conv = self._convs[name]
            conv.forward = _by_image(conv, name, differing)  # type: ignore[method-assign]
        try:
            yield
        finally:
            for name in patched:
                del self._convs[name].forward  # the class's forward again


def _by_image(conv: nn.Conv2d, name: str, differing: set[str] | None) -> Any:
    plain = type(conv).forward  # convolutions are never patched but here, and only here

    def forward(x: Tensor) -> Tensor:
        alone = torch.cat([plain(conv, image) for image in x.split(1)])
        if differing is not None and not torch.equal(plain(conv, x), alone):
            differing.add(name)
        return alone

    return forward


def _same(together: OrderedDict[str, Tensor], alone: list[OrderedDict[str, Tensor]]) -> bool:
    return all(
        torch.equal(level[index : index + 1], alone[index][key])
        for key, level in together.items()
        for index in range(level.shape[0])
    )


def _as_dict(features: Tensor | OrderedDict[str, Tensor]) -> OrderedDict[str, Tensor]:
    # GeneralizedRCNN's own rule for backbones that return a single map.
    return OrderedDict([("0", features)]) if isinstance(features, Tensor) else features
