"""Bring a COCO file's annotations onto a folder's images, and say what did not fit.

Images are matched by `file_name`: first exactly, as a path relative to the folder; then by
dropping leading folders (an export rooted one level up); then by base name, but only when
that base name is unique both in the file and in the folder, so `train/a.png` never lands on
`val/a.png`. An image can be claimed by one of those fallbacks only if nothing else claims
it. Names that escape the folder are refused. Sizes are compared with the files on disk
before any mask is decoded.

The import is one transaction: all of it is stored, or none of it. Importing the same file
twice adds nothing the second time (an instance with the same category and mask is there
already), and a person's instance supersedes the pending prediction it covers, so ground
truth imported onto a pre-labeled folder does not double every object.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from maskdesk.core.categories import plan_merge
from maskdesk.core.coco import CocoFile, CocoImage, safe_relative
from maskdesk.core.coco_read import ParsedCoco, decode_instances, renumber_note
from maskdesk.core.errors import CocoError
from maskdesk.core.matching import ExactIndex

if TYPE_CHECKING:
    from maskdesk.core.project import ImageRecord, Project


@dataclass
class ImportReport:
    """What an import did, for the user."""

    images_matched: int = 0
    instances_added: int = 0
    duplicates: int = 0
    superseded: int = 0
    unmatched: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    wrong_size: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def not_imported(self) -> int:
        """Images of the file whose annotations found no place."""
        return len(self.unmatched) + len(self.ambiguous) + len(self.refused) + len(self.wrong_size)

    def summary(self, coco_path: Path, folder: Path) -> str:
        lines = [
            f"{coco_path}: {self.instances_added} instances added to {self.images_matched} "
            f"images of {folder}"
        ]
        if self.duplicates:
            lines.append(f"  {self.duplicates} already present, not added again")
        if self.superseded:
            lines.append(
                f"  {self.superseded} pending predictions replaced by the file's labels "
                "of the same objects"
            )
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"  {count} skipped: {reason}")
        for note, count in sorted(self.notes.items()):
            lines.append(f"  note: {note}" + (f" ({count})" if count > 1 else ""))
        for title, names in (
            (f"images not found in {folder}", self.unmatched),
            (
                "images whose name fits more than one image here, or one another entry has; "
                "not imported (give their paths relative to the folder)",
                self.ambiguous,
            ),
            ("refused (names that leave the folder)", self.refused),
            ("not imported, size differs from the image on disk", self.wrong_size),
        ):
            if names:
                lines.append(f"  {len(names)} {title}:")
                lines += [f"    {name}" for name in names[:20]]
                if len(names) > 20:
                    lines.append(f"    ... and {len(names) - 20} more")
        return "\n".join(lines)


def match_images(
    records: list[ImageRecord], images: list[CocoImage], report: ImportReport
) -> list[tuple[CocoImage, ImageRecord]]:
    """Each file image with the project image it means; the rest go to the report."""
    by_path = {r.path: r for r in records}
    folder_names = Counter(PurePosixPath(r.path).name for r in records)
    by_name = {PurePosixPath(r.path).name: r for r in records}
    rels: dict[int, str] = {}
    for index, image in enumerate(images):
        try:
            rels[index] = safe_relative(image.file_name)
        except CocoError:
            report.refused.append(image.file_name)
    file_names = Counter(PurePosixPath(rel).name for rel in rels.values())

    exact: dict[int, ImageRecord] = {}
    fallback: dict[int, ImageRecord] = {}
    for index, rel in rels.items():
        if rel in by_path:
            exact[index] = by_path[rel]
            continue
        parts = PurePosixPath(rel).parts
        record = next(
            (by_path[p] for s in range(1, len(parts)) if (p := "/".join(parts[s:])) in by_path),
            None,
        )
        base = parts[-1]
        if record is None and folder_names[base] == 1 and file_names[base] == 1:
            record = by_name[base]
        if record is not None:
            fallback[index] = record
        else:
            report.unmatched.append(images[index].file_name)
    claimed = Counter(r.id for r in fallback.values())
    taken = {r.id for r in exact.values()}
    for index, record in list(fallback.items()):
        if record.id in taken or claimed[record.id] > 1:
            report.ambiguous.append(images[index].file_name)
            del fallback[index]
    matched = {**exact, **fallback}
    return [(images[i], matched[i]) for i in sorted(matched)]


def size_mismatch(image: CocoImage, record: ImageRecord) -> str | None:
    """How the file's size of `image` differs from the image on disk, or None when they agree
    (an image whose size differs is not imported: its masks would not fit)."""
    if (record.width, record.height) == (image.width, image.height):
        return None
    return (
        f"file says {image.width}x{image.height}, {record.path} is {record.width}x{record.height}"
    )


def import_coco(project: Project, coco: CocoFile, source: Path | str = "") -> ImportReport:
    """Add the file's instances to the matching images of `project`, in one transaction.

    `coco` comes from `parse_coco` (masks decoded here, image by image, after the size
    check) or `read_coco` (already decoded). `source` names the file in error messages.
    """
    from maskdesk.core.project import ImageStatus

    source = Path(source)
    report = ImportReport()
    pairs = match_images(project.images(), coco.images, report)
    with project.batch():
        mapping, added = plan_merge(project.categories, coco.categories)
        if added:
            project.ensure_categories(added)
        for image, record in pairs:
            mismatch = size_mismatch(image, record)
            if mismatch:
                report.wrong_size.append(f"{image.file_name}: {mismatch}")
                continue
            report.images_matched += 1
            incoming = decode_instances(source, image, coco) if image.raw else image.instances
            present = ExactIndex(project.instances(record.id))
            new = []
            for instance in incoming:
                moved = instance.with_changes(
                    category_id=mapping[instance.category_id], id=None, image_id=None
                )
                if present.contains(moved):
                    report.duplicates += 1
                    continue
                present.add(moved)
                new.append(moved)
            if not new:
                continue
            result = project.add_instances(record.id, new)
            report.instances_added += len(new)
            report.superseded += len(result.superseded)
            if record.status is ImageStatus.NEW:
                project.set_status(record.id, ImageStatus.PRELABELED)
    report.skipped = dict(coco.skipped)
    report.notes = dict(coco.notes)
    if isinstance(coco, ParsedCoco):
        _renumbered_in_project(report.notes, coco, mapping)
    return report


def _renumbered_in_project(
    notes: dict[str, int], coco: ParsedCoco, mapping: dict[int, int]
) -> None:
    """A class the file numbers below 1 is named with the id it has in the project."""
    for file_level, (file_id, name) in coco.renumbered.items():
        stored = mapping.get(file_level, file_level)
        if stored != file_level and notes.pop(renumber_note(file_id, name, file_level), 0):
            notes[renumber_note(file_id, name, stored)] = 1
