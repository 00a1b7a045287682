"""Read a labelme / X-AnyLabeling folder (one JSON per image) as a ParsedCoco.

The conventions are labelme's own (labelme 6.3.1, `labelme/utils/shape.py` and
`labelme/_label_file.py`; the same in 5.x), checked against files written by labelme's code
in `tests/fixtures/labelme/`:

- polygons (and labelme's `oriented_rectangle`, X-AnyLabeling's `rotation`) are rasterized as
  `shape_to_mask` does: PIL `ImageDraw.polygon(xy, outline=1, fill=1)` on the full frame, so
  the pixels the outline touches count (not pycocotools' area rule); circles as
  `ImageDraw.ellipse` around the first point through the second;
- a `mask` shape is a base64 PNG crop (uint8 0/1, as `img_arr_to_b64` writes it) whose two
  points are its inclusive pixel box: `shapes_to_label` pastes it at
  `mask[y1:y2 + 1, x1:x2 + 1]` with the points truncated by `astype(int)`. A crop whose size
  disagrees with its points (labelme itself would fail on it) is placed at the first point,
  as labelme's canvas shows it, and counted in `notes`;
- shapes with the same label and `group_id` are one instance (`shapes_to_label`); a shape
  without `group_id` is an instance of its own;
- rectangles (2 points in labelme, 4 corners in X-AnyLabeling) become box-only entries (as
  COCO boxes without a mask do), in the image's continuous coordinates;
- `imagePath` is relative to the JSON's folder, with `\\` or `/` (labelme reads it through
  `PureWindowsPath`); `imageData`, `flags`, `description` and shape `flags` are not needed.

Lines, line strips and points, polygons under 3 points and unknown shape types are skipped
with a count; a broken JSON is reported by name and does not stop the rest.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from maskdesk.core.categories import Category
from maskdesk.core.coco import CocoImage
from maskdesk.core.coco_read import BOX_ONLY, BoxOnly, ParsedCoco
from maskdesk.core.images import read_size
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask

if TYPE_CHECKING:
    from maskdesk.core.importing import ImportReport
    from maskdesk.core.project import Project

_SKIPPED = {"line", "linestrip", "point", "points"}
_POLYGONS = {"polygon", "oriented_rectangle", "rotation"}  # rasterized by ImageDraw.polygon
MASK_SIZE_NOTE = (
    "labelme mask shapes whose PNG size disagrees with their points (placed at the first point)"
)


class SkipShape(ValueError):
    """A shape that has no area here; counted under its message, the file goes on."""


@dataclass
class LabelmeFolder:
    """What the folder's JSON files held, and which files could not be read."""

    coco: ParsedCoco
    broken: list[str] = field(default_factory=list)  # "file: why"


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _points(shape: dict) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in shape["points"]]


def shape_mask(
    shape: dict, width: int, height: int, notes: dict[str, int] | None = None
) -> CropMask:
    """The mask of one labelme shape, as labelme's `shapes_to_label` draws it on the frame.

    Drawn unshifted on a canvas that ends at the shape's far corner (PIL's edge arithmetic
    depends on the coordinates' size, so shifting the shape would move a few edge pixels on
    big photos) and kept as a crop: a big photo holds no full frame per instance.
    Raises SkipShape for shapes without area (lines, points, short polygons, unknown types).
    """
    kind = shape.get("shape_type") or "polygon"
    if kind == "mask":
        return _paste_mask(shape, width, height, notes)
    if kind in _SKIPPED:
        raise SkipShape(f"labelme {kind} shapes (no area)")
    points = _points(shape)
    if kind in _POLYGONS:
        if len(points) < 3:
            raise SkipShape("labelme polygons with fewer than 3 points")
        corners = points
    elif kind == "circle":
        if len(points) != 2:
            raise SkipShape("labelme circles without 2 points")
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        corners = [(cx - r, cy - r), (cx + r, cy + r)]
    else:
        raise SkipShape(f"labelme {kind} shapes (not supported)")
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    x0, y0 = max(0, math.floor(min(xs)) - 1), max(0, math.floor(min(ys)) - 1)
    x1 = min(width, math.ceil(max(xs)) + 2)
    y1 = min(height, math.ceil(max(ys)) + 2)
    if x1 <= x0 or y1 <= y0:
        return CropMask(0, 0, np.zeros((0, 0), dtype=bool))
    canvas = Image.new("L", (x1, y1))
    draw = ImageDraw.Draw(canvas)
    if kind == "circle":
        (ax, ay), (bx, by) = corners
        draw.ellipse([ax, ay, bx, by], outline=1, fill=1)
    else:
        draw.polygon(points, outline=1, fill=1)
    return CropMask(x0, y0, np.asarray(canvas, dtype=bool)[y0:, x0:])


def _paste_mask(shape: dict, width: int, height: int, notes: dict[str, int] | None) -> CropMask:
    crop = decode_mask_png(shape["mask"])
    points = _points(shape)
    if len(points) != 2:
        raise ValueError("mask shape needs 2 points")
    # labelme: (x1, y1), (x2, y2) = np.asarray(points).astype(int); inclusive box
    (x1, y1), (x2, y2) = ((int(x), int(y)) for x, y in points)
    if crop.shape != (y2 - y1 + 1, x2 - x1 + 1) and notes is not None:
        _count(notes, MASK_SIZE_NOTE)
    top, left = max(0, -y1), max(0, -x1)  # the part of the crop inside the image
    bottom = min(crop.shape[0], height - y1)
    right = min(crop.shape[1], width - x1)
    if bottom <= top or right <= left:
        return CropMask(0, 0, np.zeros((0, 0), dtype=bool))
    return CropMask(x1 + left, y1 + top, np.asarray(crop[top:bottom, left:right], dtype=bool))


def decode_mask_png(data: str) -> np.ndarray:
    """labelme's `img_b64_to_arr(...).astype(bool)` of a mask shape (colour PNGs as gray)."""
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        gray = image if image.mode in ("1", "L", "I", "I;16", "P") else image.convert("L")
        bits = np.asarray(gray).astype(bool)
    if bits.ndim != 2:
        raise ValueError(f"mask PNG is not one channel ({bits.shape})")
    return bits


def encode_mask_png(bits: np.ndarray) -> str:
    """A bool crop as labelme stores it (`img_arr_to_b64(mask.astype(np.uint8))`): base64 of
    an 8-bit gray PNG holding 0 and 1."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(bits, dtype=bool).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def rectangle_box(shape: dict, width: int, height: int) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of a labelme (2 corners) or X-AnyLabeling (4 corners) rectangle,
    clipped to the image; SkipShape when it has no area."""
    points = _points(shape)
    if len(points) not in (2, 4):
        raise SkipShape("labelme rectangles without 2 or 4 points")
    xs, ys = [x for x, _ in points], [y for _, y in points]
    box = (
        min(max(min(xs), 0.0), float(width)),
        min(max(min(ys), 0.0), float(height)),
        min(max(max(xs), 0.0), float(width)),
        min(max(max(ys), 0.0), float(height)),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        raise SkipShape("labelme rectangles with no area")
    return box


def _json_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*.json") if ".maskdesk" not in p.relative_to(folder).parts
    )


def _resolve(folder: Path, rel_dir: PurePosixPath, image_path: str) -> str | None:
    """`imagePath` as labelme reads it (`PureWindowsPath(...).as_posix()`, relative to the
    JSON's folder), as a path relative to `folder`; None when it leads outside it."""
    posix = PureWindowsPath(image_path).as_posix()
    if posix.startswith("/") or PureWindowsPath(image_path).drive:
        try:  # absolute: usable only when it lies inside the folder
            return Path(posix).resolve().relative_to(folder.resolve()).as_posix()
        except (ValueError, OSError):
            return None
    parts: list[str] = []
    for part in [*rel_dir.parts, *posix.split("/")]:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _image_name(folder: Path, path: Path, data: dict, images: set[str]) -> str | None:
    """The image this JSON is about, relative to the folder: `imagePath`, else same stem."""
    rel_dir = PurePosixPath(path.parent.relative_to(folder).as_posix())
    image_path = data.get("imagePath")
    if isinstance(image_path, str) and image_path:
        resolved = _resolve(folder, rel_dir, image_path)
        if resolved in images:
            return resolved
    for name in sorted(images):
        p = PurePosixPath(name)
        if p.parent == rel_dir and p.stem == path.stem:
            return name
    return None


def _size(folder: Path, name: str, data: dict) -> tuple[int, int]:
    """imageWidth/imageHeight as the file says (labelme 6 allows null: then the image's)."""
    width, height = data.get("imageWidth"), data.get("imageHeight")
    if width is None or height is None:
        size = read_size(folder / name)
        return size.width, size.height
    return int(width), int(height)


def _read_file(
    folder: Path, path: Path, images: set[str], coco: ParsedCoco, classes: dict[str, Category]
) -> CocoImage | None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise ValueError("not a labelme file (no 'shapes' list)")
    name = _image_name(folder, path, data, images)
    if name is None:
        if "imagePath" in data:
            _count(coco.skipped, "labelme file whose image is not in the folder")
        return None
    width, height = _size(folder, name, data)
    image = CocoImage(name, width, height)
    groups: dict[tuple[str, object], CropMask] = {}
    for index, shape in enumerate(data["shapes"]):
        label = str(shape["label"])
        kind = shape.get("shape_type") or "polygon"
        try:
            if kind == "rectangle":
                box = rectangle_box(shape, width, height)
            else:
                drawn = shape_mask(shape, width, height, coco.notes)
        except SkipShape as skip:
            _count(coco.skipped, str(skip))
            continue
        category = classes.setdefault(label, Category(len(classes) + 1, label))
        if kind == "rectangle":
            coco.box_only.append(BoxOnly(image, category.id, box))
            _count(coco.skipped, BOX_ONLY)
            continue
        # shapes_to_label: (label, group_id) is one instance; no group_id, a new one
        group = shape.get("group_id")
        key = (label, group if group is not None else ("shape", index))
        groups[key] = groups[key].union(drawn) if key in groups else drawn
    for (label, _), drawn in groups.items():
        mask = drawn.tight()
        if mask.is_empty():
            _count(coco.skipped, "empty shapes")
            continue
        image.instances.append(
            Instance(
                category_id=classes[label].id,
                mask=mask,
                origin=Origin.HUMAN,
                review=Review.ACCEPTED,
            )
        )
    return image


def read_labelme_folder(folder: Path | str, images: set[str]) -> LabelmeFolder:
    """Parse every labelme JSON under `folder` whose image is one of `images` (relative
    POSIX paths of the project's images)."""
    folder = Path(folder)
    classes: dict[str, Category] = {}
    coco = ParsedCoco([], [])
    result = LabelmeFolder(coco)
    for path in _json_files(folder):
        rel = path.relative_to(folder).as_posix()
        # what one file adds is kept only when the whole file reads
        local, known = ParsedCoco([], []), dict(classes)
        try:
            image = _read_file(folder, path, images, local, known)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            result.broken.append(f"{rel}: {error}")
            continue
        classes.update(known)
        coco.box_only.extend(local.box_only)
        for counts, more in ((coco.skipped, local.skipped), (coco.notes, local.notes)):
            for key, n in more.items():
                counts[key] = counts.get(key, 0) + n
        if image is not None:
            coco.images.append(image)
    coco.categories = list(classes.values())
    return result


def import_labelme(project: Project, folder: Path | str) -> tuple[ImportReport, LabelmeFolder]:
    """Read the folder's labelme files and store them like a COCO import (one transaction).

    Returns the ImportReport and what was read (its `broken` list names unreadable files).
    """
    from maskdesk.core.importing import import_coco

    read = read_labelme_folder(folder, {r.path for r in project.images()})
    report = import_coco(project, read.coco, Path(folder))
    return report, read
