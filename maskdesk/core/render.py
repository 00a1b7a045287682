"""Overlay pictures of instances: colour fill, outline, box and label, composed from crops.

Each instance touches only its own crop of the picture: the crop is alpha-blended with the
instance's colour and the result copied in under the mask, so rendering costs what the
objects cover rather than one full-frame blend (and one full-frame mask) per instance.
The blend is out = round(img * (1 - a) + colour * a), ties to even, with the opacity a taken
in steps of 1/256 (0.5 exactly); `blend_value` states it for tests and callers.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from maskdesk.core.categories import CategoryTable
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask

_FONT = cv2.FONT_HERSHEY_SIMPLEX

# Instance colours, far apart for the eye: after the first, each is the colour farthest
# (CIEDE2000) from all before it among saturated, not too dark sRGB colours (HSV S >= 0.65,
# V >= 0.7, L* >= 35, channels in steps of 15). The first 10 differ pairwise by >= 24, the
# first 20 by >= 15 and all 32 by >= 11.9; a difference of about 2 is just noticeable.
# (Hues spaced by the golden ratio, used before, put two greens 2.8 apart within 20.)
_PALETTE: tuple[tuple[int, int, int], ...] = (
    (242, 185, 36),
    (60, 15, 255),
    (0, 210, 255),
    (195, 0, 0),
    (0, 255, 150),
    (255, 75, 180),
    (75, 135, 255),
    (255, 120, 45),
    (135, 180, 0),
    (180, 0, 90),
    (0, 180, 150),
    (240, 255, 0),
    (255, 75, 90),
    (180, 120, 0),
    (180, 75, 255),
    (0, 90, 180),
    (75, 255, 240),
    (0, 150, 180),
    (180, 0, 165),
    (0, 180, 75),
    (135, 255, 15),
    (180, 90, 30),
    (255, 30, 0),
    (180, 165, 60),
    (30, 165, 240),
    (75, 90, 255),
    (255, 165, 75),
    (195, 60, 75),
    (120, 60, 180),
    (240, 0, 120),
    (255, 60, 255),
    (225, 210, 75),
)


def instance_color(index: int) -> tuple[int, int, int]:
    """The RGB colour of the index-th instance: a fixed palette of 32, repeated beyond that.

    Early instances get the most distinct colours: the first 20 differ pairwise by a
    CIEDE2000 colour difference of at least 15.
    """
    return _PALETTE[index % len(_PALETTE)]


def distinct_colors(ids: Iterable[int]) -> dict[int, tuple[int, int, int]]:
    """Colours for one image's instances, by id: each keeps `instance_color(id)` unless an
    instance of a smaller id took that colour, then it takes the next free one, so no two
    share a colour while there are at most 32 (beyond, colours repeat). Adding an instance
    (a larger id) never changes the others' colours."""
    taken: set[int] = set()
    out: dict[int, tuple[int, int, int]] = {}
    size = len(_PALETTE)
    for key in sorted(set(ids)):
        slot = key % size
        if len(taken) < size:
            while slot in taken:
                slot = (slot + 1) % size
            taken.add(slot)
        out[key] = _PALETTE[slot]
    return out


def _quantised(opacity: float) -> float:
    # In steps of 1/256 every product and sum of the blend is exact in float32, so OpenCV's
    # result is exactly round-half-to-even of the true value, whatever its code path.
    return round(opacity * 256) / 256


def blend_value(pixel: np.ndarray, color: tuple[int, int, int], opacity: float) -> np.ndarray:
    """The blended value of `pixel` (..., 3) under a mask of `color`: the reference formula."""
    a = _quantised(opacity)
    exact = np.asarray(pixel, dtype=np.float64) * (1.0 - a) + np.asarray(color) * a
    return np.rint(exact).astype(np.uint8)


def _label(inst: Instance, categories: CategoryTable) -> str:
    name = categories.name(inst.category_id)
    return name if inst.score is None else f"{name} {inst.score:.2f}"


def text_color(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with `color` (WCAG 2 contrast ratio)."""
    linear = [v / 3294.6 if v <= 10 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in color]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with black is (Y + 0.05) / 0.05, with white 1.05 / (Y + 0.05).
    return (0, 0, 0) if (luminance + 0.05) ** 2 > 0.05 * 1.05 else (255, 255, 255)


def render_overlay(
    rgb: np.ndarray,
    instances: Sequence[Instance],
    categories: CategoryTable,
    *,
    opacity: float = 0.5,
    min_score: float = 0.0,
    draw_boxes: bool = True,
    draw_labels: bool = True,
    workers: int | None = None,
) -> np.ndarray:
    """A new uint8 RGB picture of `rgb` with every exported instance drawn on it.

    Instance i of `instances` gets `instance_color(i)`, so colours stay put when a threshold
    hides some. Fills with their outlines (the mask's inner border band) come first, later
    instances on top, then boxes, then labels, so that no fill covers a box or a label.
    `workers` threads share the fills by bands of rows (default: the CPU count for big
    pictures, else 1); the picture is the same whatever their number.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be within [0, 1], got {opacity}")
    out = np.array(rgb, copy=True, order="C")
    height, width = out.shape[:2]
    # Sizes scale with the picture so labels read the same on 640 px and on 12 MP images.
    side = max(height, width)
    line = max(1, round(side / 640))
    font_scale = max(0.4, side / 1300)
    text_thickness = max(1, round(font_scale * 1.6))

    drawn: list[tuple[int, Instance, CropMask]] = []
    for index, inst in enumerate(instances):
        if inst.exported(min_score):
            mask = inst.mask.clipped(width, height)
            if not mask.is_empty():
                drawn.append((index, inst, mask))
    if drawn:
        _compose(out, drawn, _quantised(opacity), line, workers)
    for index, inst, _mask in drawn:
        if draw_boxes and inst.box is not None:
            x0, y0, x1, y1 = (round(v) for v in inst.box)
            color = instance_color(index)
            cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), color, line)
    if draw_labels:
        for index, inst, _mask in drawn:
            text = _label(inst, categories)
            _draw_label(out, text, inst, instance_color(index), font_scale, text_thickness)
    return out


def _fill_and_outline(
    out: np.ndarray,
    drawn: list[tuple[int, Instance, CropMask]],
    opacity: float,
    line: int,
    rows: tuple[int, int],
) -> None:
    """Blend each mask into rows [top, bottom) of `out` and draw its inner outline there.

    Only each instance's crop is touched; later instances lie on top of earlier ones.
    Scratch buffers sized for the largest crop are shared by all instances, so nothing of
    full-frame size is allocated. Bands of rows are independent, so they can run in threads.
    """
    top, bottom = rows
    most_h = min(bottom - top, max(mask.height for _i, _inst, mask in drawn)) + 2 * line
    most_w = max(mask.width for _i, _inst, mask in drawn)
    paint = np.empty((most_h, most_w, 3), dtype=np.uint8)
    blended = np.empty((most_h, most_w, 3), dtype=np.uint8)
    inner = np.empty((most_h, most_w), dtype=np.uint8)
    edge = np.empty((most_h, most_w), dtype=np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * line + 1, 2 * line + 1))
    for index, _inst, mask in drawn:
        r0, r1 = max(mask.y, top), min(mask.y + mask.height, bottom)
        if r0 >= r1:
            continue
        h, w = r1 - r0, mask.width
        region = out[r0:r1, mask.x : mask.x + w]
        # The outline needs `line` rows of context beyond the band to match the whole crop.
        e0, e1 = max(0, r0 - mask.y - line), min(mask.height, r1 - mask.y + line)
        context = np.ascontiguousarray(mask.bits[e0:e1]).view(np.uint8)
        inside = r0 - mask.y - e0
        bits = context[inside : inside + h]
        color = paint[:h, :w]
        cv2.rectangle(color, (0, 0), (w - 1, h - 1), instance_color(index), cv2.FILLED)
        # Blend the whole crop, then keep the result under the mask only.
        mix = blended[:h, :w]
        cv2.addWeighted(region, 1.0 - opacity, color, opacity, 0.0, dst=mix)
        cv2.copyTo(mix, bits, region)
        # The outline is the mask's own border band, `line` pixels wide; pixels beyond the
        # crop count as outside, so the mask's edge on the crop border is outlined too.
        band, core = edge[: e1 - e0, :w], inner[: e1 - e0, :w]
        cv2.erode(context, kernel, dst=core, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        cv2.subtract(context, core, dst=band)
        cv2.copyTo(color, band[inside : inside + h], region)


def _compose(
    out: np.ndarray,
    drawn: list[tuple[int, Instance, CropMask]],
    opacity: float,
    line: int,
    workers: int | None,
) -> None:
    """Fill and outline all instances, in horizontal bands on several threads if worth it."""
    height = out.shape[0]
    covered = sum(mask.height * mask.width for _i, _inst, mask in drawn)
    if workers is None:
        # OpenCV releases the GIL; below a few megapixels of crops threads cost more than
        # they save.
        workers = min(os.cpu_count() or 1, 8) if covered > 2_000_000 else 1
    if workers <= 1:
        _fill_and_outline(out, drawn, opacity, line, (0, height))
        return
    # Twice as many bands as threads evens out bands that hold more instances than others.
    bands = max(1, min(2 * workers, height))
    edges = np.linspace(0, height, bands + 1).round().astype(int)
    with ThreadPoolExecutor(workers) as pool:
        jobs = [
            pool.submit(_fill_and_outline, out, drawn, opacity, line, (int(a), int(b)))
            for a, b in itertools.pairwise(edges)
        ]
        for job in jobs:
            job.result()


def _draw_label(
    out: np.ndarray,
    text: str,
    inst: Instance,
    color: tuple[int, int, int],
    font_scale: float,
    thickness: int,
) -> None:
    """A filled tag in the instance's colour with black or white text, kept inside the image."""
    height, width = out.shape[:2]
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, thickness)
    pad = max(2, round(text_h * 0.25))
    tag_w, tag_h = text_w + 2 * pad, text_h + baseline + 2 * pad
    x0, y0, _x1, _y1 = inst.box if inst.box is not None else (0.0, 0.0, 0.0, 0.0)
    left = int(min(max(0, round(x0)), max(0, width - tag_w)))
    top = round(y0) - tag_h  # above the box when there is room, else just inside it
    if top < 0:
        top = max(0, round(y0))
    top = int(min(top, max(0, height - tag_h)))
    cv2.rectangle(out, (left, top), (left + tag_w - 1, top + tag_h - 1), color, cv2.FILLED)
    origin = (left + pad, top + pad + text_h)
    cv2.putText(out, text, origin, _FONT, font_scale, text_color(color), thickness, cv2.LINE_AA)
