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


@dataclass
class Instance:
    """An object on one image. `id` is given by the project store once saved."""

    category_id: int
    mask: CropMask
    score: float | None = None
    box: Box | None = None
    origin: Origin = Origin.MODEL
    review: Review = Review.PENDING
    visible: bool = True
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.category_id < 1:
            raise ValueError(f"category id must be >= 1, got {self.category_id}")
        if self.score is not None:
            if not 0.0 <= self.score <= 1.0:
                raise ValueError(f"score must be within [0, 1], got {self.score}")
            self.score = float(self.score)
        if self.box is None:
            x, y, w, h = self.mask.bbox()
            self.box = (float(x), float(y), float(x + w), float(y + h))
        else:
            x0, y0, x1, y1 = (float(v) for v in self.box)
            if x1 < x0 or y1 < y0:
                raise ValueError(f"box corners out of order: {self.box}")
            self.box = (x0, y0, x1, y1)
        self.origin = Origin(self.origin)
        self.review = Review(self.review)

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
        return replace(self, **changes)  # type: ignore[arg-type]
