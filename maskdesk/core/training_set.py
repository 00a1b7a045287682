"""What a model trains and is measured on: the folder's reviewed images, split into training
and held-out images (core.holdout), as two COCO files with the same categories.

Ground truth on a reviewed image is what an export of it writes at the export's default score
(`Instance.exported`): drawn and accepted instances, and shown predictions the person left in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from maskdesk.core.categories import Category
from maskdesk.core.coco import CocoImage, build_coco, write_coco
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.exporting import Scope, select_images
from maskdesk.core.holdout import MIN_HELD_OUT, split
from maskdesk.core.project import Project
from maskdesk.core.project_models import held_out_before

GROUND_TRUTH_SCORE = 0.5  # export's default score
FEW_INSTANCES = 5  # below this many, a class is hardly learnt


@dataclass
class TrainingSet:
    """Reviewed images on each side of the split, and the categories they use."""

    categories: list[Category]
    train: list[CocoImage]
    held_out: list[CocoImage]
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (train, held)

    @property
    def classes(self) -> list[str]:
        """The classes of a model trained on this set (one with no training instance is
        among them, but never learnt: `warnings` says so)."""
        return [c.name for c in self.categories]

    def warnings(self) -> list[str]:
        """What makes the figures or the model weak, one sentence each."""
        notes = []
        for name, (train, held) in self.counts.items():
            if train + held < FEW_INSTANCES:
                notes.append(
                    f"{name!r} has only {train + held} instances; about {FEW_INSTANCES} or more "
                    "are needed to learn a class."
                )
            if held == 0:
                notes.append(
                    f"{name!r} has no instance on a held-out image: its AP is not measured."
                )
            if train == 0:
                notes.append(
                    f"{name!r} has no instance to train on: the new model will not know it."
                )
        return notes

    def check(self) -> None:
        """Refuse a set nothing can be learnt or measured from, saying what to do."""
        n = len(self.train) + len(self.held_out)
        if n > MIN_HELD_OUT and not self.train:
            raise MaskdeskError(
                f"All {n} reviewed images are held out to measure the model (they are chosen "
                "by a hash of their paths, the same in every round); review more images to "
                "have some to train on."
            )
        if len(self.held_out) < MIN_HELD_OUT or not self.train:
            raise MaskdeskError(
                f"{n} image{'s are' if n != 1 else ' is'} marked reviewed; training needs at "
                f"least {MIN_HELD_OUT + 1} ({MIN_HELD_OUT} are held out to measure the model). "
                "Review more images first."
            )
        if not any(train for train, _ in self.counts.values()):
            raise MaskdeskError(
                "The reviewed images left to train on hold no instances; draw or accept the "
                "objects on them, or review more images."
            )

    def coco(self, held_out: bool) -> dict:
        """The COCO dict of one side, with every category of the set."""
        images = self.held_out if held_out else self.train
        return build_coco(images, self.categories, min_score=GROUND_TRUTH_SCORE)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """train.json and held_out.json in `directory`; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = directory / "train.json", directory / "held_out.json"
        write_coco(self.coco(False), paths[0])
        write_coco(self.coco(True), paths[1])
        return paths


def collect(project: Project) -> TrainingSet:
    """The folder's reviewed images as they are now, split as in every round."""
    images = select_images(project, Scope.REVIEWED).images
    train_paths, held_paths = split([im.file_name for im in images], held_out_before(project))
    by_path = {im.file_name: im for im in images}
    names = {c.id: c.name for c in project.categories}
    counts: dict[str, Counter[bool]] = {}
    for side, paths in ((False, train_paths), (True, held_paths)):
        for path in paths:
            for inst in by_path[path].instances:
                if inst.exported(GROUND_TRUTH_SCORE):
                    tally = counts.setdefault(names[inst.category_id], Counter())
                    tally[side] += 0 if inst.crowd else 1
    used = [c for c in project.categories if c.name in counts]
    return TrainingSet(
        used,
        [by_path[p] for p in train_paths],
        [by_path[p] for p in held_paths],
        {c.name: (counts[c.name][False], counts[c.name][True]) for c in used},
    )
