"""Overlay rendering: exact blends inside masks, untouched pixels elsewhere, readable labels."""

from __future__ import annotations

import itertools

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


def test_colours_differ_between_instances_and_later_ones_lie_on_top() -> None:
    colours = [instance_color(i) for i in range(20)]
    assert len(set(colours)) == 20
    assert all(
        sum(abs(p - q) for p, q in zip(a, b, strict=True)) > 40
        for a, b in itertools.combinations(colours, 2)
    )
    assert all(max(c) - min(c) > 150 for c in colours)  # saturated, not greys
    assert instance_color(3) == instance_color(3)

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
