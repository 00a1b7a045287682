"""Write a project's instances as labelme JSON files, one per image (labelme 5.x/6.x layout).

As labelme 6.3.1 writes them (`labelme/app.py` `_shape_to_dict` and `save_labels`,
`labelme/_label_file.py` `write_label_file`): top-level keys in its order, `imagePath`
relative to the JSON's folder, `imageData` null. Each mask becomes a labelme `mask` shape:
points = the inclusive pixel box of the tight crop ([x, y], [x + w - 1, y + h - 1], as
labelme's AI tools make it from `imgviz.masks_to_bboxes`), mask = base64 of an 8-bit PNG of
0/1 (`img_arr_to_b64(mask.astype(np.uint8))`); labelme's `shapes_to_label` pastes it back
pixel for pixel. With `polygons`, one polygon per outer contour through boundary pixel
centres, which labelme's `shape_to_mask` (PIL polygon, outline counted) fills back exactly
except for holes, which are lost; an instance's polygons share a `group_id`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from maskdesk.core.exporting import LeftOut, Scope, select_images
from maskdesk.core.fileio import atomic_write_text
from maskdesk.core.labelme import encode_mask_png
from maskdesk.core.masks import CropMask

if TYPE_CHECKING:
    from maskdesk.core.project import Project

# The oldest format this matches: labelme 5.x only warns about another major version, 6.x
# reads the same keys.
LABELME_VERSION = "5.5.0"


@dataclass
class LabelmeExport:
    """What an export wrote."""

    files: int = 0
    shapes: int = 0
    left_out: list[LeftOut] = field(default_factory=list)


def _polygons(mask: CropMask) -> list[list[list[float]]]:
    bits = np.ascontiguousarray(mask.bits).astype(np.uint8)
    contours, _ = cv2.findContours(bits, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = []
    for contour in contours:
        p = contour.reshape(-1, 2)
        if len(p) < 3:  # a pixel or a thin line: labelme needs 3 points; repeat to keep it
            p = np.concatenate([p, p[-1:], p[-1:]])[:3]
        out.append([[float(x + mask.x), float(y + mask.y)] for x, y in p])
    return out


def _shape(label: str, points: list[list[float]], kind: str, mask: str | None) -> dict[str, Any]:
    # key order as labelme's Shape serialisation writes it
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "description": "",
        "shape_type": kind,
        "flags": {},
        "mask": mask,
    }


def export_labelme(
    project: Project,
    out_dir: Path | str,
    *,
    min_score: float = 0.5,
    scope: Scope = Scope.ALL,
    polygons: bool = False,
) -> LabelmeExport:
    """One labelme JSON per selected image under `out_dir`, mirroring the folder's layout."""
    out_dir = Path(out_dir)
    names = {c.id: c.name for c in project.categories}
    selection = select_images(project, scope)
    result = LabelmeExport(left_out=list(selection.left_out))
    for image in selection.images:
        shapes: list[dict[str, Any]] = []
        for group, instance in enumerate(i for i in image.instances if i.exported(min_score)):
            mask = instance.mask.tight()
            if mask.is_empty():
                continue
            label = names.get(instance.category_id, str(instance.category_id))
            if polygons:
                for poly in _polygons(mask):
                    shape = _shape(label, poly, "polygon", None)
                    shape["group_id"] = group
                    shapes.append(shape)
            else:
                box = [
                    [float(mask.x), float(mask.y)],
                    [float(mask.x + mask.width - 1), float(mask.y + mask.height - 1)],
                ]
                shapes.append(_shape(label, box, "mask", encode_mask_png(mask.bits)))
        rel = PurePosixPath(image.file_name)
        target = out_dir / rel.with_suffix(".json")
        image_path = os.path.relpath(project.folder / rel, target.parent)
        data: dict[str, Any] = {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": shapes,
            "imagePath": Path(image_path).as_posix(),
            "imageData": None,
            "imageHeight": image.height,
            "imageWidth": image.width,
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        result.files += 1
        result.shapes += len(shapes)
    return result
