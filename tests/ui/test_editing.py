"""The repair tools on the real window, driven by mouse events on the canvas: brush, eraser,
polygon, box to mask with the fixture model, split, merge, fill holes, specks; each checked in
the store, in an exported COCO file, and undone."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from maskdesk.core import mask_ops
from maskdesk.core.categories import Category
from maskdesk.core.coco import build_coco
from maskdesk.core.exporting import project_images
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import Project
from maskdesk.datasets.shapes import CLASSES, generate
from maskdesk.ui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MODEL = REPO / "tests" / "fixtures" / "shapes-tiny.pt"
WAIT_MS = 120_000

NO_MODS = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def _square_folder(tmp_path: Path) -> Path:
    """One 80 x 60 grey picture with a stored 10 x 10 square prediction at (35, 25)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((60, 80, 3), 128, dtype=np.uint8))
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "square")])
        record = project.image_by_path("a.png")
        assert record is not None
        bits = np.ones((10, 10), dtype=bool)
        project.add_instance(record.id, Instance(1, CropMask(35, 25, bits), score=0.9))
    return folder


def _open(window: MainWindow, qtbot, folder: Path) -> Project:
    window.score_slider.setValue(0)
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)
    assert window.project is not None
    return window.project


def _mouse(window: MainWindow, kind: QEvent.Type, x: float, y: float, mods=NO_MODS) -> None:
    """A left-button mouse event at image point (x, y) on the canvas."""
    canvas = window.canvas
    pos = canvas.image_to_widget(QPointF(x, y))
    global_pos = QPointF(canvas.mapToGlobal(pos.toPoint()))
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else LEFT
    event = QMouseEvent(kind, pos, global_pos, LEFT, buttons, mods)
    QApplication.sendEvent(canvas, event)


def _drag(window: MainWindow, points: list[tuple[float, float]], mods=NO_MODS) -> None:
    _mouse(window, QEvent.Type.MouseButtonPress, *points[0], mods)
    for x, y in points[1:]:
        _mouse(window, QEvent.Type.MouseMove, x, y, mods)
    _mouse(window, QEvent.Type.MouseButtonRelease, *points[-1], mods)


def _click(window: MainWindow, x: float, y: float) -> None:
    _drag(window, [(x, y)])


def _exported(project: Project) -> list[tuple[str, int, str]]:
    """(class, area, origin) of every exported annotation, sorted."""
    data = build_coco(project_images(project), list(project.categories), min_score=0.5)
    names = {c["id"]: c["name"] for c in data["categories"]}
    return sorted(
        (names[a["category_id"]], int(a["area"]), a["maskdesk"]["origin"])
        for a in data["annotations"]
    )


def _captured(signal) -> list:  # noqa: ANN001
    seen: list = []
    signal.connect(lambda *args: seen.append(args))
    return seen


def test_brush_and_eraser_strokes_edit_the_selected_mask(window: MainWindow, qtbot, tmp_path):
    project = _open(window, qtbot, _square_folder(tmp_path))
    image = window.image_id
    (square,) = project.instances(image)
    _click(window, 40, 30)  # the select tool picks the square
    assert window.canvas.selection() == [square.id]

    window.acts["actionToolBrush"].trigger()
    window.editor.set_radius(3)
    strokes = _captured(window.editor.brush.stroked)
    _drag(window, [(44, 30), (50, 30), (56, 31)])
    ((points, radius, erase),) = strokes
    assert radius == 3 and not erase and len(points) >= 2
    painted = project.instance(square.id)
    assert painted.mask == mask_ops.paint_stroke(square.mask, points, 3, 80, 60)
    assert painted.mask.area > square.mask.area and painted.mask.contains(55.5, 30.5)
    assert painted.review is Review.ACCEPTED  # a person's edit vouches for it
    assert _exported(project) == [("square", painted.mask.area, "model")]

    window.acts["actionToolEraser"].trigger()
    assert window.editor.eraser.radius == 3  # one size for both
    _drag(window, [(40, 20), (40, 40)])
    erased = project.instance(square.id)
    assert not erased.mask.contains(40.5, 30.5) and erased.mask.area < painted.mask.area
    assert _exported(project) == [("square", erased.mask.area, "model")]

    window.acts["actionUndo"].trigger()
    assert project.instance(square.id).mask == painted.mask
    window.acts["actionUndo"].trigger()
    assert project.instance(square.id) == square
    assert _exported(project) == [("square", 100, "model")]
    window.acts["actionRedo"].trigger()
    assert project.instance(square.id).mask == painted.mask

    # The brush radius follows [ and ] and is remembered.
    window.acts["actionBrushLarger"].trigger()
    assert window.editor.brush.radius == pytest.approx(3.75)
    assert float(window.settings.value("brushRadius")) == pytest.approx(3.75)


def test_erasing_a_whole_instance_deletes_it_and_undo_brings_it_back(
    window: MainWindow, qtbot, tmp_path
):
    project = _open(window, qtbot, _square_folder(tmp_path))
    (square,) = project.instances(window.image_id)
    _click(window, 40, 30)
    window.acts["actionToolEraser"].trigger()
    window.editor.set_radius(20)
    _drag(window, [(40, 30)])
    assert project.instances(window.image_id) == []
    window.acts["actionUndo"].trigger()
    assert project.instance(square.id) == square


def test_brush_without_a_selection_draws_a_new_human_instance(window: MainWindow, qtbot, tmp_path):
    project = _open(window, qtbot, _square_folder(tmp_path))
    _click(window, 5, 5)  # background: nothing selected
    assert window.canvas.selection() == []
    window.editor.class_chooser.setCurrentText("scratch")
    window.acts["actionToolBrush"].trigger()
    window.editor.set_radius(2)
    _drag(window, [(10, 50), (25, 50)])
    drawn = [i for i in project.instances(window.image_id) if i.origin is Origin.HUMAN]
    assert len(drawn) == 1
    assert project.categories.name(drawn[0].category_id) == "scratch"
    assert drawn[0].review is Review.ACCEPTED and drawn[0].score is None
    assert window.canvas.selection() == [drawn[0].id]  # the new one is selected
    assert ("scratch", drawn[0].mask.area, "human") in _exported(project)
    window.acts["actionUndo"].trigger()
    assert [i.origin for i in project.instances(window.image_id)] == [Origin.MODEL]


def test_a_polygon_closed_with_enter_is_a_new_instance_and_esc_drops_one(
    window: MainWindow, qtbot, tmp_path
):
    project = _open(window, qtbot, _square_folder(tmp_path))
    window.editor.class_chooser.setCurrentText("roof")
    window.acts["actionToolPolygon"].trigger()
    done = _captured(window.editor.polygon_tool.polygonDone)
    for x, y in [(5, 5), (30, 5), (30, 20), (5, 20)]:
        _click(window, x, y)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    ((points,),) = done
    roof = project.categories.by_name("roof")
    assert roof is not None
    (drawn,) = [i for i in project.instances(window.image_id) if i.category_id == roof.id]
    assert drawn.mask == mask_ops.polygon(points, 80, 60)
    assert drawn.origin is Origin.HUMAN and 300 < drawn.mask.area < 450  # about 25 x 15
    assert ("roof", drawn.mask.area, "human") in _exported(project)

    # Esc drops a half-drawn polygon; a second Esc goes back to the select tool.
    _click(window, 50, 50)
    _click(window, 60, 50)
    QTest.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.editor.polygon_tool.points == []
    assert len(project.instances(window.image_id)) == 2
    QTest.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.editor.current() == "select"

    window.acts["actionUndo"].trigger()
    assert len(project.instances(window.image_id)) == 1


def test_split_merge_fill_holes_and_specks(window: MainWindow, qtbot, tmp_path):
    folder = _square_folder(tmp_path)
    with Project.open(folder) as stored:
        record = stored.image_by_path("a.png")
        assert record is not None
        ring = np.ones((9, 9), dtype=bool)
        ring[3:6, 3:6] = False  # a hole of 9 pixels
        ring[0, 0] = False
        two = np.zeros((5, 20), dtype=bool)
        two[:, :4] = True
        two[:, 10:] = True
        two[0, 7] = True  # a one-pixel speck between the parts
        stored.add_instance(record.id, Instance(1, CropMask(2, 2, ring), score=0.8))
        stored.add_instance(record.id, Instance(1, CropMask(2, 40, two), score=0.7))
    project = _open(window, qtbot, folder)
    image = window.image_id
    square, ringed, parts = project.instances(image)

    window.select_ids([ringed.id])
    window.acts["actionFillHoles"].trigger()
    assert project.instance(ringed.id).mask.area == 80  # 81 minus the corner
    window.acts["actionUndo"].trigger()
    assert project.instance(ringed.id) == ringed

    window.select_ids([parts.id])
    window.editor.speck_size.setValue(2)
    window.acts["actionRemoveSpecks"].trigger()
    assert project.instance(parts.id).mask.area == parts.mask.area - 1
    window.acts["actionUndo"].trigger()

    window.select_ids([parts.id])
    window.acts["actionSplitInstance"].trigger()
    pieces = [i for i in project.instances(image) if i.id not in (square.id, ringed.id)]
    assert sorted(p.mask.area for p in pieces) == [1, 20, 50]
    assert all(p.review is Review.ACCEPTED and p.category_id == 1 for p in pieces)
    assert sorted(window.canvas.selection()) == sorted(p.id for p in pieces)
    window.acts["actionUndo"].trigger()
    assert project.instances(image) == [square, ringed, parts]
    assert [i.id for i in project.instances(image)] == [square.id, ringed.id, parts.id]

    window.select_ids([square.id, ringed.id])
    window.acts["actionMergeInstances"].trigger()
    (merged,) = [i for i in project.instances(image) if i.id != parts.id]
    assert merged.mask == square.mask.union(ringed.mask)
    assert len(_exported(project)) == 2
    window.acts["actionUndo"].trigger()
    assert [i.id for i in project.instances(image)] == [square.id, ringed.id, parts.id]


def _shapes_folder(tmp_path: Path) -> tuple[Path, list]:
    """A held-out shapes picture (seed 1000, never seen in training) and its shapes."""
    folder = tmp_path / "shapes"
    folder.mkdir()
    for index in range(20):
        sample = generate(1000, index, 256)
        if len(sample.shapes) >= 2:
            cv2.imwrite(str(folder / "s.png"), sample.image[:, :, ::-1])
            return folder, list(zip(sample.shapes, sample.visible, strict=True))
    raise AssertionError("no sample with two shapes")


def test_box_to_mask_asks_the_loaded_model_and_is_undone(window: MainWindow, qtbot, tmp_path):
    folder, shapes = _shapes_folder(tmp_path)
    project = _open(window, qtbot, folder)
    image = window.image_id
    window.acts["actionToolBox"].trigger()
    shape, visible = shapes[0]
    ys, xs = np.nonzero(visible)
    box = [(xs.min() - 1.0, ys.min() - 1.0), (xs.max() + 2.0, ys.max() + 2.0)]
    with qtbot.waitSignal(window.inference.boxMasked, timeout=WAIT_MS):
        _drag(window, [box[0], ((box[0][0] + box[1][0]) / 2, box[0][1] + 3), box[1]])
    (made,) = project.instances(image)
    assert project.categories.name(made.category_id) == CLASSES[shape.category_id - 1]
    assert made.origin is Origin.HUMAN and made.review is Review.ACCEPTED
    truth = CropMask.from_full(visible)
    assert made.mask.iou(truth) > 0.7
    assert _exported(project) == [(CLASSES[shape.category_id - 1], made.mask.area, "human")]

    # Shift+drag keeps the class chosen in the toolbar.
    window.editor.class_chooser.setCurrentText("blob")
    shape2, visible2 = shapes[1]
    ys, xs = np.nonzero(visible2)
    corners = [(xs.min() - 1.0, ys.min() - 1.0), (xs.max() + 2.0, ys.max() + 2.0)]
    with qtbot.waitSignal(window.inference.boxMasked, timeout=WAIT_MS):
        _drag(window, corners, Qt.KeyboardModifier.ShiftModifier)
    names = sorted(project.categories.name(i.category_id) for i in project.instances(image))
    assert "blob" in names and len(names) == 2

    window.acts["actionUndo"].trigger()
    window.acts["actionUndo"].trigger()
    assert project.instances(image) == []


def test_merge_of_different_classes_asks_which_to_keep(
    window: MainWindow, qtbot, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QInputDialog

    folder = _square_folder(tmp_path)
    with Project.open(folder) as stored:
        stored.ensure_categories([Category(2, "circle")])
        record = stored.image_by_path("a.png")
        assert record is not None
        bits = np.ones((4, 4), dtype=bool)
        stored.add_instance(record.id, Instance(2, CropMask(2, 2, bits), score=0.8))
        stored.add_instance(record.id, Instance(1, CropMask(60, 2, bits), score=0.7))
    project = _open(window, qtbot, folder)
    image = window.image_id
    square, circle, small_square = project.instances(image)
    asked: list[list[str]] = []

    def get_item(parent, title, label, items, current=0, editable=True):  # noqa: ANN001
        asked.append(list(items))
        return answer[0], answer[1]

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(get_item))

    # Same class: merged as before, nobody asked.
    answer = ("", False)
    window.select_ids([square.id, small_square.id])
    window.acts["actionMergeInstances"].trigger()
    assert asked == [] and len(project.instances(image)) == 2
    window.acts["actionUndo"].trigger()

    # Different classes, cancelled: nothing merged, undo untouched.
    window.select_ids([square.id, circle.id])
    window.acts["actionMergeInstances"].trigger()
    assert asked == [["square", "circle"]]  # the largest one's class first
    assert len(project.instances(image)) == 3
    # Different classes, the smaller one's class chosen.
    answer = ("circle", True)
    window.select_ids([square.id, circle.id])
    window.acts["actionMergeInstances"].trigger()
    (merged,) = [i for i in project.instances(image) if i.id != small_square.id]
    assert merged.category_id == 2
    assert merged.mask == square.mask.union(circle.mask)
    window.acts["actionUndo"].trigger()
    assert project.instances(image) == [square, circle, small_square]
