"""One detected or drawn object: category, score, box, box-local mask, origin, review state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from maskdesk.core.masks import CropMask


class Origin(StrEnum):
    MODEL = "model"
    HUMAN = "human"


class Review(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in upright image pixels


@dataclass(frozen=True)
class Instance:
    """An object on one image, an immutable value: edits make a new one (`with_changes`).

    `id` and `image_id` are given by the project store once saved. `box` is the model's own
    box for a detection; when none is given it is the mask's tight box, and a new mask without
    a new box gets its own tight box (`with_changes`). A `crowd` instance is a COCO crowd
    region (`iscrowd: 1`): a group of objects, kept and exported as such.
    """

    category_id: int
    mask: CropMask
    score: float | None = None
    box: Box | None = None
    origin: Origin = Origin.MODEL
    review: Review = Review.PENDING
    visible: bool = True
    crowd: bool = False
    id: int | None = field(default=None, compare=False)
    image_id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.category_id < 1:
            raise ValueError(f"category id must be >= 1, got {self.category_id}")
        if self.score is not None:
            if not 0.0 <= self.score <= 1.0:
                raise ValueError(f"score must be within [0, 1], got {self.score}")
            object.__setattr__(self, "score", float(self.score))
        if self.box is None:
            x, y, w, h = self.mask.bbox()
            box = (float(x), float(y), float(x + w), float(y + h))
        else:
            x0, y0, x1, y1 = (float(v) for v in self.box)
            if x1 < x0 or y1 < y0:
                raise ValueError(f"box corners out of order: {self.box}")
            box = (x0, y0, x1, y1)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "origin", Origin(self.origin))
        object.__setattr__(self, "review", Review(self.review))
        object.__setattr__(self, "visible", bool(self.visible))
        object.__setattr__(self, "crowd", bool(self.crowd))

    @property
    def decided(self) -> bool:
        """A person's work: drawn by a person, or a prediction a person accepted, rejected or
        hid (the next run of the model keeps it)."""
        return not (self.origin is Origin.MODEL and self.review is Review.PENDING and self.visible)

    def exported(self, min_score: float = 0.0) -> bool:
        """Whether this instance goes into an export at the given score threshold.

        Hidden, rejected and empty instances never do; accepted ones and human ones always
        do, whatever their score, since a person vouched for them.
        """
        if not self.visible or self.review is Review.REJECTED or self.mask.is_empty():
            return False
        if self.review is Review.ACCEPTED or self.score is None:
            return True
        return self.score >= min_score

    def with_changes(self, **changes: object) -> Instance:
        """A copy with these fields changed; a new mask brings its own box unless one is given."""
        if "mask" in changes and "box" not in changes:
            changes["box"] = None
        return replace(self, **changes)  # type: ignore[arg-type]
