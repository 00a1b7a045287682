"""Bring a COCO file's annotations onto a folder's images, and say what did not fit.

Images are matched by `file_name`: first as a path relative to the folder, then by
dropping leading folders (an export rooted one level up), then by a unique base name.
Names that escape the folder are refused. Importing the same file twice adds nothing
the second time: an instance equal to one already there (same category, same mask) is
skipped, so an import never duplicates and never deletes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from maskdesk.core.categories import plan_merge
from maskdesk.core.coco import CocoFile, safe_relative
from maskdesk.core.errors import CocoError

if TYPE_CHECKING:
    from maskdesk.core.project import ImageRecord, Project


@dataclass
class ImportReport:
    """What an import did, for the user."""

    images_matched: int = 0
    instances_added: int = 0
    duplicates: int = 0
    unmatched: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    wrong_size: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self, coco_path: Path, folder: Path) -> str:
        lines = [
            f"{coco_path}: {self.instances_added} instances added to {self.images_matched} "
            f"images of {folder}"
        ]
        if self.duplicates:
            lines.append(f"  {self.duplicates} already present, not added again")
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"  {count} skipped: {reason}")
        if self.unmatched:
            lines.append(f"  {len(self.unmatched)} images not found in {folder}:")
            lines += [f"    {name}" for name in self.unmatched[:20]]
            if len(self.unmatched) > 20:
                lines.append(f"    ... and {len(self.unmatched) - 20} more")
        if self.refused:
            lines.append("  refused (names that leave the folder): " + ", ".join(self.refused))
        if self.wrong_size:
            lines.append("  not imported, size differs from the image on disk:")
            lines += [f"    {entry}" for entry in self.wrong_size]
        return "\n".join(lines)


class _Matcher:
    """Finds the project image a COCO file_name means."""

    def __init__(self, records: list[ImageRecord]) -> None:
        self.by_path = {r.path: r for r in records}
        by_name: dict[str, list[ImageRecord]] = {}
        for record in records:
            by_name.setdefault(PurePosixPath(record.path).name, []).append(record)
        self.by_name = by_name

    def find(self, rel: str) -> ImageRecord | None:
        parts = PurePosixPath(rel).parts
        for start in range(len(parts)):
            record = self.by_path.get("/".join(parts[start:]))
            if record is not None:
                return record
        same_name = self.by_name.get(parts[-1], []) if parts else []
        return same_name[0] if len(same_name) == 1 else None


def import_coco(project: Project, coco: CocoFile) -> ImportReport:
    """Add the file's instances to the matching images of `project`."""
    from maskdesk.core.project import ImageStatus

    report = ImportReport(skipped=dict(coco.skipped))
    mapping, added = plan_merge(project.categories, coco.categories)
    if added:
        project.ensure_categories(added)
    matcher = _Matcher(project.images())
    for image in coco.images:
        try:
            rel = safe_relative(image.file_name)
        except CocoError:
            report.refused.append(image.file_name)
            continue
        record = matcher.find(rel)
        if record is None:
            report.unmatched.append(image.file_name)
            continue
        if (record.width, record.height) != (image.width, image.height):
            report.wrong_size.append(
                f"{image.file_name}: file says {image.width}x{image.height}, "
                f"{record.path} is {record.width}x{record.height}"
            )
            continue
        report.images_matched += 1
        present = project.instances(record.id)
        new_here = 0
        for instance in image.instances:
            moved = instance.with_changes(category_id=mapping[instance.category_id], id=None)
            if any(p.category_id == moved.category_id and p.mask == moved.mask for p in present):
                report.duplicates += 1
                continue
            present.append(project.add_instance(record.id, moved))
            new_here += 1
        report.instances_added += new_here
        if new_here and record.status is ImageStatus.NEW:
            project.set_status(record.id, ImageStatus.PRELABELED)
    return report
