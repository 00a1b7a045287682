"""`maskdesk predict --batch 4` writes the same COCO file as `--batch 1` (issue 15): batching
and read-ahead change the speed, never a mask, a score or the order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from maskdesk.cli import main
from maskdesk.datasets.shapes import generate
from tests.damaged_files import truncated_jpeg

FIXTURE_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "shapes-tiny.pt"


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Two torch threads fighting other processes for a shared 2-core machine run ten times
    # slower; the comparison holds at any thread count.
    import maskdesk.inference.predictor as predictor

    before = torch.get_num_threads()
    monkeypatch.setattr(predictor, "_threads_set", True)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(9):
        Image.fromarray(generate(11, i).image).save(folder / f"{i:02d}.png")
    # Another size (its own batch of one) and a damaged file among them.
    wide = np.ascontiguousarray(np.concatenate([generate(12, 0).image] * 2, axis=1)[:, :400])
    Image.fromarray(wide).save(folder / "04b-wide.png")
    truncated_jpeg(folder / "06b-broken.jpg", 256, 256)
    return folder


def _annotations(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    data["info"].pop("date_created", None)
    return data


def test_batch_4_writes_the_coco_file_of_batch_1(tmp_path: Path, one_thread: None) -> None:
    folder = _folder(tmp_path)
    outputs = {}
    for batch in ("1", "4"):
        out = tmp_path / f"batch{batch}.json"
        code = main(
            [
                "predict",
                str(folder),
                "-o",
                str(out),
                "--model",
                str(FIXTURE_MODEL),
                "--batch",
                batch,
                "--decoders",
                "3" if batch == "4" else "1",
                "--score",
                "0.05",
                "--no-store",
            ]
        )
        assert code == 1  # the damaged file failed; the others were predicted
        outputs[batch] = _annotations(out)
    one, four = outputs["1"], outputs["4"]
    names = {image["file_name"] for image in one["images"]}
    assert names == {f"{i:02d}.png" for i in range(9)} | {"04b-wide.png"}
    assert len(one["annotations"]) >= 25
    assert four["images"] == one["images"]
    assert four["categories"] == one["categories"]
    assert four["annotations"] == one["annotations"]  # ids, boxes, scores, RLE masks
    assert four == one
