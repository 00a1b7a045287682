"""Per-instance paint material for the canvas, built once from the crop and reused.

Each instance's box-local mask becomes one premultiplied ARGB32 image of its colour (opaque
where the mask is set, clear elsewhere) and, on demand, a QPainterPath of its outline. The
entry remembers the mask object and colour it was made from: a CropMask is immutable, so
the same object means the same pixels, and holding it keeps its identity from being reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainterPath, QPen, QPolygonF
from shiboken6 import VoidPtr

from maskdesk.core.masks import CropMask

Color = tuple[int, int, int]


def crop_image(mask: CropMask, color: Color) -> tuple[QImage, np.ndarray]:
    """The mask as a premultiplied ARGB32 image of `color`, and the buffer it lives in.

    The QImage does not copy the buffer, so the caller keeps both together.
    """
    r, g, b = color
    # ARGB32 is one native-endian 32-bit word per pixel: alpha in the top byte. Opaque
    # pixels need no premultiplying, clear ones are all zero.
    argb = np.uint32(0xFF000000 | (r << 16) | (g << 8) | b)
    words = np.ascontiguousarray(mask.bits.view(np.uint8) * argb, dtype=np.uint32)
    image = QImage(
        words.data,
        mask.width,
        mask.height,
        4 * mask.width,
        QImage.Format.Format_ARGB32_Premultiplied,
    )
    return image, words


def outline_path(mask: CropMask) -> QPainterPath:
    """The mask's borders (outer and holes) as one path in image coordinates, for display.

    The rings run through the centres of the mask's border pixels (OpenCV contours of the
    crop): within half a pixel of `mask_ops.outline`'s pixel-corner rings, and some 50x
    faster to make for large masks, which matters when an image opens.
    """
    path = QPainterPath()
    if mask.width == 0 or mask.height == 0:
        return path
    contours, _hierarchy = cv2.findContours(
        mask.bits.view(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    offset = np.array([mask.x + 0.5, mask.y + 0.5])
    for contour in contours:
        path.addPolygon(closed_ring(contour.reshape(-1, 2) + offset))
    return path


def closed_ring(xy: np.ndarray) -> QPolygonF:
    """A closed polygon through the (n, 2) points, written straight into its storage.

    A QPointF made per vertex in Python costs about 2 us: 0.8 ms for a 400-vertex ring, on
    the UI thread, for every instance of an image shown (qreal is double in Qt 6).
    """
    ring = QPolygonF()
    ring.resize(len(xy) + 1)
    if len(xy):
        # shiboken's stubs know VoidPtr(address) only; it takes (object, size, writable).
        storage: Any = VoidPtr(ring.data(), 16 * (len(xy) + 1), True)  # type: ignore[call-arg, arg-type]
        points = np.frombuffer(storage, np.float64).reshape(-1, 2)
        points[:-1] = xy
        points[-1] = points[0]
    return ring


DASHES = (4.0, 3.0)  # dash and gap, in pen widths: an instance still to review


def cosmetic_pen(color: QColor, width: float, dashed: bool = False) -> QPen:
    """A pen `width` screen pixels wide at any zoom, for outlines and boxes; dashed for an
    instance still to review (a prediction nobody accepted, rejected or hid yet)."""
    pen = QPen(color, width)
    pen.setCosmetic(True)
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    if dashed:
        pen.setDashPattern(list(DASHES))
    return pen


@dataclass
class OverlayEntry:
    """What the canvas paints for one instance; valid while `mask` and `color` are unchanged."""

    mask: CropMask
    color: Color
    image: QImage
    buffer: np.ndarray
    area: int
    rect: QRectF  # the crop's place in image coordinates
    _path: QPainterPath | None = field(default=None, repr=False)

    def path(self) -> QPainterPath:
        if self._path is None:
            self._path = outline_path(self.mask)
        return self._path


class OverlayCache:
    """Entries by instance key; `builds` counts crop images made (tests and benchmarks)."""

    def __init__(self) -> None:
        self._entries: dict[int, OverlayEntry] = {}
        self.builds = 0

    def get(self, key: int, mask: CropMask, color: Color) -> OverlayEntry:
        entry = self._entries.get(key)
        if entry is not None and entry.mask is mask and entry.color == color:
            return entry
        image, buffer = crop_image(mask, color)
        self.builds += 1
        entry = OverlayEntry(
            mask=mask,
            color=color,
            image=image,
            buffer=buffer,
            area=mask.area,
            rect=QRectF(mask.x, mask.y, mask.width, mask.height),
        )
        self._entries[key] = entry
        return entry

    def keep_only(self, keys: set[int]) -> None:
        """Forget entries of instances that are gone."""
        for key in [k for k in self._entries if k not in keys]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()
