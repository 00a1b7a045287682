"""The instances panel and the undoable edits behind it, on a real project store: rows a
person sees, requests their clicks make, and what the store and an export hold after undo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QTableView

from maskdesk.core.categories import Category
from maskdesk.core.coco import build_coco
from maskdesk.core.exporting import project_images
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.render import instance_color
from maskdesk.ui.commands import (
    AddInstances,
    DeleteInstances,
    SetImageStatus,
    UndoStacks,
    relabel,
    review,
    set_visible,
)
from maskdesk.ui.instance_model import (
    CLASS,
    SCORE,
    SWATCH,
    VISIBLE,
    ClassEditor,
    InstanceProxy,
    InstanceTableModel,
)


def _disc(cx: int, cy: int, r: int) -> CropMask:
    yy, xx = np.mgrid[: 2 * r + 1, : 2 * r + 1]
    return CropMask(cx - r, cy - r, (xx - r) ** 2 + (yy - r) ** 2 <= r * r)


@pytest.fixture
def project(tmp_path: Path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(folder / "a.png")
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "cat"), Category(2, "dog")])
        rid = project.images()[0].id
        project.set_predictions(
            rid,
            [
                Instance(1, _disc(15, 15, 6), score=0.92),
                Instance(2, _disc(40, 30, 8), score=0.35),
                Instance(1, _disc(65, 40, 5), score=0.61),
            ],
            "coco-v1",
        )
        yield project


def _names(project: Project) -> dict[int, str]:
    return {c.id: c.name for c in project.categories}


def _exported(project: Project, score: float = 0.5) -> list[tuple]:
    data = build_coco(project_images(project), list(project.categories), min_score=score)
    return sorted(
        (a["category_id"], a.get("score"), a["maskdesk"]["review"]) for a in data["annotations"]
    )


def _rows(view_model) -> list[tuple]:
    return [
        tuple(view_model.index(r, c).data() for c in (CLASS, SCORE))
        for r in range(view_model.rowCount())
    ]


def test_the_table_shows_what_a_person_reviews(qtmodeltester, project: Project) -> None:
    image = project.images()[0].id
    model = InstanceTableModel()
    model.set_instances(project.instances(image), _names(project))
    qtmodeltester.check(model)
    proxy = InstanceProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy)
    assert _rows(model) == [("cat", "0.92"), ("dog", "0.35"), ("cat", "0.61")]
    first = model.instance(0)
    assert model.index(0, VISIBLE).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    assert model.index(0, SWATCH).data(Qt.ItemDataRole.DecorationRole) == QColor(
        *instance_color(first.id or 0)
    )
    proxy.sort(SCORE, Qt.SortOrder.DescendingOrder)
    assert [proxy.index(r, SCORE).data() for r in range(3)] == ["0.92", "0.61", "0.35"]


def test_the_score_threshold_hides_rows_at_once_but_never_accepted_ones(
    project: Project,
) -> None:
    image = project.images()[0].id
    instances = project.instances(image)
    project.update_instance(instances[1].with_changes(review=Review.ACCEPTED))  # the 0.35 dog
    model = InstanceTableModel()
    model.set_instances(project.instances(image), _names(project))
    proxy = InstanceProxy()
    proxy.setSourceModel(model)
    proxy.set_min_score(0.7)
    assert _rows(proxy) == [("cat", "0.92"), ("dog", "0.35")]
    proxy.set_min_score(0.95)
    assert _rows(proxy) == [("dog", "0.35")]
    proxy.set_min_score(0.0)
    assert proxy.rowCount() == 3


def test_checkbox_and_class_edits_become_undoable_commands(qtbot, project: Project) -> None:
    image = project.images()[0].id
    stacks = UndoStacks()
    stack = stacks.activate(image)
    model = InstanceTableModel()
    view = QTableView()
    view.setObjectName("instanceTable")
    view.setModel(model)
    view.setItemDelegateForColumn(CLASS, ClassEditor([c.name for c in project.categories]))
    qtbot.addWidget(view)

    def refresh(image_id: int) -> None:
        model.update_instances(project.instances(image_id), _names(project))

    model.set_instances(project.instances(image), _names(project))

    def on_visibility(instance_id: int, visible: bool) -> None:
        stacks.push(image, set_visible(project, [project.instance(instance_id)], visible, refresh))

    def on_relabel(instance_id: int, name: str) -> None:
        stacks.push(image, relabel(project, [project.instance(instance_id)], name, refresh))

    model.visibilityRequested.connect(on_visibility)
    model.relabelRequested.connect(on_relabel)
    before = _exported(project)
    assert before == [(1, 0.61, "pending"), (1, 0.92, "pending")]

    # untick the first row's checkbox, as a click does
    assert model.setData(
        model.index(0, VISIBLE), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole
    )
    assert project.instances(image)[0].visible is False
    assert model.index(0, VISIBLE).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    assert _exported(project) == [(1, 0.61, "pending")]

    # relabel the dog with a new class through the editor
    index = model.index(1, CLASS)
    view.edit(index)
    editor = view.findChild(QComboBox, "classEditor")
    assert editor is not None and [editor.itemText(i) for i in range(editor.count())] == [
        "cat",
        "dog",
    ]
    editor.setCurrentText("fox")
    view.commitData(editor)
    assert project.categories.by_name("fox") is not None
    fox = project.categories.by_name("fox")
    assert fox is not None
    assert model.index(1, CLASS).data() == "fox"
    # a person's class is a decision: the 0.35 fox is accepted and exported now
    assert _exported(project) == [(1, 0.61, "pending"), (fox.id, 0.35, "accepted")]

    stack.undo()
    assert model.index(1, CLASS).data() == "dog"
    assert _exported(project) == [(1, 0.61, "pending")]
    stack.undo()
    assert _exported(project) == before
    assert model.index(0, VISIBLE).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    stack.redo()
    stack.redo()
    assert _exported(project) == [(1, 0.61, "pending"), (fox.id, 0.35, "accepted")]


def test_multi_delete_accept_reject_and_review_undo_exactly(project: Project) -> None:
    record = project.images()[0]
    stacks = UndoStacks()
    stack = stacks.activate(record.id)
    original = project.instances(record.id)
    stacks.push(record.id, DeleteInstances(project, original[:2]))
    assert [i.id for i in project.instances(record.id)] == [original[2].id]
    assert stack.count() == 1  # one step for the two
    stack.undo()
    assert project.instances(record.id) == original
    assert [i.id for i in project.instances(record.id)] == [i.id for i in original]

    stacks.push(record.id, review(project, original[1:2], Review.ACCEPTED, lambda _: None))
    stacks.push(record.id, review(project, original[2:], Review.REJECTED, lambda _: None))
    assert _exported(project) == [(1, 0.92, "pending"), (2, 0.35, "accepted")]
    stacks.push(record.id, SetImageStatus(project, record.id, ImageStatus.REVIEWED))
    assert project.image(record.id).status is ImageStatus.REVIEWED
    stack.undo()
    assert project.image(record.id).status is ImageStatus.PRELABELED
    stack.undo()
    stack.undo()
    assert project.instances(record.id) == original


def test_a_drawn_instance_and_its_undo_restore_the_superseded_prediction(
    project: Project,
) -> None:
    record = project.images()[0]
    stacks = UndoStacks()
    stack = stacks.activate(record.id)
    original = project.instances(record.id)
    drawn = Instance(1, _disc(15, 16, 6), origin=Origin.HUMAN, review=Review.ACCEPTED)
    stacks.push(record.id, AddInstances(project, record.id, [drawn], "Draw"))
    now = project.instances(record.id)
    assert [(i.origin, i.score) for i in now] == [
        (Origin.MODEL, 0.35),
        (Origin.MODEL, 0.61),
        (Origin.HUMAN, None),
    ]
    stack.undo()
    assert project.instances(record.id) == original
    assert [i.id for i in project.instances(record.id)] == [i.id for i in original]
    stack.redo()
    assert [i.id for i in project.instances(record.id)] == [i.id for i in now]
    # a second image has a stack of its own
    assert stacks.stack(record.id + 1000) is not stack
    assert stacks.group.activeStack() is stack
    assert stack.count() == 1


def test_a_painted_table_asks_the_model_once_per_cell(qtbot, project: Project) -> None:
    # A view asks seven roles per cell; answered one `data` call each (a Python call
    # apiece, on the UI thread while a batch runs), the shown image's new predictions cost
    # thousands. The proxy hands the whole span to the model in one call instead.
    calls = {"data": 0, "fill": 0}

    class Counting(InstanceTableModel):
        def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # noqa: ANN001, ANN202
            calls["data"] += 1
            return super().data(index, role)

        def fill(self, row, column, span):  # noqa: ANN001, ANN202
            calls["fill"] += 1
            super().fill(row, column, span)

    model = Counting()
    model.set_instances(project.instances(project.images()[0].id), _names(project))
    proxy = InstanceProxy()
    proxy.setSourceModel(model)
    proxy.sort(SCORE, Qt.SortOrder.DescendingOrder)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.resize(600, 200)
    view.show()
    qtbot.waitExposed(view)
    calls.update(data=0, fill=0)
    view.grab()
    assert calls == {"data": 0, "fill": 3 * 6}  # three rows of six columns, once each

    def answer(row: int, column: int, role: Qt.ItemDataRole) -> object:
        item = QModelRoleData(role)
        proxy.multiData(proxy.index(row, column), QModelRoleDataSpan(item))
        return item.data()

    display = Qt.ItemDataRole.DisplayRole
    assert [(answer(r, CLASS, display), answer(r, SCORE, display)) for r in range(3)] == [
        ("cat", "0.92"),
        ("cat", "0.61"),
        ("dog", "0.35"),
    ]
    assert answer(2, VISIBLE, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    first = proxy.mapToSource(proxy.index(0, 0)).row()
    assert answer(0, SWATCH, Qt.ItemDataRole.DecorationRole) == QColor(
        *instance_color(model.instance(first).id or 0)
    )
    assert answer(0, CLASS, Qt.ItemDataRole.FontRole) is None
