"""Box-local binary masks: a crop and its place in the image, never a full frame.

A 12 MP photo with 100 instances would need 1.2 GB as full-frame bool masks; as crops
it needs what the objects cover. COCO run-length encoding is computed from the crop and
a column strip, so no full-frame array is made on the way out either.

A CropMask is an immutable value: its `bits` are read-only and shared with no writable
array, so an undo stack, a cache or two instances can hold the same mask safely.
Painting, erasing and clean-up operations live in `mask_ops`.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_util

# Buffers a CropMask allocated itself and made read-only. A read-only array alone is no
# promise (its owner may set it writable again), so only views of these are kept uncopied.
_SEALED: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


def _seal(fresh: np.ndarray) -> np.ndarray:
    """Read-only view of `fresh`, an array that owns its data and nobody else holds."""
    fresh.flags.writeable = False
    _SEALED[id(fresh)] = fresh
    # Handing out a view, not the buffer, means `mask.bits.flags.writeable = True` fails.
    return fresh.view()


def _is_sealed(bits: np.ndarray) -> bool:
    root = bits
    while isinstance(root.base, np.ndarray):
        root = root.base
    return _SEALED.get(id(root)) is root


@dataclass(frozen=True, eq=False)
class CropMask:
    """`bits` (bool, h x w) placed with its top-left corner at (x, y) in the image.

    Immutable: `bits` is read-only, and an array passed in is copied unless it is already
    a view of another CropMask's bits.
    """

    x: int
    y: int
    bits: np.ndarray

    def __post_init__(self) -> None:
        bits = self.bits if isinstance(self.bits, np.ndarray) else np.asarray(self.bits)
        if bits.ndim != 2:
            raise ValueError(f"mask bits must be 2-D, got shape {bits.shape}")
        if self.x < 0 or self.y < 0:
            raise ValueError(f"mask origin must be inside the image, got ({self.x}, {self.y})")
        if bits.dtype != np.bool_ or not _is_sealed(bits):
            bits = _seal(np.array(bits, dtype=bool, order="C"))
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "x", int(self.x))
        object.__setattr__(self, "y", int(self.y))

    @classmethod
    def _adopt(cls, x: int, y: int, fresh: np.ndarray) -> CropMask:
        """A mask over `fresh` (bool, owns its data, referenced nowhere else), uncopied."""
        assert fresh.base is None, "a view would be copied again by the constructor"
        return cls(x, y, _seal(fresh))

    # Immutable values need no copies; pickling rebuilds through the constructor so the
    # unpickled bits are sealed too.
    def __copy__(self) -> CropMask:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> CropMask:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.x, self.y, self.bits))

    @property
    def height(self) -> int:
        return int(self.bits.shape[0])

    @property
    def width(self) -> int:
        return int(self.bits.shape[1])

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.bits))

    def is_empty(self) -> bool:
        return not self.bits.any()

    def bbox(self) -> tuple[int, int, int, int]:
        """Tight box [x, y, w, h] of the set pixels; (0, 0, 0, 0) when empty."""
        rows = np.flatnonzero(self.bits.any(axis=1))
        if rows.size == 0:
            return (0, 0, 0, 0)
        cols = np.flatnonzero(self.bits.any(axis=0))
        return (
            self.x + int(cols[0]),
            self.y + int(rows[0]),
            int(cols[-1] - cols[0] + 1),
            int(rows[-1] - rows[0] + 1),
        )

    def tight(self) -> CropMask:
        """The same mask cropped to its set pixels (an empty mask becomes 0 x 0)."""
        x, y, w, h = self.bbox()
        if (w, h) == (self.width, self.height):
            return self
        if w == 0:
            return CropMask._adopt(self.x, self.y, np.zeros((0, 0), dtype=bool))
        top, left = y - self.y, x - self.x
        # A copy, not a view, so a small mask cut from a large one does not keep it alive.
        return CropMask._adopt(x, y, self.bits[top : top + h, left : left + w].copy())

    def clipped(self, width: int, height: int) -> CropMask:
        """The part of the mask that lies inside a width x height image."""
        h = max(0, min(self.height, height - self.y))
        w = max(0, min(self.width, width - self.x))
        if (h, w) == (self.height, self.width):
            return self
        return CropMask(min(self.x, width), min(self.y, height), self.bits[:h, :w])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CropMask):
            return NotImplemented
        a, b = self.tight(), other.tight()
        if a.is_empty() and b.is_empty():
            return True
        return (a.x, a.y) == (b.x, b.y) and np.array_equal(a.bits, b.bits)

    __hash__ = None  # type: ignore[assignment]

    def iou(self, other: CropMask) -> float:
        """Intersection over union of the set pixels, computed on the crops' overlap only."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        inter = 0
        if x1 > x0 and y1 > y0:
            a = self.bits[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x]
            b = other.bits[y0 - other.y : y1 - other.y, x0 - other.x : x1 - other.x]
            inter = int(np.count_nonzero(a & b))
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    # -- hit test and set algebra, on the crops' boxes only -------------------------------

    def contains(self, x: float, y: float) -> bool:
        """Whether image point (x, y) is on a set pixel; pixel (i, j) is [i, i+1) x [j, j+1)."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return False
        col, row = math.floor(x) - self.x, math.floor(y) - self.y
        return 0 <= row < self.height and 0 <= col < self.width and bool(self.bits[row, col])

    def union(self, other: CropMask) -> CropMask:
        """Pixels set in either mask, as a tight crop over the two boxes."""
        a, b = self.tight(), other.tight()
        if b.is_empty():
            return a
        if a.is_empty():
            return b
        x0, y0 = min(a.x, b.x), min(a.y, b.y)
        x1, y1 = max(a.x + a.width, b.x + b.width), max(a.y + a.height, b.y + b.height)
        out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        for m in (a, b):
            out[m.y - y0 : m.y - y0 + m.height, m.x - x0 : m.x - x0 + m.width] |= m.bits
        # Both crops are tight, so the union of their boxes is already the tight box.
        return CropMask._adopt(x0, y0, out)

    def intersection(self, other: CropMask) -> CropMask:
        """Pixels set in both masks, as a tight crop."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        if x1 <= x0 or y1 <= y0:
            return CropMask._adopt(x0, y0, np.zeros((0, 0), dtype=bool))
        a = self.bits[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x]
        b = other.bits[y0 - other.y : y1 - other.y, x0 - other.x : x1 - other.x]
        return CropMask._adopt(x0, y0, a & b).tight()

    def difference(self, other: CropMask) -> CropMask:
        """Pixels set in this mask and not in `other`, as a tight crop."""
        out = np.array(self.bits)
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        if x1 > x0 and y1 > y0:
            cut = other.bits[y0 - other.y : y1 - other.y, x0 - other.x : x1 - other.x]
            out[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x] &= ~cut
        return CropMask._adopt(self.x, self.y, out).tight()

    @classmethod
    def from_full(cls, full: np.ndarray) -> CropMask:
        """Tight crop of a full-frame mask (any dtype; non-zero is set)."""
        return cls._adopt(0, 0, np.asarray(full) != 0).tight()

    def to_full(self, width: int, height: int) -> np.ndarray:
        """Full-frame bool mask; for tests and small images only."""
        full = np.zeros((height, width), dtype=bool)
        m = self.clipped(width, height)
        full[m.y : m.y + m.height, m.x : m.x + m.width] = m.bits
        return full

    # -- COCO run-length encoding of the full frame, computed from the crop ------------

    def rle_counts(self, width: int, height: int) -> list[int]:
        """Uncompressed COCO RLE counts (column-major, starting with a zero run)."""
        m = self.clipped(width, height).tight()
        total = height * width
        if m.is_empty():
            return [total]
        strip = np.zeros((height, m.width), dtype=bool)
        strip[m.y : m.y + m.height] = m.bits
        seq = strip.T.ravel()  # column-major order of the strip
        edges = np.flatnonzero(seq[1:] != seq[:-1]) + 1
        runs = np.diff(np.concatenate(([0], edges, [seq.size]))).tolist()
        if seq[0]:
            runs.insert(0, 0)
        runs[0] += m.x * height
        tail = total - (m.x + m.width) * height
        if seq[-1]:
            if tail:
                runs.append(tail)
        else:
            runs[-1] += tail
        return [int(r) for r in runs]

    def to_rle(self, width: int, height: int) -> dict[str, object]:
        """Compressed COCO RLE: {"size": [h, w], "counts": str}."""
        rle = mask_util.frPyObjects(
            {"size": [height, width], "counts": self.rle_counts(width, height)}, height, width
        )
        counts = rle["counts"]
        return {
            "size": [height, width],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
        }

    @classmethod
    def from_rle(cls, rle: dict[str, object]) -> CropMask:
        """Mask from a COCO RLE, compressed (str/bytes counts) or not (list counts)."""
        height, width = (int(v) for v in rle["size"])  # type: ignore[attr-defined]
        counts = rle["counts"]
        if isinstance(counts, str):
            counts = counts.encode("ascii")
        if isinstance(counts, bytes):
            counts = decode_rle_string(counts)
        return cls.from_counts(counts, width, height)  # type: ignore[arg-type]

    @classmethod
    def from_counts(cls, counts: Sequence[int] | np.ndarray, width: int, height: int) -> CropMask:
        """The mask of uncompressed COCO RLE counts, built over its own columns only.

        Counts that do not add up to height x width raise ValueError (pycocotools would
        decode them into uninitialised pixels).
        """
        c = np.asarray(counts, dtype=np.int64)
        if c.ndim != 1 or c.size == 0 or (c < 0).any() or int(c.sum()) != height * width:
            raise ValueError(f"the RLE counts do not add up to {height} x {width} pixels")
        set_runs = np.flatnonzero(c[1::2]) * 2 + 1
        if set_runs.size == 0:
            return cls._adopt(0, 0, np.zeros((0, 0), dtype=bool))
        ends = np.cumsum(c)
        i0, i1 = int(set_runs[0]), int(set_runs[-1])
        first, stop = int(ends[i0] - c[i0]), int(ends[i1])
        x0, x1 = first // height, (stop - 1) // height
        base = x0 * height
        strip = np.zeros((x1 - x0 + 1) * height, dtype=bool)
        strip[first - base : stop - base] = np.repeat(
            np.arange(i0, i1 + 1) % 2 == 1, c[i0 : i1 + 1]
        )
        columns = strip.reshape(x1 - x0 + 1, height).T
        rows = np.flatnonzero(columns.any(axis=1))
        return cls._adopt(x0, int(rows[0]), columns[rows[0] : rows[-1] + 1].copy())

    # -- compact bytes of the crop alone, for storage -----------------------------------

    def crop_counts(self) -> bytes:
        """Compressed RLE of the crop itself (h x w), as the store keeps it."""
        encoded = mask_util.encode(np.asfortranarray(self.bits.astype(np.uint8)))
        return bytes(encoded["counts"])

    @classmethod
    def from_crop_counts(cls, x: int, y: int, width: int, height: int, counts: bytes) -> CropMask:
        if height == 0 or width == 0:
            return cls._adopt(x, y, np.zeros((height, width), dtype=bool))
        decoded = mask_util.decode({"size": [height, width], "counts": counts})
        return cls._adopt(x, y, np.array(decoded, dtype=bool, order="C"))


def decode_rle_string(raw: bytes) -> np.ndarray:
    """Decode COCO's compressed RLE string (the inverse of pycocotools' rleToString).

    Each count is written in 5-bit groups, low first, as characters from 48; bit 0x20 says
    another group follows, bit 0x10 of the last group is the sign. From the fourth count on,
    the value stored is the difference to the count two places before.
    """
    chars = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if ((chars < 0) | (chars > 63)).any():
        raise ValueError("the RLE string holds a character outside COCO's alphabet")
    if chars.size == 0:
        return np.zeros(0, dtype=np.int64)
    last = (chars & 0x20) == 0
    if not last[-1]:
        raise ValueError("the RLE string ends in the middle of a number")
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    group = np.arange(chars.size) - np.repeat(starts, ends - starts + 1)
    if group.max() > 11:  # beyond 60 bits: no real image has such a count
        raise ValueError("the RLE string holds a number too large for any image")
    values = np.add.reduceat((chars & 0x1F) << (5 * group), starts)
    negative = (chars[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (group[ends][negative] + 1))
    counts = values.copy()
    if counts.size > 3:
        counts[1::2] = np.cumsum(values[1::2])
        counts[2::2] = np.cumsum(values[2::2])
    return counts
