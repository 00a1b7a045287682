"""Read a labelme / X-AnyLabeling folder (one JSON per image) as a ParsedCoco.

Shapes are rasterized the way labelme's `utils/shape.py` `shape_to_mask` does it: PIL
`ImageDraw.polygon(xy, outline=1, fill=1)` on the full frame (not pycocotools), circles as
`ImageDraw.ellipse` around the centre through the second point, `mask` shapes as a PNG of the
box given by their two points. Shapes with the same label and `group_id` are one instance.
Rectangles become box-only entries (as COCO boxes without a mask do); lines, line strips and
points are skipped with a count. A broken JSON is reported by name and does not stop the rest.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from maskdesk.core.categories import Category
from maskdesk.core.coco import CocoImage
from maskdesk.core.coco_read import BoxOnly, ParsedCoco
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask

if TYPE_CHECKING:
    from maskdesk.core.importing import ImportReport
    from maskdesk.core.project import Project

_SKIPPED = {"line", "linestrip", "point", "points"}


@dataclass
class LabelmeFolder:
    """What the folder's JSON files held, and which files could not be read."""

    coco: ParsedCoco
    broken: list[str] = field(default_factory=list)  # "file: why"


def shape_mask(shape: dict, width: int, height: int) -> np.ndarray | None:
    """Full-frame bool mask of one labelme shape, as labelme draws it; None when no area."""
    kind = shape.get("shape_type") or "polygon"
    points = [(float(x), float(y)) for x, y in shape["points"]]
    canvas = Image.fromarray(np.zeros((height, width), dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    if kind == "polygon":
        if len(points) < 3:
            raise ValueError("polygon with fewer than 3 points")
        draw.polygon(points, outline=1, fill=1)
    elif kind == "circle":
        if len(points) != 2:
            raise ValueError("circle needs 2 points")
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif kind == "mask":
        crop = decode_mask_png(shape["mask"])
        full = np.zeros((height, width), dtype=bool)
        x0, y0 = int(points[0][0]), int(points[0][1])
        h = max(0, min(crop.shape[0], height - y0))
        w = max(0, min(crop.shape[1], width - x0))
        full[y0 : y0 + h, x0 : x0 + w] = crop[:h, :w]
        return full
    else:
        raise ValueError(f"shape_type {kind!r} has no area")
    return np.asarray(canvas, dtype=bool)


def decode_mask_png(data: str) -> np.ndarray:
    """labelme's `img_b64_to_arr` of a mask shape, as bool."""
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return (
            np.asarray(image).astype(bool)
            if image.mode != "RGB"
            else np.asarray(image.convert("L")).astype(bool)
        )


def encode_mask_png(bits: np.ndarray) -> str:
    """A bool crop as labelme stores it: base64 of a PNG."""
    buffer = io.BytesIO()
    Image.fromarray(bits.astype(bool)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _json_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*.json") if ".maskdesk" not in p.relative_to(folder).parts
    )


def _image_name(folder: Path, path: Path, data: dict, images: set[str]) -> str | None:
    """The image this JSON is about, relative to the folder: `imagePath`, else same stem."""
    rel_dir = path.parent.relative_to(folder)
    image_path = data.get("imagePath")
    if isinstance(image_path, str) and image_path:
        candidate = (rel_dir / image_path.replace("\\", "/")).as_posix()
        normal = Path(candidate).as_posix()
        parts: list[str] = []
        for part in normal.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        joined = "/".join(parts)
        if joined in images:
            return joined
    for name in sorted(images):
        p = Path(name)
        if p.parent == rel_dir and p.stem == path.stem:
            return name
    return None


def read_labelme_folder(folder: Path | str, images: set[str]) -> LabelmeFolder:
    """Parse every labelme JSON under `folder` whose image is one of `images` (relative
    POSIX paths of the project's images)."""
    folder = Path(folder)
    classes: dict[str, Category] = {}
    coco = ParsedCoco([], [])
    result = LabelmeFolder(coco)
    for path in _json_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
                raise ValueError("not a labelme file (no 'shapes' list)")
            name = _image_name(folder, path, data, images)
            if name is None:
                if "imagePath" in data:
                    coco.skipped["labelme file whose image is not in the folder"] = (
                        coco.skipped.get("labelme file whose image is not in the folder", 0) + 1
                    )
                continue
            width, height = int(data["imageWidth"]), int(data["imageHeight"])
            image = CocoImage(name, width, height)
            groups: dict[tuple[str, object], np.ndarray] = {}
            order: list[tuple[str, object]] = []
            for index, shape in enumerate(data["shapes"]):
                label = str(shape["label"])
                kind = shape.get("shape_type") or "polygon"
                if kind in _SKIPPED:
                    key = f"labelme {kind} shapes (no area)"
                    coco.skipped[key] = coco.skipped.get(key, 0) + 1
                    continue
                category = classes.setdefault(label, Category(len(classes) + 1, label))
                if kind == "rectangle":
                    (x0, y0), (x1, y1) = shape["points"]
                    box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
                    coco.box_only.append(BoxOnly(image, category.id, box))
                    coco.skipped["box only, no mask"] = coco.skipped.get("box only, no mask", 0) + 1
                    continue
                full = shape_mask(shape, width, height)
                if full is None:
                    continue
                group = shape.get("group_id")
                key2 = (label, group if group is not None else ("shape", index))
                if key2 in groups:
                    groups[key2] = groups[key2] | full
                else:
                    groups[key2] = full
                    order.append(key2)
            for key2 in order:
                mask = CropMask.from_full(groups[key2])
                if mask.is_empty():
                    coco.skipped["empty shapes"] = coco.skipped.get("empty shapes", 0) + 1
                    continue
                image.instances.append(
                    Instance(
                        category_id=classes[key2[0]].id,
                        mask=mask,
                        origin=Origin.HUMAN,
                        review=Review.ACCEPTED,
                    )
                )
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            result.broken.append(f"{rel}: {error}")
            continue
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
