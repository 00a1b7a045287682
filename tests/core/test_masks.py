"""CropMask: COCO RLE from crops must be byte-identical to pycocotools on the full frame."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_util

from maskdesk.core.masks import CropMask


def full_rle(full: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(full.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def random_masks(seed: int, count: int):
    """(mask, height, width): random crops, some touching or crossing the image border."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        height, width = (int(v) for v in rng.integers(1, 40, size=2))
        h, w = (int(v) for v in rng.integers(1, 30, size=2))
        x, y = int(rng.integers(0, width + 5)), int(rng.integers(0, height + 5))
        bits = rng.random((h, w)) < rng.uniform(0.05, 0.95)
        yield CropMask(x, y, bits), height, width


def test_rle_of_crops_is_byte_identical_to_pycocotools_on_the_full_frame() -> None:
    checked = 0
    for mask, height, width in random_masks(seed=0, count=300):
        full = mask.to_full(width, height)
        assert mask.to_rle(width, height) == full_rle(full)
        expected = mask_util.frPyObjects(
            {"size": [height, width], "counts": mask.rle_counts(width, height)}, height, width
        )
        assert expected["counts"].decode("ascii") == full_rle(full)["counts"]
        checked += int(full.any())
    assert checked > 150  # most of the random crops do land inside their image


def test_rle_counts_start_with_a_zero_run_and_cover_the_frame() -> None:
    mask = CropMask(0, 0, np.ones((2, 2), dtype=bool))
    counts = mask.rle_counts(4, 3)
    # Column-major over 3 x 4: two set pixels, one clear, two set, then 7 clear.
    assert counts == [0, 2, 1, 2, 7]
    assert sum(counts) == 12


@pytest.mark.parametrize("compressed", [True, False])
def test_from_rle_round_trip(compressed: bool) -> None:
    for mask, height, width in random_masks(seed=1, count=120):
        if compressed:
            rle = mask.to_rle(width, height)
        else:
            rle = {"size": [height, width], "counts": mask.rle_counts(width, height)}
        back = CropMask.from_rle(rle)
        assert np.array_equal(back.to_full(width, height), mask.to_full(width, height))
        assert back == mask.clipped(width, height)


def test_from_rle_accepts_bytes_counts_and_gives_a_tight_crop() -> None:
    full = np.zeros((20, 30), dtype=bool)
    full[5:9, 10:17] = True
    full[6, 12] = False
    rle = mask_util.encode(np.asfortranarray(full.astype(np.uint8)))
    mask = CropMask.from_rle(rle)
    assert (mask.x, mask.y, mask.width, mask.height) == (10, 5, 7, 4)
    assert not mask.bits[1, 2]
    assert mask.area == 27


def test_bbox_and_area_come_from_the_set_pixels_not_the_crop() -> None:
    bits = np.zeros((10, 12), dtype=bool)
    bits[2:5, 3:9] = True
    bits[7, 1] = True
    mask = CropMask(100, 50, bits)
    assert mask.bbox() == (101, 52, 8, 6)
    assert mask.area == 19
    tight = mask.tight()
    assert (tight.x, tight.y, tight.width, tight.height) == (101, 52, 8, 6)
    assert tight.area == 19


def test_clipping_keeps_only_the_part_inside_the_image() -> None:
    mask = CropMask(8, 6, np.ones((5, 5), dtype=bool))
    clipped = mask.clipped(width=10, height=9)
    assert (clipped.x, clipped.y, clipped.width, clipped.height) == (8, 6, 2, 3)
    assert clipped.area == 6
    full = mask.to_full(10, 9)
    assert full.sum() == 6 and full[6:9, 8:10].all()
    assert mask.to_rle(10, 9) == full_rle(full)
    outside = CropMask(20, 20, np.ones((3, 3), dtype=bool))
    assert outside.clipped(10, 9).is_empty()
    assert outside.rle_counts(10, 9) == [90]


def test_empty_masks() -> None:
    empty = CropMask(4, 4, np.zeros((3, 3), dtype=bool))
    assert empty.is_empty()
    assert empty.area == 0
    assert empty.bbox() == (0, 0, 0, 0)
    assert empty.tight().bits.shape == (0, 0)
    assert empty.to_rle(7, 6) == full_rle(np.zeros((6, 7), dtype=bool))
    back = CropMask.from_rle(empty.to_rle(7, 6))
    assert back.is_empty()
    assert back == CropMask(0, 0, np.zeros((0, 0), dtype=bool))


def test_crop_counts_round_trip_keeps_the_crop_exactly() -> None:
    for mask, _height, _width in random_masks(seed=2, count=100):
        counts = mask.crop_counts()
        assert isinstance(counts, bytes)
        back = CropMask.from_crop_counts(mask.x, mask.y, mask.width, mask.height, counts)
        assert (back.x, back.y) == (mask.x, mask.y)
        assert back.bits.dtype == np.bool_
        assert np.array_equal(back.bits, mask.bits)
    nothing = CropMask(3, 4, np.zeros((0, 0), dtype=bool))
    back = CropMask.from_crop_counts(3, 4, 0, 0, nothing.crop_counts())
    assert back.is_empty() and (back.x, back.y) == (3, 4)


def test_equality_compares_pixels_in_place_not_crop_padding() -> None:
    bits = np.zeros((4, 4), dtype=bool)
    bits[1:3, 1:3] = True
    padded = CropMask(10, 10, bits)
    tight = CropMask(11, 11, np.ones((2, 2), dtype=bool))
    assert padded == tight
    assert padded != CropMask(12, 11, np.ones((2, 2), dtype=bool))  # moved by one pixel
    other = bits.copy()
    other[1, 1] = False
    assert padded != CropMask(10, 10, other)
    assert CropMask(0, 0, np.zeros((2, 2), dtype=bool)) == CropMask(9, 9, np.zeros((1, 3)))
    assert padded != "not a mask"
    with pytest.raises(TypeError):
        hash(padded)


def test_from_full_makes_a_tight_crop() -> None:
    full = np.zeros((30, 40), dtype=np.uint8)
    full[10:20, 5:8] = 255
    mask = CropMask.from_full(full)
    assert (mask.x, mask.y, mask.width, mask.height) == (5, 10, 3, 10)
    assert mask.bits.all()
    assert np.array_equal(mask.to_full(40, 30), full != 0)


def test_bits_are_bool_and_bad_shapes_or_origins_are_refused() -> None:
    mask = CropMask(1, 2, np.array([[0, 3], [1, 0]], dtype=np.uint8))
    assert mask.bits.dtype == np.bool_
    assert mask.area == 2
    with pytest.raises(ValueError, match="2-D"):
        CropMask(0, 0, np.zeros((2, 2, 2), dtype=bool))
    with pytest.raises(ValueError, match="inside the image"):
        CropMask(-1, 0, np.zeros((2, 2), dtype=bool))


def test_iou_of_crops_matches_full_frame_iou() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        a = CropMask(int(rng.integers(0, 20)), int(rng.integers(0, 20)), rng.random((9, 13)) > 0.3)
        b = CropMask(int(rng.integers(0, 20)), int(rng.integers(0, 20)), rng.random((11, 7)) > 0.3)
        fa, fb = a.to_full(40, 40), b.to_full(40, 40)
        expected = (fa & fb).sum() / max((fa | fb).sum(), 1)
        assert a.iou(b) == pytest.approx(expected)
    assert a.iou(a) == 1.0
    empty = CropMask(0, 0, np.zeros((0, 0), dtype=bool))
    assert empty.iou(empty) == 0.0


def test_from_rle_refuses_counts_that_do_not_cover_the_image() -> None:
    # pycocotools would decode these into uninitialised pixels; we say what is wrong
    with pytest.raises(ValueError, match="do not add up to 3 x 4"):
        CropMask.from_rle({"size": [3, 4], "counts": [5, 2]})
    whole = CropMask.from_rle({"size": [3, 4], "counts": [5, 2, 5]})
    # column-major: pixels 5 and 6 are (row 2, col 1) and (row 0, col 2)
    assert whole == CropMask.from_full(np.array([[0, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]))
