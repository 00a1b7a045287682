"""Batched prediction gives the one-at-a-time results bit for bit, and the file loop decodes
ahead on a bounded pool while handing results over in input order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from maskdesk.core.errors import ImageError, ModelError
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask
from maskdesk.datasets.shapes import generate
from maskdesk.inference.batching import BatchRunner
from maskdesk.inference.models import load_model
from maskdesk.inference.predictor import Predictor, default_batch, predict_files
from tests.damaged_files import truncated_jpeg

FIXTURE_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "shapes-tiny.pt"


@pytest.fixture(scope="module")
def predictor() -> Iterator[Predictor]:
    loaded = Predictor(load_model(str(FIXTURE_MODEL)), device="cpu")
    # One thread: two fighting other processes for a shared 2-core machine run ten times
    # slower. Equality holds at any thread count (plans are kept per count).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield loaded
    torch.set_num_threads(before)


def _odd(seed: int, width: int, height: int) -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(generate(seed, 0).image, (width, height)))


def test_predict_batch_equals_one_at_a_time(predictor: Predictor) -> None:
    shapes = [generate(3, i).image for i in range(8)]
    # 300x200 and 300x210 resize to 256x170 and 256x179: the same padded input (256x192).
    odd = [_odd(1, 300, 200), _odd(2, 300, 210), _odd(3, 180, 240)]
    rgbs = shapes[:3] + odd[:1] + shapes[3:6] + odd[1:] + shapes[6:]
    alone = [predictor.predict(rgb) for rgb in rgbs]
    assert sum(len(found) for found in alone) >= 30  # the model really finds shapes
    assert all(i.score is not None and i.box is not None for f in alone for i in f)
    together = predictor.predict_batch(rgbs)
    assert len(together) == len(rgbs)
    for one, batched in zip(alone, together, strict=True):
        # Category, score, box and mask bits: Instance equality compares them all.
        assert batched == one
    # The shapes went through one stacked pass, the two odd ones of one shape another.
    stacked = {key[0] for key in predictor._batches.plans}
    assert (8, 3, 256, 256) in stacked and (2, 3, 192, 256) in stacked


def test_batch_plans_split_only_what_differs() -> None:
    class BatchDependent(nn.Conv2d):
        """A convolution whose result depends on the batch size, as some kernels' do."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 1e-3 * (x.shape[0] - 1)

    class Model(nn.Module):
        def __init__(self, last: nn.Module) -> None:
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), last)

    convs = BatchRunner(Model(BatchDependent(4, 4, 1)))
    with torch.inference_mode():
        plan = convs.plan((3, 3, 32, 32), torch.float32, torch.device("cpu"))
        # The batch-dependent one is split; a plain one may be too, where a CPU's kernel
        # for 3 images sums in another order than for 1 (this one's 3x3 conv does).
        assert plan.batched and "2" in plan.split
        x = torch.randn(3, 3, 32, 32)
        features = list(convs._features(x))
        alone = [convs.model.backbone(x[i : i + 1]) for i in range(3)]
    assert all(torch.equal(f["0"], a) for f, a in zip(features, alone, strict=True))
    # Not a convolution: nothing to split, so each image goes through alone.
    other = BatchRunner(Model(nn.Dropout(0.0)))
    other.model.backbone[2].forward = lambda x: x + 1e-3 * x.shape[0]  # type: ignore[method-assign]
    with torch.inference_mode():
        assert not other.plan((2, 3, 16, 16), torch.float32, torch.device("cpu")).batched


def test_default_batch_is_one_on_the_cpu() -> None:
    assert default_batch(torch.device("cpu")) == 1


def _folder(tmp_path: Path, count: int, broken_at: int) -> list[Path]:
    paths = []
    for i in range(count):
        if i == broken_at:
            path = tmp_path / f"{i:02d}-broken.jpg"
            truncated_jpeg(path, 256, 256, seed=i)
        else:
            path = tmp_path / f"{i:02d}.png"
            Image.fromarray(generate(5, i).image).save(path)
        paths.append(path)
    return paths


def test_predict_files_batched_equals_one_at_a_time(
    tmp_path: Path, predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _folder(tmp_path, 10, broken_at=5)
    reference = list(predict_files(predictor, paths, decoders=1, batch=1))
    batch_sizes: list[int] = []
    original = predictor.predict_batch

    def counted(rgbs: list[np.ndarray]) -> list[list[Instance]]:
        batch_sizes.append(len(rgbs))
        return original(rgbs)

    monkeypatch.setattr(predictor, "predict_batch", counted)
    batched = list(predict_files(predictor, paths, decoders=3, batch=4))
    assert batch_sizes == [4, 3, 2]  # the broken file leaves 3 in the second batch
    assert [r.path for r in batched] == [r.path for r in reference] == paths
    for one, many in zip(reference, batched, strict=True):
        assert many.instances == one.instances
        assert type(many.error) is type(one.error) and str(many.error) == str(one.error)
        assert (many.pixels is None) == (one.pixels is None)
        if one.pixels is not None:
            assert np.array_equal(many.pixels, one.pixels)
    assert isinstance(batched[5].error, ImageError) and "05-broken.jpg" in str(batched[5].error)
    assert sum(len(r.instances or []) for r in batched) >= 20


class _Fake:
    """A predictor stand-in: one instance per image whose score is the image's first pixel."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.fail_on = fail_on
        self.batches: list[int] = []

    def predict(self, rgb: np.ndarray) -> list[Instance]:
        if int(rgb[0, 0, 0]) == self.fail_on:
            raise RuntimeError("boom")
        mask = CropMask(0, 0, np.ones((1, 1), bool))
        return [Instance(1, mask, score=float(rgb[0, 0, 0]) / 255)]

    def predict_batch(self, rgbs: list[np.ndarray]) -> list[list[Instance]]:
        self.batches.append(len(rgbs))
        return [self.predict(rgb) for rgb in rgbs]


def _numbered(path: Path) -> np.ndarray:
    return np.full((4, 4, 3), int(path.stem), np.uint8)


def test_a_model_failure_in_a_batch_is_that_images_only() -> None:
    fake = _Fake(fail_on=6)
    paths = [Path(f"{i}.png") for i in range(10)]
    results = list(predict_files(fake, paths, decode=_numbered, decoders=2, batch=4))  # type: ignore[arg-type]
    assert [r.path for r in results] == paths
    assert [r.error is None for r in results] == [i != 6 for i in range(10)]
    assert isinstance(results[6].error, ModelError) and "boom" in str(results[6].error)
    scores = [r.instances[0].score for r in results if r.instances]
    assert scores == [i / 255 for i in range(10) if i != 6]
    assert fake.batches == [4, 4, 2]


def test_cancel_stops_between_batches() -> None:
    fake = _Fake()
    paths = [Path(f"{i}.png") for i in range(20)]
    done: list[Path] = []
    gen = predict_files(
        fake,  # type: ignore[arg-type]
        paths,
        decode=_numbered,
        cancel=lambda: len(done) >= 5,
        decoders=3,
        batch=4,
    )
    for result in gen:
        done.append(result.path)
    assert done == paths[:8]  # asked during the second batch: that batch is given whole
    assert fake.batches == [4, 4]


def _decode_threads(within: float = 0.0) -> list[threading.Thread]:
    """Live decode threads, after waiting up to `within` seconds for them to end."""
    deadline = time.monotonic() + within
    while True:
        alive = [t for t in threading.enumerate() if t.name.startswith("maskdesk-decode")]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.01)


def test_read_ahead_is_bounded_and_threads_end() -> None:
    assert not _decode_threads(within=5)  # an earlier test's end after their last decode
    started: list[Path] = []
    lock = threading.Lock()

    def decode(path: Path) -> np.ndarray:
        with lock:
            started.append(path)
        return _numbered(path)

    def settled(expected: int) -> int:
        deadline = time.monotonic() + 5
        while len(started) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # anything beyond the bound would have started by now
        return len(started)

    paths = [Path(f"{i}.png") for i in range(40)]
    gen = predict_files(_Fake(), paths, decode=decode, decoders=3, batch=4)  # type: ignore[arg-type]
    for taken, result in enumerate(gen, start=1):
        assert result.path == paths[taken - 1]
        in_model = -(-taken // 4) * 4  # the batches handed to the model so far
        # 3 decoders + 4 per batch - 1 ahead of the model's images, never more.
        assert settled(in_model + 6) == in_model + 6
        assert len(_decode_threads()) <= 3
        if taken == 9:
            break
    gen.close()
    assert started == paths[:18]  # in order, each once
    assert not _decode_threads(within=5)


def test_old_defaults_one_decoder_reads_one_ahead() -> None:
    started: list[Path] = []
    gen = predict_files(
        _Fake(),  # type: ignore[arg-type]
        [Path(f"{i}.png") for i in range(6)],
        decode=lambda p: started.append(p) or _numbered(p),  # type: ignore[func-returns-value]
        decoders=1,
    )
    next(gen)
    time.sleep(0.05)
    assert len(started) == 2  # the image given and the next one
    gen.close()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(predict_files(_Fake(), [Path("a.png")], batch=0))  # type: ignore[arg-type]
