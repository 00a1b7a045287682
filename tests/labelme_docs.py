"""labelme JSON documents as labelme's LabelFile.save writes them (key order, version 5.x),
and the masks a folder's project holds, for comparing imports pixel for pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maskdesk.core.project import Project


def labelme_doc(shapes: list[dict], image: str, w: int, h: int) -> dict:
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image,
        "imageData": None,
        "imageHeight": h,
        "imageWidth": w,
    }


def shape(label: str, points: list, kind: str, group: int | None = None, **kw: object) -> dict:
    return {
        "label": label,
        "points": points,
        "group_id": group,
        "description": "",
        "shape_type": kind,
        "flags": {},
        "mask": None,
        **kw,
    }


def stored_masks(folder: Path, packed: bool = False) -> dict[str, list[tuple[str, bytes]]]:
    """Per image path: (class, full-frame mask bytes) of every stored instance, sorted; with
    `packed`, the mask's numpy.packbits (as the labelme fixture's expected.json holds them)."""

    def frame(mask: np.ndarray) -> bytes:
        return (np.packbits(mask) if packed else mask).tobytes()

    with Project.open(folder) as project:
        names = {c.id: c.name for c in project.categories}
        return {
            r.path: sorted(
                (names[i.category_id], frame(i.mask.to_full(r.width, r.height)))
                for i in project.instances(r.id)
            )
            for r in project.images()
        }
