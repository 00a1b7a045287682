"""Which instances are the same object: by mask overlap (IoU), or exactly the same mask.

Boxes are compared before masks, so checking thousands of instances against thousands stays
cheap: only instances whose boxes meet have their masks compared.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from maskdesk.core.instances import Instance

SAME_OBJECT_IOU = 0.5  # a mask this close to another of the same category is the same object


def same_object(a: Instance, b: Instance, min_iou: float = SAME_OBJECT_IOU) -> bool:
    """Same category and masks overlapping with IoU >= min_iou."""
    return a.category_id == b.category_id and a.mask.iou(b.mask) >= min_iou


class Candidates:
    """Instances that a new one may be the same object as; boxes are checked as arrays first,
    so each new instance costs one vectorised test plus the masks its box meets."""

    def __init__(self, instances: Iterable[Instance]) -> None:
        self.items = list(instances)
        self._cats = np.array([i.category_id for i in self.items], dtype=np.int64)
        self._boxes = np.array(
            [
                (i.mask.x, i.mask.y, i.mask.x + i.mask.width, i.mask.y + i.mask.height)
                for i in self.items
            ],
            dtype=np.int64,
        ).reshape(-1, 4)
        self._alive = np.ones(len(self.items), dtype=bool)

    def covering(self, new: Instance, *, remove: bool = False) -> list[Instance]:
        """The instances that are the same object as `new` (and, with `remove`, forget them)."""
        m = new.mask
        b = self._boxes
        near = np.flatnonzero(
            self._alive
            & (self._cats == new.category_id)
            & (b[:, 0] < m.x + m.width)
            & (m.x < b[:, 2])
            & (b[:, 1] < m.y + m.height)
            & (m.y < b[:, 3])
        )
        hits = [int(i) for i in near if same_object(new, self.items[i])]
        if remove:
            self._alive[hits] = False
        return [self.items[i] for i in hits]


def covering(new: Instance, others: Iterable[Instance]) -> list[Instance]:
    """The instances among `others` that are the same object as `new`."""
    return Candidates(others).covering(new)


class ExactIndex:
    """Finds an instance with the same category, crowd flag and mask, via a key of its box."""

    def __init__(self, instances: Iterable[Instance] = ()) -> None:
        self._by_key: dict[tuple[object, ...], list[Instance]] = {}
        for instance in instances:
            self.add(instance)

    @staticmethod
    def _key(instance: Instance) -> tuple[object, ...]:
        return (instance.category_id, instance.crowd, instance.mask.bbox(), instance.mask.area)

    def add(self, instance: Instance) -> None:
        self._by_key.setdefault(self._key(instance), []).append(instance)

    def contains(self, instance: Instance) -> bool:
        return any(o.mask == instance.mask for o in self._by_key.get(self._key(instance), []))
