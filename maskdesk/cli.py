"""Headless commands: predict, import, export, info (and train, from cli_train).

Every problem a user can cause ends as one plain message on stderr and a non-zero exit
code: 1 when some images failed but the output was written, 2 for usage, model or file
errors. No traceback reaches the user for those.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from maskdesk import __version__
from maskdesk.core import images as image_io
from maskdesk.core.categories import Category, CategoryTable, plan_merge
from maskdesk.core.coco import CocoImage, export_coco, read_coco
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.fileio import atomic_write_bytes
from maskdesk.core.importing import import_coco
from maskdesk.core.instances import Instance
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.render import render_overlay
from maskdesk.progress import ProgressBar

if TYPE_CHECKING:
    from maskdesk.inference.models import LoadedModel

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1")
    return value


def _check_output(path: Path) -> None:
    """Fail before hours of work, not after, when the output cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise MaskdeskError(f"{path} is a folder; give a file name for the COCO JSON.")
    if not folder.is_dir():
        raise MaskdeskError(f"Folder {folder} does not exist; create it or choose another -o.")
    if not os.access(folder, os.W_OK):
        raise MaskdeskError(f"Folder {folder} is not writable; choose another -o.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskdesk",
        description="Mask R-CNN pre-labeling and review; COCO JSON in and out.",
    )
    parser.add_argument("--version", action="version", version=f"maskdesk {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help=f"refuse images over this many pixels (default {image_io.DEFAULT_MAX_PIXELS:,})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("predict", parents=[common], help="pre-label images, write COCO JSON")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.json")
    p.add_argument("--model", default="coco-v1", help="coco-v1 (default), coco-v2 or a PATH")
    p.add_argument("--score", type=_score, default=0.5, help="lowest score exported (0.5)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--polygons", action="store_true", help="polygons instead of RLE")
    p.add_argument("--render", type=Path, metavar="DIR", help="also write overlay pictures here")
    p.add_argument("--offline", action="store_true", help="never download weights")
    p.add_argument(
        "--no-store", action="store_true", help="do not save predictions in folder projects"
    )
    p.set_defaults(func=run_predict)

    p = sub.add_parser(
        "import", parents=[common], help="bring a COCO file's annotations into a folder's project"
    )
    p.add_argument("folder", type=Path)
    p.add_argument("coco", type=Path, metavar="COCO.json")
    p.set_defaults(func=run_import)

    p = sub.add_parser("export", parents=[common], help="write a folder's annotations as COCO JSON")
    p.add_argument("folder", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.json")
    p.add_argument("--polygons", action="store_true", help="polygons instead of RLE")
    p.add_argument("--score", type=_score, default=0.5, help="lowest score of model instances")
    p.set_defaults(func=run_export)

    p = sub.add_parser(
        "info", parents=[common], help="images, statuses and instance counts of a folder"
    )
    p.add_argument("folder", type=Path)
    p.set_defaults(func=run_info)

    from maskdesk.cli_train import add_train_parser

    add_train_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    if getattr(args, "max_pixels", None) is not None:
        image_io.DEFAULT_MAX_PIXELS = args.max_pixels
    try:
        return int(args.func(args))
    except MaskdeskError as exc:
        print(f"maskdesk: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("maskdesk: interrupted", file=sys.stderr)
        return 130


# -- predict ----------------------------------------------------------------------------


def _collect(inputs: Sequence[Path]) -> tuple[list[Path], dict[Path, Path]]:
    """All image paths in order, and for images found in a folder, that folder."""
    paths: list[Path] = []
    folder_of: dict[Path, Path] = {}
    for item in inputs:
        if item.is_dir():
            for rel in image_io.scan_folder(item):
                path = item / rel
                paths.append(path)
                folder_of[path] = item
        elif item.exists():
            paths.append(item)
        else:
            raise MaskdeskError(f"{item} does not exist; give image files or folders.")
    if not paths:
        raise MaskdeskError("No images found in " + ", ".join(str(i) for i in inputs) + ".")
    return paths, folder_of


def _image_root(inputs: Sequence[Path], paths: Sequence[Path]) -> Path:
    """The folder that exported file names are relative to."""
    if len(inputs) == 1 and inputs[0].is_dir():
        return inputs[0]
    return Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.resolve().relative_to(root.resolve()).as_posix()


def run_predict(args: argparse.Namespace) -> int:
    from maskdesk.inference.models import load_model
    from maskdesk.inference.predictor import Predictor, predict_files

    _check_output(args.output)
    paths, folder_of = _collect(args.inputs)
    root = _image_root(args.inputs, paths)
    projects = {} if args.no_store else _open_projects(set(folder_of.values()))

    download = ProgressBar("downloading weights", unit="MB")
    loaded = load_model(args.model, offline=args.offline, progress=download.bytes_callback)
    download.close()
    if loaded.note:
        print(loaded.note, file=sys.stderr)
    predictor = Predictor(loaded, device=args.device)
    print(
        f"model {loaded.name} on {predictor.device}; {len(paths)} images",
        file=sys.stderr,
    )

    coco_images: list[CocoImage] = []
    failures: list[str] = []
    bar = ProgressBar("predicting", total=len(paths), unit="img")
    started = time.perf_counter()
    renderer = _Renderer(args.render, root, loaded.categories) if args.render else None
    for result in predict_files(predictor, paths):
        path, instances = result.path, result.instances
        bar.advance(path.name)
        project = projects.get(folder_of.get(path, Path()))
        if instances is None or result.pixels is None:
            failures.append(f"{path}: {result.error}")
            if project is not None:
                _mark_failed(project, folder_of[path], path, str(result.error))
            continue
        height, width = result.pixels.shape[:2]
        coco_images.append(CocoImage(_relative(path, root), width, height, instances))
        if project is not None:
            _store_predictions(project, folder_of[path], path, instances, loaded)
        if renderer is not None:
            renderer.write(path, result.pixels, instances, args.score)
    bar.close()
    elapsed = time.perf_counter() - started
    done = len(coco_images)
    export_coco(
        args.output, coco_images, loaded.categories, polygons=args.polygons, min_score=args.score
    )
    kept = sum(1 for im in coco_images for i in im.instances if i.exported(args.score))
    print(
        f"{done} images in {elapsed:.1f} s ({done / max(elapsed, 1e-9):.2f} images/s); "
        f"{kept} instances at score >= {args.score} written to {args.output}",
        file=sys.stderr,
    )
    for project in projects.values():
        print(f"predictions saved in the project at {project.store_path}", file=sys.stderr)
        if project.store_note:
            print(project.store_note, file=sys.stderr)
        project.close()
    for line in failures:
        print(f"failed: {line}", file=sys.stderr)
    return EXIT_SOME_FAILED if failures else EXIT_OK


def _open_projects(folders: set[Path]) -> dict[Path, Project]:
    return {folder: Project.open(folder) for folder in sorted(folders)}


def _mark_failed(project: Project, folder: Path, path: Path, reason: str) -> None:
    record = project.image_by_path(path.relative_to(folder).as_posix())
    if record is not None and record.status is not ImageStatus.REVIEWED:
        project.set_status(record.id, ImageStatus.FAILED, reason)


def _store_predictions(
    project: Project, folder: Path, path: Path, instances: list[Instance], loaded: LoadedModel
) -> None:
    record = project.image_by_path(path.relative_to(folder).as_posix())
    if record is None:
        return
    mapping, added = plan_merge(project.categories, loaded.categories)
    if added:
        project.ensure_categories(added)
    remapped = [i.with_changes(category_id=mapping[i.category_id]) for i in instances]
    project.set_predictions(record.id, remapped, loaded.name)


class _Renderer:
    """Writes overlay pictures under DIR, mirroring the input layout."""

    def __init__(self, folder: Path, root: Path, categories: Sequence[Category]) -> None:
        self.folder = folder
        self.root = root
        self.categories = CategoryTable(categories)
        self.used: set[Path] = set()

    def write(
        self, path: Path, pixels: np.ndarray, instances: list[Instance], min_score: float
    ) -> None:
        rel = Path(_relative(path, self.root))
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


# -- import / export / info ---------------------------------------------------------------


def run_import(args: argparse.Namespace) -> int:
    coco = read_coco(args.coco)
    with Project.open(args.folder) as project:
        report = import_coco(project, coco)
    print(report.summary(args.coco, args.folder), file=sys.stderr)
    return EXIT_SOME_FAILED if report.unmatched else EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    _check_output(args.output)
    with Project.open(args.folder) as project:
        coco_images = [
            CocoImage(record.path, record.width, record.height, project.instances(record.id))
            for record in project.images()
            if record.width > 0 and record.status is not ImageStatus.FAILED
        ]
        categories = list(project.categories)
    data = export_coco(
        args.output, coco_images, categories, polygons=args.polygons, min_score=args.score
    )
    print(
        f"{len(data['images'])} images, {len(data['annotations'])} annotations "
        f"written to {args.output}",
        file=sys.stderr,
    )
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    with Project.open(args.folder) as project:
        counts = project.counts()
        print(f"folder: {project.folder}")
        print(f"project: {project.store_path}")
        if project.store_note:
            print(project.store_note)
        print(f"images: {counts['images']}")
        for status, n in counts["status"].items():
            print(f"  {status}: {n}")
        print(f"instances: {counts['instances']}")
        for name, n in counts["categories"].items():
            print(f"  {name}: {n}")
    return EXIT_OK
