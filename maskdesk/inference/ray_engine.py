"""The Ray engine of `maskdesk predict --engine ray`: decoding and prediction in Ray Data
actor pools, here or on a cluster, results streamed back to the driver in input order.

Imported only for `--engine ray`; without the extra it says how to install it. Decoding runs as
tasks (one image each) and prediction in a pool of actors that each hold one model (`--workers`,
`--gpus-per-worker`, `--batch`). The model file travels through Ray's object store, so workers
need no shared disk for it. Actors never open a project: the driver stores every result
(core.prelabel) and writes the parts. A bad image comes back as that image's failure; an actor
process that dies is restarted by Ray and its images predicted again.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskdesk.core.errors import MaskdeskError
from maskdesk.core.prelabel import ImageResult

INSTALL = (
    "--engine ray needs Ray, which is an optional extra: pip install 'maskdesk[ray]' "
    "(the default local engine needs nothing more)."
)


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data: pandas and pyarrow come with the extra)
    except ImportError as exc:
        raise MaskdeskError(f"{INSTALL} ({exc})") from exc
    return ray


class _Decode:
    """Rows of paths -> rows of raw RGB bytes and sizes, or the decode's failure."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _decode(batch)


def _decode(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from maskdesk.core.images import load_rgb

    pixels, heights, widths, errors = [], [], [], []
    for path in batch["path"]:
        try:
            rgb = load_rgb(Path(str(path)))
        except Exception as exc:  # any decode failure is this image's, not the run's
            pixels.append(b"")
            heights.append(0)
            widths.append(0)
            errors.append(str(exc) or type(exc).__name__)
            continue
        pixels.append(rgb.tobytes())
        heights.append(rgb.shape[0])
        widths.append(rgb.shape[1])
        errors.append("")
    return {
        "index": batch["index"],
        "path": batch["path"],
        "pixels": np.array(pixels, dtype=object),
        "height": np.array(heights, dtype=np.int64),
        "width": np.array(widths, dtype=np.int64),
        "error": np.array(errors, dtype=object),
    }


class _Predict:
    """One model per actor: rows of decoded images -> rows of pickled instances."""

    def __init__(self, model: Any, device: str, batch: int | None) -> None:
        import ray

        if isinstance(model, list):  # [ObjectRef]: see RayEngine.run
            model = ray.get(model[0])

        from maskdesk.inference.models import load_model
        from maskdesk.inference.predictor import Predictor, default_batch

        if isinstance(model, bytes):
            import tempfile

            # load_model reads files; the model came through the object store.
            with tempfile.NamedTemporaryFile(suffix=".pt") as f:
                f.write(model)
                f.flush()
                loaded = load_model(f.name, offline=True)
        else:
            loaded = load_model(model, offline=True)
        # As many torch threads as CPUs the actor holds: actors share a machine's cores.
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        self.predictor = Predictor(loaded, device, threads=max(1, int(cpus)))
        self.batch = batch or default_batch(self.predictor.device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from maskdesk.inference.predictor import _failure

        n = len(batch["path"])
        out: list[bytes] = [b""] * n
        errors = [str(e) for e in batch["error"]]
        good = [i for i in range(n) if not errors[i]]
        rgbs = [
            np.frombuffer(batch["pixels"][i], np.uint8).reshape(
                int(batch["height"][i]), int(batch["width"][i]), 3
            )
            for i in good
        ]
        for start in range(0, len(good), self.batch):
            chunk = good[start : start + self.batch]
            try:
                found = self.predictor.predict_batch(rgbs[start : start + self.batch])
            except Exception as exc:  # the model failing on an image is that image's failure
                for i in chunk:
                    errors[i] = str(_failure(exc))
                continue
            for i, instances in zip(chunk, found, strict=True):
                out[i] = pickle.dumps(instances)
        return {
            "index": batch["index"],
            "path": batch["path"],
            "height": batch["height"],
            "width": batch["width"],
            "error": np.array(errors, dtype=object),
            "instances": np.array(out, dtype=object),
        }


class RayEngine:
    """A connection to Ray with the model in its object store; `run` predicts paths."""

    def __init__(self, ray: Any, model: Any, options: dict[str, Any], where: str) -> None:
        self.ray = ray
        self.model = model
        self.options = options
        self.where = where

    @classmethod
    def start(
        cls,
        spec: str,
        *,
        address: str | None = None,
        workers: int = 2,
        gpus_per_worker: float = 0.0,
        batch: int | None = None,
        decoders: int = 2,
        device: str = "auto",
        offline: bool = False,
    ) -> RayEngine:
        ray = _import_ray()
        # Ray's own progress lines and notices would bury ours; its errors still show.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise MaskdeskError(
                    f"Cannot reach the Ray cluster at {address}: {exc}. Start one with "
                    "`ray start --head`, or leave --address out for a local one."
                ) from exc
        path = Path(spec).expanduser()
        payload: bytes | str = path.read_bytes() if path.is_file() else spec
        if gpus_per_worker > 0 and device == "auto":
            device = "cuda"
        options = {
            "workers": workers,
            "gpus": gpus_per_worker,
            "batch": batch,
            "decoders": decoders,
            "device": device if gpus_per_worker > 0 else ("cpu" if device == "auto" else device),
        }
        cpus = ray.cluster_resources().get("CPU", 0)
        where = f"Ray, {workers} workers, {int(cpus)} CPUs in the cluster"
        return cls(ray, ray.put(payload), options, where)

    def describe(self) -> str:
        return self.where

    def run(self, paths: Sequence[Path], cancel: Callable[[], bool]) -> Iterator[ImageResult]:
        """One ImageResult per path, in input order, as the pool delivers them."""
        if not paths:
            return
        ray, o = self.ray, self.options
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # prelabel stores results in order
        context.enable_progress_bars = False
        items = [{"index": i, "path": str(p)} for i, p in enumerate(paths)]
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 200))
        # Decoders reserve no CPU: the model actors hold the cores (one each on a CPU), and a
        # decoder that reserved one would wait forever on a machine they fill. A few per
        # model actor keep it fed. Ray Data restarts an actor that dies and retries its
        # batches (max_restarts and max_task_retries default to -1 for actor pools).
        decoded = dataset.map_batches(
            _Decode,
            batch_size=1,
            num_cpus=0,
            compute=ray.data.ActorPoolStrategy(size=o["decoders"] * o["workers"]),
        )
        predicted = decoded.map_batches(
            _Predict,
            # Wrapped, the model's reference is not a constructor argument Ray resolves: the
            # actor fetches it, and a restarted actor fetches it again.
            fn_constructor_kwargs={
                "model": [self.model],
                "device": o["device"],
                "batch": o["batch"],
            },
            batch_size=o["batch"] or 1,
            compute=ray.data.ActorPoolStrategy(size=o["workers"]),
            num_cpus=0 if o["gpus"] else 1,
            num_gpus=o["gpus"] or None,
        )
        started = time.perf_counter()
        for row in predicted.iter_rows():
            if cancel():
                return
            error = str(row["error"])
            path = Path(str(row["path"]))
            frame = (int(row["width"]), int(row["height"]))
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            if error:
                yield ImageResult(path, None, MaskdeskError(error), seconds, frame=frame)
            else:
                instances = pickle.loads(row["instances"])  # noqa: S301 (our own actors' bytes)
                yield ImageResult(path, instances, None, seconds, frame=frame)


__all__ = ["INSTALL", "RayEngine"]
