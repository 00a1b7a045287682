"""Box-local mask operations against plain full-frame references on random masks."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

import numpy as np
import pytest
from pycocotools import mask as mask_util

from maskdesk.core import mask_ops
from maskdesk.core.masks import CropMask

# -- full-frame references and helpers ---------------------------------------------------


def random_mask(rng: np.random.Generator, width: int, height: int) -> CropMask:
    """Empty, one-pixel, noisy or blobby masks, often touching or crossing the borders."""
    kind = int(rng.integers(0, 6))
    if kind == 0:
        h, w = (int(v) for v in rng.integers(0, 4, size=2))
        return CropMask(int(rng.integers(0, width)), int(rng.integers(0, height)), np.zeros((h, w)))
    if kind == 1:
        x = int(rng.choice([0, width - 1, rng.integers(0, width)]))
        y = int(rng.choice([0, height - 1, rng.integers(0, height)]))
        return CropMask(x, y, np.ones((1, 1), dtype=bool))
    h, w = int(rng.integers(1, height + 6)), int(rng.integers(1, width + 6))
    x = int(rng.choice([0, rng.integers(0, width), max(0, width - w)]))
    y = int(rng.choice([0, rng.integers(0, height), max(0, height - h)]))
    # At most 5 pixels beyond the image, so a (width + 6) x (height + 6) frame holds it all.
    h, w = min(h, height + 5 - y), min(w, width + 5 - x)
    if kind == 2:
        bits = rng.random((h, w)) < rng.uniform(0.2, 0.8)
    else:  # blobs: a few random discs, so parts are large and have holes
        yy, xx = np.mgrid[0:h, 0:w]
        bits = np.zeros((h, w), dtype=bool)
        for _ in range(int(rng.integers(1, 5))):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1, 8)
            bits ^= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return CropMask(x, y, bits)


def cases(seed: int, count: int) -> Iterator[tuple[np.random.Generator, int, int]]:
    rng = np.random.default_rng(seed)
    for _ in range(count):
        width, height = (int(v) for v in rng.integers(1, 40, size=2))
        yield rng, width, height


def full_disc(cx: float, cy: float, r: float, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def full_polygon(flat: list[float], width: int, height: int) -> np.ndarray:
    rle = mask_util.frPyObjects([flat], height, width)
    return mask_util.decode(rle)[:, :, 0].astype(bool)


def flood(full: np.ndarray, start: tuple[int, int], steps: list[tuple[int, int]]) -> np.ndarray:
    """Pixels equal to full[start] reachable from start by `steps` (plain BFS)."""
    value = full[start]
    seen = np.zeros(full.shape, dtype=bool)
    seen[start] = True
    todo = deque([start])
    while todo:
        r, c = todo.popleft()
        for dr, dc in steps:
            rr, cc = r + dr, c + dc
            if not (0 <= rr < full.shape[0] and 0 <= cc < full.shape[1]):
                continue
            if not seen[rr, cc] and full[rr, cc] == value:
                seen[rr, cc] = True
                todo.append((rr, cc))
    return seen


FOUR = [(-1, 0), (1, 0), (0, -1), (0, 1)]
EIGHT = FOUR + [(-1, -1), (-1, 1), (1, -1), (1, 1)]


def full_components(full: np.ndarray) -> list[np.ndarray]:
    """8-connected parts in reading order of their first pixel."""
    done = np.zeros(full.shape, dtype=bool)
    found = []
    for r, c in zip(*np.nonzero(full), strict=True):
        if not done[r, c]:
            part = flood(full, (int(r), int(c)), EIGHT)
            done |= part
            found.append(part)
    return found


def assert_tight_inside(mask: CropMask, width: int, height: int) -> None:
    if mask.is_empty():
        assert (mask.width, mask.height) == (0, 0)
    else:
        assert mask.bbox() == (mask.x, mask.y, mask.width, mask.height)
    assert mask.x >= 0 and mask.x + mask.width <= width
    assert mask.y >= 0 and mask.y + mask.height <= height


# -- hit test and set algebra -------------------------------------------------------------


def test_contains_uses_half_open_pixels() -> None:
    mask = CropMask(2, 3, np.array([[True, False]]))
    assert mask.contains(2, 3) and mask.contains(2.0, 3.999) and mask.contains(2.999, 3.5)
    assert not mask.contains(3.0, 3.5)  # pixel (3, 3) is in the crop but not set
    assert not mask.contains(1.999, 3.5) and not mask.contains(2.5, 4.0)
    assert not mask.contains(2.5, 2.999) and not mask.contains(-0.5, -0.5)
    assert not mask.contains(math.nan, 3.5) and not mask.contains(2.5, math.inf)


def test_contains_matches_the_full_frame() -> None:
    hits = 0
    for rng, width, height in cases(seed=10, count=100):
        mask = random_mask(rng, width, height)
        full = mask.to_full(width + 6, height + 6)
        points = rng.uniform(-3, max(width, height) + 6, size=(30, 2))
        points[:10] = np.round(points[:10])  # exactly on pixel edges
        for px, py in points:
            i, j = math.floor(px), math.floor(py)
            inside = 0 <= i < width + 6 and 0 <= j < height + 6 and bool(full[j, i])
            assert mask.contains(float(px), float(py)) == inside
            assert mask.contains(int(i), int(j)) == inside
            hits += inside
    assert hits > 50


@pytest.mark.parametrize("op", ["union", "intersection", "difference"])
def test_set_algebra_matches_full_frame_operators(op: str) -> None:
    reference = {
        "union": np.logical_or,
        "intersection": np.logical_and,
        "difference": lambda a, b: a & ~b,
    }[op]
    nonempty = 0
    for rng, width, height in cases(seed=11, count=200):
        a, b = random_mask(rng, width, height), random_mask(rng, width, height)
        size = (width + 6, height + 6)  # random masks may hang over the image edge
        got = getattr(a, op)(b)
        assert np.array_equal(got.to_full(*size), reference(a.to_full(*size), b.to_full(*size)))
        assert_tight_inside(got, *size)
        nonempty += not got.is_empty()
    assert nonempty > 30


# -- discs ---------------------------------------------------------------------------------


def test_disc_by_hand() -> None:
    # Centre on a pixel corner: the four pixels around it are within 1 (0.707 away).
    assert mask_ops.disc(2.0, 2.0, 1.0, 10, 10) == CropMask(1, 1, np.ones((2, 2), dtype=bool))
    # Centre on a pixel centre, radius 1: the neighbours exactly 1 away are included.
    plus = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    assert mask_ops.disc(2.5, 2.5, 1.0, 10, 10) == CropMask(1, 1, plus)
    assert mask_ops.disc(2.5, 2.5, 0.0, 10, 10) == CropMask(2, 2, np.ones((1, 1), dtype=bool))
    assert mask_ops.disc(2.2, 2.5, 0.0, 10, 10).is_empty()
    # At the corner of the image only the quarter inside is kept.
    corner = mask_ops.disc(0.0, 0.0, 1.0, 10, 10)
    assert (corner.x, corner.y, corner.width, corner.height, corner.area) == (0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="radius"):
        mask_ops.disc(1.0, 1.0, -1.0, 10, 10)
    with pytest.raises(ValueError, match="radius"):
        mask_ops.disc(math.nan, 1.0, 1.0, 10, 10)


def random_disc(rng: np.random.Generator, width: int, height: int) -> tuple[float, float, float]:
    cx, cy = rng.uniform(-6, width + 6), rng.uniform(-6, height + 6)
    r = rng.uniform(0, 12)
    if rng.random() < 0.4:  # centres and radii on the half-pixel grid make exact ties
        cx, cy, r = round(cx * 2) / 2, round(cy * 2) / 2, round(r * 2) / 2
    return float(cx), float(cy), float(r)


def test_disc_paint_and_erase_match_the_full_frame() -> None:
    painted = erased = 0
    for rng, width, height in cases(seed=12, count=200):
        mask = random_mask(rng, width, height)
        cx, cy, r = random_disc(rng, width, height)
        ref_disc = full_disc(cx, cy, r, width, height)
        before = mask.to_full(width, height)
        got = mask_ops.disc(cx, cy, r, width, height)
        assert np.array_equal(got.to_full(width, height), ref_disc)
        paint = mask_ops.paint_disc(mask, cx, cy, r, width, height)
        assert np.array_equal(paint.to_full(width, height), before | ref_disc)
        erase = mask_ops.erase_disc(mask, cx, cy, r, width, height)
        assert np.array_equal(erase.to_full(width, height), before & ~ref_disc)
        for result in (got, paint, erase):
            assert_tight_inside(result, width, height)
        painted += paint.area > before.sum()
        erased += erase.area < before.sum()
    assert painted > 50 and erased > 30


def full_stroke(points: list[tuple[float, float]], r: float, width: int, height: int) -> np.ndarray:
    """Discs at every point, and the band of half-width r along each segment."""
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    out = np.zeros((height, width), dtype=bool)
    for x, y in points:
        out |= full_disc(x, y, r, width, height)
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        length = math.hypot(bx - ax, by - ay)
        if length == 0:
            continue
        along = ((xx - ax) * (bx - ax) + (yy - ay) * (by - ay)) / length
        across = ((xx - ax) * (by - ay) - (yy - ay) * (bx - ax)) / length
        out |= (along >= 0) & (along <= length) & (np.abs(across) <= r)
    return out


def test_brush_stroke_paint_and_erase_match_the_full_frame() -> None:
    painted = erased = 0
    for rng, width, height in cases(seed=21, count=200):
        mask = random_mask(rng, width, height)
        count = int(rng.integers(1, 6))
        points = [
            (float(rng.uniform(-6, width + 6)), float(rng.uniform(-6, height + 6)))
            for _ in range(count)
        ]
        if count > 2 and rng.random() < 0.3:
            points[1] = points[0]  # a repeated point, as a mouse that did not move gives
        r = float(rng.choice([0.0, rng.uniform(0.3, 3), rng.uniform(3, 12)]))
        ref = full_stroke(points, r, width, height)
        before = mask.to_full(width, height)
        got = mask_ops.stroke(points, r, width, height)
        assert np.array_equal(got.to_full(width, height), ref)
        paint = mask_ops.paint_stroke(mask, points, r, width, height)
        assert np.array_equal(paint.to_full(width, height), before | ref)
        erase = mask_ops.erase_stroke(mask, points, r, width, height)
        assert np.array_equal(erase.to_full(width, height), before & ~ref)
        for result in (got, paint, erase):
            assert_tight_inside(result, width, height)
        painted += paint.area > before.sum()
        erased += erase.area < before.sum()
    assert painted > 50 and erased > 30


def test_a_one_point_stroke_is_a_disc() -> None:
    assert mask_ops.stroke([(5.2, 7.9)], 3.5, 20, 20) == mask_ops.disc(5.2, 7.9, 3.5, 20, 20)
    assert mask_ops.stroke([], 3.0, 20, 20).is_empty()


def test_merge_is_the_union_of_all_masks() -> None:
    for rng, width, height in cases(seed=22, count=100):
        masks = [random_mask(rng, width, height) for _ in range(int(rng.integers(1, 5)))]
        ref = np.zeros((height + 6, width + 6), dtype=bool)
        for m in masks:
            ref |= m.to_full(width + 6, height + 6)
        merged = mask_ops.merge(masks)
        assert np.array_equal(merged.to_full(width + 6, height + 6), ref)
        assert merged == merged.tight()


# -- polygons --------------------------------------------------------------------------------


def random_polygon(rng: np.random.Generator, width: int, height: int) -> list[float]:
    n = int(rng.integers(3, 8))
    lo, hi = -8, max(width, height) + 8
    style = int(rng.integers(0, 4))
    if style == 0:
        xy = rng.integers(lo, hi, size=2 * n).astype(float)
    elif style == 1:
        xy = rng.integers(2 * lo, 2 * hi, size=2 * n) / 2
    elif style == 2:  # decimals as COCO files write them: 10.1 is not exact in binary
        xy = np.round(rng.uniform(lo, hi, size=2 * n), int(rng.integers(1, 3)))
    else:
        xy = rng.uniform(lo, hi, size=2 * n)
    return [float(v) for v in xy]


def pairs(flat: list[float]) -> list[tuple[float, float]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


def test_polygon_is_what_pycocotools_gives_on_the_full_frame() -> None:
    crossing = 0
    for rng, width, height in cases(seed=13, count=400):
        flat = random_polygon(rng, width, height)
        got = mask_ops.polygon(pairs(flat), width, height)
        assert np.array_equal(got.to_full(width, height), full_polygon(flat, width, height))
        assert_tight_inside(got, width, height)
        xs, ys = flat[::2], flat[1::2]
        crossing += min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height
    assert crossing > 100


def test_polygon_where_translating_to_its_box_would_round_differently() -> None:
    # pycocotools rounds 5 * x + 0.5 toward zero: 5 * 8.7 + 0.5 is 44.0, but after moving
    # the polygon left by 5, 5 * 3.7 + 0.5 is 18.999999999999996. Pixel (8, 5) depends on it.
    flat = [6.8, 13.2, 8.7, 4.9, 10.9, 10.1]
    expected = full_polygon(flat, 16, 16)
    assert not expected[5, 8] and expected.sum() == 14
    assert np.array_equal(mask_ops.polygon(pairs(flat), 16, 16).to_full(16, 16), expected)


def test_polygon_paint_and_erase_match_the_full_frame() -> None:
    for rng, width, height in cases(seed=14, count=200):
        mask = random_mask(rng, width, height)
        flat = random_polygon(rng, width, height)
        shape = full_polygon(flat, width, height)
        before = mask.to_full(width, height)
        paint = mask_ops.paint_polygon(mask, pairs(flat), width, height)
        assert np.array_equal(paint.to_full(width, height), before | shape)
        erase = mask_ops.erase_polygon(mask, np.array(pairs(flat)), width, height)
        assert np.array_equal(erase.to_full(width, height), before & ~shape)
        assert_tight_inside(paint, width, height)
        assert_tight_inside(erase, width, height)


def test_degenerate_polygons_cover_nothing_or_what_pycocotools_says() -> None:
    mask = CropMask(1, 1, np.ones((3, 3), dtype=bool))
    assert mask_ops.polygon([], 10, 10).is_empty()
    assert mask_ops.polygon([(1.0, 1.0), (5.0, 5.0)], 10, 10).is_empty()
    assert mask_ops.erase_polygon(mask, [(0.0, 0.0), (9.0, 9.0)], 10, 10) == mask
    line = [1.0, 1.0, 5.0, 5.0, 3.0, 3.0]  # collinear
    got = mask_ops.polygon(pairs(line), 10, 10).to_full(10, 10)
    assert np.array_equal(got, full_polygon(line, 10, 10))
    outside = [20.0, 20.0, 30.0, 20.0, 25.0, 30.0]
    assert mask_ops.polygon(pairs(outside), 10, 10).is_empty()
    assert full_polygon(outside, 10, 10).sum() == 0
    with pytest.raises(ValueError, match="finite"):
        mask_ops.polygon([(1.0, 1.0), (math.inf, 5.0), (3.0, 1.0)], 10, 10)


# -- parts, holes, specks ----------------------------------------------------------------------


def test_parts_are_the_8_connected_components_largest_first() -> None:
    several = 0
    for rng, width, height in cases(seed=15, count=150):
        mask = random_mask(rng, width, height)
        full = mask.to_full(width + 6, height + 6)
        expected = full_components(full)
        # Largest first; equal areas in reading order of the first pixel (stable sort).
        expected.sort(key=lambda p: -int(p.sum()))
        got = mask_ops.parts(mask)
        assert len(got) == len(expected)
        for part, ref in zip(got, expected, strict=True):
            assert np.array_equal(part.to_full(width + 6, height + 6), ref)
            assert_tight_inside(part, width + 6, height + 6)
        several += len(got) > 3
    assert several > 10
    assert mask_ops.parts(CropMask(3, 3, np.zeros((2, 2), dtype=bool))) == []


def test_parts_touching_at_a_corner_are_one_part() -> None:
    diagonal = CropMask(5, 5, np.eye(3, dtype=bool))
    assert len(mask_ops.parts(diagonal)) == 1
    apart = CropMask(5, 5, np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=bool))
    found = mask_ops.parts(apart)
    assert [(p.x, p.y, p.area) for p in found] == [(5, 7, 2), (5, 5, 1), (7, 5, 1)]


def full_fill_holes(full: np.ndarray) -> np.ndarray:
    padded = np.pad(full, 1)
    outside = flood(padded, (0, 0), FOUR)
    return ~outside[1:-1, 1:-1]


def test_fill_holes_matches_a_flood_fill_from_the_border() -> None:
    filled_some = 0
    for rng, width, height in cases(seed=16, count=150):
        mask = random_mask(rng, width, height)
        size = (width + 6, height + 6)
        got = mask_ops.fill_holes(mask)
        expected = full_fill_holes(mask.to_full(*size))
        assert np.array_equal(got.to_full(*size), expected)
        assert_tight_inside(got, *size)
        filled_some += got.area > mask.area
    assert filled_some > 10


def test_a_hole_closed_only_at_a_corner_is_still_a_hole() -> None:
    ring = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=bool)
    assert mask_ops.fill_holes(CropMask(0, 0, ring)).area == 5
    notch = np.array([[1, 1, 1], [1, 0, 1], [1, 0, 1]], dtype=bool)  # open at the bottom
    assert mask_ops.fill_holes(CropMask(0, 0, notch)).area == 7


def test_remove_specks_drops_only_parts_smaller_than_min_area() -> None:
    for rng, width, height in cases(seed=17, count=150):
        mask = random_mask(rng, width, height)
        min_area = int(rng.integers(0, 12))
        size = (width + 6, height + 6)
        expected = np.zeros(size[::-1], dtype=bool)
        for part in full_components(mask.to_full(*size)):
            if part.sum() >= min_area:
                expected |= part
        got = mask_ops.remove_specks(mask, min_area)
        assert np.array_equal(got.to_full(*size), expected)
        assert_tight_inside(got, *size)


# -- outlines ---------------------------------------------------------------------------------


def inside_ring(flat: list[float], width: int, height: int) -> np.ndarray:
    """Pixel centres inside a rectilinear ring by the even-odd rule (rays toward +x)."""
    pts = np.array(flat, dtype=float).reshape(-1, 2)
    cy, cx = np.mgrid[0:height, 0:width] + 0.5
    inside = np.zeros((height, width), dtype=bool)
    for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        if x0 == x1:
            inside ^= (cx < x0) & (np.minimum(y0, y1) < cy) & (cy < np.maximum(y0, y1))
    return inside


def check_ring(flat: list[float]) -> None:
    pts = np.array(flat, dtype=float).reshape(-1, 2)
    assert len(pts) >= 4 and np.array_equal(pts, np.round(pts))  # on pixel corners
    step = np.roll(pts, -1, axis=0) - pts
    assert ((step[:, 0] == 0) != (step[:, 1] == 0)).all()  # horizontal or vertical edges


def test_outline_rings_cover_exactly_the_mask() -> None:
    with_holes = 0
    for rng, width, height in cases(seed=18, count=150):
        mask = random_mask(rng, width, height).clipped(width, height)
        full = mask.to_full(width, height)
        outlines = mask_ops.outline(mask)
        parts = mask_ops.parts(mask)
        assert len(outlines) == len(parts) == len(full_components(full))
        by_rays = np.zeros_like(full)
        by_coco = np.zeros_like(full)
        for (outer, holes), part in zip(outlines, parts, strict=True):
            check_ring(outer)
            covered = inside_ring(outer, width, height)
            coco = full_polygon(outer, width, height)
            for hole in holes:
                check_ring(hole)
                covered &= ~inside_ring(hole, width, height)
                coco &= ~full_polygon(hole, width, height)
            assert np.array_equal(covered, part.to_full(width, height))  # same order
            by_rays |= covered
            by_coco |= coco
            with_holes += bool(holes)
        assert np.array_equal(by_rays, full)
        # The same rings give the same pixels through pycocotools, as COCO export needs.
        assert np.array_equal(by_coco, full)
    assert with_holes > 20


def test_outline_by_hand() -> None:
    square = CropMask(2, 3, np.ones((2, 2), dtype=bool))
    [(outer, holes)] = mask_ops.outline(square)
    assert sorted(pairs(outer)) == [(2, 3), (2, 5), (4, 3), (4, 5)]
    assert holes == []
    ring = np.ones((3, 3), dtype=bool)
    ring[1, 1] = False
    [(outer, holes)] = mask_ops.outline(CropMask(0, 0, ring))
    assert sorted(pairs(outer)) == [(0, 0), (0, 3), (3, 0), (3, 3)]
    assert [sorted(pairs(h)) for h in holes] == [[(1, 1), (1, 2), (2, 1), (2, 2)]]
    assert mask_ops.outline(CropMask(0, 0, np.zeros((0, 0), dtype=bool))) == []


# -- nothing full-frame -------------------------------------------------------------------


def test_operations_on_a_huge_image_touch_only_the_boxes() -> None:
    # A full frame of this image would need 400 TB; each call here works on a few pixels.
    side = 20_000_000
    mask = mask_ops.disc(1e7, 1e7, 3.0, side, side)
    assert (mask.x, mask.y, mask.width, mask.height, mask.area) == (9_999_997, 9_999_997, 6, 6, 32)
    square = [(1e7 - 1, 1e7 - 1), (1e7 + 1, 1e7 - 1), (1e7 + 1, 1e7 + 1), (1e7 - 1, 1e7 + 1)]
    hole = mask_ops.erase_polygon(mask, square, side, side)
    assert hole.area == 28 and mask_ops.fill_holes(hole) == mask
    assert mask_ops.paint_polygon(hole, square, side, side) == mask
    assert mask_ops.erase_disc(mask, 1e7, 1e7, 10.0, side, side).is_empty()
    assert [len(o.holes) for o in mask_ops.outline(hole)] == [1]
    corner = CropMask(side - 1, side - 1, np.ones((1, 1), dtype=bool))
    corner = mask_ops.paint_disc(corner, side, side, 2.0, side, side)
    assert (corner.x, corner.y, corner.width, corner.height) == (side - 2, side - 2, 2, 2)
    assert corner.area == 3
