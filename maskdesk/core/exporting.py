"""A folder's project as a COCO file: which images and instances an export takes.

Every present image whose size is known is listed, failed ones too (a later read failure does
not take away the work a person did on an image). `Scope` narrows it: only images marked
reviewed, or only instances a person accepted (human ones included, as they are accepted).
The score threshold and the other rules are `Instance.exported`'s.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from maskdesk.core.coco import CocoImage, export_coco
from maskdesk.core.instances import Review
from maskdesk.core.project import ImageStatus, Project


class Scope(StrEnum):
    ALL = "all"
    REVIEWED = "reviewed"  # images marked reviewed only
    ACCEPTED = "accepted"  # accepted instances only


def project_images(project: Project, scope: Scope = Scope.ALL) -> list[CocoImage]:
    """The images (with their instances) an export of `project` in this scope writes."""
    images = []
    for record in project.images():
        if record.width < 1 or record.height < 1:
            continue
        if scope is Scope.REVIEWED and record.status is not ImageStatus.REVIEWED:
            continue
        instances = project.instances(record.id)
        if scope is Scope.ACCEPTED:
            instances = [i for i in instances if i.review is Review.ACCEPTED]
        images.append(CocoImage(record.path, record.width, record.height, instances))
    return images


def export_project(
    project: Project,
    path: Path | str,
    *,
    polygons: bool = False,
    min_score: float = 0.0,
    scope: Scope = Scope.ALL,
) -> dict:
    """Write the project's COCO file atomically; returns what was written."""
    return export_coco(
        path,
        project_images(project, scope),
        list(project.categories),
        polygons=polygons,
        min_score=min_score,
    )
