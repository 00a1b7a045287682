"""One `maskdesk predict` run, whatever engine produces the results: its inputs (files,
folders, list files), the folders' projects, the parts files, and the COCO JSON.

The driver (this process) is the only writer: each result is stored in its folder's project
as it arrives (core.prelabel; reviewed images stay as they are) and written to the parts
files, `OUT.json.parts/*.jsonl` (core.parts), so a killed run continues where it stopped. At
the end the JSON is written: folders' images from their projects, the rest from the parts.
Engines only turn paths into results, in input order: no engine opens SQLite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from maskdesk.core import images as image_io
from maskdesk.core import parts, parts_merge
from maskdesk.core.categories import Category, CategoryTable, plan_merge
from maskdesk.core.coco import CocoImage, export_coco
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.exporting import LeftOut, Selection, failed_without_work
from maskdesk.core.fileio import atomic_write_bytes
from maskdesk.core.instances import Instance
from maskdesk.core.prelabel import ImageResult, PrelabelReport, plan, prelabel
from maskdesk.core.project import ImageRecord, Project
from maskdesk.core.render import render_overlay
from maskdesk.progress import ProgressBar

LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
# paths, cancel() -> one ImageResult per path, in input order (fewer when cancelled)
RunModel = Callable[[Sequence[Path], Callable[[], bool]], Iterable[ImageResult]]


@dataclass
class Inputs:
    """What a run reads: every image path in order, the folders among the inputs, the loose
    files (given one by one or in list files), and the folder names in the JSON are relative to."""

    paths: list[Path]
    folders: list[Path]
    loose: list[Path]
    root: Path


def read_list(path: Path) -> list[Path]:
    """The image paths of a list file: one per line, relative ones relative to the list's
    folder; blank lines and lines starting with # are skipped. A listed file that is missing
    becomes that image's failure, not the run's."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MaskdeskError(
            f"Cannot read the list file {path}: {exc}; give a UTF-8 text file "
            "with one image path per line."
        ) from exc
    base = path.parent
    listed = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            listed.append(Path(line) if os.path.isabs(line) else base / line)
    return listed


def collect_inputs(inputs: Sequence[Path]) -> Inputs:
    """The run's images from files, folders and list files (.txt, .lst, .list)."""
    paths: list[Path] = []
    folders: list[Path] = []
    loose: list[Path] = []
    for item in inputs:
        if item.is_dir():
            folders.append(item)
            paths += [item / rel for rel in image_io.scan_folder(item)]
        elif item.is_file() and item.suffix.lower() in LIST_SUFFIXES:
            listed = read_list(item)
            paths += listed
            loose += listed
        elif item.exists():
            paths.append(item)
            loose.append(item)
        else:
            raise MaskdeskError(f"{item} does not exist; give image files, folders or list files.")
    if not paths:
        raise MaskdeskError("No images found in " + ", ".join(str(i) for i in inputs) + ".")
    return Inputs(paths, folders, loose, _image_root(inputs, paths))


def _image_root(inputs: Sequence[Path], paths: Sequence[Path]) -> Path:
    """The folder that exported file names are relative to."""
    if len(inputs) == 1 and inputs[0].is_dir():
        return inputs[0].resolve()
    return Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))


def parse_shard(text: str) -> tuple[int, int]:
    """ "I/N" -> (I, N), with 0 <= I < N."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (e.g. 0/8)") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"{text}: I must be 0..N-1 and N at least 1")
    return index, count


def take_shard(inputs: Inputs, index: int, count: int) -> Inputs:
    """Every `count`-th image of the input sorted by path, starting at `index`: the shards of
    an array job cover every image exactly once. Shards never store in projects (many
    processes would write one project); their parts are merged with `maskdesk merge`."""
    ordered = sorted(inputs.paths, key=lambda p: image_io.natural_key(p.resolve().as_posix()))
    mine = ordered[index::count]
    return Inputs(mine, [], mine, inputs.root)


class Renderer:
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


def parts_dir_for(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


@dataclass
class LooseTally:
    """Loose images this run: predicted now, found done in the parts, failed (path, reason)."""

    predicted: int = 0
    resumed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


class PredictJob:
    """One predict command over `inputs` with a model `run_model` runs."""

    def __init__(
        self,
        args: argparse.Namespace,
        inputs: Inputs,
        model_name: str,
        categories: Sequence[Category],
        run_model: RunModel,
        *,
        store: bool = True,
        part_name: str | None = None,
    ) -> None:
        self.args = args
        self.inputs = inputs
        self.model_name = model_name
        self.model_categories = list(categories)
        self.run_model = run_model
        self.root = inputs.root
        folders = inputs.folders if store else []
        self.loose = inputs.loose if store else inputs.paths
        self.projects = {f: Project.open(f) for f in folders}
        self.reports: dict[Path, PrelabelReport] = {}
        self.loose_tally = LooseTally()
        self.loose_done: set[Path] = set()
        self.unreached: set[tuple[Path, int]] = set()
        self.failures: list[str] = []
        self.categories = CategoryTable(categories)
        self.names = {c.id: c.name for c in categories}
        self.renderer = Renderer(args.render, self.root, self.categories) if args.render else None
        self.parts_dir = parts_dir_for(args.output)
        name = part_name or f"part-{socket.gethostname()}-{os.getpid()}"
        self.part_path = self.parts_dir / f"{name}.jsonl"
        if args.redo:
            if part_name is None:
                shutil.rmtree(self.parts_dir, ignore_errors=True)
            else:
                self.part_path.unlink(missing_ok=True)
        self._check_parts_model()
        self.writer = parts.PartWriter(
            self.part_path,
            parts.header(model_name, self.model_categories, self.root),
        )

    def _check_parts_model(self) -> None:
        """Parts left by a run of another model would mix two models in one file."""
        if not self.parts_dir.is_dir():
            return
        for file in parts.part_files([self.parts_dir]):
            head, _records = parts.open_part(file, None)
            if head is not None and head["model"] != self.model_name:
                raise MaskdeskError(
                    f"{self.parts_dir} holds the unfinished run of another model "
                    f"({head['model']}); add --redo to start over with {self.model_name}, or "
                    "choose another -o."
                )

    def close(self) -> None:
        self.writer.close()
        for project in self.projects.values():
            project.close()

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def _record(self, path: Path, result: ImageResult) -> None:
        rel = self.rel(path)
        if result.instances is None:
            reason = str(result.error) or type(result.error).__name__
            self.writer.write(parts.failure_record(rel, self.model_name, reason))
            return
        if result.size is None:  # engines give the size of every image they predicted
            raise MaskdeskError(f"The engine gave no image size for {path}.")
        width, height = result.size
        self.writer.write(
            parts.record_of(rel, width, height, self.model_name, result.instances, self.names)
        )

    def total(self) -> int:
        return sum(len(r) for r in self.todo.values()) + len(self.loose_todo)

    def plan(self) -> None:
        """What this run predicts: folder images per their projects, loose images not yet
        finished in the parts (unless --redo, which removed them)."""
        self.skips = {f: PrelabelReport() for f in self.projects}
        self.todo = {
            f: plan(p, self.model_name, redo=self.args.redo, report=self.skips[f])
            for f, p in self.projects.items()
        }
        for folder, records in self.todo.items():
            self.unreached |= {(folder, r.id) for r in records}
        finished = parts.finished_paths(self.parts_dir, self.model_name)
        self.loose_todo = [p for p in self.loose if self.rel(p) not in finished]
        self.loose_tally.resumed = len(self.loose) - len(self.loose_todo)

    def execute(self, stopper: Callable[[], bool]) -> None:
        bar = ProgressBar("predicting", total=self.total(), unit="img")
        try:
            for folder, project in self.projects.items():
                if stopper():
                    break

                def stored(record: ImageRecord, result: ImageResult, folder: Path = folder) -> None:
                    self.unreached.discard((folder, record.id))
                    self._record(result.path, result)
                    bar.advance(record.path)
                    self._render(result)

                report = self.reports[folder] = prelabel(
                    project,
                    self.model_name,
                    self.model_categories,
                    self.run_model,
                    redo=self.args.redo,
                    images=self.todo[folder],
                    cancel=stopper,
                    on_result=stored,
                )
                report.skipped_done = self.skips[folder].skipped_done
                report.skipped_reviewed = self.skips[folder].skipped_reviewed
            if not stopper():
                for result in self.run_model(self.loose_todo, stopper):
                    self._record(result.path, result)
                    self.loose_done.add(result.path)
                    self.loose_tally.predicted += 1
                    bar.advance(result.path.name)
                    if result.instances is None:
                        self.failures.append(f"{result.path}: {result.error}")
                    self._render(result)
        finally:
            bar.close()
            self.writer.flush()

    def unfinished(self) -> int:
        return len(self.unreached) + len(self.loose_todo) - len(self.loose_done)

    def _render(self, result: ImageResult) -> None:
        if self.renderer is not None and result.pixels is not None and result.instances:
            self.renderer.write(result.path, result.pixels, result.instances, self.args.score)

    def coco_images(self) -> Selection:
        """The images reached so far, in input order: a folder's from its project (failed ones
        without a person's work left out, see core.exporting), loose ones from the parts."""
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
                rel = self.rel(path)
                stored = project.instances(record.id)
                out = failed_without_work(record, stored, rel)
                if out is not None:
                    left_out[path.resolve()] = out
                    continue
                instances = [i.with_changes(category_id=mapping[i.category_id]) for i in stored]
                by_path[path.resolve()] = CocoImage(rel, record.width, record.height, instances)
        wanted = {self.rel(p): p.resolve() for p in self.loose}
        ids = {c.name: c.id for c in self.model_categories}
        for rel, line in parts.latest_records(self.parts_dir, self.model_name, set(wanted)):
            path = wanted[rel]
            if "error" in line:
                left_out[path] = LeftOut(rel, str(line["error"]))
            else:
                size = int(line["width"]), int(line["height"])
                by_path[path] = CocoImage(rel, *size, parts.instances_of(line, ids))
        order = {p.resolve(): i for i, p in enumerate(self.inputs.paths)}

        def in_order(paths: Iterable[Path]) -> list[Path]:
            return sorted(paths, key=lambda p: order.get(p, len(order)))

        return Selection(
            [by_path[p] for p in in_order(by_path)], [left_out[p] for p in in_order(left_out)]
        )

    def write_json(self) -> tuple[int, int, list[LeftOut]]:
        """Write OUT.json; (images, instances written, images left out)."""
        if not self.projects and not self.args.polygons:
            # Loose images only: merged from the parts, streamed, so a run of millions of
            # images writes its JSON in little memory (core.parts_merge).
            wanted = {self.rel(p) for p in self.loose}
            report = parts_merge.merge(
                [self.parts_dir], self.args.output, min_score=self.args.score, only=wanted
            )
            left = [LeftOut(path, reason) for path, reason in report.failed]
            return report.images, report.annotations, left
        selection = self.coco_images()
        data = export_coco(
            self.args.output,
            selection.images,
            list(self.categories),
            polygons=self.args.polygons,
            min_score=self.args.score,
        )
        return len(data["images"]), len(data["annotations"]), selection.left_out
