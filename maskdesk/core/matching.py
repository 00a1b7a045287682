"""Which instances are the same object: by mask overlap (IoU), or exactly the same mask.

Boxes are compared before masks, so checking thousands of instances against thousands stays
cheap: only instances whose boxes meet have their masks compared.
"""

from __future__ import annotations

from collections.abc import Iterable

from maskdesk.core.instances import Instance

SAME_OBJECT_IOU = 0.5  # a mask this close to another of the same category is the same object


def _boxes_meet(a: Instance, b: Instance) -> bool:
    am, bm = a.mask, b.mask
    return (
        am.x < bm.x + bm.width
        and bm.x < am.x + am.width
        and am.y < bm.y + bm.height
        and bm.y < am.y + am.height
    )


def same_object(a: Instance, b: Instance, min_iou: float = SAME_OBJECT_IOU) -> bool:
    """Same category and masks overlapping with IoU >= min_iou."""
    return a.category_id == b.category_id and _boxes_meet(a, b) and a.mask.iou(b.mask) >= min_iou


def covering(new: Instance, others: Iterable[Instance]) -> list[Instance]:
    """The instances among `others` that are the same object as `new`."""
    return [other for other in others if same_object(new, other)]


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
