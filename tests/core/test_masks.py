"""CropMask: COCO RLE from crops must be byte-identical to pycocotools on the full frame."""

from __future__ import annotations

import copy
import pickle

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


# -- CropMask is an immutable value ----------------------------------------------------


def some_bits() -> np.ndarray:
    bits = np.zeros((4, 5), dtype=bool)
    bits[1:3, 1:4] = True
    return bits


def assert_frozen(mask: CropMask) -> None:
    assert not mask.bits.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        mask.bits[0, 0] = True
    # Nor can the flag be set back: the bits are a view of a buffer nobody else holds.
    with pytest.raises(ValueError):
        mask.bits.flags.writeable = True


def test_bits_of_every_mask_are_read_only() -> None:
    full = np.zeros((9, 12), dtype=bool)
    full[2:6, 3:9] = True
    mask = CropMask(2, 1, some_bits())
    made = {
        "constructor": mask,
        "uint8 input": CropMask(0, 0, some_bits().astype(np.uint8)),
        "from_full": CropMask.from_full(full),
        "from_rle": CropMask.from_rle(mask.to_rle(12, 9)),
        "from_counts": CropMask.from_counts(mask.rle_counts(12, 9), 12, 9),
        "from_crop_counts": CropMask.from_crop_counts(2, 1, 5, 4, mask.crop_counts()),
        "empty from_crop_counts": CropMask.from_crop_counts(2, 1, 0, 0, b""),
        "tight": mask.tight(),
        "clipped": mask.clipped(4, 3),
        "union": mask.union(CropMask(0, 0, np.ones((2, 2), dtype=bool))),
        "intersection": mask.intersection(CropMask(3, 2, np.ones((2, 2), dtype=bool))),
        "difference": mask.difference(CropMask(3, 2, np.ones((2, 2), dtype=bool))),
    }
    for name, made_mask in made.items():
        assert made_mask.bits.dtype == np.bool_, name
        assert_frozen(made_mask)
    assert made["from_crop_counts"] == mask and made["from_full"] == CropMask(3, 2, full[2:6, 3:9])


def test_changing_the_callers_array_does_not_change_the_mask() -> None:
    bits = some_bits()
    mask = CropMask(0, 0, bits)
    bits[:] = False
    assert mask.area == 6 and mask.bits[1, 1]
    # A read-only view of a writable array still changes with that array.
    base = some_bits()
    view = base.view()
    view.flags.writeable = False
    mask = CropMask(0, 0, view)
    base[:] = False
    assert mask.area == 6
    # A read-only array its owner may make writable again.
    owned = some_bits()
    owned.flags.writeable = False
    mask = CropMask(0, 0, owned)
    owned.flags.writeable = True
    owned[:] = False
    assert mask.area == 6
    # Converted and Fortran-ordered inputs too.
    for arr in (some_bits().astype(np.uint8), np.asfortranarray(some_bits())):
        mask = CropMask(0, 0, arr)
        arr[...] = 0
        assert mask.area == 6


def test_derived_masks_cannot_change_the_original() -> None:
    mask = CropMask(3, 2, some_bits())
    for derived in (mask.tight(), mask.clipped(6, 4), mask.clipped(100, 100), mask.tight().tight()):
        assert_frozen(derived)
        with pytest.raises(ValueError):
            np.copyto(derived.bits, True)
    assert mask.area == 6 and mask.bbox() == (4, 3, 3, 2)


def test_views_of_mask_bits_are_kept_without_copying() -> None:
    mask = CropMask(3, 2, some_bits())
    # Hundreds of crops per image: clipping and re-wrapping another mask's bits share memory.
    assert np.shares_memory(mask.clipped(6, 4).bits, mask.bits)
    assert np.shares_memory(CropMask(7, 7, mask.bits[1:3]).bits, mask.bits)
    tight = mask.tight()
    assert tight.tight() is tight
    # A caller's writable array is never shared.
    bits = some_bits()
    assert not np.shares_memory(CropMask(0, 0, bits).bits, bits)


def test_copies_and_pickles_stay_read_only_values() -> None:
    mask = CropMask(3, 2, some_bits())
    assert copy.copy(mask) is mask and copy.deepcopy(mask) is mask
    back = pickle.loads(pickle.dumps(mask))
    assert back == mask and (back.x, back.y) == (3, 2)
    assert np.array_equal(back.bits, mask.bits)
    assert_frozen(back)
