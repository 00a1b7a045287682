"""A folder's project as a COCO file: which images and instances an export takes.

Every present image whose size is known is listed, except a failed one that holds no person's
work: listed without objects, it would tell a reader "nothing here" about an image nobody saw.
Such images are left out and named (`LeftOut`, `left_out_summary`); a failed image with a
person's work on it stays, with that work (a later read failure does not take it away).
`Scope` narrows the export: only images marked reviewed, or only instances a person accepted
(human ones included, as they are accepted). The score threshold and the other rules are
`Instance.exported`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from maskdesk.core.coco import CocoImage, export_coco
from maskdesk.core.instances import Instance, Review
from maskdesk.core.project import ImageRecord, ImageStatus, Project


class Scope(StrEnum):
    ALL = "all"
    REVIEWED = "reviewed"  # images marked reviewed only
    ACCEPTED = "accepted"  # accepted instances only


@dataclass(frozen=True)
class LeftOut:
    """An image an export leaves out: its path (as the export would name it) and why."""

    path: str
    reason: str


@dataclass
class Selection:
    """What an export of a project writes (`images`) and the images it leaves out."""

    images: list[CocoImage] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)


@dataclass(frozen=True)
class Exported:
    """A written export: the COCO dict and the images left out of it."""

    data: dict[str, Any]
    left_out: list[LeftOut]


def failed_without_work(
    record: ImageRecord, instances: Sequence[Instance], path: str | None = None
) -> LeftOut | None:
    """Why `record` stays out of an export, or None when it goes in.

    A failed image (or one whose size is unknown) is left out unless it holds a person's work
    (`Instance.decided`); `instances` are all of the image's, before any scope narrows them.
    """
    unsized = record.width < 1 or record.height < 1
    if record.status is not ImageStatus.FAILED and not unsized:
        return None
    if not unsized and any(i.decided for i in instances):
        return None
    return LeftOut(path or record.path, record.reason or "its size could not be read")


def select_images(project: Project, scope: Scope = Scope.ALL) -> Selection:
    """The images (with their instances) an export of `project` in this scope writes, and
    the failed ones it leaves out."""
    selection = Selection()
    for record in project.images():
        if scope is Scope.REVIEWED and record.status is not ImageStatus.REVIEWED:
            continue
        instances = project.instances(record.id)
        out = failed_without_work(record, instances)
        if out is not None:
            selection.left_out.append(out)
            continue
        if scope is Scope.ACCEPTED:
            instances = [i for i in instances if i.review is Review.ACCEPTED]
        selection.images.append(CocoImage(record.path, record.width, record.height, instances))
    return selection


def project_images(project: Project, scope: Scope = Scope.ALL) -> list[CocoImage]:
    """The images (with their instances) an export of `project` in this scope writes."""
    return select_images(project, scope).images


def export_project(
    project: Project,
    path: Path | str,
    *,
    polygons: bool = False,
    min_score: float = 0.0,
    scope: Scope = Scope.ALL,
) -> Exported:
    """Write the project's COCO file atomically; returns what was written and left out."""
    selection = select_images(project, scope)
    data = export_coco(
        path,
        selection.images,
        list(project.categories),
        polygons=polygons,
        min_score=min_score,
    )
    return Exported(data, selection.left_out)


def left_out_summary(left_out: Sequence[LeftOut], limit: int | None = None) -> str:
    """One line naming the images left out and why ('' when none); past `limit` names, the
    rest are counted."""
    if not left_out:
        return ""
    n = len(left_out)
    shown = left_out if limit is None else left_out[:limit]
    names = "; ".join(f"{item.path} ({item.reason})" for item in shown)
    if len(shown) < n:
        names += f"; and {n - len(shown)} more"
    if n == 1:
        why = "1 image that failed and holds no person's work (an empty entry would say it has"
    else:
        why = f"{n} images that failed and hold no person's work (empty entries would say they have"
    return f"left out {why} no objects): {names}"
