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
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from maskdesk.cli_messages import float_arg
from maskdesk.core import images as image_io
from maskdesk.core.categories import CategoryTable, plan_merge
from maskdesk.core.coco import CocoImage, export_coco
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.exporting import LeftOut, Selection, failed_without_work, left_out_summary
from maskdesk.core.fileio import atomic_write_bytes
from maskdesk.core.instances import Instance
from maskdesk.core.prelabel import ImageResult, PrelabelReport, plan, prelabel
from maskdesk.core.project import ImageRecord, Project
from maskdesk.core.render import render_overlay
from maskdesk.progress import ProgressBar

if TYPE_CHECKING:
    from maskdesk.inference.predictor import Predictor

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


def _collect(inputs: Sequence[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """All image paths in order, the folders among the inputs, and the loose files."""
    paths: list[Path] = []
    folders: list[Path] = []
    loose: list[Path] = []
    for item in inputs:
        if item.is_dir():
            folders.append(item)
            paths += [item / rel for rel in image_io.scan_folder(item)]
        elif item.exists():
            paths.append(item)
            loose.append(item)
        else:
            raise MaskdeskError(f"{item} does not exist; give image files or folders.")
    if not paths:
        raise MaskdeskError("No images found in " + ", ".join(str(i) for i in inputs) + ".")
    return paths, folders, loose


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


def _image_root(inputs: Sequence[Path], paths: Sequence[Path]) -> Path:
    """The folder that exported file names are relative to."""
    if len(inputs) == 1 and inputs[0].is_dir():
        return inputs[0].resolve()
    return Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))


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


class _Renderer:
    """Writes overlay pictures under DIR, mirroring the input layout."""

    def __init__(self, folder: Path, root: Path, categories: CategoryTable) -> None:
        self.folder = folder
        self.root = root
        self.categories = categories
        self.used: set[Path] = set()

    def write(
        self, path: Path, pixels: np.ndarray, instances: list[Instance], min_score: float
    ) -> None:
        rel = Path(path.resolve().relative_to(self.root))
        target = self.folder / rel.with_suffix(".jpg")
        if target in self.used:
            target = self.folder / rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.')}.jpg")
        self.used.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        picture = render_overlay(pixels, instances, self.categories, min_score=min_score)
        ok, encoded = cv2.imencode(".jpg", picture[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise MaskdeskError(f"Could not encode the overlay picture for {path}.")
        atomic_write_bytes(target, encoded.tobytes())


class _Run:
    """One predict command: its inputs, projects, results so far, and the JSON of them."""

    def __init__(self, args: argparse.Namespace, predictor: Predictor) -> None:
        self.args = args
        self.predictor = predictor
        self.paths, folders, loose = _collect(args.inputs)
        self.root = _image_root(args.inputs, self.paths)
        if args.no_store:
            folders, loose = [], self.paths
        self.loose = loose
        self.projects = {f: Project.open(f) for f in folders}
        self.reports: dict[Path, PrelabelReport] = {}
        self.loose_results: dict[Path, ImageResult] = {}
        self.unreached: set[tuple[Path, int]] = set()
        self.failures: list[str] = []
        self.categories = CategoryTable(predictor.categories)
        self.renderer = _Renderer(args.render, self.root, self.categories) if args.render else None

    def close(self) -> None:
        for project in self.projects.values():
            project.close()

    def _run_model(self, paths: Sequence[Path], cancel: object) -> Iterator[ImageResult]:
        from maskdesk.inference.predictor import predict_files

        return predict_files(self.predictor, paths, cancel=cancel)  # type: ignore[arg-type]

    def execute(self, stopper: _Stopper) -> None:
        name = self.predictor.model_name
        skips = {f: PrelabelReport() for f in self.projects}
        todo = {
            f: plan(p, name, redo=self.args.redo, report=skips[f]) for f, p in self.projects.items()
        }
        for folder, records in todo.items():
            self.unreached |= {(folder, r.id) for r in records}
        total = sum(len(r) for r in todo.values()) + len(self.loose)
        bar = ProgressBar("predicting", total=total, unit="img")
        try:
            for folder, project in self.projects.items():
                if stopper():
                    break

                def stored(record: ImageRecord, result: ImageResult, folder: Path = folder) -> None:
                    self.unreached.discard((folder, record.id))
                    bar.advance(record.path)
                    self._render(result)

                report = self.reports[folder] = prelabel(
                    project,
                    name,
                    self.predictor.categories,
                    self._run_model,
                    redo=self.args.redo,
                    images=todo[folder],
                    cancel=stopper,
                    on_result=stored,
                )
                report.skipped_done = skips[folder].skipped_done
                report.skipped_reviewed = skips[folder].skipped_reviewed
            for result in self._run_model(self.loose, stopper):
                self.loose_results[result.path] = result
                bar.advance(result.path.name)
                if result.instances is None:
                    self.failures.append(f"{result.path}: {result.error}")
                self._render(result)
        finally:
            bar.close()

    def _render(self, result: ImageResult) -> None:
        if self.renderer is not None and result.pixels is not None and result.instances:
            self.renderer.write(result.path, result.pixels, result.instances, self.args.score)

    def coco_images(self) -> Selection:
        """The images reached so far, in input order, with what is stored for them; failed
        ones without a person's work are left out (see core.exporting)."""
        by_path: dict[Path, CocoImage] = {}
        left_out: dict[Path, LeftOut] = {}
        for folder, project in self.projects.items():
            mapping, added = plan_merge(self.categories, project.categories)
            for category in added:
                self.categories.insert(category)
            for record in project.images():
                if (folder, record.id) in self.unreached:
                    continue
                path = project.absolute_path(record)
                rel = path.relative_to(self.root).as_posix()
                stored = project.instances(record.id)
                out = failed_without_work(record, stored, rel)
                if out is not None:
                    left_out[path] = out
                    continue
                instances = [i.with_changes(category_id=mapping[i.category_id]) for i in stored]
                by_path[path] = CocoImage(rel, record.width, record.height, instances)
        for path, result in self.loose_results.items():
            rel = path.resolve().relative_to(self.root).as_posix()
            if result.instances is not None and result.size is not None:
                width, height = result.size
                by_path[path.resolve()] = CocoImage(rel, width, height, result.instances)
            else:
                reason = str(result.error) or type(result.error).__name__
                left_out[path.resolve()] = LeftOut(rel, reason)
        order = {p.resolve(): i for i, p in enumerate(self.paths)}

        def in_order(paths: Iterable[Path]) -> list[Path]:
            return sorted(paths, key=lambda p: order.get(p, len(order)))

        return Selection(
            [by_path[p] for p in in_order(by_path)], [left_out[p] for p in in_order(left_out)]
        )

    def write_json(self) -> tuple[int, int, list[LeftOut]]:
        selection = self.coco_images()
        data = export_coco(
            self.args.output,
            selection.images,
            list(self.categories),
            polygons=self.args.polygons,
            min_score=self.args.score,
        )
        return len(data["images"]), len(data["annotations"]), selection.left_out


def _n(count: int, noun: str) -> str:
    """'1 image', '3 images'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def run_predict(args: argparse.Namespace) -> int:
    from maskdesk.inference.models import load_model
    from maskdesk.inference.predictor import Predictor

    check_output(args.output)
    folders = _collect(args.inputs)[1]  # a wrong path is reported before the model loads
    if args.model is None:
        args.model = folders_model(folders)
    download = ProgressBar("downloading weights", unit="MB")
    loaded = load_model(args.model, offline=args.offline, progress=download.bytes_callback)
    download.close()
    if loaded.note:
        _say(loaded.note)
    predictor = Predictor(loaded, device=args.device)
    run = _Run(args, predictor)
    _say(f"model {loaded.name} on {predictor.device}; {_n(len(run.paths), 'image')}")
    stopper = _Stopper()
    started = time.perf_counter()
    interrupted = False
    try:
        with stopper.installed():
            run.execute(stopper)
    except KeyboardInterrupt:
        interrupted = True
    try:
        n_images, n_annotations, left_out = run.write_json()
    finally:
        run.close()
    elapsed = time.perf_counter() - started
    predicted = sum(r.stored + len(r.failed) for r in run.reports.values()) + len(run.loose_results)
    _say(
        f"{_n(predicted, 'image')} predicted in {elapsed:.1f} s "
        f"({predicted / max(elapsed, 1e-9):.2f} images/s); {_n(n_annotations, 'instance')} at "
        f"score >= {args.score} on {_n(n_images, 'image')} written to {args.output}"
    )
    for folder, report in run.reports.items():
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
                f"  {_n(report.skipped_done, 'image')} already pre-labeled by {loaded.name}: "
                "skipped (--redo predicts them again)"
            )
        if report.skipped_reviewed:
            _say(f"  {_n(report.skipped_reviewed, 'reviewed image')} left as they are")
        run.failures += [f"{folder / path}: {reason}" for path, reason in report.failed]
    for line in run.failures:
        _say(f"failed: {line}")
    if left_out:
        _say(f"{args.output}: {left_out_summary(left_out)}")
    if interrupted or stopper():
        left = len(run.unreached) + len(run.loose) - len(run.loose_results)
        _say(
            f"maskdesk: interrupted; {_n(left, 'image')} not predicted. What was done is "
            "stored; run the same command again to continue."
        )
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if run.failures else EXIT_OK


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
    p.set_defaults(func=run_predict, flags=PREDICT_FLAGS)


PREDICT_FLAGS = {
    "model": "--model PATH",
    "device": "--device",
    "max_pixels": "--max-pixels",
    "offline": "--offline",
}


# A score given on the command line: a number within 0..1.
score_value = float_arg(lambda v: 0.0 <= v <= 1.0, "is outside 0..1")


__all__ = ["add_predict_parser", "check_output", "run_predict", "score_value"]
