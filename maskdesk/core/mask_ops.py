"""Painting, erasing and clean-up of CropMasks, computed on the boxes involved only.

Each function returns new tight masks and never builds a full-frame array, so a brush
dab on a 12 MP photo costs what the brush covers. Shapes are clipped to the image.
Parts are 8-connected (two pixels touching at a corner belong together), as in COCO
polygon export; background is the dual, 4-connected, so a hole closed only at a corner is
still a hole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from maskdesk.core.masks import CropMask

Box = tuple[int, int, int, int]  # x0, y0, x1, y1: columns x0..x1-1, rows y0..y1-1


def _empty() -> CropMask:
    return CropMask._adopt(0, 0, np.zeros((0, 0), dtype=bool))


def _overlap(a: Box, b: Box) -> Box:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def _box_of(mask: CropMask) -> Box:
    return (mask.x, mask.y, mask.x + mask.width, mask.y + mask.height)


def _check_size(width: int, height: int) -> None:
    if width < 0 or height < 0:
        raise ValueError(f"the image size must not be negative, got {width} x {height}")


# -- discs: the round brush and eraser ---------------------------------------------------


def _disc_box(cx: float, cy: float, radius: float, width: int, height: int) -> Box:
    if not (math.isfinite(cx) and math.isfinite(cy) and math.isfinite(radius)) or radius < 0:
        raise ValueError(f"a disc needs a finite centre and radius >= 0, got {cx, cy, radius}")
    _check_size(width, height)
    # One pixel of slack on each side: the exact test below decides, rounding never does.
    return (
        min(max(0, math.floor(cx - radius) - 1), width),
        min(max(0, math.floor(cy - radius) - 1), height),
        max(0, min(width, math.ceil(cx + radius) + 1)),
        max(0, min(height, math.ceil(cy + radius) + 1)),
    )


def _disc_in(cx: float, cy: float, radius: float, box: Box) -> CropMask:
    """The disc's pixels inside `box`, as a (not yet tight) crop of the box."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return _empty()
    dx = np.arange(x0, x1) + 0.5 - cx
    dy = np.arange(y0, y1) + 0.5 - cy
    inside = dy[:, None] ** 2 + dx[None, :] ** 2 <= radius * radius
    return CropMask._adopt(x0, y0, inside)


def disc(cx: float, cy: float, radius: float, width: int, height: int) -> CropMask:
    """Pixels (i, j) whose centre (i + 0.5, j + 0.5) is within `radius` of (cx, cy).

    "Within" includes the circle itself: (i + 0.5 - cx)² + (j + 0.5 - cy)² <= radius².
    Radius 0 covers the one pixel whose centre is (cx, cy), if any. Clipped to the
    width x height image.
    """
    return _disc_in(cx, cy, radius, _disc_box(cx, cy, radius, width, height)).tight()


def paint_disc(
    mask: CropMask, cx: float, cy: float, radius: float, width: int, height: int
) -> CropMask:
    """`mask` (clipped to the image) plus `disc(cx, cy, radius, width, height)`."""
    return mask.clipped(width, height).union(disc(cx, cy, radius, width, height))


def erase_disc(
    mask: CropMask, cx: float, cy: float, radius: float, width: int, height: int
) -> CropMask:
    """`mask` (clipped to the image) minus `disc(cx, cy, radius, width, height)`."""
    m = mask.clipped(width, height).tight()
    box = _overlap(_disc_box(cx, cy, radius, width, height), _box_of(m))
    return m.difference(_disc_in(cx, cy, radius, box))


def _segment_in(ax: float, ay: float, bx: float, by: float, radius: float, box: Box) -> np.ndarray:
    """Pixels of `box` whose centre is within `radius` of the segment a-b (bool array)."""
    x0, y0, x1, y1 = box
    px = np.arange(x0, x1) + 0.5
    py = np.arange(y0, y1) + 0.5
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return (py[:, None] - ay) ** 2 + (px[None, :] - ax) ** 2 <= radius * radius
    # Position along the segment of each pixel centre's foot, clamped to the segment.
    t = ((px[None, :] - ax) * dx + (py[:, None] - ay) * dy) / length2
    t = np.clip(t, 0.0, 1.0)
    ex = px[None, :] - (ax + t * dx)
    ey = py[:, None] - (ay + t * dy)
    return ex * ex + ey * ey <= radius * radius


def stroke(
    points: Sequence[tuple[float, float]], radius: float, width: int, height: int
) -> CropMask:
    """Pixels whose centre is within `radius` of the polyline through `points`: what a
    round brush of that radius covers when dragged along them. One point is `disc()`.
    Clipped to the image; computed segment by segment on each segment's own box."""
    if not points:
        return _empty()
    boxes = [_disc_box(x, y, radius, width, height) for x, y in points]
    box = (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        return _empty()
    bits = np.zeros((box[3] - box[1], box[2] - box[0]), dtype=bool)
    pairs = list(zip(points, points[1:], strict=False)) or [(points[0], points[0])]
    for (ax, ay), (bx, by) in pairs:
        a, b = _disc_box(ax, ay, radius, width, height), _disc_box(bx, by, radius, width, height)
        seg = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        if seg[2] <= seg[0] or seg[3] <= seg[1]:
            continue
        rows = slice(seg[1] - box[1], seg[3] - box[1])
        cols = slice(seg[0] - box[0], seg[2] - box[0])
        bits[rows, cols] |= _segment_in(ax, ay, bx, by, radius, seg)
    return CropMask._adopt(box[0], box[1], bits).tight()


def paint_stroke(
    mask: CropMask,
    points: Sequence[tuple[float, float]],
    radius: float,
    width: int,
    height: int,
) -> CropMask:
    """`mask` (clipped to the image) plus `stroke(points, radius, width, height)`."""
    return mask.clipped(width, height).union(stroke(points, radius, width, height))


def erase_stroke(
    mask: CropMask,
    points: Sequence[tuple[float, float]],
    radius: float,
    width: int,
    height: int,
) -> CropMask:
    """`mask` (clipped to the image) minus `stroke(points, radius, width, height)`."""
    m = mask.clipped(width, height).tight()
    if m.is_empty():
        return m
    return m.difference(stroke(points, radius, width, height)).tight()


def merge(masks: Sequence[CropMask]) -> CropMask:
    """The union of several masks, on the box they cover together."""
    out = _empty()
    for mask in masks:
        out = out.union(mask)
    return out.tight()


# -- polygons, rasterised as pycocotools does ---------------------------------------------


def _coco_toggles(xy: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Where pycocotools' polygon rasteriser (rleFrPoly) flips pixels, as (columns, rows).

    A pixel (c, r) is inside when an odd number of the flips in column c have row <= r.
    This is rleFrPoly step by step, with the same double operations in the same order on
    full-frame coordinates. Translating the polygon to its box and calling pycocotools
    would not do: 5 * x + 0.5 rounds differently after the shift (8.7 gives 44.0, 8.7 - 5
    gives 18.999...), so some vertices move by a fifth of a pixel and pixels change.
    """
    scale = 5.0
    # The C code's (int) casts truncate toward zero, as astype does.
    px = (scale * xy[:, 0] + 0.5).astype(np.int64)
    py = (scale * xy[:, 1] + 0.5).astype(np.int64)
    xs, ys, xe, ye = px, py, np.roll(px, -1), np.roll(py, -1)
    dx, dy = np.abs(xe - xs), np.abs(ys - ye)
    along_x = dx >= dy
    flip = np.where(along_x, xs > xe, ys > ye)
    xs, xe = np.where(flip, xe, xs), np.where(flip, xs, xe)
    ys, ye = np.where(flip, ye, ys), np.where(flip, ys, ye)
    steps = np.where(along_x, dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(along_x, (ye - ys) / dx, (xe - xs) / dy)
    # A repeated vertex divides 0 by 0 in C; that point's row is never read, so 0 will do.
    slope[steps == 0] = 0.0
    # Walk every edge densely, one step per unit of its longer axis.
    edge = np.repeat(np.arange(len(xy)), steps + 1)
    d = np.arange(edge.size) - np.repeat(np.cumsum(steps + 1) - (steps + 1), steps + 1)
    t = np.where(flip[edge], steps[edge] - d, d)
    st = slope[edge] * t
    xs, ys, along = xs[edge], ys[edge], along_x[edge]
    u = np.where(along, t + xs, (xs + st + 0.5).astype(np.int64))
    v = np.where(along, (ys + st + 0.5).astype(np.int64), t + ys)
    # Each step across a column centre flips that column from the edge's row downward.
    moved = u[1:] != u[:-1]
    xd = (np.where(u[1:] < u[:-1], u[1:], u[1:] - 1) + 0.5) / scale - 0.5
    keep = moved & (np.floor(xd) == xd) & (xd >= 0) & (xd <= width - 1)
    yd = (np.minimum(v[1:], v[:-1])[keep] + 0.5) / scale - 0.5
    rows = np.ceil(np.clip(yd, 0, height)).astype(np.int64)
    return xd[keep].astype(np.int64), rows


def _raster(cols: np.ndarray, rows: np.ndarray, box: Box) -> CropMask:
    """Pixels of `box` with an odd number of flips at or above them in their column."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return _empty()
    w, h = x1 - x0, y1 - y0
    here = (cols >= x0) & (cols < x1)
    # Flips above the box count for its first row; flips below it change nothing there.
    r = np.clip(rows[here] - y0, 0, h)
    flips = np.bincount(r * w + (cols[here] - x0), minlength=(h + 1) * w).reshape(h + 1, w)
    inside = np.logical_xor.accumulate((flips[:h] & 1).astype(bool), axis=0)
    return CropMask._adopt(x0, y0, inside)


def _polygon_toggles(
    points: Sequence[tuple[float, float]] | np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, Box] | None:
    _check_size(width, height)
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(xy).all():
        raise ValueError("polygon vertices must be finite numbers")
    # pycocotools reads fewer than three vertices as something else (a box, or an error).
    if len(xy) < 3 or width == 0 or height == 0:
        return None
    cols, rows = _coco_toggles(xy, width, height)
    if cols.size == 0:
        return None
    return cols, rows, (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()))


def polygon(
    points: Sequence[tuple[float, float]] | np.ndarray, width: int, height: int
) -> CropMask:
    """The pixels pycocotools gives for this polygon of (x, y) image coordinates.

    Equal to decoding `frPyObjects([flat_xy], height, width)`, so a polygon drawn here
    exports and re-imports as the same pixels; computed over the polygon's box only.
    Fewer than three vertices cover nothing.
    """
    found = _polygon_toggles(points, width, height)
    if found is None:
        return _empty()
    cols, rows, box = found
    return _raster(cols, rows, box).tight()


def paint_polygon(
    mask: CropMask, points: Sequence[tuple[float, float]] | np.ndarray, width: int, height: int
) -> CropMask:
    """`mask` (clipped to the image) plus `polygon(points, width, height)`."""
    return mask.clipped(width, height).union(polygon(points, width, height))


def erase_polygon(
    mask: CropMask, points: Sequence[tuple[float, float]] | np.ndarray, width: int, height: int
) -> CropMask:
    """`mask` (clipped to the image) minus `polygon(points, width, height)`."""
    m = mask.clipped(width, height).tight()
    found = _polygon_toggles(points, width, height)
    if found is None:
        return m
    cols, rows, box = found
    return m.difference(_raster(cols, rows, _overlap(box, _box_of(m))))


# -- parts, holes and specks ----------------------------------------------------------------


def _components(mask: CropMask) -> tuple[np.ndarray, np.ndarray]:
    """8-connected labels of a tight mask and cv2's stats per label (0 is background)."""
    bits = np.ascontiguousarray(mask.bits).view(np.uint8)
    _count, labels, stats, _centroids = cv2.connectedComponentsWithStats(bits, connectivity=8)
    return labels, stats


def parts(mask: CropMask) -> list[CropMask]:
    """The 8-connected parts, each a tight crop, largest first.

    Parts of equal area come in reading order of their first pixel (top row first,
    then leftmost).
    """
    m = mask.tight()
    if m.is_empty():
        return []
    labels, stats = _components(m)
    values, where = np.unique(labels.ravel(), return_index=True)
    first = np.zeros(len(stats), dtype=np.int64)
    first[values] = where  # a full crop has no label 0
    order = sorted(range(1, len(stats)), key=lambda k: (-stats[k, cv2.CC_STAT_AREA], first[k]))
    out = []
    for k in order:
        x, y, w, h = (int(v) for v in stats[k, :4])
        out.append(CropMask._adopt(m.x + x, m.y + y, labels[y : y + h, x : x + w] == k))
    return out


def fill_holes(mask: CropMask) -> CropMask:
    """The mask with every hole set: background that no 4-connected path links to the
    outside of the mask's box."""
    m = mask.tight()
    if m.is_empty():
        return m
    padded = np.zeros((m.height + 2, m.width + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = m.bits
    # The padding ring joins all outside background, so one 4-connected fill finds it.
    cv2.floodFill(padded, None, (0, 0), 2, flags=4)
    return CropMask._adopt(m.x, m.y, padded[1:-1, 1:-1] != 2)


def remove_specks(mask: CropMask, min_area: int) -> CropMask:
    """The mask without its 8-connected parts of fewer than `min_area` pixels."""
    m = mask.tight()
    if m.is_empty() or min_area <= 1:
        return m
    labels, stats = _components(m)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return CropMask._adopt(m.x, m.y, keep[labels]).tight()


# -- outlines --------------------------------------------------------------------------------


class Outline(NamedTuple):
    """One part's border: rings as flat [x0, y0, x1, y1, ...] on pixel corners."""

    outer: list[float]
    holes: list[list[float]]


def _corner_ring(contour: np.ndarray) -> np.ndarray:
    """A contour of the 2x-upscaled, 1-padded crop as the pixel corners it runs along."""
    # A boundary pixel u of the upscaled crop (padding removed: u - 1) sits just inside a
    # pixel edge; ((u - 1) + 1) // 2 is that edge's corner in the original crop.
    p = contour.reshape(-1, 2) // 2
    p = p[np.any(p != np.roll(p, 1, axis=0), axis=1)]  # drop repeats
    step_in = p - np.roll(p, 1, axis=0)
    step_out = np.roll(p, -1, axis=0) - p
    return p[step_in[:, 0] * step_out[:, 1] != step_in[:, 1] * step_out[:, 0]]  # turns only


def outline(mask: CropMask) -> list[Outline]:
    """Border rings of each part, in the order of `parts()`, in image coordinates.

    Vertices lie on pixel corners and edges are horizontal or vertical, so a pixel is in
    the mask exactly when its centre is inside some part's outer ring and inside none of
    that part's holes. Where a part touches itself at a corner, its ring passes through
    that corner twice.
    """
    result = []
    for part in parts(mask):
        up = np.zeros((2 * part.height + 2, 2 * part.width + 2), dtype=np.uint8)
        up[1:-1, 1:-1] = np.repeat(np.repeat(part.bits, 2, axis=0), 2, axis=1)
        contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        rings = [(_corner_ring(c) + (part.x, part.y)).ravel().tolist() for c in contours]
        parent = hierarchy[0][:, 3]
        for i in np.flatnonzero(parent < 0):
            holes = [rings[j] for j in np.flatnonzero(parent == i)]
            result.append(Outline(rings[i], holes))
    return result
