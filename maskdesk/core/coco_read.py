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

What other tools write is read as far as it means something: a class numbered 0 (Label
Studio's converter counts from 0) is imported under a free id and keeps its name; numbers
written as strings (Roboflow's `"9"`) are read as numbers; a box that cannot be read is ignored
when the mask is fine (the instance's box is then the mask's). Box-only annotations (CVAT
rectangles, detection sets) have no mask to import: they are counted and kept in
`ParsedCoco.box_only` for whoever can make masks of them.

What is skipped or mended is counted, never silent: `CocoFile.skipped` (annotations left out,
by reason) and `CocoFile.notes` (what was mended or ignored, by kind).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
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
BOX_IGNORED = "bbox not [x, y, width, height]; box ignored, taken from the mask"
BOX_ONLY = "box only, no mask"
EMPTY_MASK = "empty mask"
NO_SEGMENTATION = "no segmentation"
NOT_A_CLASS = "category that is not a valid class"
UNKNOWN_CATEGORY = "unknown category"

Box = tuple[float, float, float, float]


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


@dataclass(frozen=True)
class BoxOnly:
    """An annotation with a box and no mask: nothing to import until a model draws its mask."""

    image: CocoImage
    category_id: int
    box: Box  # x0, y0, x1, y1
    score: float | None = None


@dataclass
class ParsedCoco(CocoFile):
    """A CocoFile as `parse_coco` read it, with what the reader renumbered or could not use."""

    box_only: list[BoxOnly] = field(default_factory=list)
    # id given here -> (the id the file gives, the name), for classes numbered below 1
    renumbered: dict[int, tuple[object, str]] = field(default_factory=dict)


def renumber_note(file_id: object, name: str, new_id: int) -> str:
    return f"category {file_id!r} {name!r} imported as id {new_id} (class ids start at 1 here)"


def _number(value: object) -> float | None:
    """A finite number, also when written as a string ("9"); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def _whole(value: object) -> object:
    """A category or image id as the number it means ("3" -> 3, 3.0 -> 3); else unchanged."""
    number = _number(value)
    if number is not None and number.is_integer() and not isinstance(value, int):
        return int(number)
    return value


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
    if isinstance(data, list):
        raise CocoError(_list_message(path, data))
    if not isinstance(data, dict):
        raise _fail(path, "it is not a COCO dataset (a JSON object with images and annotations)")
    missing = [key for key in ("images", "annotations") if not isinstance(data.get(key), list)]
    if missing:
        raise _fail(path, f"it has no {' or '.join(repr(k) for k in missing)} list")
    return data


def _list_message(path: Path, data: list) -> str:
    """What a top-level JSON list is, and what to import instead."""
    dataset = "a JSON object with images, annotations and categories"
    if not data:
        return (
            f"{path} is an empty JSON list, not a COCO dataset ({dataset}); "
            "choose the dataset file."
        )
    if not all(isinstance(e, dict) and "image_id" in e and "category_id" in e for e in data):
        return (
            f"Cannot import {path}: it is a JSON list, not a COCO dataset ({dataset}); "
            "choose the dataset file or export it again."
        )
    fields = ["image_id", "category_id"]
    if all("score" in e for e in data):
        fields.append("score")
    shapes = [k for k in ("segmentation", "bbox") if any(k in e for e in data)]
    carrying = f", carrying {' and '.join(shapes)}" if shapes else ""
    return (
        f"{path} is a COCO results list (predictions for COCOeval's loadRes: {len(data)} "
        f"entries with {', '.join(fields[:-1])} and {fields[-1]}{carrying}), not a dataset: "
        "it names no image files, image sizes or classes, so maskdesk cannot place it on its "
        "own. Import the dataset file it was made for; to review these predictions, put this "
        'list as the "annotations" of a copy of that dataset file (same image ids) and import '
        "the copy."
    )


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


def _is_placeholder(name: str) -> bool:
    return name.strip().strip("_").lower() == "background"


@dataclass
class _Categories:
    valid: list[Category]
    invalid: dict[object, str]  # file id -> why, for ids and names that cannot be a class
    low: dict[object, Category]  # file id below 1 -> the class with a provisional id of 1


def _read_categories(path: Path, entries: object) -> _Categories:
    """The valid categories; those numbered below 1 (Label Studio counts from 0; labelme2coco
    and Roboflow add `_background_` with id 0); and the entries that cannot be a class."""
    read = _Categories([], {}, {})
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or "id" not in entry or "name" not in entry:
            raise _fail(path, f"category {entry!r} needs an id and a name")
        file_id: Any = _whole(entry["id"])
        name, supercategory = str(entry["name"]), str(entry.get("supercategory", ""))
        try:
            read.valid.append(Category(int(file_id), name, supercategory))
            continue
        except (TypeError, ValueError, OverflowError) as exc:
            why = f"category {entry['id']!r} {entry['name']!r} ({exc})"
        if isinstance(file_id, int) and file_id < 1:
            if file_id in read.low:
                raise _fail(path, "two categories share an id")
            with contextlib.suppress(ValueError):
                read.low[file_id] = Category(1, name, supercategory)
                continue
        if not isinstance(file_id, int | str):
            file_id = repr(file_id)  # an id no annotation can name
        read.invalid[file_id] = why
    ids = [c.id for c in read.valid] + [k for k in read.low if isinstance(k, int)]
    if len(set(ids)) != len(ids):
        raise _fail(path, "two categories share an id")
    return read


def _renumber(read: _Categories, used: set[int | str], coco: ParsedCoco) -> dict[object, int]:
    """Give the classes numbered below 1 a free id (or their namesake's), in the file's order.

    An unused placeholder (labelme2coco's `_background_`, or Roboflow's dataset name, which
    is the other classes' supercategory) is skipped with a note; a used one is imported like
    any class, since a person drew those masks.
    """
    supers = {c.supercategory for c in coco.categories} - {""}
    by_name = {c.name: c.id for c in coco.categories}
    next_id = max((c.id for c in coco.categories), default=0) + 1
    new_ids: dict[object, int] = {}
    for file_id, category in read.low.items():
        if file_id not in used and (_is_placeholder(category.name) or category.name in supers):
            why = f"category {file_id!r} {category.name!r} (category id must be >= 1)"
            if category.name in supers:
                why = f"category {file_id!r} {category.name!r} (the other classes' supercategory)"
            _count(coco.notes, f"{why}: not a class, and no annotation uses it; skipped")
            continue
        new_id = by_name.get(category.name)
        if new_id is None:
            new_id, next_id = next_id, next_id + 1
            coco.categories.append(Category(new_id, category.name, category.supercategory))
            by_name[category.name] = new_id
        coco.renumbered[new_id] = (file_id, category.name)
        _count(coco.notes, renumber_note(file_id, category.name, new_id))
        new_ids[file_id] = new_id
    return new_ids


def _find_image(images: dict[Any, CocoImage], image_id: object) -> CocoImage | None:
    """The image an annotation names, also when one side writes the id as a string."""
    if not isinstance(image_id, int | str) or isinstance(image_id, bool):
        return None
    found = images.get(image_id)
    if found is None and isinstance(image_id, str):
        found = images.get(_whole(image_id))
    if found is None and isinstance(image_id, int):
        found = images.get(str(image_id))
    return found


def _no_mask(segmentation: object) -> bool:
    """No segmentation at all, or an empty one (`[]`, `[[]]`): CVAT's rectangles."""
    return segmentation is None or (
        isinstance(segmentation, list) and all(p == [] for p in segmentation)
    )


def _score(path: Path, ann_id: object, score: object) -> float | None:
    if score is None:
        return None
    number = _number(score)
    if number is None or not 0 <= number <= 1:
        raise _fail(path, f"annotation {ann_id}: its score {score!r} is not between 0 and 1")
    return score if isinstance(score, int | float) else number


def parse_coco(path: Path | str) -> ParsedCoco:
    """Read a COCO dataset or prediction file's structure; masks are decoded later.

    Each CocoImage carries its annotations in `raw`. Raises CocoError naming the first
    structural problem (not JSON, no images list, an annotation of an unknown image...).
    """
    path = Path(path)
    data = _load_json(path)
    images = _read_images(path, data["images"])
    read = _read_categories(path, data.get("categories"))
    coco = ParsedCoco(list(images.values()), list(read.valid))
    used = {
        cid
        for a in data["annotations"]
        if isinstance(a, dict) and isinstance(cid := _whole(a.get("category_id")), int | str)
    }
    new_ids = _renumber(read, used, coco)
    known = {c.id for c in coco.categories}
    for index, ann in enumerate(data["annotations"]):
        ann_id = ann.get("id", f"#{index + 1}") if isinstance(ann, dict) else f"#{index + 1}"
        if not isinstance(ann, dict):
            raise _fail(path, f"annotation {ann_id} is not a JSON object")
        image = _find_image(images, ann.get("image_id"))
        if image is None:
            raise _fail(
                path,
                f"annotation {ann_id} refers to image id {ann.get('image_id')!r}, "
                "which is not in the images list",
            )
        category_id = _whole(ann.get("category_id"))
        if isinstance(category_id, int | str) and category_id in new_ids:
            category_id = new_ids[category_id]
        elif isinstance(category_id, int | str) and category_id in read.invalid:
            _count(coco.skipped, NOT_A_CLASS)
            continue
        if not isinstance(category_id, int) or category_id not in known:
            _count(coco.skipped, UNKNOWN_CATEGORY)
            continue
        score = _score(path, ann_id, ann.get("score"))
        segmentation = ann.get("segmentation")
        if _no_mask(segmentation):
            box = _parse_box(ann.get("bbox"))
            if box is not None and box[2] > box[0] and box[3] > box[1]:
                coco.box_only.append(BoxOnly(image, category_id, box, score))
                _count(coco.skipped, BOX_ONLY)
            else:
                _count(coco.skipped, NO_SEGMENTATION)
            continue
        image.raw.append(
            RawAnnotation(
                ann_id,
                category_id,
                segmentation,
                ann.get("bbox"),
                score,
                bool(ann.get("iscrowd")),
                ann.get("maskdesk"),
            )
        )
    for file_id, why in read.invalid.items():
        if file_id not in used:
            _count(coco.notes, f"{why}: not a class, and no annotation uses it; skipped")
    return coco


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


def _parse_box(value: object) -> Box | None:
    """A COCO bbox [x, y, width, height] (numbers, or numbers written as strings) as corners;
    None when there is none or it cannot be one."""
    if not isinstance(value, list) or len(value) != 4:
        return None
    numbers = [_number(v) for v in value]
    if any(v is None for v in numbers):
        return None
    x, y, w, h = (float(v) for v in numbers if v is not None)
    if w < 0 or h < 0:
        return None
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
                _count(coco.skipped, EMPTY_MASK)
                continue
            origin, review = _decided(raw)
            box = _parse_box(raw.bbox)
            if box is None and raw.bbox is not None:
                _count(coco.notes, BOX_IGNORED)
            instances.append(
                Instance(
                    category_id=raw.category_id,
                    mask=mask,
                    score=raw.score,
                    box=box,
                    origin=origin,
                    review=review,
                    crowd=raw.crowd,
                )
            )
        except (ValueError, TypeError, OverflowError, MemoryError) as exc:
            raise _fail(path, f"annotation {raw.ann_id}: {exc}") from None
    return instances


def read_coco(path: Path | str, *, max_pixels: int | None = None) -> ParsedCoco:
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
