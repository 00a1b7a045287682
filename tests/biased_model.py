"""A real torchvision Mask R-CNN with no downloaded weights that still detects a lot.

Built with weights=None and seeded, then biased: the box classifier favours "person", box
and proposal regressions are damped so boxes stay near the anchors (many touch the image
border), and mask logits are scaled to give partly filled masks. It returns 100 "person"
detections with scores spread between about 0.15 and 0.9 on a picture, which exercises
the whole inference path (transform, RPN, RoI heads, mask head, post-processing).
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn

from maskdesk.inference.architectures import RESNET50_FPN
from maskdesk.inference.models import LoadedModel, coco_categories

PERSON = 1


def build_biased_model(
    min_size: int = 256, max_size: int = 341, proposals: int | None = 300, seed: int = 0
) -> LoadedModel:
    """`proposals` per image caps the RPN at test time (fewer = faster tests); None keeps
    torchvision's 1000, as the real models run."""
    torch.manual_seed(seed)
    limits = {}
    if proposals is not None:
        limits = {"rpn_pre_nms_top_n_test": proposals, "rpn_post_nms_top_n_test": proposals}
    model = maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=91,
        min_size=min_size,
        max_size=max_size,
        **limits,
    )
    with torch.no_grad():
        box_predictor = model.roi_heads.box_predictor
        # Only background and person keep their (damped) weights; every other class has a
        # constant logit far below person's, so "person" wins with a score that varies.
        box_predictor.cls_score.weight.mul_(0.5)
        box_predictor.cls_score.weight[PERSON + 1 :] = 0.0
        box_predictor.cls_score.bias.zero_()
        box_predictor.cls_score.bias[PERSON] = 5.0
        box_predictor.bbox_pred.weight.mul_(0.02)
        box_predictor.bbox_pred.bias.zero_()
        model.rpn.head.bbox_pred.weight.mul_(0.1)
        logits = model.roi_heads.mask_predictor.mask_fcn_logits
        logits.weight.mul_(0.1)
        logits.bias.zero_()
    model.eval()
    categories = coco_categories()
    return LoadedModel(
        name="biased-test-model",
        architecture=RESNET50_FPN,
        model=model,
        categories=categories,
        label_to_category={c.id: c.id for c in categories},
    )


def make_picture(width: int = 320, height: int = 240) -> np.ndarray:
    """A deterministic, non-symmetric RGB picture (so rotations are distinguishable)."""
    yy, xx = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(7)
    picture = np.stack(
        [(xx * 0.8) % 256, (yy * 1.1) % 256, ((xx + 2 * yy) * 0.5) % 256], axis=-1
    ).astype(np.float64)
    picture[: height // 3, : width // 4] = (220, 40, 40)  # a block in one corner only
    picture += rng.normal(0, 6, picture.shape)
    return np.clip(picture, 0, 255).astype(np.uint8)
