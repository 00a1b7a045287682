"""COCO JSON export, and the types COCO import shares (reading lives in coco_read.py).

Export writes one annotation per exported instance (visible, not rejected, non-empty, score at
or above the threshold unless a person accepted it): `bbox` [x, y, w, h] and `area` are those
of the mask, not of the model's box; `iscrowd` is 1 for crowd regions, 0 otherwise; `score` is
written for predictions; a `maskdesk` field ({"origin": "model"|"human", "review":
"pending"|"accepted"}) carries what a person decided, so importing the file restores it (other
readers ignore unknown fields); ids count from 1; images without instances are still listed;
`file_name` is relative to the image root. The segmentation is:

- by default, compressed RLE (`counts` a string, column-major, `size` [height, width] of the
  upright image);
- crowd regions always as uncompressed RLE (`counts` a list), as COCO's own datasets do;
- with `polygons=True`, polygons tracing the outline of the mask's pixels (vertices on pixel
  corners), one polygon per connected part (8-connected), so an instance in several parts gets
  all of them.
  An instance whose mask has a hole cannot be drawn by polygons (COCO unites them, never
  subtracts), and keeps compressed RLE; so does any instance whose polygons would not
  rasterise back to exactly its pixels with pycocotools (checked for every instance).

Both forms are therefore exact: export -> import -> export gives the same file, apart from
`info.date_created`.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_util

import maskdesk
from maskdesk.core.categories import Category
from maskdesk.core.errors import CocoError
from maskdesk.core.fileio import atomic_write_bytes
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask


@dataclass
class CocoImage:
    """One image of an export or import, with its upright size and its instances."""

    file_name: str  # POSIX path relative to the export's image root
    width: int  # upright width
    height: int  # upright height
    instances: list[Instance] = field(default_factory=list)
    raw: list[Any] = field(default_factory=list, compare=False, repr=False)  # not yet decoded


@dataclass
class CocoFile:
    """What a COCO reader understood: images, categories, annotations skipped by reason, and
    what it mended or ignored (notes) by kind."""

    images: list[CocoImage]
    categories: list[Category]
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_relative(file_name: str) -> str:
    """`file_name` as a normalised POSIX path that stays inside the image root."""
    if not isinstance(file_name, str) or not file_name.strip() or "\x00" in file_name:
        raise CocoError(f"Image file name {file_name!r} is empty or invalid; fix it in the file.")
    name = file_name.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        raise CocoError(
            f"Image file name {file_name!r} is an absolute path; COCO file names must be "
            "relative to the image folder. Make it relative in the COCO file."
        )
    norm = posixpath.normpath(name)
    if norm in (".", "..") or norm.startswith("../"):
        raise CocoError(
            f"Image file name {file_name!r} points outside the image folder; "
            "refusing it. Make it a path inside the folder."
        )
    return norm


# -- export ---------------------------------------------------------------------------------


def _outline_polygons(mask: CropMask) -> list[list[float]] | None:
    """Pixel-corner outlines of a tight mask, one per part; None if it has a hole."""
    # Tracing a 2x upscaled mask puts each boundary pixel of the original on one side of a
    # pixel edge; (u + 1) // 2 then maps it to that edge's corner. Polygons through pixel
    # corners contain exactly the original pixel centres, which is what pycocotools samples.
    bits = np.ascontiguousarray(mask.bits).view(np.uint8)
    up = cv2.resize(bits, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None or (hierarchy[0][:, 3] >= 0).any():
        return None
    corners: list[np.ndarray] = []
    for contour in contours:
        p = (contour.reshape(-1, 2) + 1) // 2
        p = p[np.any(p != np.concatenate((p[-1:], p[:-1])), axis=1)]  # drop repeats
        step_in = p - np.concatenate((p[-1:], p[:-1]))
        step_out = np.concatenate((p[1:], p[:1])) - p
        p = p[step_in[:, 0] * step_out[:, 1] != step_in[:, 1] * step_out[:, 0]]  # turns only
        if len(p) < 3:
            return None
        corners.append(p)
    # The safety net behind the "exact" promise: rasterise the polygons in the crop's frame
    # and compare with the crop's own encoding.
    local = [p.ravel().tolist() for p in corners]
    raster = mask_util.merge(mask_util.frPyObjects(local, mask.height, mask.width))
    own = mask_util.encode(np.asfortranarray(bits))
    if raster["counts"] != own["counts"]:
        return None
    return [(p + (mask.x, mask.y)).ravel().tolist() for p in corners]


def annotation(
    ann_id: int,
    image_id: int,
    inst: Instance,
    mask: CropMask,
    height: int,
    width: int,
    polygons: bool,
) -> dict[str, Any]:
    """The COCO annotation of `inst`, whose mask is `mask` (clipped to the image, tight)."""
    segmentation: Any = None
    if inst.crowd:
        segmentation = {"size": [height, width], "counts": mask.rle_counts(width, height)}
    elif polygons:
        segmentation = _outline_polygons(mask)
    if segmentation is None:
        segmentation = mask.to_rle(width, height)
    ann: dict[str, Any] = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": inst.category_id,
        "segmentation": segmentation,
        "area": mask.area,
        "bbox": list(mask.bbox()),
        "iscrowd": int(inst.crowd),
    }
    if inst.score is not None:
        ann["score"] = inst.score
    ann["maskdesk"] = {"origin": inst.origin.value, "review": inst.review.value}
    return ann


def build_coco(
    images: Sequence[CocoImage],
    categories: Iterable[Category],
    *,
    polygons: bool = False,
    min_score: float = 0.0,
    description: str = "maskdesk export",
) -> dict:
    """The COCO dataset dict for `images`; see the module docstring for the rules."""
    cats = list(categories)
    known = {c.id for c in cats}
    if len(known) != len(cats):
        raise CocoError("Two categories share an id; each category needs its own id.")
    images_out: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, image in enumerate(images, start=1):
        height, width = int(image.height), int(image.width)
        if height < 1 or width < 1:
            raise CocoError(f"Image {image.file_name!r} has no pixels ({width} x {height}).")
        images_out.append(
            {
                "id": image_id,
                "file_name": safe_relative(image.file_name),
                "width": width,
                "height": height,
            }
        )
        for inst in image.instances:
            if not inst.exported(min_score):
                continue
            mask = inst.mask.clipped(width, height).tight()
            if mask.is_empty():
                continue
            if inst.category_id not in known:
                raise CocoError(
                    f"An instance on {image.file_name!r} has category id {inst.category_id}, "
                    "which is not among the exported categories; add the category or "
                    "change the instance's class."
                )
            ann = annotation(len(annotations) + 1, image_id, inst, mask, height, width, polygons)
            annotations.append(ann)
    return {
        "info": {
            "description": description,
            "version": maskdesk.__version__,
            "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "licenses": [],
        "images": images_out,
        "annotations": annotations,
        "categories": [
            {"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in cats
        ],
    }


def write_coco(data: dict | list, path: Path | str) -> None:
    """Write a COCO dict (or a results list) as JSON, atomically; NaN and infinities are
    refused."""
    try:
        text = json.dumps(data, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError as exc:
        raise CocoError(
            f"Cannot write {path}: the data holds a non-finite number ({exc})."
        ) from exc
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def export_coco(
    path: Path | str,
    images: Sequence[CocoImage],
    categories: Iterable[Category],
    *,
    polygons: bool = False,
    min_score: float = 0.0,
) -> dict:
    """Build the COCO dict for `images`, write it to `path` atomically and return it."""
    data = build_coco(images, categories, polygons=polygons, min_score=min_score)
    write_coco(data, path)
    return data
