"""Reading COCO files from other tools, and from attackers, without trusting them.

`parse_coco` checks a file's structure and keeps each annotation's segmentation undecoded, so
an importer can compare an image's claimed size with the file on disk (and with the pixel
limit) before any mask is built. `decode_instances` then builds the masks of one image: RLE
(compressed or not) and polygons, each over its own columns only. Polygons are clipped to
just outside the image first, so a vertex at 5e8 costs nothing (pycocotools would draw the
whole line and crash). Crowd regions become crowd instances. A `maskdesk` field written by our
export ({"review": ..., "origin": ...}) restores what a person decided; without it, an
annotation with a `score` is a prediction awaiting review, one without is a human label,
imported as accepted.

What is skipped or mended is counted, never silent: `CocoFile.skipped` (annotations left out,
by reason) and `CocoFile.notes` (what was mended or ignored, by kind).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_util

from maskdesk.core import images as image_io
from maskdesk.core.categories import Category
from maskdesk.core.coco import CocoFile, CocoImage, safe_relative
from maskdesk.core.errors import CocoError
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask, decode_rle_string

ODD_POLYGON = "polygons with an odd number of coordinates (last value ignored, as pycocotools does)"
CLIPPED_POLYGON = "polygons reaching far outside their image (clipped to it)"


@dataclass
class RawAnnotation:
    """One annotation as the file gives it, its segmentation not yet decoded."""

    ann_id: object
    category_id: int
    segmentation: object
    bbox: object
    score: object
    crowd: bool
    decided: object = None  # our export's "maskdesk" field, if any


def _count(counter: dict[str, int], key: str, n: int = 1) -> None:
    counter[key] = counter.get(key, 0) + n


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
    except RecursionError:
        raise CocoError(
            f"{path} nests its JSON too deeply to be a COCO file; choose a COCO .json file."
        ) from None
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
        except (TypeError, KeyError, ValueError, OverflowError):
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


def _read_categories(path: Path, entries: object) -> tuple[list[Category], dict[object, str]]:
    """The valid categories, and the entries that are not (id -> why), e.g. labelme2coco's
    and Roboflow's `_background_` with id 0."""
    categories: list[Category] = []
    invalid: dict[object, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or "id" not in entry or "name" not in entry:
            raise _fail(path, f"category {entry!r} needs an id and a name")
        try:
            categories.append(
                Category(int(entry["id"]), str(entry["name"]), str(entry.get("supercategory", "")))
            )
        except (TypeError, ValueError, OverflowError) as exc:
            invalid[entry["id"]] = f"category {entry['id']!r} {entry['name']!r} ({exc})"
    ids = [c.id for c in categories]
    if len(set(ids)) != len(ids):
        raise _fail(path, "two categories share an id")
    return categories, invalid


def parse_coco(path: Path | str) -> CocoFile:
    """Read a COCO dataset or prediction file's structure; masks are decoded later.

    Each CocoImage carries its annotations in `raw`. Raises CocoError naming the first
    structural problem (not JSON, no images list, an annotation of an unknown image...).
    """
    path = Path(path)
    data = _load_json(path)
    images = _read_images(path, data["images"])
    categories, invalid = _read_categories(path, data.get("categories"))
    known = {c.id for c in categories}
    skipped: dict[str, int] = {}
    notes: dict[str, int] = {}
    used_invalid: set[object] = set()
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
        category_id = ann.get("category_id")
        if category_id in invalid:
            used_invalid.add(category_id)
            _count(skipped, "category that is not a valid class")
            continue
        if ann.get("segmentation") is None:
            _count(skipped, "no segmentation")
            continue
        if not isinstance(category_id, int) or category_id not in known:
            _count(skipped, "unknown category")
            continue
        score = ann.get("score")
        if score is not None and not (
            isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 1
        ):
            raise _fail(path, f"annotation {ann_id}: its score {score!r} is not between 0 and 1")
        image.raw.append(
            RawAnnotation(
                ann_id,
                category_id,
                ann["segmentation"],
                ann.get("bbox"),
                score,
                bool(ann.get("iscrowd")),
                ann.get("maskdesk"),
            )
        )
    for cid, why in invalid.items():
        if cid not in used_invalid:
            _count(notes, f"{why}: not a class, and no annotation uses it; skipped")
    return CocoFile(list(images.values()), categories, skipped, notes)


# -- decoding one image's masks -----------------------------------------------------------


def _frame(width: int, height: int) -> tuple[float, float, float, float]:
    """Vertices inside this frame are rasterised as they are, exactly as pycocotools would;
    a polygon reaching beyond it is clipped to it first."""
    margin = float(max(width, height, 64))
    return (-margin, -margin, width + margin, height + margin)


def _clip_polygon(xy: np.ndarray, frame: tuple[float, float, float, float]) -> np.ndarray:
    """The part of a polygon inside `frame` (x0, y0, x1, y1), by Sutherland-Hodgman.

    The frame lies well outside the image, so the clipped polygon covers the image's pixels
    as the original does; pycocotools' own rounding near the image border can still differ
    by a pixel there, a price worth paying for a polygon that would otherwise take gigabytes
    or crash it.
    """
    x0, y0, x1, y1 = frame
    points = [(float(x), float(y)) for x, y in xy]
    for axis, limit, keep_below in (
        (0, x0, False),
        (0, x1, True),
        (1, y0, False),
        (1, y1, True),
    ):
        if not points:
            break

        def inside(
            p: tuple[float, float],
            axis: int = axis,
            limit: float = limit,
            keep_below: bool = keep_below,
        ) -> bool:
            return p[axis] <= limit if keep_below else p[axis] >= limit

        out: list[tuple[float, float]] = []
        for i, current in enumerate(points):
            previous = points[i - 1]
            if inside(current) != inside(previous):
                t = (limit - previous[axis]) / (current[axis] - previous[axis])
                cut = (
                    previous[0] + t * (current[0] - previous[0]),
                    previous[1] + t * (current[1] - previous[1]),
                )
                out.append((limit, cut[1]) if axis == 0 else (cut[0], limit))
            if inside(current):
                out.append(current)
        points = out
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def _polygons_mask(seg: list, width: int, height: int, notes: dict[str, int]) -> CropMask:
    polys: list[list[float]] = []
    for poly in seg:
        if not isinstance(poly, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in poly
        ):
            raise ValueError("its polygons are not lists of finite numbers")
        if len(poly) % 2:
            _count(notes, ODD_POLYGON)
            poly = poly[:-1]
        if len(poly) < 6:  # fewer than 3 points enclose nothing
            continue
        xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        fx0, fy0, fx1, fy1 = frame = _frame(width, height)
        if (
            (xy[:, 0] < fx0).any()
            or (xy[:, 1] < fy0).any()
            or (xy[:, 0] > fx1).any()
            or (xy[:, 1] > fy1).any()
        ):
            _count(notes, CLIPPED_POLYGON)
            xy = _clip_polygon(xy, frame)
            if len(xy) < 3:
                continue
        polys.append(xy.ravel().tolist())
    if not polys:
        return CropMask(0, 0, np.zeros((0, 0), dtype=bool))
    rle = mask_util.merge(mask_util.frPyObjects(polys, height, width))
    return CropMask.from_counts(decode_rle_string(rle["counts"]), width, height)


def _mask(seg: object, width: int, height: int, notes: dict[str, int]) -> CropMask:
    """Decode one annotation's segmentation; ValueError says what is wrong with it."""
    if isinstance(seg, dict):
        size = seg.get("size")
        if (
            not isinstance(size, list)
            or len(size) != 2
            or not all(isinstance(v, int) for v in size)
            or size != [height, width]
        ):
            raise ValueError(
                f"its RLE size {size} is not the image's [height, width] [{height}, {width}]"
            )
        counts = seg.get("counts")
        if isinstance(counts, list):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
                raise ValueError("its RLE counts are not all whole numbers")
            return CropMask.from_counts(counts, width, height)
        if isinstance(counts, str):
            if not counts.isascii():
                raise ValueError("its RLE string holds characters outside COCO's alphabet")
            return CropMask.from_counts(decode_rle_string(counts.encode("ascii")), width, height)
        raise ValueError("its RLE has no counts")
    if isinstance(seg, list):
        return _polygons_mask(seg, width, height, notes)
    raise ValueError("its segmentation is neither RLE nor a list of polygons")


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


def _decided(raw: RawAnnotation) -> tuple[Origin, Review]:
    """What a person decided: our export's field when present and valid, else the rule."""
    origin = Origin.HUMAN if raw.score is None else Origin.MODEL
    review = Review.ACCEPTED if raw.score is None else Review.PENDING
    field_ = raw.decided
    if isinstance(field_, dict):
        if field_.get("origin") in tuple(Origin):
            origin = Origin(field_["origin"])
        if field_.get("review") in tuple(Review):
            review = Review(field_["review"])
    return origin, review


def check_pixels(path: Path, image: CocoImage, max_pixels: int | None = None) -> None:
    """Refuse an image whose claimed size is over the pixel limit, before any mask of it."""
    limit = image_io.DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if image.width * image.height > limit:
        raise CocoError(
            f"Cannot import {path}: image {image.file_name!r} claims {image.width} x "
            f"{image.height} pixels, over the limit of {limit:,}; raise the pixel limit if "
            "that is right.",
            setting="max_pixels",
            value=str(image.width * image.height),
        )


def decode_instances(path: Path, image: CocoImage, coco: CocoFile) -> list[Instance]:
    """The instances of one parsed image; empty masks are counted in `coco.skipped`."""
    instances: list[Instance] = []
    for raw in image.raw:
        try:
            mask = _mask(raw.segmentation, image.width, image.height, coco.notes)
            if mask.is_empty():
                _count(coco.skipped, "empty mask")
                continue
            origin, review = _decided(raw)
            instances.append(
                Instance(
                    category_id=raw.category_id,
                    mask=mask,
                    score=raw.score,
                    box=_read_box(raw.bbox),
                    origin=origin,
                    review=review,
                    crowd=raw.crowd,
                )
            )
        except (ValueError, TypeError, OverflowError, MemoryError) as exc:
            raise _fail(path, f"annotation {raw.ann_id}: {exc}") from None
    return instances


def read_coco(path: Path | str, *, max_pixels: int | None = None) -> CocoFile:
    """Read a COCO file with every image's instances decoded (for training, tests, tools).

    Claimed image sizes over the pixel limit are refused before any mask is decoded.
    """
    path = Path(path)
    coco = parse_coco(path)
    for image in coco.images:
        check_pixels(path, image, max_pixels)
    for image in coco.images:
        image.instances = decode_instances(path, image, coco)
        image.raw = []
    return coco
