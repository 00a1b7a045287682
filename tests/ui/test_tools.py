"""The canvas tools as state machines: what each emits for a gesture, on a real canvas with
synthetic mouse and key events."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtTest import QTest

from maskdesk.ui.canvas import Canvas
from maskdesk.ui.tools import BoxTool, BrushTool, PolygonTool
from tests.ui.mouse import LEFT, send


@pytest.fixture
def canvas(qtbot):
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    canvas.set_image(np.full((150, 200, 3), 90, dtype=np.uint8))  # fitted: 2 px per pixel
    return canvas


def drag(canvas: Canvas, points, button=LEFT, mods=None) -> None:  # noqa: ANN001
    send(canvas, QEvent.Type.MouseButtonPress, *points[0], button, mods)
    for x, y in points[1:]:
        send(canvas, QEvent.Type.MouseMove, x, y, button, mods)
    send(canvas, QEvent.Type.MouseButtonRelease, *points[-1], button, mods)


def collect(signal) -> list:  # noqa: ANN001
    seen: list = []
    signal.connect(lambda *args: seen.append(args))
    return seen


def test_box_tool_emits_the_dragged_box_in_image_pixels(canvas: Canvas) -> None:
    assert canvas.scale() == pytest.approx(2.0)
    tool = BoxTool()
    canvas.set_tool(tool)
    boxes = collect(tool.boxDrawn)
    drag(canvas, [(120, 90), (60, 40)])  # dragged up-left: corners come out in order
    drag(canvas, [(10, 10), (10.5, 10.5)])  # 1 screen pixel: a slip, not a box
    drag(canvas, [(5, 5), (30, 20)], mods=Qt.KeyboardModifier.ShiftModifier)
    assert boxes == [(60.0, 40.0, 120.0, 90.0, False), (5.0, 5.0, 30.0, 20.0, True)]
    assert canvas.selection() == []  # the tool's clicks never select


def test_polygon_closes_on_its_first_vertex_on_a_double_click_or_with_enter(
    canvas: Canvas,
) -> None:
    tool = PolygonTool()
    canvas.set_tool(tool)
    done = collect(tool.polygonDone)
    for x, y in [(10, 10), (50, 10), (50, 40), (10.5, 10.5)]:  # the last lands on the first
        drag(canvas, [(x, y)])
    assert done == [([(10.0, 10.0), (50.0, 10.0), (50.0, 40.0)],)]
    for x, y in [(60, 60), (90, 60)]:
        drag(canvas, [(x, y)])
    QTest.keyClick(canvas, Qt.Key.Key_Return)  # two vertices: nothing to close
    assert len(done) == 1 and tool.points == []
    for x, y in [(60, 60), (90, 60), (90, 90)]:
        drag(canvas, [(x, y)])
    send(canvas, QEvent.Type.MouseButtonDblClick, 90, 90)
    assert done[-1] == ([(60.0, 60.0), (90.0, 60.0), (90.0, 90.0)],)


def test_brush_stroke_points_and_the_cursor_circle(canvas: Canvas) -> None:
    tool = BrushTool()
    tool.set_radius(5)
    canvas.set_tool(tool)
    strokes = collect(tool.stroked)
    send(canvas, QEvent.Type.MouseMove, 100, 75, Qt.MouseButton.NoButton)
    shot = canvas.grab().toImage()
    rim = canvas.image_to_widget(QPointF(105, 75))  # on the circle of radius 5
    centre = canvas.image_to_widget(QPointF(100, 75))
    assert shot.pixelColor(rim.toPoint()).getRgb()[:3] != (90, 90, 90)
    assert shot.pixelColor(centre.toPoint()).getRgb()[:3] == (90, 90, 90)
    drag(canvas, [(20, 20), (20.5, 20), (40, 20), (40, 30)])
    ((points, radius, erase),) = strokes
    # Moves closer than a quarter radius are dropped; the release point ends the stroke.
    assert points == [(20.0, 20.0), (40.0, 20.0), (40.0, 30.0)] and radius == 5 and not erase
    tool.set_radius(0)
    assert tool.radius == 0.5  # never a brush that paints nothing


def test_middle_drag_pans_and_esc_drops_a_gesture_whatever_the_tool(canvas: Canvas) -> None:
    tool = BoxTool()
    canvas.set_tool(tool)
    boxes = collect(tool.boxDrawn)
    before = canvas.image_to_widget(QPointF(0, 0))
    drag(canvas, [(50, 50), (70, 60)], button=Qt.MouseButton.MiddleButton)
    after = canvas.image_to_widget(QPointF(0, 0))
    assert (after - before).x() == pytest.approx(40) and boxes == []
    send(canvas, QEvent.Type.MouseButtonPress, 10, 10)
    send(canvas, QEvent.Type.MouseMove, 40, 40)
    assert tool.active()
    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    assert not tool.active()
    send(canvas, QEvent.Type.MouseButtonRelease, 40, 40)
    assert boxes == []
