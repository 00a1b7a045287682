"""Image files in, one ImageResult each out, in input order: a few threads decode the next
images while the model runs on the current ones, and the model may take several at once.

Decoding (PIL, OpenCV) releases the GIL, so decode threads overlap with the model's own
threads. The read-ahead is bounded: at most `decoders + batch - 1` images are decoded (or
being decoded) beyond the ones the model has, never the whole folder.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from maskdesk.core.errors import MaskdeskError, ModelError
from maskdesk.core.images import load_rgb
from maskdesk.core.instances import Instance
from maskdesk.core.prelabel import ImageResult

if TYPE_CHECKING:
    from maskdesk.inference.predictor import Predictor

Decode = Callable[[Path], np.ndarray]


def _failure(exc: Exception) -> Exception:
    """Any error on one image is that image's failure, in words a person can act on."""
    if isinstance(exc, MaskdeskError):
        return exc
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return ModelError(f"not enough memory for this image ({type(exc).__name__}: {exc})")
    return ModelError(f"the model failed on this image ({type(exc).__name__}: {exc})")


class ReadAhead:
    """Decodes `paths` in order on `workers` threads, at most `ahead` beyond those taken."""

    def __init__(self, paths: Sequence[Path], decode: Decode, workers: int, ahead: int) -> None:
        self._paths = list(paths)
        self._decode = decode
        self._ahead = ahead
        self._submitted = 0
        self._pending: deque[tuple[Path, Future[np.ndarray]]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="maskdesk-decode")

    @property
    def left(self) -> int:
        """Paths not taken yet."""
        return len(self._paths) - self._submitted + len(self._pending)

    def take(self, count: int) -> list[tuple[Path, Future[np.ndarray]]]:
        """The next `count` paths with their decodes; `ahead` more are started behind them."""
        self._fill(count + self._ahead)
        return [self._pending.popleft() for _ in range(min(count, len(self._pending)))]

    def close(self) -> None:
        """Drop what was not taken; the threads end after the decode they are in."""
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _fill(self, wanted: int) -> None:
        while len(self._pending) < wanted and self._submitted < len(self._paths):
            path = self._paths[self._submitted]
            self._pending.append((path, self._pool.submit(self._decode, path)))
            self._submitted += 1


def predict_files(
    predictor: Predictor,
    paths: Sequence[Path],
    *,
    decode: Decode = load_rgb,
    cancel: Callable[[], bool] | None = None,
    decoders: int = 2,
    batch: int = 1,
) -> Iterator[ImageResult]:
    """An ImageResult per image, in order; a file that fails carries its error, whatever
    went wrong (a damaged file, the model running out of memory), and the rest go on.

    `decoders` threads decode ahead while the model runs (each image is decoded once, and at
    most `decoders + batch - 1` wait beyond the model's). With `batch` > 1 the model takes
    that many images per pass (`Predictor.predict_batch`: the same results as one by one);
    each image's `seconds` is then its share of the batch's time. `cancel()` is checked
    before each image or batch; the results of a batch already computed are all given.
    """
    if decoders < 1 or batch < 1:
        raise ValueError(f"decoders and batch must be at least 1, got {decoders} and {batch}")
    if not paths:
        return
    reader = ReadAhead(paths, decode, decoders, ahead=decoders + batch - 1)
    try:
        while reader.left:
            if cancel is not None and cancel():
                return
            started = time.perf_counter()
            results = _run(predictor, reader.take(batch), started)
            while results:
                # Handed over one by one: the pixels are not kept once the caller is done.
                yield results.popleft()
    finally:
        reader.close()


def _run(
    predictor: Predictor, taken: list[tuple[Path, Future[np.ndarray]]], started: float
) -> deque[ImageResult]:
    paths = [path for path, _future in taken]
    pixels: list[np.ndarray | None] = []
    errors: list[Exception | None] = []
    for _path, future in taken:
        try:
            pixels.append(future.result())
            errors.append(None)
        except Exception as exc:
            pixels.append(None)
            errors.append(_failure(exc))
    taken.clear()  # the futures hold the pixels too
    good = [(i, p) for i, p in enumerate(pixels) if p is not None]
    found: dict[int, list[Instance]] = {}
    if len(good) > 1:
        try:
            batched = predictor.predict_batch([p for _i, p in good])
            found = {i: instances for (i, _p), instances in zip(good, batched, strict=True)}
        except Exception:
            pass  # one image may have broken the batch: each alone says which
    for i, rgb in good:
        if i not in found:
            try:
                found[i] = predictor.predict(rgb)
            except Exception as exc:
                errors[i] = _failure(exc)
    del good
    share = (time.perf_counter() - started) / max(len(paths), 1)
    return deque(
        ImageResult(path, None, error, share)
        if error is not None
        else ImageResult(path, found[i], None, share, pixels[i])
        for i, (path, error) in enumerate(zip(paths, errors, strict=True))
    )
