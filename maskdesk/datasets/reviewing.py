"""A shapes folder to learn in, and "reviewing" its images by putting their ground truth in
as a person would: drawn (human, accepted) instances, the image marked reviewed.

The learning-loop benchmark and the training tests use it; the picture of `shapes_NNNNN.png`
is `shapes.generate(seed, NNNNN, size, classes)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2

from maskdesk.core.categories import plan_merge
from maskdesk.core.instances import Review
from maskdesk.core.project import ImageStatus, Project
from maskdesk.datasets.shapes import ALL_CLASSES, categories_of, generate, sample_instances


def file_name(index: int) -> str:
    return f"shapes_{index:05d}.png"


def index_of(path: str) -> int:
    return int(Path(path).stem.rsplit("_", 1)[1])


def write_folder(
    folder: Path, count: int, seed: int, classes: Sequence[str] = ALL_CLASSES, size: int = 256
) -> list[str]:
    """`count` shape pictures straight in `folder` (no annotations); returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        sample = generate(seed, index, size, classes)
        ok, encoded = cv2.imencode(".png", sample.image[:, :, ::-1])
        if not ok:
            raise RuntimeError(f"could not encode picture {index}")
        (folder / file_name(index)).write_bytes(encoded.tobytes())
        names.append(file_name(index))
    return names


def truth(path: str, seed: int, classes: Sequence[str] = ALL_CLASSES, size: int = 256) -> list:
    """The ground-truth instances of a picture, with category ids of `classes` (1-based)."""
    return sample_instances(generate(seed, index_of(path), size, classes))


def review(
    project: Project,
    paths: Sequence[str],
    seed: int,
    classes: Sequence[str] = ALL_CLASSES,
    size: int = 256,
) -> None:
    """Review these images as a person who gets every object right: whatever was there is
    replaced by the ground truth, drawn and accepted, and the image is marked reviewed."""
    mapping, added = plan_merge(project.categories, categories_of(classes))
    if added:
        project.ensure_categories(added)
    with project.batch():
        for path in paths:
            record = project.image_by_path(path)
            if record is None:
                raise ValueError(f"{path} is not an image of {project.folder}")
            project.delete_instances([i.id for i in project.instances(record.id) if i.id])
            project.add_instances(
                record.id,
                [
                    inst.with_changes(category_id=mapping[inst.category_id], review=Review.ACCEPTED)
                    for inst in truth(path, seed, classes, size)
                ],
                supersede=False,
            )
            project.set_status(record.id, ImageStatus.REVIEWED)
