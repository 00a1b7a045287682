"""Overlay rendering: exact blends inside masks, untouched pixels elsewhere, readable labels."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from maskdesk.core.categories import Category, CategoryTable
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.render import instance_color, render_overlay

NAMES = CategoryTable([Category(1, "cat"), Category(2, "dog")])


def block(x: int, y: int, w: int, h: int, category_id: int = 1, **kwargs: object) -> Instance:
    mask = CropMask(x, y, np.ones((h, w), dtype=bool))
    return Instance(category_id, mask, **kwargs)  # type: ignore[arg-type]


def photo(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=2)


@pytest.mark.parametrize("opacity", [0.5, 0.25])
def test_mask_interior_is_alpha_blended_exactly(opacity: float) -> None:
    img = np.empty((60, 80, 3), dtype=np.uint8)
    img[:] = (101, 150, 7)
    inst = block(20, 10, 30, 25, score=0.9)
    out = render_overlay(img, [inst], NAMES, opacity=opacity, draw_boxes=False, draw_labels=False)
    r, g, b = instance_color(0)
    # Half-way values round to even: (101 + 242) / 2 = 171.5 -> 172, (150 + 185) / 2 -> 168.
    expected = np.rint(
        np.array([101, 150, 7]) * (1 - opacity) + np.array([r, g, b]) * opacity
    ).astype(np.uint8)
    interior = out[12:33, 22:48]  # inside the mask, clear of its 1-pixel outline
    assert (interior == expected).all()
    if opacity == 0.5:
        assert tuple(expected) == (172, 168, 22)
    # The outline is the mask's own border, drawn in the full colour.
    assert tuple(out[10, 30]) == (r, g, b) and tuple(out[34, 30]) == (r, g, b)
    assert tuple(out[20, 20]) == (r, g, b) and tuple(out[20, 49]) == (r, g, b)
    # Without boxes and labels nothing outside the mask changes.
    outside = np.ones((60, 80), dtype=bool)
    outside[10:35, 20:50] = False
    assert (out[outside] == img[outside]).all()


def test_pixels_outside_masks_boxes_and_labels_are_untouched_and_input_is_kept() -> None:
    img = photo()
    before = img.copy()
    inst = block(40, 50, 50, 40, score=0.93, box=(35.0, 45.0, 95.0, 95.0))
    out = render_overlay(img, [inst], NAMES)
    assert np.array_equal(img, before)
    assert out.dtype == np.uint8 and out.shape == img.shape
    touched = changed(out, img)
    ys, xs = np.nonzero(touched)
    # Box from (35, 45) to (95, 95) with a 1-pixel line, the tag above its top-left corner.
    assert xs.min() >= 35 and xs.max() <= 94 and ys.max() <= 94
    assert 25 <= ys.min() < 45
    assert not touched[:, 95:].any() and not touched[95:].any() and not touched[:, :35].any()
    # Along the box's lines every pixel takes the instance's colour.
    assert (out[94, 35:95] == instance_color(0)).all()
    assert (out[45:95, 35] == instance_color(0)).all()


def test_hidden_rejected_and_low_score_instances_are_not_drawn() -> None:
    img = photo()
    hidden = [
        block(10, 10, 30, 30, score=0.9, visible=False),
        block(50, 10, 30, 30, score=0.9, review=Review.REJECTED),
        block(90, 10, 30, 30, score=0.3),
        block(10, 60, 30, 30, score=0.9, review=Review.REJECTED, origin=Origin.HUMAN),
        Instance(1, CropMask(5, 5, np.zeros((10, 10), dtype=bool)), score=0.9),
    ]
    assert np.array_equal(render_overlay(img, hidden, NAMES, min_score=0.5), img)
    accepted = block(90, 10, 30, 30, score=0.3, review=Review.ACCEPTED)
    human = block(50, 60, 30, 30, origin=Origin.HUMAN)
    out = render_overlay(img, [*hidden, accepted, human], NAMES, min_score=0.5)
    assert changed(out, img)[20, 100] and changed(out, img)[70, 60]
    assert not changed(out, img)[20:40, 15:35].any()  # where the hidden one lies


def lab(rgb: tuple[int, int, int]) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB colour, by OpenCV."""
    pixel = np.array([[rgb]], dtype=np.float32) / 255
    return cv2.cvtColor(pixel, cv2.COLOR_RGB2Lab)[0, 0].astype(np.float64)


def delta_e2000(lab1: Sequence[float] | np.ndarray, lab2: Sequence[float] | np.ndarray) -> float:
    """CIEDE2000 colour difference (Sharma, Wu and Dalal, 2005)."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_mean = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_mean**7 / (c_mean**7 + 25**7)))
    a1, a2 = (1 + g) * a1, (1 + g) * a2
    c1, c2 = math.hypot(a1, b1), math.hypot(a2, b2)
    h1 = math.degrees(math.atan2(b1, a1)) % 360 if c1 else 0.0
    h2 = math.degrees(math.atan2(b2, a2)) % 360 if c2 else 0.0
    dh = 0.0 if c1 * c2 == 0 else (h2 - h1 + 180) % 360 - 180
    d_hue = 2 * math.sqrt(c1 * c2) * math.sin(math.radians(dh / 2))
    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    if c1 * c2 == 0:
        h_mean = h1 + h2
    elif abs(h1 - h2) <= 180:
        h_mean = (h1 + h2) / 2
    else:
        h_mean = (h1 + h2 + 360) / 2 if h1 + h2 < 360 else (h1 + h2 - 360) / 2
    t = (
        1
        - 0.17 * math.cos(math.radians(h_mean - 30))
        + 0.24 * math.cos(math.radians(2 * h_mean))
        + 0.32 * math.cos(math.radians(3 * h_mean + 6))
        - 0.20 * math.cos(math.radians(4 * h_mean - 63))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / math.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    r_c = 2 * math.sqrt(c_mean**7 / (c_mean**7 + 25**7))
    r_t = -math.sin(math.radians(60 * math.exp(-(((h_mean - 275) / 25) ** 2)))) * r_c
    dl, dc, dhh = (l2 - l1) / s_l, (c2 - c1) / s_c, d_hue / s_h
    return math.sqrt(dl**2 + dc**2 + dhh**2 + r_t * dc * dhh)


def contrast_ratio(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours."""

    def luminance(rgb: tuple[int, int, int]) -> float:
        lin = [
            v / 255 / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4
            for v in rgb
        ]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_colour_difference_reference_matches_published_values() -> None:
    # sRGB red in L*a*b*, and pairs from Sharma, Wu and Dalal's CIEDE2000 test data.
    np.testing.assert_allclose(lab((255, 0, 0)), [53.24, 80.09, 67.20], atol=0.02)
    for lab1, lab2, expected in [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ]:
        assert delta_e2000(lab1, lab2) == pytest.approx(expected, abs=1e-4)
        assert delta_e2000(lab2, lab1) == pytest.approx(expected, abs=1e-4)
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((119, 119, 119), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)


def test_first_twenty_colours_are_far_apart_to_the_eye_and_saturated() -> None:
    colours = [instance_color(i) for i in range(20)]
    labs = [lab(c) for c in colours]
    closest = min(delta_e2000(a, b) for a, b in itertools.combinations(labs, 2))
    # About 2 is just noticeable side by side; 15 tells two masks apart at a glance.
    assert closest >= 15.0
    first_ten = min(delta_e2000(a, b) for a, b in itertools.combinations(labs[:10], 2))
    assert first_ten >= 24.0  # the few instances of a typical picture get the most distinct
    for colour, (lightness, _a, _b) in zip(colours, labs, strict=True):
        assert max(colour) - min(colour) > 110  # saturated, not greys
        assert lightness >= 35  # not near black, which vanishes on dark photos


def test_colours_are_fixed_across_calls_and_processes() -> None:
    assert instance_color(0) == (242, 185, 36)  # amber
    assert instance_color(1) == (60, 15, 255)  # blue-violet
    assert instance_color(32) == instance_color(0)  # the palette repeats past 32
    script = (
        "from maskdesk.core.render import instance_color\n"
        "print([instance_color(i) for i in range(40)])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert done.stdout.strip() == str([instance_color(i) for i in range(40)])


@pytest.mark.parametrize("index", range(32))
def test_label_text_is_black_or_white_whichever_reads_better(index: int) -> None:
    # Grey, so that neither black nor white text matches it; big enough for 2-pixel strokes.
    img = np.full((1300, 1300, 3), 128, dtype=np.uint8)
    hidden = [block(0, 0, 5, 5, visible=False)] * index  # instance `index` keeps its colour
    shown = block(100, 600, 500, 400, score=0.93)
    out = render_overlay(img, [*hidden, shown], NAMES, draw_boxes=False)
    colour = instance_color(index)
    tag = out[:599][changed(out[:599], img[:599])]
    assert (tag == colour).all(axis=1).mean() > 0.5  # the tag's background
    # The text pixel farthest from the background is the text colour itself.
    far = tag[np.abs(tag.astype(int) - colour).sum(axis=1).argmax()]
    text = (int(far[0]), int(far[1]), int(far[2]))
    assert text in ((0, 0, 0), (255, 255, 255))
    other = (255, 255, 255) if text == (0, 0, 0) else (0, 0, 0)
    # WCAG AA asks 4.5 for body text; black or white always reaches it on the better side.
    assert contrast_ratio(text, colour) >= 4.5
    assert contrast_ratio(text, colour) >= contrast_ratio(other, colour)
    if index == 0:
        assert text == (0, 0, 0)  # dark text on amber
    if index == 1:
        assert text == (255, 255, 255)  # light text on blue-violet


def test_later_instances_lie_on_top() -> None:
    img = np.full((50, 80, 3), 128, dtype=np.uint8)
    first, second = block(5, 5, 40, 40, score=0.9), block(30, 5, 40, 40, score=0.8)
    out = render_overlay(img, [first, second], NAMES, draw_boxes=False, draw_labels=False)
    a, b = np.array(instance_color(0)), np.array(instance_color(1))
    assert np.array_equal(out[20, 15], np.rint((128 + a) / 2))
    assert np.array_equal(out[20, 60], np.rint((128 + b) / 2))
    # Where they overlap the second is blended over the first.
    assert np.array_equal(out[20, 40], np.rint((np.rint((128 + a) / 2) + b) / 2))


def test_label_shows_name_and_score_on_a_tag_in_the_instance_colour() -> None:
    img = np.zeros((200, 300, 3), dtype=np.uint8)
    with_score = render_overlay(img, [block(20, 100, 100, 80, score=0.93)], NAMES)
    no_score = render_overlay(img, [block(20, 100, 100, 80)], NAMES)
    no_label = render_overlay(img, [block(20, 100, 100, 80)], NAMES, draw_labels=False)
    colour = instance_color(0)

    def tag_width(out: np.ndarray) -> int:
        above = changed(out[:99], img[:99])
        return int(np.ptp(np.nonzero(above.any(axis=0))[0]) + 1) if above.any() else 0

    assert tag_width(no_label) == 0
    assert tag_width(with_score) > tag_width(no_score) > 20  # "cat 0.93" is longer than "cat"
    assert tuple(with_score[98, 21]) == colour  # the tag's background, just above the box
    tag = with_score[:99][changed(with_score[:99], img[:99])]
    assert (tag != colour).any(axis=1).sum() > 20  # text pixels in another colour


def test_label_at_the_top_edge_stays_inside_the_image() -> None:
    img = np.zeros((100, 120, 3), dtype=np.uint8)
    out = render_overlay(img, [block(100, 0, 20, 30, score=0.5, category_id=2)], NAMES)
    ys, xs = np.nonzero(changed(out, img))
    assert ys.min() == 0 and xs.max() == 119
    assert tuple(out[1, 119]) == instance_color(0)  # tag drawn inside the box's top edge


def test_labels_and_lines_scale_with_the_picture() -> None:
    def tag_height(height: int, width: int) -> int:
        img = np.zeros((height, width, 3), dtype=np.uint8)
        y = height // 2
        inst = block(width // 4, y, width // 4, height // 4, score=0.5)
        out = render_overlay(img, [inst], NAMES, draw_boxes=False)
        return int(changed(out[:y], img[:y]).any(axis=1).sum())

    small, large = tag_height(480, 640), tag_height(3000, 4000)
    assert 10 <= small <= 30
    assert large > 4 * small


def test_bands_on_threads_give_the_same_picture() -> None:
    img = photo(300, 200, seed=1)
    rng = np.random.default_rng(2)
    instances = []
    for i in range(12):
        w, h = (int(v) for v in rng.integers(10, 120, size=2))
        bits = rng.random((h, w)) < 0.7
        x, y = int(rng.integers(0, 190)), int(rng.integers(0, 290))
        instances.append(Instance(1 + i % 2, CropMask(x, y, bits), score=0.9))  # some clipped
    single = render_overlay(img, instances, NAMES, workers=1)
    for workers in (2, 3, 5):
        assert np.array_equal(render_overlay(img, instances, NAMES, workers=workers), single)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        render_overlay(np.zeros((10, 10, 3), dtype=np.float32), [], NAMES)
    with pytest.raises(ValueError, match="uint8 RGB"):
        render_overlay(np.zeros((10, 10), dtype=np.uint8), [], NAMES)
    with pytest.raises(ValueError, match="opacity"):
        render_overlay(np.zeros((10, 10, 3), dtype=np.uint8), [], NAMES, opacity=1.5)
