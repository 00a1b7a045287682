import pytest

from maskdesk.core.categories import Category, CategoryTable, plan_merge


def test_add_gives_next_free_id_and_reuses_names() -> None:
    table = CategoryTable([Category(1, "person"), Category(18, "dog")])
    cat = table.add("cat")
    assert cat.id == 19
    assert table.add("dog").id == 18
    assert [c.name for c in table] == ["person", "dog", "cat"]


def test_placeholders_and_conflicts_are_refused() -> None:
    with pytest.raises(ValueError):
        Category(12, "N/A")
    with pytest.raises(ValueError):
        Category(0, "__background__")
    table = CategoryTable([Category(1, "person")])
    with pytest.raises(ValueError):
        table.insert(Category(1, "car"))
    with pytest.raises(ValueError):
        table.insert(Category(2, "person"))


def test_plan_merge_keeps_names_and_free_ids() -> None:
    table = CategoryTable([Category(1, "circle"), Category(2, "square")])
    incoming = [Category(1, "person"), Category(2, "circle"), Category(44, "bottle")]
    mapping, added = plan_merge(table, incoming)
    assert mapping == {1: 3, 2: 1, 44: 44}
    assert added == [Category(3, "person"), Category(44, "bottle")]
