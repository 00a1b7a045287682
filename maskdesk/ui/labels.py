"""Greedy placement of instance labels so that no label covers another.

Each label goes above its box if there is room, else inside the box's top when the label is
small beside the object, else below it; a spot taken by an earlier label moves it further
away from the box, row by row. A label with no free spot is left out rather than drawn over
another one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter

from maskdesk.core.render import text_color

MAX_SHIFTS = 8
LABEL_PAD = 2.0
MIN_LABEL_ROOM = 140.0  # px a label may take beside a small object


def _fits(rect: QRectF, bounds: QRectF, placed: list[QRectF]) -> bool:
    if rect.top() < bounds.top() or rect.bottom() > bounds.bottom():
        return False
    return not any(rect.intersects(other) for other in placed)


def place_labels(
    requests: Iterable[tuple[int, QRectF, QSizeF]], bounds: QRectF
) -> dict[int, QRectF]:
    """Rects for (key, box, label size) requests, in order: earlier ones get the best spots.

    Boxes, sizes and bounds share one coordinate system (the widget's).
    """
    placed: list[QRectF] = []
    result: dict[int, QRectF] = {}
    for key, box, size in requests:
        w, h = size.width(), size.height()
        # Horizontally the label starts at the box's left edge, kept inside the bounds.
        left = min(max(box.left(), bounds.left()), max(bounds.left(), bounds.right() - w))
        inside_ok = w * h <= 0.5 * box.width() * box.height() and box.height() >= 2 * h
        # (start top, step): above moves up, inside and below move down.
        starts = [(box.top() - h, -h)]
        if inside_ok:
            starts.append((box.top(), h))
        starts.append((box.bottom(), h))
        for top, step in starts:
            found = None
            for shift in range(MAX_SHIFTS):
                rect = QRectF(left, top + shift * step, w, h)
                if step > 0 and inside_ok and top == box.top() and rect.bottom() > box.bottom():
                    break  # the inside spot only moves within the box
                if _fits(rect, bounds, placed):
                    found = rect
                    break
            if found is not None:
                placed.append(found)
                result[key] = found
                break
    return result


def label_texts(name: str, score: float | None) -> tuple[str, ...]:
    """An instance's label choices, longest first: with its score, then the name alone."""
    return (name,) if score is None else (f"{name} {score:.2f}", name)


def lay_out(
    entries: Iterable[tuple[int, QRectF, str | Sequence[str]]],
    metrics: QFontMetricsF,
    bounds: QRectF,
) -> dict[int, tuple[QRectF, str]]:
    """Label rect and text for (key, box, text) entries, best spots first. A text may be a
    list of choices, longest first ("name score", "name"): the first that fits is used, and
    only the last is ever cut short ("triangle 0...." read as a class name that was cut)."""
    requests = []
    texts: dict[int, str] = {}
    for key, box, choices in entries:
        if not box.intersects(bounds):
            continue
        options = [choices] if isinstance(choices, str) else list(choices)
        # Labels may be wider than a small object: placement keeps them apart.
        room = max(box.width(), MIN_LABEL_ROOM) - 2 * LABEL_PAD
        fitting = ((t, metrics.horizontalAdvance(t)) for t in options)
        text, width = next(((t, w) for t, w in fitting if w <= room), ("", 0.0))
        if not text:
            text = metrics.elidedText(options[-1], Qt.TextElideMode.ElideRight, room)
            width = metrics.horizontalAdvance(text)
        size = QSizeF(width + 2 * LABEL_PAD, metrics.height() + 2 * LABEL_PAD)
        requests.append((key, box, size))
        texts[key] = text
    rects = place_labels(requests, bounds)
    return {k: (rect, texts[k]) for k, rect in rects.items()}


def paint_label(painter: QPainter, rect: QRectF, text: str, color: tuple[int, int, int]) -> None:
    """A tag in the instance's colour with black or white text, whichever reads better."""
    painter.fillRect(rect, QColor(*color))
    painter.setPen(QColor(*text_color(color)))
    painter.drawText(
        rect.adjusted(LABEL_PAD, LABEL_PAD, -LABEL_PAD, -LABEL_PAD),
        Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
        text,
    )


MESSAGE_MARGIN = 16.0


def draw_message(painter: QPainter, area: QRectF, text: str) -> QRectF:
    """Draw `text` (a damaged picture's error, say) centred in `area`, word-wrapped within
    the area less a margin, so that a long message is never one clipped line; returns the
    rect the text took (empty when there is no text)."""
    if not text:
        return QRectF()
    box = QRectF(area).adjusted(MESSAGE_MARGIN, MESSAGE_MARGIN, -MESSAGE_MARGIN, -MESSAGE_MARGIN)
    flags = int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap)
    painter.setPen(QColor(230, 230, 230))
    return painter.drawText(box, flags, text)
