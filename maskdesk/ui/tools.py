"""Editing tools as small state machines over the canvas's left-button events.

The canvas hands a tool the events in image coordinates and lets it paint its preview
(with the image-to-widget transform set). A tool keeps no document: it emits what the person
drew (a box, a brush stroke, a polygon) and the editor turns that into an undoable edit.
Middle drag and Space+drag still pan, and the wheel still zooms, whatever the tool.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen

Point = tuple[float, float]

MIN_RADIUS = 0.5
MAX_RADIUS = 500.0
RADIUS_STEP = 1.25  # [ and ] change the brush radius by this factor
CLOSE_DISTANCE = 8.0  # screen pixels: a click this close to the first vertex closes a polygon


def _pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    return pen


class Tool(QObject):
    """The select tool, and the base of the others: clicks select (the canvas does that)."""

    name = "select"
    changed = Signal()  # the preview changed: repaint

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.hover: QPointF | None = None

    @property
    def cursor(self) -> Qt.CursorShape:
        return Qt.CursorShape.ArrowCursor

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier, scale: float) -> bool:
        """A left press at an image point; False lets the canvas select as usual."""
        return False

    def move(self, pos: QPointF, dragging: bool) -> None:
        self.hover = pos
        if self.active():
            self.changed.emit()

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        """The left button came up at an image point."""

    def double_click(self, pos: QPointF) -> bool:
        return False

    def key(self, key: int) -> bool:
        """A key press while the canvas has focus; True when the tool used it. Esc drops
        a gesture in progress."""
        if key == Qt.Key.Key_Escape and self.active():
            self.cancel()
            return True
        return False

    def cancel(self) -> None:
        """Drop a gesture in progress (another tool, another image, Esc)."""

    def active(self) -> bool:
        """A gesture is in progress."""
        return False

    def paint(self, painter: QPainter, scale: float) -> None:
        """Draw the preview; the painter maps image coordinates to the widget."""


class BoxTool(Tool):
    """Drag a box; the model draws the mask inside it. Shift keeps the toolbar's class."""

    name = "box"
    boxDrawn = Signal(float, float, float, float, bool)  # x0, y0, x1, y1, keep class

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._start: QPointF | None = None
        self._end: QPointF | None = None
        self._min_size = 1.0

    @property
    def cursor(self) -> Qt.CursorShape:
        return Qt.CursorShape.CrossCursor

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier, scale: float) -> bool:
        self._start = self._end = pos
        self._min_size = 3.0 / scale  # a box smaller than 3 screen pixels is a slip
        self.changed.emit()
        return True

    def move(self, pos: QPointF, dragging: bool) -> None:
        if self._start is not None and dragging:
            self._end = pos
        super().move(pos, dragging)

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        if self._start is None:
            return
        rect = QRectF(self._start, pos).normalized()
        self.cancel()
        if rect.width() >= self._min_size and rect.height() >= self._min_size:
            keep = bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
            self.boxDrawn.emit(rect.left(), rect.top(), rect.right(), rect.bottom(), keep)

    def cancel(self) -> None:
        self._start = self._end = None
        self.changed.emit()

    def active(self) -> bool:
        return self._start is not None

    def paint(self, painter: QPainter, scale: float) -> None:
        if self._start is None or self._end is None:
            return
        rect = QRectF(self._start, self._end).normalized()
        painter.setPen(_pen(QColor(255, 255, 255), 3.0))
        painter.drawRect(rect)
        painter.setPen(_pen(QColor(0, 120, 255), 1.5, Qt.PenStyle.DashLine))
        painter.drawRect(rect)


class BrushTool(Tool):
    """Paint (or, as the eraser, remove) with a round brush; a stroke is one edit."""

    stroked = Signal(list, float, bool)  # points, radius, erase

    def __init__(self, erase: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.erase = erase
        self.name = "eraser" if erase else "brush"
        self.radius = 10.0
        self._points: list[Point] = []

    @property
    def cursor(self) -> Qt.CursorShape:
        return Qt.CursorShape.BlankCursor  # the circle drawn in paint() is the cursor

    def set_radius(self, radius: float) -> None:
        self.radius = min(MAX_RADIUS, max(MIN_RADIUS, float(radius)))
        self.changed.emit()

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier, scale: float) -> bool:
        self._points = [(pos.x(), pos.y())]
        self.hover = pos
        self.changed.emit()
        return True

    def move(self, pos: QPointF, dragging: bool) -> None:
        self.hover = pos
        if self._points and dragging:
            last = self._points[-1]
            # Points closer than a quarter of the radius add nothing a user could see.
            if (pos.x() - last[0]) ** 2 + (pos.y() - last[1]) ** 2 >= (self.radius / 4) ** 2:
                self._points.append((pos.x(), pos.y()))
        self.changed.emit()

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        if not self._points:
            return
        if (pos.x(), pos.y()) != self._points[-1]:
            self._points.append((pos.x(), pos.y()))
        points, self._points = self._points, []
        self.changed.emit()
        self.stroked.emit(points, self.radius, self.erase)

    def cancel(self) -> None:
        self._points = []
        self.changed.emit()

    def active(self) -> bool:
        return bool(self._points)

    def paint(self, painter: QPainter, scale: float) -> None:
        color = QColor(255, 60, 60) if self.erase else QColor(255, 255, 255)
        if self._points:
            path = QPainterPath(QPointF(*self._points[0]))
            for x, y in self._points[1:]:
                path.lineTo(x, y)
            fill = QColor(color)
            fill.setAlpha(110)
            pen = QPen(fill, 2 * self.radius)  # in image pixels: the stroke's true width
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            painter.setPen(pen)
            if len(self._points) == 1:
                painter.drawPoint(QPointF(*self._points[0]))
            else:
                painter.drawPath(path)
        if self.hover is not None:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(_pen(QColor(0, 0, 0), 3.0))
            painter.drawEllipse(self.hover, self.radius, self.radius)
            painter.setPen(_pen(color, 1.5))
            painter.drawEllipse(self.hover, self.radius, self.radius)


class PolygonTool(Tool):
    """Click vertices; Enter, a double click or a click on the first vertex closes the
    polygon (three vertices at least); Esc drops it."""

    name = "polygon"
    polygonDone = Signal(list)  # [(x, y), ...] in image pixels

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.points: list[Point] = []
        self._scale = 1.0

    @property
    def cursor(self) -> Qt.CursorShape:
        return Qt.CursorShape.CrossCursor

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier, scale: float) -> bool:
        self._scale = scale
        if len(self.points) >= 3:
            fx, fy = self.points[0]
            if ((pos.x() - fx) ** 2 + (pos.y() - fy) ** 2) ** 0.5 * scale <= CLOSE_DISTANCE:
                self.close()
                return True
        if not self.points or (pos.x(), pos.y()) != self.points[-1]:
            self.points.append((pos.x(), pos.y()))
        self.changed.emit()
        return True

    def double_click(self, pos: QPointF) -> bool:
        # The double click's first press already added its vertex.
        self.close()
        return True

    def key(self, key: int) -> bool:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.points:
            self.close()
            return True
        return super().key(key)

    def close(self) -> None:
        points = self.points
        self.cancel()
        if len(points) >= 3:
            self.polygonDone.emit(points)

    def cancel(self) -> None:
        self.points = []
        self.changed.emit()

    def active(self) -> bool:
        return bool(self.points)

    def paint(self, painter: QPainter, scale: float) -> None:
        if not self.points:
            return
        path = QPainterPath(QPointF(*self.points[0]))
        for x, y in self.points[1:]:
            path.lineTo(x, y)
        if self.hover is not None:
            path.lineTo(self.hover)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(_pen(QColor(0, 0, 0), 3.0))
        painter.drawPath(path)
        painter.setPen(_pen(QColor(255, 220, 0), 1.5))
        painter.drawPath(path)
        painter.setBrush(QColor(255, 220, 0))
        for x, y in self.points:
            painter.drawEllipse(QPointF(x, y), 3.0 / scale, 3.0 / scale)
