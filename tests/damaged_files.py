"""Damaged image files the tests write."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def truncated_jpeg(path: Path, width: int, height: int, seed: int = 5) -> None:
    """A JPEG cut in half: its header (and size) reads, its pixels do not."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG")
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])
