"""Training samples from a COCO file, and mask AP on a held-out part, for training.py.

Images are decoded through core.images (EXIF-upright) and, when larger than the model would
ever look at, shrunk once here together with their masks, so a 12 MP photo never becomes
full-frame mask tensors at 12 MP. Flips keep image, masks and boxes aligned.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskdesk.core.coco import CocoImage
from maskdesk.core.errors import CocoError
from maskdesk.core.images import load_rgb, read_size
from maskdesk.core.masks import CropMask

Target = dict[str, torch.Tensor]
Pair = tuple[int, np.ndarray]  # (model label, full-frame bool mask)


def check_images(coco_path: Path, images_dir: Path, entries: Sequence[CocoImage]) -> None:
    """Every image present, with the upright size the file says: else masks would not fit.

    Checked before training starts, from the headers, so a bad file fails in seconds and not
    an hour into training.
    """
    if not images_dir.is_dir():
        raise CocoError(
            f"Image folder {images_dir} does not exist; give the folder that the file names "
            f"in {coco_path} are relative to.",
            setting="images",
        )
    missing = [im.file_name for im in entries if not (images_dir / im.file_name).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        count = "1 image" if len(missing) == 1 else f"{len(missing)} images"
        verb = "is" if len(missing) == 1 else "are"
        raise CocoError(
            f"{count} of {coco_path} {verb} not in {images_dir}: {shown}; give the folder "
            "that the COCO file's names are relative to.",
            setting="images",
        )
    for entry in entries:
        size = read_size(images_dir / entry.file_name)
        if (size.width, size.height) != (entry.width, entry.height):
            swapped = (size.height, size.width) == (entry.width, entry.height)
            hint = " (swapped: it was labelled without its EXIF rotation)" if swapped else ""
            raise CocoError(
                f"{images_dir / entry.file_name} is {size.width}x{size.height} upright, but the "
                f"COCO file says {entry.width}x{entry.height}{hint}; fix the annotations or "
                "the image."
            )


def _scaled_crop(mask: CropMask, scale: float, height: int, width: int) -> CropMask:
    """The crop resized by `scale` (nearest), placed on a height x width image."""
    x0, y0 = round(mask.x * scale), round(mask.y * scale)
    x1 = min(width, max(x0 + 1, round((mask.x + mask.width) * scale)))
    y1 = min(height, max(y0 + 1, round((mask.y + mask.height) * scale)))
    x0, y0 = min(x0, width - 1), min(y0, height - 1)
    bits = cv2.resize(
        mask.bits.astype(np.uint8), (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST
    )
    return CropMask(x0, y0, bits.astype(bool))


class CocoDataset(torch.utils.data.Dataset):
    """(image tensor, target) pairs in torchvision's detection format."""

    def __init__(
        self,
        images_dir: Path,
        entries: Sequence[CocoImage],
        label_of: dict[int, int],
        *,
        max_short: int,
        max_long: int,
        flip: bool = False,
    ) -> None:
        self.images_dir = images_dir
        self.entries = list(entries)
        self.label_of = label_of
        self.max_short = max_short
        self.max_long = max_long
        self.flip = flip

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """Upright RGB (maybe shrunk) and (label, full-frame bool mask) pairs at its size.

        Crowd regions are left out: a crowd is a group of objects, which a model must not
        learn to find as one.
        """
        rgb, pairs, _ = self.load_with_crowds(index)
        return rgb, pairs

    def load_with_crowds(self, index: int) -> tuple[np.ndarray, list[Pair], list[Pair]]:
        """As `load`, plus the crowd regions, which evaluation needs (detections there count
        neither as hits nor as false alarms)."""
        entry = self.entries[index]
        path = self.images_dir / entry.file_name
        rgb = load_rgb(path)
        h, w = rgb.shape[:2]
        if (w, h) != (entry.width, entry.height):
            hint = ""
            if (h, w) == (entry.width, entry.height):
                hint = " (width and height swapped: the file was labelled without EXIF rotation)"
            raise CocoError(
                f"{path} is {w}x{h} upright, but the COCO file says {entry.width}x{entry.height}"
                f"{hint}; fix the annotations or the image."
            )
        scale = min(1.0, self.max_short / min(h, w), self.max_long / max(h, w))
        if scale < 1.0:
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
            h, w = nh, nw
        pairs: list[Pair] = []
        crowds: list[Pair] = []
        for inst in entry.instances:
            mask = inst.mask if scale == 1.0 else _scaled_crop(inst.mask, scale, h, w)
            full = mask.to_full(w, h)
            if full.any():
                (crowds if inst.crowd else pairs).append((self.label_of[inst.category_id], full))
        return rgb, pairs, crowds

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        rgb, pairs = self.load(index)
        h, w = rgb.shape[:2]
        masks = np.stack([m for _, m in pairs]) if pairs else np.zeros((0, h, w), dtype=bool)
        if self.flip and bool(torch.rand(()) < 0.5):
            rgb = rgb[:, ::-1]
            masks = masks[:, :, ::-1]
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
        boxes = np.zeros((len(pairs), 4), dtype=np.float32)
        for i, m in enumerate(masks):
            x, y, bw, bh = CropMask.from_full(m).bbox()
            boxes[i] = (x, y, x + bw, y + bh)
        target = {
            "boxes": torch.from_numpy(boxes),
            "labels": torch.tensor([label for label, _ in pairs], dtype=torch.int64),
            "masks": torch.from_numpy(np.ascontiguousarray(masks).astype(np.uint8)),
        }
        return image, target


def collate(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    return [b[0] for b in batch], [b[1] for b in batch]


def _quiet_eval(
    gt: COCO, results: list[dict[str, Any]], cat_ids: list[int] | None = None
) -> tuple[float, float]:
    if not results:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes([dict(r) for r in results])  # loadRes adds keys to what it gets
        ev = COCOeval(gt, dt, "segm")
        if cat_ids is not None:
            ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return max(0.0, float(ev.stats[0])), max(0.0, float(ev.stats[1]))


@torch.no_grad()
def evaluate_mask_ap(
    model: torch.nn.Module,
    dataset: CocoDataset,
    device: torch.device,
    num_labels: int,
    per_label: bool = False,
) -> dict[str, float] | None:
    """Mask AP@[.5:.95] and AP50 of `model` on `dataset` (masks thresholded at 0.5).

    Returns {"ap", "ap50"} plus "ap/<label>" and "ap50/<label>" when per_label; None without
    ground truth.
    """
    model.eval()
    gt: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i} for i in range(1, num_labels + 1)],
    }
    results: list[dict[str, Any]] = []
    for index in range(len(dataset)):
        rgb, pairs, crowds = dataset.load_with_crowds(index)
        h, w = rgb.shape[:2]
        gt["images"].append({"id": index + 1, "width": w, "height": h})
        for (label, full), crowd in [(p, 0) for p in pairs] + [(c, 1) for c in crowds]:
            rle = mask_util.encode(np.asfortranarray(full.astype(np.uint8)))
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": index + 1,
                    "category_id": label,
                    "segmentation": rle,
                    "area": float(full.sum()),
                    "bbox": list(mask_util.toBbox(rle)),
                    "iscrowd": crowd,
                }
            )
        image = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255.0).to(device)
        out = model([image])[0]
        masks = (out["masks"][:, 0] > 0.5).cpu().numpy()
        for mask, label, score in zip(
            masks, out["labels"].tolist(), out["scores"].tolist(), strict=True
        ):
            rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
            results.append(
                {"image_id": index + 1, "category_id": label, "segmentation": rle, "score": score}
            )
    if not gt["annotations"]:
        return None
    coco_gt = COCO()
    coco_gt.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
    ap, ap50 = _quiet_eval(coco_gt, results)
    scores = {"ap": ap, "ap50": ap50}
    if per_label:
        for label in sorted({a["category_id"] for a in gt["annotations"]}):
            scores[f"ap/{label}"], scores[f"ap50/{label}"] = _quiet_eval(coco_gt, results, [label])
    return scores
