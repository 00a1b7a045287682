"""The Mask R-CNN architectures maskdesk can build, by name, always without downloading."""

from __future__ import annotations

from typing import Any

from torchvision.models.detection import (
    MaskRCNN,
    maskrcnn_resnet50_fpn,
    maskrcnn_resnet50_fpn_v2,
)

RESNET50_FPN = "maskrcnn_resnet50_fpn"
RESNET50_FPN_V2 = "maskrcnn_resnet50_fpn_v2"
TINY = "tiny"
ARCHITECTURES = (RESNET50_FPN, RESNET50_FPN_V2, TINY)


def build_architecture(
    architecture: str,
    num_classes: int,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
    **kwargs: Any,
) -> MaskRCNN:
    """An untrained model of `architecture` with `num_classes` outputs (background included).

    Sizes left as None keep the architecture's own defaults (800/1333 for the ResNet-50s).
    """
    if min_size is not None:
        kwargs["min_size"] = min_size
    if max_size is not None:
        kwargs["max_size"] = max_size
    if architecture == RESNET50_FPN:
        return maskrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=num_classes, **kwargs
        )
    if architecture == RESNET50_FPN_V2:
        return maskrcnn_resnet50_fpn_v2(
            weights=None, weights_backbone=None, num_classes=num_classes, **kwargs
        )
    if architecture == TINY:
        from maskdesk.inference.tiny import build_tiny_maskrcnn

        return build_tiny_maskrcnn(num_classes, **kwargs)
    raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
