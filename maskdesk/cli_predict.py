"""`maskdesk predict`: files and folders in, COCO JSON out, folder projects filled as it goes.

Folders go through core.prelabel, the same path the window's worker takes: each image's result
is stored in the folder's project as it arrives, reviewed images and images the same model
already pre-labeled are skipped (unless --redo), and a failing image is marked failed while the
rest go on; the JSON leaves it out and the summary names it, unless it holds a person's work
(core.exporting decides, for `export` too). The first Ctrl-C stops after the current image, a
second one at once; either way the JSON of what is stored is written and the command says how
far it got.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from maskdesk.cli_messages import float_arg
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.exporting import LeftOut, left_out_summary
from maskdesk.core.prelabel import ImageResult
from maskdesk.core.project import Project
from maskdesk.predict_job import PredictJob, RunModel, collect_inputs, parse_shard, take_shard
from maskdesk.progress import ProgressBar

if TYPE_CHECKING:
    from maskdesk.inference.models import LoadedModel

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def check_output(path: Path) -> None:
    """Fail before hours of work, not after, when the output cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise MaskdeskError(f"{path} is a folder; give a file name for the COCO JSON.")
    if not folder.is_dir():
        raise MaskdeskError(f"Folder {folder} does not exist; create it or choose another -o.")
    if not os.access(folder, os.W_OK):
        raise MaskdeskError(f"Folder {folder} is not writable; choose another -o.")


def folders_model(folders: Sequence[Path]) -> str:
    """The model `predict` uses when not told: the folders' own (made current in the window
    or by `train --adopt`), else coco-v1."""
    from maskdesk.core.project_models import current_model

    chosen = set()
    for folder in folders:
        with Project.open(folder) as project:
            model = current_model(project)
        if model is not None:
            chosen.add(model)
    if len(chosen) > 1:
        raise MaskdeskError(
            f"The folders have different models ({', '.join(sorted(chosen))}); give --model "
            "to choose one for all of them."
        )
    if chosen:
        model = chosen.pop()
        _say(f"using the folder's model {model} (--model chooses another)")
        return model
    return "coco-v1"


class _Stopper:
    """First Ctrl-C: stop after the current image. Second: stop now (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    @contextmanager
    def installed(self) -> Iterator[None]:
        def on_sigint(signum: int, frame: object) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print(
                "\nmaskdesk: stopping after this image (Ctrl-C again to stop now)",
                file=sys.stderr,
                flush=True,
            )

        try:
            previous = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not the main thread: no handler, plain KeyboardInterrupt
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _n(count: int, noun: str) -> str:
    """'1 image', '3 images'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _local_engine(args: argparse.Namespace, loaded: LoadedModel) -> tuple[RunModel, str]:
    """Predict here: decode workers ahead of the model, batches on a GPU."""
    from maskdesk.inference.predictor import Predictor, default_batch, predict_files

    predictor = Predictor(loaded, device=args.device, threads=args.threads)
    batch = args.batch or default_batch(predictor.device)

    def run_model(paths: Sequence[Path], cancel: Callable[[], bool]) -> Iterable[ImageResult]:
        return predict_files(predictor, paths, cancel=cancel, batch=batch, decoders=args.decoders)

    return run_model, f"{predictor.device}, batch {batch}"


def _ray_engine(args: argparse.Namespace, loaded: LoadedModel) -> tuple[RunModel, str]:
    from maskdesk.inference.ray_engine import RayEngine

    engine = RayEngine.start(
        args.model,
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        batch=args.batch,
        decoders=args.decoders,
        device=args.device,
        offline=args.offline,
    )
    return engine.run, engine.describe()


def run_predict(args: argparse.Namespace) -> int:
    from maskdesk.inference.models import load_model

    check_output(args.output)
    inputs = collect_inputs(args.inputs)  # a wrong path is reported before the model loads
    if args.engine == "ray" and args.render is not None:
        raise MaskdeskError(
            "--render draws on the machine that predicts; leave it out with "
            "--engine ray (maskdesk export FOLDER --render draws afterwards)."
        )
    part_name = None
    store = not args.no_store
    if args.shard is not None:
        index, count = args.shard
        inputs = take_shard(inputs, index, count)
        part_name, store = f"shard-{index}-of-{count}", False
    if args.model is None:
        args.model = folders_model(inputs.folders)
    download = ProgressBar("downloading weights", unit="MB")
    loaded = load_model(args.model, offline=args.offline, progress=download.bytes_callback)
    download.close()
    if loaded.note:
        _say(loaded.note)
    engine = _ray_engine if args.engine == "ray" else _local_engine
    run_model, where = engine(args, loaded)
    job = PredictJob(
        args, inputs, loaded.name, loaded.categories, run_model, store=store, part_name=part_name
    )
    del loaded  # the engine holds what it needs
    _say(f"model {args.model} ({where}); {_n(len(inputs.paths), 'image')}")
    stopper = _Stopper()
    started = time.perf_counter()
    interrupted = False
    try:
        job.plan()
        if job.loose_tally.resumed:
            _say(
                f"{_n(job.loose_tally.resumed, 'image')} already in {job.parts_dir}: skipped "
                "(--redo predicts them again)"
            )
        with stopper.installed():
            job.execute(stopper)
    except KeyboardInterrupt:
        interrupted = True
    try:
        if part_name is not None:
            n_images = n_annotations = 0
            left_out: list[LeftOut] = []
        else:
            n_images, n_annotations, left_out = job.write_json()
    finally:
        job.close()
    elapsed = time.perf_counter() - started
    predicted = sum(r.stored + len(r.failed) for r in job.reports.values())
    predicted += job.loose_tally.predicted
    rate = f"{predicted / max(elapsed, 1e-9):.2f} images/s"
    if part_name is not None:
        _say(
            f"{_n(predicted, 'image')} predicted in {elapsed:.1f} s ({rate}); shard written to "
            f"{job.part_path}. When every shard is done: maskdesk merge {job.parts_dir} -o "
            f"{args.output}"
        )
    else:
        _say(
            f"{_n(predicted, 'image')} predicted in {elapsed:.1f} s ({rate}); "
            f"{_n(n_annotations, 'instance')} at score >= {args.score} on "
            f"{_n(n_images, 'image')} written to {args.output}"
        )
    for folder, report in job.reports.items():
        project = Project.open(folder)
        try:
            stored = _n(report.stored, "image")
            _say(f"{folder}: {stored} stored in the project at {project.store_path}")
            if project.store_note:
                _say(project.store_note)
        finally:
            project.close()
        if report.skipped_done:
            _say(
                f"  {_n(report.skipped_done, 'image')} already pre-labeled by {args.model}: "
                "skipped (--redo predicts them again)"
            )
        if report.skipped_reviewed:
            _say(f"  {_n(report.skipped_reviewed, 'reviewed image')} left as they are")
        job.failures += [f"{folder / path}: {reason}" for path, reason in report.failed]
    for line in job.failures:
        _say(f"failed: {line}")
    if left_out:
        _say(f"{args.output}: {left_out_summary(left_out)}")
    if interrupted or stopper():
        _say(
            f"maskdesk: interrupted; {_n(job.unfinished(), 'image')} not predicted. What was "
            "done is stored; run the same command again to continue."
        )
        return EXIT_INTERRUPTED
    if part_name is None and not args.keep_parts:
        shutil.rmtree(job.parts_dir, ignore_errors=True)  # all of it is in the JSON now
    return EXIT_SOME_FAILED if job.failures else EXIT_OK


def add_predict_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "predict",
        parents=[common],
        help="pre-label images, write COCO JSON",
        description=(
            "Pre-label images with Mask R-CNN. Folder inputs also fill the folder's project "
            "image by image; a second run continues where the first stopped."
        ),
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT.json", help="COCO JSON to write"
    )
    p.add_argument(
        "--model",
        help="coco-v1, coco-v2 or a PATH (default: the folder's model, else coco-v1)",
    )
    p.add_argument("--score", type=score_value, default=0.5, help="lowest score exported (0.5)")
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where the model runs (auto: a CUDA GPU when there is one)",
    )
    p.add_argument("--polygons", action="store_true", help="polygons instead of RLE")
    p.add_argument("--render", type=Path, metavar="DIR", help="also write overlay pictures here")
    p.add_argument("--offline", action="store_true", help="never download weights")
    p.add_argument(
        "--redo",
        action="store_true",
        help="predict again images this model already pre-labeled (reviewed ones never)",
    )
    p.add_argument(
        "--no-store", action="store_true", help="do not save predictions in folder projects"
    )
    p.add_argument(
        "--batch",
        type=_positive_int,
        metavar="N",
        help="images per forward pass (default: 1 on a CPU, more on a GPU)",
    )
    p.add_argument(
        "--decoders",
        type=_positive_int,
        default=2,
        metavar="N",
        help="images decoded at once, ahead of the model (2)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="CPU threads for the model (default: every core this process may use)",
    )
    p.add_argument(
        "--shard",
        type=parse_shard,
        metavar="I/N",
        help="only every N-th image of the sorted input, from the I-th (0..N-1), for array "
        "jobs; writes OUT.json.parts/shard-I-of-N.jsonl only (join them with maskdesk merge)",
    )
    p.add_argument(
        "--keep-parts",
        action="store_true",
        help="keep OUT.json.parts after a finished run (removed by default once merged)",
    )
    ray = p.add_argument_group("the Ray engine (pip install 'maskdesk[ray]')")
    ray.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local (default): this process; ray: Ray actors here or on a cluster",
    )
    ray.add_argument(
        "--address",
        metavar="auto|ray://HOST:PORT",
        help="the Ray cluster to join (default: a local Ray started for this run)",
    )
    ray.add_argument(
        "--workers", type=_positive_int, default=2, metavar="N", help="model actors (2)"
    )
    ray.add_argument(
        "--gpus-per-worker",
        type=float_arg(lambda v: v >= 0, "is below 0"),
        default=0.0,
        metavar="F",
        help="GPUs per model actor (0: CPU; 0.5: two actors share a GPU)",
    )
    p.set_defaults(func=run_predict, flags=PREDICT_FLAGS)


PREDICT_FLAGS = {
    "model": "--model PATH",
    "device": "--device",
    "max_pixels": "--max-pixels",
    "offline": "--offline",
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is below 1")
    return value


# A score given on the command line: a number within 0..1.
score_value = float_arg(lambda v: 0.0 <= v <= 1.0, "is outside 0..1")


__all__ = ["add_predict_parser", "check_output", "run_predict", "score_value"]
