"""Box-local binary masks: a crop and its place in the image, never a full frame.

A 12 MP photo with 100 instances would need 1.2 GB as full-frame bool masks; as crops
it needs what the objects cover. COCO run-length encoding is computed from the crop and
a column strip, so no full-frame array is made on the way out either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_util


@dataclass(frozen=True, eq=False)
class CropMask:
    """`bits` (bool, h x w) placed with its top-left corner at (x, y) in the image."""

    x: int
    y: int
    bits: np.ndarray

    def __post_init__(self) -> None:
        if self.bits.ndim != 2:
            raise ValueError(f"mask bits must be 2-D, got shape {self.bits.shape}")
        if self.bits.dtype != np.bool_:
            object.__setattr__(self, "bits", self.bits.astype(bool))
        if self.x < 0 or self.y < 0:
            raise ValueError(f"mask origin must be inside the image, got ({self.x}, {self.y})")
        object.__setattr__(self, "x", int(self.x))
        object.__setattr__(self, "y", int(self.y))

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
        if w == 0:
            return CropMask(self.x, self.y, np.zeros((0, 0), dtype=bool))
        if (w, h) == (self.width, self.height):
            return self
        top, left = y - self.y, x - self.x
        return CropMask(x, y, self.bits[top : top + h, left : left + w].copy())

    def clipped(self, height: int, width: int) -> CropMask:
        """The part of the mask that lies inside a height x width image."""
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

    @classmethod
    def from_full(cls, full: np.ndarray) -> CropMask:
        """Tight crop of a full-frame mask (any dtype; non-zero is set)."""
        return cls(0, 0, np.asarray(full) != 0).tight()

    def to_full(self, height: int, width: int) -> np.ndarray:
        """Full-frame bool mask; for tests and small images only."""
        full = np.zeros((height, width), dtype=bool)
        m = self.clipped(height, width)
        full[m.y : m.y + m.height, m.x : m.x + m.width] = m.bits
        return full

    # -- COCO run-length encoding of the full frame, computed from the crop ------------

    def rle_counts(self, height: int, width: int) -> list[int]:
        """Uncompressed COCO RLE counts (column-major, starting with a zero run)."""
        m = self.clipped(height, width).tight()
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

    def to_rle(self, height: int, width: int) -> dict[str, object]:
        """Compressed COCO RLE: {"size": [h, w], "counts": str}."""
        rle = mask_util.frPyObjects(
            {"size": [height, width], "counts": self.rle_counts(height, width)}, height, width
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
        if isinstance(counts, list):
            compressed = mask_util.frPyObjects(
                {"size": [height, width], "counts": counts}, height, width
            )
        else:
            raw = counts.encode("ascii") if isinstance(counts, str) else counts
            compressed = {"size": [height, width], "counts": raw}
        x, y, w, h = (int(v) for v in mask_util.toBbox(compressed))
        if w == 0 or h == 0:
            return cls(0, 0, np.zeros((0, 0), dtype=bool))
        full = mask_util.decode(compressed)
        return cls(x, y, full[y : y + h, x : x + w].astype(bool))

    # -- compact bytes of the crop alone, for storage -----------------------------------

    def crop_counts(self) -> bytes:
        """Compressed RLE of the crop itself (h x w), as the store keeps it."""
        encoded = mask_util.encode(np.asfortranarray(self.bits.astype(np.uint8)))
        return bytes(encoded["counts"])

    @classmethod
    def from_crop_counts(cls, x: int, y: int, height: int, width: int, counts: bytes) -> CropMask:
        if height == 0 or width == 0:
            return cls(x, y, np.zeros((height, width), dtype=bool))
        bits = mask_util.decode({"size": [height, width], "counts": counts})
        return cls(x, y, np.ascontiguousarray(bits, dtype=bool))
