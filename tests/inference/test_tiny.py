"""The tiny Mask R-CNN: small enough to train on a CPU, complete enough to be Mask R-CNN."""

from __future__ import annotations

import math

import torch

from maskdesk.inference.architectures import TINY, build_architecture
from maskdesk.inference.tiny import build_tiny_maskrcnn


def test_parameter_count_is_between_one_and_two_million() -> None:
    model = build_tiny_maskrcnn(4)
    count = sum(p.numel() for p in model.parameters())
    assert 1_000_000 <= count <= 2_000_000
    # The class count only changes the predictors.
    assert sum(p.numel() for p in build_tiny_maskrcnn(11).parameters()) > count


def test_training_forward_gives_all_five_finite_losses() -> None:
    torch.manual_seed(0)
    model = build_tiny_maskrcnn(3).train()
    masks = torch.zeros(1, 160, 192, dtype=torch.uint8)
    masks[0, 40:100, 50:120] = 1
    target = {
        "boxes": torch.tensor([[50.0, 40.0, 120.0, 100.0]]),
        "labels": torch.tensor([2]),
        "masks": masks,
    }
    losses = model([torch.rand(3, 160, 192)], [target])
    assert set(losses) == {
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
        "loss_objectness",
        "loss_rpn_box_reg",
    }
    assert all(math.isfinite(v.item()) and v.item() >= 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.body.stem[0][0].weight.grad is not None


def test_eval_outputs_masks_at_the_input_size() -> None:
    torch.manual_seed(0)
    model = build_architecture(TINY, 4, min_size=256, max_size=256, box_score_thresh=0.0).eval()
    assert model.transform.min_size == (256,) and model.transform.max_size == 256
    with torch.no_grad():
        (out,) = model([torch.rand(3, 300, 200)])
    n = out["boxes"].shape[0]
    assert n > 0  # untrained, but with no score threshold something is returned
    assert out["boxes"].shape == (n, 4)
    assert out["labels"].shape == (n,) and int(out["labels"].min()) >= 1
    assert int(out["labels"].max()) <= 3
    assert out["masks"].shape == (n, 1, 300, 200)
    assert float(out["masks"].min()) >= 0.0 and float(out["masks"].max()) <= 1.0
