"""The training dialog's read-outs: the loss curve, the progress line, the table of held-out
figures of the current and the new model, and the verdict on which one to use.

Plain functions of the child's events and the model card (see training_run); no process here.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QHeaderView, QSizePolicy, QTableWidget, QTableWidgetItem, QWidget

NONE = "–"  # a figure that was not measured (no held-out instance of the class, an error)
MAX_POINTS = 4000  # the curve keeps every other point beyond this: a long run stays cheap


class LossCurve(QWidget):
    """A small polyline of the training loss, newest on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainLossCurve")
        self.losses: list[float] = []
        self.setMinimumHeight(70)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Training loss, one point per iteration")

    def sizeHint(self) -> QSize:
        return QSize(360, 90)

    def add(self, loss: float) -> None:
        if loss != loss or loss in (float("inf"), float("-inf")):
            return  # a NaN or infinite loss would flatten the curve; the text shows it
        self.losses.append(loss)
        if len(self.losses) > MAX_POINTS:
            self.losses = self.losses[::2]
        self.update()

    def clear(self) -> None:
        self.losses = []
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        frame = self.rect().adjusted(0, 0, -1, -1)
        painter.fillRect(frame, palette.base())
        painter.setPen(QPen(palette.mid().color()))
        painter.drawRect(frame)
        if len(self.losses) < 2:
            painter.setPen(palette.placeholderText().color())
            painter.drawText(frame, Qt.AlignmentFlag.AlignCenter, "loss")
            return
        low, high = min(self.losses), max(self.losses)
        span = (high - low) or 1.0
        area = frame.adjusted(4, 4, -4, -4)
        step = area.width() / (len(self.losses) - 1)
        line = QPolygonF(
            [
                QPointF(area.left() + i * step, area.bottom() - (v - low) / span * area.height())
                for i, v in enumerate(self.losses)
            ]
        )
        painter.setPen(QPen(QColor(0, 120, 215), 1.5))
        painter.drawPolyline(line)
        painter.setPen(palette.text().color())
        painter.drawText(
            area, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight, f"{high:.3f}"
        )
        painter.drawText(
            area, Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight, f"{low:.3f}"
        )


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _number(event: dict[str, Any], key: str) -> float | None:
    value = event.get(key)
    return float(value) if isinstance(value, int | float) else None


def progress_text(event: dict[str, Any]) -> str:
    """One "iteration" event as the person reads it."""
    parts = [f"Iteration {event.get('iteration', '?')} / {event.get('total', '?')}"]
    loss, rate = _number(event, "loss"), _number(event, "images_per_s")
    eta, elapsed = _number(event, "eta_s"), _number(event, "elapsed_s")
    if loss is not None:
        parts.append(f"loss {loss:.3f}")
    if rate is not None:
        parts.append(f"{rate:.1f} images/s")
    if eta is not None:
        parts.append(f"about {duration(eta)} left")
    if elapsed is not None:
        parts.append(f"{duration(elapsed)} so far")
    return " · ".join(parts)


def ap_text(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else NONE


def share_text(figures: dict[str, Any]) -> str:
    """The accepted-unedited share, e.g. "62% (31 of 50)"."""
    accepted, objects = figures.get("accepted"), figures.get("objects")
    if not isinstance(accepted, int) or not isinstance(objects, int) or not objects:
        return NONE
    share = figures.get("accepted_share")
    share = share if isinstance(share, int | float) else accepted / objects
    return f"{share:.0%} ({accepted} of {objects})"


def _side(card: dict[str, Any], which: str) -> dict[str, Any]:
    figures = (card.get("evaluation") or {}).get(which)
    return figures if isinstance(figures, dict) else {}


def short_model(spec: object) -> str:
    """A model as a column title: its name, or a file's name without the folder."""
    text = str(spec or "")
    return text.replace("\\", "/").rsplit("/", 1)[-1] or "?"


def fill_result(table: QTableWidget, card: dict[str, Any]) -> None:
    """Current and new model side by side: mask AP, AP50, AP per class, accepted share."""
    current, new = _side(card, "current"), _side(card, "new")
    classes = list(card.get("classes") or [])
    for side in (current, new):
        classes += [c for c in side.get("per_class") or {} if c not in classes]
    rows: list[tuple[str, str, str]] = [
        ("Mask AP", ap_text(current.get("ap")), ap_text(new.get("ap"))),
        ("AP50", ap_text(current.get("ap50")), ap_text(new.get("ap50"))),
    ]
    for name in classes:
        rows.append(
            (
                f"AP {name}",
                ap_text((current.get("per_class") or {}).get(name)),
                ap_text((new.get("per_class") or {}).get(name)),
            )
        )
    rows.append(("Accepted unedited", share_text(current), share_text(new)))
    table.clear()
    table.setColumnCount(2)
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels(
        [
            f"Current ({short_model(current.get('model'))})",
            f"New ({short_model(card.get('name') or new.get('model'))})",
        ]
    )
    table.setVerticalHeaderLabels([r[0] for r in rows])
    for row, (_, left, right) in enumerate(rows):
        for column, text in enumerate((left, right)):
            item = QTableWidgetItem(text)
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            error = (current, new)[column].get("error")
            if error:
                item.setToolTip(str(error))
            table.setItem(row, column, item)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.resizeRowsToContents()


def verdict(card: dict[str, Any]) -> str:
    """Which model to use and why, from the card's own `adopt`."""
    current, new = _side(card, "current"), _side(card, "new")
    notes = [
        f"The {which} model could not be measured: {side['error']}"
        for which, side in (("current", current), ("new", new))
        if side.get("error")
    ]
    old_ap, new_ap = ap_text(current.get("ap")), ap_text(new.get("ap"))
    if card.get("adopt"):
        head = (
            f"The new model does at least as well on the held-out images "
            f"(mask AP {new_ap}, the current model {old_ap})."
        )
    else:
        head = (
            f"Keep the current model: the held-out mask AP dropped from {old_ap} to "
            f"{new_ap} with the new one."
        )
        if new.get("error") or current.get("error"):
            head = "Keep the current model: the two models could not be compared."
    return " ".join([head, *notes])
