"""The picture with its instances: cached translucent masks, outlines, boxes, labels; zoom,
pan and hit-testing.

Paint cost follows the viewport, not the image: the picture and each mask crop are drawn
only where they meet the exposed rect, from images made once (`OverlayCache`); opacity is
the painter's, so moving the slider rebuilds nothing. The window feeds the canvas; nothing
here reads or writes the project.

Mouse: left click selects the smallest visible instance under the cursor (Ctrl toggles one
in or out of the selection, Shift adds), a click on the background clears the selection;
wheel zooms around the cursor; middle drag, or left drag with Space held, pans. An editing
tool (`set_tool`, see tools.py) takes the left button and draws its own preview.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFontMetricsF,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from maskdesk.core.instances import Instance
from maskdesk.core.render import instance_color
from maskdesk.ui.labels import draw_message, label_texts, lay_out, paint_label
from maskdesk.ui.overlay_cache import Color, OverlayCache, OverlayEntry, cosmetic_pen
from maskdesk.ui.tools import Tool

MIN_SCALE = 1 / 64
MAX_SCALE = 64.0
WHEEL_STEP = 1.25  # zoom factor per wheel notch (120 units of angle delta)
BACKGROUND = QColor(48, 48, 48)


class Canvas(QWidget):
    """Image view with cached instance overlays; emits selection and hover by instance id.

    Instances are known by their `id`; one without an id is known by its position in the
    list given to `set_instances`.
    """

    selectionChanged = Signal(list)  # instance ids, on user clicks only
    hovered = Signal(int)  # instance id under the cursor, -1 when none
    viewChanged = Signal()  # zoom or pan changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("canvas")
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(64, 64)

        self._image: QImage | None = None
        self._message = ""
        self.message_rect = QRectF()  # where the message was last drawn
        self._instances: list[Instance] = []
        self._keys: list[int] = []
        self._colors: list[Color] = []
        self._names: dict[int, str] = {}
        self._cache = OverlayCache()
        # Bumped when the picture (both) or the instances (doc only) change; they key the
        # widget-sized layers, so new instances never redraw the picture layer.
        self._doc_version = self._picture_version = 0
        self._base: QImage | None = None
        self._base_key: tuple[object, ...] = ()
        self._masks: QImage | None = None
        self._masks_key: tuple[object, ...] = ()
        self._labels_key: tuple[object, ...] = ()
        self._labels: dict[int, tuple[QRectF, str]] = {}
        self.layer_builds = 0  # how often the masks layer was composed (tests, benchmarks)

        self._hidden: set[int] = set()
        self._min_score = 0.0
        self._opacity = 0.5
        self._show_masks = True
        self._show_outlines = True
        self._show_boxes = True
        self._show_labels = True
        self._masks_hidden = False

        self._selection: list[int] = []
        self._hover = -1

        self._scale = 1.0
        self._offset = QPointF(0.0, 0.0)
        self._fitted = True
        self._pan_from: QPointF | None = None
        self._space = False
        self._tool: Tool | None = None

    # -- document ---------------------------------------------------------------------------

    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show an H x W x 3 uint8 upright picture (None: nothing), fitted to the widget."""
        if rgb is None:
            self._image = None
        else:
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise ValueError(f"expected H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
            pixels = np.ascontiguousarray(rgb)
            h, w = pixels.shape[:2]
            wrapped = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            # RGB32 is what the raster engine draws fastest; the conversion also copies, so
            # the array may go away.
            self._image = wrapped.convertToFormat(QImage.Format.Format_RGB32)
        self._doc_version += 1
        self._picture_version += 1
        self.fit()

    def set_message(self, text: str) -> None:
        """A line shown in place of the picture when there is none (e.g. why it failed)."""
        self._message = text
        self.update()

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the picture; (0, 0) without one."""
        if self._image is None:
            return (0, 0)
        return (self._image.width(), self._image.height())

    def set_instances(
        self,
        instances: Sequence[Instance],
        names: dict[int, str],
        colors: dict[int, Color] | None = None,
    ) -> None:
        """The instances to paint, category names by category id and colours by instance id.

        Without a colour an instance gets `instance_color` of its position, as in exports.
        Masks already cached for an id are reused when the instance's mask is the same object.
        """
        self._instances = list(instances)
        self._keys = [i if inst.id is None else inst.id for i, inst in enumerate(instances)]
        colors = colors or {}
        self._colors = [colors.get(k, instance_color(i)) for i, k in enumerate(self._keys)]
        self._names = dict(names)
        self._doc_version += 1
        self._cache.keep_only(set(self._keys))
        present = set(self._keys)
        self._selection = [k for k in self._selection if k in present]
        if self._hover not in present:
            self._hover = -1
        self.update()

    def shows(self, instances: Sequence[Instance], names: dict[int, str]) -> bool:
        """Whether these instances (equal values, masks included) and names are the ones
        painted now: a caller re-reading the store can then leave the cached layers be."""
        return names == self._names and list(instances) == self._instances

    def set_hidden_ids(self, ids: Iterable[int]) -> None:
        self._hidden = set(ids)
        self.update()

    def set_min_score(self, score: float) -> None:
        """Hide model predictions below `score`; accepted and human ones stay (as in export)."""
        self._min_score = float(score)
        self.update()

    def set_opacity(self, opacity: float) -> None:
        self._opacity = min(1.0, max(0.0, float(opacity)))
        self.update()

    def opacity(self) -> float:
        return self._opacity

    def set_show_masks(self, on: bool) -> None:
        self._show_masks = on
        self.update()

    def set_show_outlines(self, on: bool) -> None:
        self._show_outlines = on
        self.update()

    def set_show_boxes(self, on: bool) -> None:
        self._show_boxes = on
        self.update()

    def set_show_labels(self, on: bool) -> None:
        self._show_labels = on
        self.update()

    def set_masks_hidden(self, hidden: bool) -> None:
        """Show the bare picture (no masks, outlines, boxes or labels), e.g. while a key is held."""
        self._masks_hidden = hidden
        self.update()

    @property
    def cache_builds(self) -> int:
        """How many mask crops were turned into images so far."""
        return self._cache.builds

    # -- selection --------------------------------------------------------------------------

    def selection(self) -> list[int]:
        return list(self._selection)

    def set_selection(self, ids: Iterable[int]) -> None:
        """Select these instances; does not emit selectionChanged (the caller knows)."""
        present = set(self._keys)
        self._selection = [k for k in dict.fromkeys(ids) if k in present]
        self.update()

    def hovered_id(self) -> int:
        return self._hover

    # -- tools ------------------------------------------------------------------------------

    def set_tool(self, tool: Tool | None) -> None:
        """Give the left button to `tool` (None: clicks select); a gesture in progress of the
        previous tool is dropped."""
        if self._tool is not None:
            self._tool.cancel()
            self._tool.changed.disconnect(self.update)
        self._tool = tool
        if tool is not None:
            tool.changed.connect(self.update)
        self._restore_cursor()
        self.update()

    def tool(self) -> Tool | None:
        return self._tool

    # -- view -------------------------------------------------------------------------------

    def scale(self) -> float:
        return self._scale

    def transform(self) -> QTransform:
        """Image to widget coordinates."""
        s = self._scale
        return QTransform(s, 0.0, 0.0, s, self._offset.x(), self._offset.y())

    def image_to_widget(self, point: QPointF) -> QPointF:
        return QPointF(
            point.x() * self._scale + self._offset.x(), point.y() * self._scale + self._offset.y()
        )

    def widget_to_image(self, point: QPointF) -> QPointF:
        return QPointF(
            (point.x() - self._offset.x()) / self._scale,
            (point.y() - self._offset.y()) / self._scale,
        )

    def fit(self) -> None:
        """Show the whole picture, as large as the widget allows, centred."""
        self._fitted = True
        w, h = self.image_size()
        if w and h:
            self._scale = min(self.width() / w, self.height() / h)
            self._offset = QPointF(
                (self.width() - w * self._scale) / 2, (self.height() - h * self._scale) / 2
            )
        self.update()
        self.viewChanged.emit()

    def actual_size(self) -> None:
        """One image pixel per screen pixel, keeping the image point at the centre in place."""
        self.zoom_at(1.0 / self._scale, QPointF(self.width() / 2, self.height() / 2))

    def zoom_at(self, factor: float, anchor: QPointF) -> None:
        """Scale the view by `factor`, keeping the image point under `anchor` (widget) put."""
        scale = min(MAX_SCALE, max(MIN_SCALE, self._scale * factor))
        fixed = self.widget_to_image(anchor)
        self._scale = scale
        self._offset = QPointF(anchor.x() - fixed.x() * scale, anchor.y() - fixed.y() * scale)
        self._fitted = False
        self.update()
        self.viewChanged.emit()

    def pan_by(self, dx: float, dy: float) -> None:
        if not (dx or dy):
            return  # a middle click that did not move leaves the view fitted to the widget
        self._offset += QPointF(dx, dy)
        self._fitted = False
        self.update()
        self.viewChanged.emit()

    # -- what is shown ----------------------------------------------------------------------

    def _shown(self) -> list[int]:
        """Positions of instances shown: visible, not hidden, at or above the score."""
        return [
            i
            for i, inst in enumerate(self._instances)
            if self._keys[i] not in self._hidden and inst.exported(self._min_score)
        ]

    def _entry(self, i: int) -> OverlayEntry:
        return self._cache.get(self._keys[i], self._instances[i].mask, self._colors[i])

    def instance_at(self, image_point: QPointF) -> int:
        """Id of the smallest shown instance whose mask covers the image point; -1 if none."""
        x, y = image_point.x(), image_point.y()
        best, best_area = -1, -1
        for i in self._shown():
            mask = self._instances[i].mask
            if not mask.contains(x, y):
                continue
            area = self._entry(i).area
            if best_area < 0 or area <= best_area:
                best, best_area = self._keys[i], area
        return best

    def _layout_labels(self, shown: list[int]) -> dict[int, tuple[QRectF, str]]:
        """Label rects (widget coordinates) and texts for the shown instances in view."""
        key = (*self._view_key(), self._doc_version, tuple(shown), tuple(self._selection))
        if key != self._labels_key:
            self._labels = self._place_labels(shown)
            self._labels_key = key
        return self._labels

    def _place_labels(self, shown: list[int]) -> dict[int, tuple[QRectF, str]]:
        selected = set(self._selection)

        # The selection gets the first pick of spots, then higher scores.
        def rank(i: int) -> tuple[bool, float]:
            score = self._instances[i].score
            return (self._keys[i] not in selected, -(1.0 if score is None else score))

        entries = []
        for i in sorted(shown, key=rank):
            inst = self._instances[i]
            assert inst.box is not None
            x0, y0, x1, y1 = inst.box
            box = QRectF(
                self.image_to_widget(QPointF(x0, y0)), self.image_to_widget(QPointF(x1, y1))
            )
            name = self._names.get(inst.category_id, str(inst.category_id))
            entries.append((self._keys[i], box, label_texts(name, inst.score)))
        return lay_out(entries, QFontMetricsF(self.font()), QRectF(self.rect()))

    def label_rects(self) -> dict[int, QRectF]:
        """Where labels are drawn now, by instance id, in widget coordinates."""
        if self._image is None or not self._show_labels or self._masks_hidden:
            return {}
        return {k: rect for k, (rect, _t) in self._layout_labels(self._shown()).items()}

    # -- painting ---------------------------------------------------------------------------

    def _visible_image_rect(self) -> QRectF:
        """The part of the picture inside the widget, in image coordinates."""
        assert self._image is not None
        corners = QRectF(
            self.widget_to_image(QPointF(0, 0)),
            self.widget_to_image(QPointF(self.width(), self.height())),
        )
        return corners.intersected(QRectF(self._image.rect()))

    def _view_key(self) -> tuple[object, ...]:
        return (self._scale, self._offset.x(), self._offset.y(), self.width(), self.height())

    def _layers(self, shown: list[int]) -> tuple[QImage, QImage | None]:
        """The picture and the composed masks at the widget's size, remade on a view change.

        A repaint then blends two widget-sized images whatever the number of instances;
        the masks layer is opaque colour (the top instance wins where masks overlap) and
        takes the opacity when drawn, so the opacity slider remakes nothing.
        """
        assert self._image is not None
        dpr = self.devicePixelRatioF()
        view_key = (*self._view_key(), dpr, self._picture_version)
        if self._base_key != view_key or self._base is None:
            self._base = self._new_layer(QImage.Format.Format_RGB32, dpr)
            self._base.fill(BACKGROUND)
            painter = QPainter(self._base)
            painter.setTransform(self.transform())
            view = self._visible_image_rect()
            if not view.isEmpty():
                source = QRectF(view.toAlignedRect().intersected(self._image.rect()))
                smooth = self._scale < 1.0
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
                painter.drawImage(source, self._image, source)
            painter.end()
            self._base_key = view_key
        if not self._show_masks:
            return self._base, None
        masks_key = (*view_key, self._doc_version, tuple(shown))
        if self._masks_key != masks_key or self._masks is None:
            self._masks = self._new_layer(QImage.Format.Format_ARGB32_Premultiplied, dpr)
            self._masks.fill(0)
            painter = QPainter(self._masks)
            painter.setTransform(self.transform())
            view = self._visible_image_rect()
            painter.setClipRect(view)
            for i in shown:
                entry = self._entry(i)
                part = entry.rect.intersected(view).toAlignedRect()
                if part.isEmpty():
                    continue
                local = part.translated(-int(entry.rect.x()), -int(entry.rect.y()))
                painter.drawImage(QRectF(part), entry.image, QRectF(local))
            painter.end()
            self._masks_key = masks_key
            self.layer_builds += 1
        return self._base, self._masks

    def _new_layer(self, fmt: QImage.Format, dpr: float) -> QImage:
        layer = QImage(round(self.width() * dpr), round(self.height() * dpr), fmt)
        layer.setDevicePixelRatio(dpr)
        return layer

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self._image is None:
            painter.fillRect(event.rect(), BACKGROUND)
            self.message_rect = draw_message(painter, QRectF(self.rect()), self._message)
            return
        shown = [] if self._masks_hidden else self._shown()
        base, masks = self._layers(shown)
        # The painter clips to the exposed rect, so only that part of each layer is blended.
        painter.drawImage(QPointF(0, 0), base)
        if self._masks_hidden:
            return
        if masks is not None and self._opacity > 0:
            painter.setOpacity(self._opacity)
            painter.drawImage(QPointF(0, 0), masks)
            painter.setOpacity(1.0)
        view = self._visible_image_rect()
        in_view = [i for i in shown if self._entry(i).rect.intersects(view)]
        painter.setTransform(self.transform())
        painter.setClipRect(QRectF(self._image.rect()))
        self._paint_lines(painter, in_view)
        painter.resetTransform()
        painter.setClipping(False)
        if self._show_labels:
            self._paint_labels(painter, in_view)
        if self._tool is not None:
            painter.setTransform(self.transform())
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            self._tool.paint(painter, self._scale)

    def _paint_lines(self, painter: QPainter, shown: list[int]) -> None:
        selected = set(self._selection)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for i in shown:
            key, entry, inst = self._keys[i], self._entry(i), self._instances[i]
            color = QColor(*self._colors[i])
            is_selected, is_hover = key in selected, key == self._hover
            dashed = not inst.decided  # to review: dashed; a person's decision: solid
            if self._show_outlines or is_selected or is_hover:
                path = entry.path()
                if is_selected:
                    # A light halo under the colour makes the selection stand out on any
                    # picture and any instance colour.
                    painter.setPen(cosmetic_pen(QColor(255, 255, 255), 4.0))
                    painter.drawPath(path)
                width = 3.0 if is_hover else 2.0 if is_selected else 1.0
                painter.setPen(cosmetic_pen(color, width, dashed))
                painter.drawPath(path)
            if self._show_boxes or is_selected:
                assert inst.box is not None
                x0, y0, x1, y1 = inst.box
                painter.setPen(cosmetic_pen(color, 2.0 if is_selected else 1.0, dashed))
                painter.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    def _paint_labels(self, painter: QPainter, shown: list[int]) -> None:
        colors = dict(zip(self._keys, self._colors, strict=True))
        for key, (rect, text) in self._layout_labels(shown).items():
            paint_label(painter, rect, text, colors[key])

    # -- events -----------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps and self._image is not None:
            self.zoom_at(WHEEL_STEP**steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space
        ):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if button == Qt.MouseButton.LeftButton and self._image is not None:
            point = self.widget_to_image(event.position())
            tool = self._tool
            if tool is None or not tool.press(point, event.modifiers(), self._scale):
                self._click(self.instance_at(point), event.modifiers())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        point = self.widget_to_image(event.position())
        left = event.button() == Qt.MouseButton.LeftButton
        if self._tool is not None and left and self._tool.double_click(point):
            return
        self.mousePressEvent(event)

    def _click(self, key: int, modifiers: Qt.KeyboardModifier) -> None:
        """Apply a left click on instance `key` (-1: background) to the selection."""
        before = list(self._selection)
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            if key in self._selection:
                self._selection.remove(key)
            elif key >= 0:
                self._selection.append(key)
        elif modifiers & Qt.KeyboardModifier.ShiftModifier:
            if key >= 0 and key not in self._selection:
                self._selection.append(key)
        else:
            self._selection = [key] if key >= 0 else []
        if self._selection != before:
            self.update()
            self.selectionChanged.emit(list(self._selection))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.pan_by(delta.x(), delta.y())
            return
        if self._image is not None:
            point = self.widget_to_image(event.position())
            if self._tool is not None:
                self._tool.move(point, bool(event.buttons() & Qt.MouseButton.LeftButton))
            self._set_hover(self.instance_at(point))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self._restore_cursor()
            return
        if self._tool is not None and event.button() == Qt.MouseButton.LeftButton:
            self._tool.release(self.widget_to_image(event.position()), event.modifiers())
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: object) -> None:
        if self._tool is not None:
            self._tool.hover = None  # no brush circle left behind
            self.update()
        self._set_hover(-1)

    def _set_hover(self, key: int) -> None:
        if key != self._hover:
            self._hover = key
            self.update()
            self.hovered.emit(key)

    def event(self, event: QEvent) -> bool:
        # Esc and Enter reach a tool with a gesture in progress before any shortcut does.
        if event.type() == QEvent.Type.ShortcutOverride and self._tool and self._tool.active():
            assert isinstance(event, QKeyEvent)
            if event.key() in (Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter):
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if self._tool is not None and self._tool.key(event.key()):
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._restore_cursor()
            return
        super().keyReleaseEvent(event)

    def _restore_cursor(self) -> None:
        if self._space:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif self._tool is not None:
            self.setCursor(self._tool.cursor)
        else:
            self.unsetCursor()
