"""Pictures are decoded off the UI thread; the latest request wins; a broken file is a message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from maskdesk.ui.picture_loader import PictureLoader


def test_the_latest_picture_arrives_decoded_and_a_broken_one_as_a_message(
    qtbot, tmp_path: Path
) -> None:
    paths = []
    for i in range(5):
        path = tmp_path / f"p{i}.png"
        Image.fromarray(np.full((30, 40, 3), 40 * i, np.uint8)).save(path)
        paths.append(path)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    loader = PictureLoader()
    got: list[tuple[int, object, str]] = []
    loader.loaded.connect(lambda i, rgb, error: got.append((i, rgb, error)))
    for i, path in enumerate(paths):
        loader.request(i, path)  # a person flipping through quickly
    qtbot.waitUntil(lambda: any(i == 4 for i, _, _ in got), timeout=30_000)
    loader.wait()
    last_id, rgb, error = got[-1]
    assert last_id == 4 and error == ""
    assert isinstance(rgb, np.ndarray) and rgb.shape == (30, 40, 3) and rgb[0, 0, 0] == 160
    assert len(got) <= 5  # stale requests may be skipped, never delivered after the latest
    loader.request(9, broken)
    qtbot.waitUntil(lambda: got[-1][0] == 9, timeout=30_000)
    assert got[-1][1] is None and "broken.jpg" in got[-1][2]
