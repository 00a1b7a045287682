"""A folder's export as a COCO results list: what pycocotools' `COCO.loadRes` and COCOeval take.

The list holds one entry per instance the COCO export writes at the same threshold and scope
(the entries are built from `build_coco`'s own annotations, so results and export agree):
`{"image_id", "category_id", "segmentation" (compressed RLE, counts a string), "bbox"
[x, y, w, h], "score"}`. Instances without a score (drawn by a person) get score 1.0: the
export lists them as annotations, and leaving them out would count them as missed objects.
Crowd regions are left out (and counted): they mark areas to ignore, not objects found, and
`loadRes` would turn them into ordinary detections.

Ids are either the export's own (images 1..n in its order, our category ids: pair the list
with the same folder's export), or a ground-truth file's: each image takes the id of the
ground-truth image whose `file_name` names it (matched as import matches: exact relative
path, then leading folders dropped, then a base name unique on both sides) and of the same
size; each class takes the id of the ground-truth category with its name. Images and classes
the ground truth lacks are left out and reported (`ResultsReport.summary`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maskdesk.core.coco import CocoImage, build_coco, write_coco
from maskdesk.core.errors import CocoError
from maskdesk.core.exporting import LeftOut, Scope, left_out_summary, select_images
from maskdesk.core.importing import ImportReport, match_images
from maskdesk.core.project import Project

HUMAN_SCORE = 1.0  # the score of an instance without one (drawn by a person)
SHOWN = 5  # names shown per kind in the summary
SETTING = "image_ids_from"  # the setting a ground-truth problem is fixed with


@dataclass
class GroundTruth:
    """The parts of a COCO dataset file that give a results list its ids."""

    path: Path
    images: list[CocoImage]  # in the file's order, without annotations
    image_ids: list[Any]  # the file's id of each image, as written
    categories: dict[str, Any]  # name -> the file's category id
    ambiguous_names: set[str] = field(default_factory=set)  # names of two categories


def _gt_error(path: Path, what: str) -> CocoError:
    return CocoError(
        f"Cannot take ids from {path}: {what}. The ground truth must be a COCO dataset file "
        "(a JSON object with images and categories).",
        setting=SETTING,
    )


def read_ground_truth(path: Path | str) -> GroundTruth:
    """The images and categories of a COCO dataset file; CocoError naming it if unusable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CocoError(
            f"Ground-truth file {path} does not exist; check the path.", setting=SETTING
        ) from None
    except OSError as exc:
        raise _gt_error(path, f"it cannot be read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(raw)
    except RecursionError:
        raise _gt_error(path, "its JSON nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _gt_error(path, f"it is not valid JSON ({exc})") from None
    if isinstance(data, list):
        raise _gt_error(path, "it is a JSON list (a results list?), not a dataset")
    if not isinstance(data, dict):
        raise _gt_error(path, "it is not a JSON object")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise _gt_error(path, f"it has no {key!r} list")
    gt = GroundTruth(path, [], [], {})
    seen: set[Any] = set()
    for index, entry in enumerate(data["images"]):
        try:
            image_id = entry["id"]
            name = entry["file_name"]
            width, height = int(entry["width"]), int(entry["height"])
        except (TypeError, KeyError, ValueError, OverflowError):
            raise _gt_error(
                path, f"image #{index + 1} needs an id, a file_name, a width and a height"
            ) from None
        if isinstance(image_id, bool) or not isinstance(image_id, int | str):
            raise _gt_error(path, f"image #{index + 1} has an id that is not a number or string")
        if not isinstance(name, str):
            raise _gt_error(path, f"image {image_id!r} has a file_name that is not a string")
        if image_id in seen:
            raise _gt_error(path, f"image id {image_id!r} appears twice")
        seen.add(image_id)
        gt.images.append(CocoImage(name, width, height))
        gt.image_ids.append(image_id)
    for entry in data["categories"]:
        if not isinstance(entry, dict) or "id" not in entry or "name" not in entry:
            raise _gt_error(path, f"category {entry!r} needs an id and a name")
        name = str(entry["name"])
        if name in gt.categories:
            gt.ambiguous_names.add(name)
        gt.categories[name] = entry["id"]
    for name in gt.ambiguous_names:
        del gt.categories[name]
    return gt


@dataclass
class ResultsReport:
    """A results list and what it left out."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    images: int = 0  # images of the export the list can name
    images_left_out: list[LeftOut] = field(default_factory=list)  # not in the ground truth
    instances_on_left_out: int = 0  # instances of those images
    classes_left_out: dict[str, int] = field(default_factory=dict)  # name -> instances
    class_reasons: dict[str, str] = field(default_factory=dict)  # name -> why
    crowd: int = 0  # crowd regions, never results
    failed: list[LeftOut] = field(default_factory=list)  # left out of the export itself
    gt_without_image: list[str] = field(default_factory=list)  # ground-truth names not here
    ground_truth: Path | None = None

    @property
    def left_out(self) -> bool:
        """Whether an image or class was left out (crowd regions do not count)."""
        return bool(self.images_left_out or self.classes_left_out or self.failed)

    def summary(self, output: Path | str) -> str:
        source = self.ground_truth or "this folder's COCO export"
        lines = [
            f"{_n(len(self.entries), 'result')} for {_n(self.images, 'image')} (ids of {source}) "
            f"written to {output}"
        ]
        if not self.entries:
            lines.append(
                "  note: the list is empty; pycocotools' loadRes cannot read an empty list"
            )
        if self.crowd:
            lines.append(
                f"  {_n(self.crowd, 'crowd region')} left out (areas to ignore, not results)"
            )
        if self.images_left_out:
            named = [f"{i.path} ({i.reason})" for i in self.images_left_out]
            lines.append(
                f"  {_n(len(named), 'image')} ({_n(self.instances_on_left_out, 'instance')}) "
                f"left out, not in {self.ground_truth}: {_names(named)}"
            )
        if self.classes_left_out:
            named = [
                f"{name} ({_n(count, 'instance')}; {self.class_reasons[name]})"
                for name, count in sorted(self.classes_left_out.items())
            ]
            total = sum(self.classes_left_out.values())
            lines.append(
                f"  {_n(len(named), 'class', 'classes')} ({_n(total, 'instance')}) left out, "
                f"not among the categories of {self.ground_truth}: {_names(named)}"
            )
        if self.gt_without_image:
            lines.append(
                f"  note: {_n(len(self.gt_without_image), 'image')} of {self.ground_truth} "
                "not in this folder; COCOeval counts their objects as missed unless "
                f"params.imgIds leaves them out: {_names(self.gt_without_image)}"
            )
        if self.failed:
            lines.append("  " + left_out_summary(self.failed, SHOWN))
        return "\n".join(lines)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _names(names: list[str]) -> str:
    shown = "; ".join(names[:SHOWN])
    return shown + (f"; and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _image_ids(
    project: Project, exported: list[CocoImage], gt: GroundTruth, report: ResultsReport
) -> dict[int, Any]:
    """Export image id (1..n) -> ground-truth image id, for the images the ground truth has."""
    index_of = {id(image): i for i, image in enumerate(gt.images)}
    claims: dict[str, list[int]] = {}
    for gt_image, record in match_images(project.images(), gt.images, ImportReport()):
        claims.setdefault(record.path, []).append(index_of[id(gt_image)])
    placed = {i for found in claims.values() for i in found}
    report.gt_without_image = [
        image.file_name for i, image in enumerate(gt.images) if i not in placed
    ]
    ids: dict[int, Any] = {}
    for export_id, image in enumerate(exported, start=1):
        found = claims.get(image.file_name, [])
        reason = None
        if not found:
            reason = "no image of that name"
        elif len(found) > 1:
            reason = f"{len(found)} images there have that name"
        else:
            theirs = gt.images[found[0]]
            if (theirs.width, theirs.height) != (image.width, image.height):
                reason = (
                    f"{theirs.file_name} there is {theirs.width}x{theirs.height}, "
                    f"this image {image.width}x{image.height}"
                )
        if reason is None:
            ids[export_id] = gt.image_ids[found[0]]
        else:
            report.images_left_out.append(LeftOut(image.file_name, reason))
    return ids


def build_results(
    project: Project,
    *,
    min_score: float = 0.0,
    scope: Scope = Scope.ALL,
    ground_truth: GroundTruth | None = None,
) -> ResultsReport:
    """The results list of what an export of `project` at `min_score` in `scope` writes."""
    selection = select_images(project, scope)
    categories = list(project.categories)
    data = build_coco(selection.images, categories, min_score=min_score)
    report = ResultsReport(failed=selection.left_out)
    names = {c.id: c.name for c in categories}
    if ground_truth is None:
        image_ids: dict[int, Any] = {image["id"]: image["id"] for image in data["images"]}
        category_ids: dict[int, Any] = {c.id: c.id for c in categories}
    else:
        report.ground_truth = ground_truth.path
        image_ids = _image_ids(project, selection.images, ground_truth, report)
        category_ids = {}
        for c in categories:
            if c.name in ground_truth.categories:
                category_ids[c.id] = ground_truth.categories[c.name]
            elif c.name in ground_truth.ambiguous_names:
                report.class_reasons[c.name] = "two categories there have that name"
            else:
                report.class_reasons[c.name] = "no category of that name"
    report.images = len(image_ids)
    lost: Counter[str] = Counter()
    for ann in data["annotations"]:
        if ann["iscrowd"]:
            report.crowd += 1
            continue
        image_id = image_ids.get(ann["image_id"])
        if image_id is None:
            report.instances_on_left_out += 1
            continue
        category_id = category_ids.get(ann["category_id"])
        if category_id is None:
            lost[names[ann["category_id"]]] += 1
            continue
        report.entries.append(
            {
                "image_id": image_id,
                "category_id": category_id,
                "segmentation": ann["segmentation"],
                "bbox": ann["bbox"],
                "score": ann.get("score", HUMAN_SCORE),
            }
        )
    report.classes_left_out = dict(lost)
    return report


def write_results(entries: list[dict[str, Any]], path: Path | str) -> None:
    """Write a results list as JSON, atomically (as write_coco writes a dataset)."""
    write_coco(entries, path)
