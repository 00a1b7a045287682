"""Category table: stable ids (COCO ids for COCO models) and user-added names."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """One class: its id is what files and the store refer to."""

    id: int
    name: str
    supercategory: str = ""

    def __post_init__(self) -> None:
        if self.id < 1:
            raise ValueError(f"category id must be >= 1, got {self.id}")
        if not self.name.strip():
            raise ValueError("category name must not be empty")
        if self.name.strip().upper() in ("N/A", "__BACKGROUND__"):
            raise ValueError(f"{self.name!r} is a placeholder, not a category")


class CategoryTable:
    """Ordered by id; ids and names are both unique."""

    def __init__(self, categories: Iterable[Category] = ()) -> None:
        self._by_id: dict[int, Category] = {}
        self._by_name: dict[str, Category] = {}
        for category in categories:
            self.insert(category)

    def insert(self, category: Category) -> Category:
        """Add a category with a given id; returns the existing one if identical."""
        same = self._by_id.get(category.id)
        if same is not None:
            if same.name != category.name:
                raise ValueError(
                    f"category id {category.id} is {same.name!r}, not {category.name!r}"
                )
            return same
        if category.name in self._by_name:
            raise ValueError(f"category name {category.name!r} already has another id")
        self._by_id[category.id] = category
        self._by_name[category.name] = category
        return category

    def add(self, name: str) -> Category:
        """The category called `name`, created with the next free id if new."""
        existing = self._by_name.get(name)
        if existing is not None:
            return existing
        return self.insert(Category(max(self._by_id, default=0) + 1, name))

    def by_id(self, category_id: int) -> Category:
        return self._by_id[category_id]

    def by_name(self, name: str) -> Category | None:
        return self._by_name.get(name)

    def name(self, category_id: int) -> str:
        category = self._by_id.get(category_id)
        return category.name if category else f"class {category_id}"

    def __contains__(self, category_id: object) -> bool:
        return category_id in self._by_id

    def __iter__(self) -> Iterator[Category]:
        return iter(sorted(self._by_id.values(), key=lambda c: c.id))

    def __len__(self) -> int:
        return len(self._by_id)


def plan_merge(
    table: CategoryTable, incoming: Iterable[Category]
) -> tuple[dict[int, int], list[Category]]:
    """How to bring another source's categories (a model, a COCO file) into `table`.

    Names decide identity: a name already in the table keeps the table's id. A new name keeps
    its own id when that id is free (so a COCO model's ids stay COCO ids), else gets the next
    free one. Returns the id mapping incoming -> table and the categories to add.
    """
    mapping: dict[int, int] = {}
    added: list[Category] = []
    taken = {c.id for c in table}
    for category in incoming:
        existing = table.by_name(category.name) or next(
            (a for a in added if a.name == category.name), None
        )
        if existing is not None:
            mapping[category.id] = existing.id
            continue
        new_id = category.id if category.id not in taken else max(taken, default=0) + 1
        taken.add(new_id)
        new = Category(new_id, category.name, category.supercategory)
        added.append(new)
        mapping[category.id] = new_id
    return mapping, added
