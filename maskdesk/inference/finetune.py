"""How a base model becomes one to train for a COCO file's categories.

Bases: the tiny model from scratch, a COCO model, or a maskdesk checkpoint. New categories get
new predictor rows; a category whose name the base already knows keeps its trained rows.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

from maskdesk.core.categories import Category
from maskdesk.core.errors import ModelError
from maskdesk.inference.architectures import TINY, build_architecture

TINY_SIZE = 256


def replace_heads(model: MaskRCNN, old_names: dict[int, str], new_names: list[str]) -> int:
    """New box and mask predictors for `new_names`; rows of same-named classes are kept.

    Returns how many classes kept their trained weights.
    """
    heads = model.roi_heads
    box_old = heads.box_predictor
    n = len(new_names) + 1
    box_new = FastRCNNPredictor(box_old.cls_score.in_features, n)
    mask_new = copy.deepcopy(heads.mask_predictor)  # keeps the trained upsampling conv
    logits_old = heads.mask_predictor.mask_fcn_logits
    mask_new.mask_fcn_logits = nn.Conv2d(logits_old.in_channels, n, 1)
    nn.init.kaiming_normal_(mask_new.mask_fcn_logits.weight, mode="fan_out", nonlinearity="relu")
    nn.init.zeros_(mask_new.mask_fcn_logits.bias)
    by_name = {name: label for label, name in old_names.items()}
    pairs = [(0, 0)] + [
        (new, by_name[name]) for new, name in enumerate(new_names, 1) if name in by_name
    ]
    with torch.no_grad():
        known = sorted({old for _, old in pairs if old})
        if known:
            # A class the base never saw gets the average box regression and mask of those
            # it knows: a generic object, roughly right from the start. Its classifier row
            # stays fresh, so it does not start out claiming every known object as well.
            rows = torch.tensor(known)
            box_rows = torch.cat([torch.arange(4 * k, 4 * k + 4) for k in known])
            for new in set(range(1, n)) - {new for new, _ in pairs}:
                box_new.bbox_pred.weight[4 * new : 4 * new + 4] = (
                    box_old.bbox_pred.weight[box_rows]
                    .view(-1, 4, box_old.bbox_pred.in_features)
                    .mean(0)
                )
                box_new.bbox_pred.bias[4 * new : 4 * new + 4] = (
                    box_old.bbox_pred.bias[box_rows].view(-1, 4).mean(0)
                )
                mask_new.mask_fcn_logits.weight[new] = logits_old.weight[rows].mean(0)
                mask_new.mask_fcn_logits.bias[new] = logits_old.bias[rows].mean(0)
        for new, old in pairs:
            box_new.cls_score.weight[new] = box_old.cls_score.weight[old]
            box_new.cls_score.bias[new] = box_old.cls_score.bias[old]
            box_new.bbox_pred.weight[4 * new : 4 * new + 4] = box_old.bbox_pred.weight[
                4 * old : 4 * old + 4
            ]
            box_new.bbox_pred.bias[4 * new : 4 * new + 4] = box_old.bbox_pred.bias[
                4 * old : 4 * old + 4
            ]
            mask_new.mask_fcn_logits.weight[new] = logits_old.weight[old]
            mask_new.mask_fcn_logits.bias[new] = logits_old.bias[old]
    heads.box_predictor = box_new
    heads.mask_predictor = mask_new
    return len(pairs) - 1


def input_sizes(model: MaskRCNN) -> tuple[int, int]:
    min_size = model.transform.min_size
    return int(min_size[-1] if isinstance(min_size, tuple | list) else min_size), int(
        model.transform.max_size
    )


def build_for_training(
    base: str, categories: list[Category], state: dict[str, Any] | None, offline: bool = False
) -> tuple[MaskRCNN, str, bool]:
    """(model, architecture, fine_tuning) for the base, or the saved state when resuming."""
    n = len(categories) + 1
    if state is not None:
        model = build_architecture(
            state["architecture"], n, min_size=state["min_size"], max_size=state["max_size"]
        )
        model.load_state_dict(state["model"])
        return model, str(state["architecture"]), bool(state["fine_tuning"])
    if base == TINY:
        return build_architecture(TINY, n, min_size=TINY_SIZE, max_size=TINY_SIZE), TINY, False
    from maskdesk.inference.models import MODEL_NAMES, load_model, looks_like_a_name

    if base not in MODEL_NAMES and looks_like_a_name(base):
        # models.py would list only the names predict takes; a base can also be tiny.
        bases = (*MODEL_NAMES, TINY)
        close = difflib.get_close_matches(base, bases, n=1)
        raise ModelError(
            f"Unknown base model {base!r}: use {', '.join(bases[:-1])} or {bases[-1]}, or give "
            "the path of a maskdesk checkpoint or a torchvision Mask R-CNN state dict.",
            setting="base",
            value=close[0] if close else None,
        )
    loaded = load_model(base, offline=offline)
    names = {c.id: c.name for c in loaded.categories}
    old = {int(label): names[cid] for label, cid in loaded.label_to_category.items()}
    new_names = [c.name for c in categories]
    if [old.get(i) for i in range(1, n)] != new_names or len(old) != len(new_names):
        replace_heads(loaded.model, old, new_names)
    return loaded.model, loaded.architecture, True


def set_train_mode(model: MaskRCNN, fine_tuning: bool) -> None:
    model.train()
    if fine_tuning:
        # Batches of a few images would ruin trained normalisation statistics: keep them.
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
