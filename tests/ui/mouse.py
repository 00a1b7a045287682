"""Mouse events sent to the canvas at image coordinates, as a person's hand makes them."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from maskdesk.ui.canvas import Canvas

LEFT = Qt.MouseButton.LeftButton


def send(canvas: Canvas, kind: QEvent.Type, x: float, y: float, button=LEFT, mods=None) -> None:
    pos = canvas.image_to_widget(QPointF(x, y))
    up = kind == QEvent.Type.MouseButtonRelease
    buttons = Qt.MouseButton.NoButton if up else button
    event = QMouseEvent(
        kind,
        pos,
        QPointF(canvas.mapToGlobal(pos.toPoint())),
        button,
        buttons,
        mods or Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(canvas, event)
