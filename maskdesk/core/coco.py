"""COCO JSON export and import.

Export writes one annotation per exported instance (visible, not rejected, non-empty, score at
or above the threshold unless a person accepted it): `bbox` [x, y, w, h] and `area` are those
of the mask, not of the model's box; `iscrowd` is 0; `score` is written for predictions; ids
count from 1; images without instances are still listed; `file_name` is relative to the
image root. The segmentation is:

- by default, compressed RLE (`counts` a string, column-major, `size` [height, width] of the
  upright image);
- with `polygons=True`, polygons tracing the outline of the mask's pixels (vertices on pixel
  corners), one polygon per connected part (8-connected), so an instance in several parts gets
  all of them.
  An instance whose mask has a hole cannot be drawn by polygons (COCO unites them, never
  subtracts), and keeps compressed RLE; so does any instance whose polygons would not
  rasterise back to exactly its pixels with pycocotools (checked for every instance).

Both forms are therefore exact: export -> import -> export gives the same file, apart from
`info.date_created`.

Import accepts compressed RLE, uncompressed RLE and polygons, and builds each mask over its
own columns only (no full-frame array). It skips crowd annotations, empty masks, annotations
without a segmentation and those of unknown categories, counting them in `CocoFile.skipped`
under "crowd", "empty mask", "no segmentation" and "unknown category". Annotations with a
`score` become model predictions awaiting review; those without one are human labels,
imported as accepted. A file that cannot be understood raises CocoError naming the file and
the first offending image or annotation.
"""

from __future__ import annotations

import contextlib
import json
import math
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
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask, decode_rle_string


@dataclass
class CocoImage:
    """One image of an export or import, with its upright size and its instances."""

    file_name: str  # POSIX path relative to the export's image root
    width: int  # upright width
    height: int  # upright height
    instances: list[Instance] = field(default_factory=list)


@dataclass
class CocoFile:
    """What `read_coco` understood, and how many annotations it skipped for which reason."""

    images: list[CocoImage]
    categories: list[Category]
    skipped: dict[str, int] = field(default_factory=dict)


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


def _annotation(
    ann_id: int,
    image_id: int,
    inst: Instance,
    mask: CropMask,
    height: int,
    width: int,
    polygons: bool,
) -> dict[str, Any]:
    segmentation: Any = _outline_polygons(mask) if polygons else None
    if segmentation is None:
        segmentation = mask.to_rle(width, height)
    ann: dict[str, Any] = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": inst.category_id,
        "segmentation": segmentation,
        "area": mask.area,
        "bbox": list(mask.bbox()),
        "iscrowd": 0,
    }
    if inst.score is not None:
        ann["score"] = inst.score
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
            ann = _annotation(len(annotations) + 1, image_id, inst, mask, height, width, polygons)
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


def write_coco(data: dict, path: Path | str) -> None:
    """Write a COCO dict as JSON, atomically; NaN and infinities are refused."""
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


# -- import ---------------------------------------------------------------------------------


def _mask_from_segmentation(seg: object, height: int, width: int) -> CropMask:
    """Decode one annotation's segmentation; ValueError says what is wrong with it."""
    if isinstance(seg, dict):
        size = seg.get("size")
        if not isinstance(size, list) or [int(v) for v in size] != [height, width]:
            raise ValueError(
                f"its RLE size {size} is not the image's [height, width] [{height}, {width}]"
            )
        counts = seg.get("counts")
        if isinstance(counts, list):
            if not all(isinstance(v, int) for v in counts):
                raise ValueError("its RLE counts are not all whole numbers")
            return CropMask.from_counts(counts, width, height)
        if isinstance(counts, str):
            if not counts.isascii():
                raise ValueError("its RLE string holds characters outside COCO's alphabet")
            return CropMask.from_counts(decode_rle_string(counts.encode("ascii")), width, height)
        raise ValueError("its RLE has no counts")
    if isinstance(seg, list):
        polys = []
        for poly in seg:
            if not isinstance(poly, list) or not all(
                isinstance(v, int | float) and math.isfinite(v) for v in poly
            ):
                raise ValueError("its polygons are not lists of finite numbers")
            if len(poly) >= 6 and len(poly) % 2 == 0:  # fewer than 3 points enclose nothing
                polys.append([float(v) for v in poly])
        if not polys:
            return CropMask(0, 0, np.zeros((0, 0), dtype=bool))
        rle = mask_util.merge(mask_util.frPyObjects(polys, height, width))
        return CropMask.from_counts(decode_rle_string(rle["counts"]), width, height)
    raise ValueError("its segmentation is neither RLE nor a list of polygons")


def _fail(path: Path, what: str) -> CocoError:
    return CocoError(f"Cannot import {path}: {what}. Fix the file or export it again.")


def _load_json(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CocoError(f"COCO file {path} does not exist; check the path.") from None
    except OSError as exc:
        raise CocoError(f"Cannot read COCO file {path}: {exc.strerror or exc}.") from exc
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CocoError(f"{path} is not valid JSON ({exc}); choose a COCO .json file.") from exc
    if not isinstance(data, dict):
        raise _fail(path, "it is not a COCO dataset (a JSON object with images and annotations)")
    missing = [key for key in ("images", "annotations") if not isinstance(data.get(key), list)]
    if missing:
        raise _fail(path, f"it has no {' or '.join(repr(k) for k in missing)} list")
    return data


def _read_images(path: Path, entries: list) -> dict[Any, CocoImage]:
    images: dict[Any, CocoImage] = {}
    for index, entry in enumerate(entries):
        try:
            image_id = entry["id"]
            width, height = int(entry["width"]), int(entry["height"])
            name = entry["file_name"]
        except (TypeError, KeyError, ValueError):
            raise _fail(
                path, f"image #{index + 1} needs an id, a file_name, a width and a height"
            ) from None
        if not isinstance(image_id, int | str):
            raise _fail(path, f"image #{index + 1} has an id that is not a number or string")
        if width < 1 or height < 1:
            raise _fail(path, f"image {image_id} has no pixels ({width} x {height})")
        if image_id in images:
            raise _fail(path, f"image id {image_id} appears twice")
        if not isinstance(name, str):
            raise _fail(path, f"image {image_id} has a file_name that is not a string")
        # A name that leaves the folder is kept as written: the importer refuses and
        # reports such names one by one instead of rejecting the whole file.
        with contextlib.suppress(CocoError):
            name = safe_relative(name)
        images[image_id] = CocoImage(name, width, height)
    return images


def _read_categories(path: Path, entries: object) -> list[Category]:
    categories: list[Category] = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            categories.append(
                Category(int(entry["id"]), str(entry["name"]), str(entry.get("supercategory", "")))
            )
        except (TypeError, KeyError, ValueError) as exc:
            raise _fail(path, f"category {entry!r} is not valid ({exc})") from None
    return categories


def _read_box(value: object) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in value)
        or value[2] < 0
        or value[3] < 0
    ):
        raise ValueError(f"its bbox {value!r} is not [x, y, width, height]")
    x, y, w, h = (float(v) for v in value)
    return (x, y, x + w, y + h)


def read_coco(path: Path | str) -> CocoFile:
    """Read a COCO dataset or prediction file; raise CocoError naming the first problem."""
    path = Path(path)
    data = _load_json(path)
    images = _read_images(path, data["images"])
    categories = _read_categories(path, data.get("categories"))
    known = {c.id for c in categories}
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for index, ann in enumerate(data["annotations"]):
        ann_id = ann.get("id", f"#{index + 1}") if isinstance(ann, dict) else f"#{index + 1}"
        if not isinstance(ann, dict):
            raise _fail(path, f"annotation {ann_id} is not a JSON object")
        image_id = ann.get("image_id")
        image = images.get(image_id) if isinstance(image_id, int | str) else None
        if image is None:
            raise _fail(
                path,
                f"annotation {ann_id} refers to image id {ann.get('image_id')!r}, "
                "which is not in the images list",
            )
        if ann.get("iscrowd"):
            skip("crowd")
            continue
        if ann.get("segmentation") is None:
            skip("no segmentation")
            continue
        category_id = ann.get("category_id")
        if not isinstance(category_id, int) or category_id not in known:
            skip("unknown category")
            continue
        try:
            mask = _mask_from_segmentation(ann["segmentation"], image.height, image.width)
            if mask.is_empty():
                skip("empty mask")
                continue
            score = ann.get("score")
            if score is not None and not (isinstance(score, int | float) and 0 <= score <= 1):
                raise ValueError(f"its score {score!r} is not a number between 0 and 1")
            inst = Instance(
                category_id=category_id,
                mask=mask,
                score=score,
                box=_read_box(ann.get("bbox")),
                origin=Origin.HUMAN if score is None else Origin.MODEL,
                review=Review.ACCEPTED if score is None else Review.PENDING,
            )
        except (ValueError, TypeError, OverflowError) as exc:
            raise _fail(path, f"annotation {ann_id}: {exc}") from None
        image.instances.append(inst)
    return CocoFile(list(images.values()), categories, skipped)
