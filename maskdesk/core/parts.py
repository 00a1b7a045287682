"""Part files: each image's predictions as one JSON line, written as they arrive.

`maskdesk predict ... -o OUT.json` appends each image's result to a part file in
`OUT.json.parts/`, so a killed run continues where it stopped, and `maskdesk merge` turns the
part files of one run or of many (shards made on other machines) into one COCO file
(`parts_merge`).

The format, version 1. A part file is `<dir>/<name>.jsonl`: UTF-8, one JSON object per line,
each line ending in "\\n" (JSON escapes any newline inside a string, so a record is one line).

- The first line is the header:
  `{"maskdesk_parts": 1, "model": MODEL, "categories": [{"id": int, "name": str}, ...],
  "root": "/absolute/folder"}` -- the model's name, its categories in its own order and ids,
  and the folder the records' paths are relative to.
- Every other line is the record of one image, either a result:
  `{"path": "sub/a.jpg", "width": W, "height": H, "model": MODEL, "instances": [{"category":
  NAME, "score": float, "segmentation": {"size": [H, W], "counts": RLE}, "box": [x0, y0, x1,
  y1]}, ...]}` -- `path` relative to the root, POSIX, inside it; W and H the upright size;
  `counts` the compressed COCO RLE string of the full-frame mask; `box` the model's box; or a
  failure: `{"path": ..., "model": MODEL, "error": "why, in words a person can act on"}`
  (width and height may be absent).

Readers take a file's lines in order. The last line may be cut off (a process killed while
writing it): when it does not parse it is skipped silently. Any other line that does not parse,
or is not a record as above (of the header's model, categories among the header's), is damage:
reported by file and line number and skipped. A file that is empty, or holds only a cut-off
header, has no records. A writer reopening a file drops a cut-off last line before appending.

When one path has several records (a retried image, shards that overlap), the last successful
record wins, else the last failure; "last" in the order the files are given (a folder's
`*.jsonl` files by name), then in line order. A rerun skips the paths that have a successful
record (`finished_paths`): failed images are tried again.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from maskdesk.core.categories import Category, CategoryTable
from maskdesk.core.coco import safe_relative
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.fileio import fsync_folder
from maskdesk.core.images import natural_key
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask

FORMAT_VERSION = 1
FSYNC_INTERVAL_S = 1.0  # a killed job loses at most about this much work to the page cache
_DAMAGED = object()  # a line that does not parse


def _line(obj: dict[str, Any]) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


# -- records ---------------------------------------------------------------------------------


def header(model: str, categories: Iterable[Category], root: Path | str) -> dict[str, Any]:
    """The header line of a part file for `model`, its categories, and the paths' root."""
    return {
        "maskdesk_parts": FORMAT_VERSION,
        "model": model,
        "categories": [{"id": c.id, "name": c.name} for c in categories],
        "root": str(Path(root).absolute()),
    }


def record_of(
    path: str,
    width: int,
    height: int,
    model: str,
    instances: Iterable[Instance],
    names: dict[int, str],
) -> dict[str, Any]:
    """The record of one predicted image; `names` maps category ids to the model's names."""
    if width < 1 or height < 1:
        raise ValueError(f"image {path!r} has no pixels ({width} x {height})")
    items = []
    for inst in instances:
        if inst.score is None:
            raise ValueError("part records hold model predictions, which have a score")
        items.append(
            {
                "category": names[inst.category_id],
                "score": inst.score,
                "segmentation": inst.mask.to_rle(width, height),
                "box": list(inst.box or ()),
            }
        )
    return {
        "path": safe_relative(path),
        "width": int(width),
        "height": int(height),
        "model": model,
        "instances": items,
    }


def failure_record(path: str, model: str, error: str) -> dict[str, Any]:
    """The record of an image the model could not predict, and why."""
    return {"path": safe_relative(path), "model": model, "error": str(error)}


def instances_of(record: dict[str, Any], category_ids: dict[str, int]) -> list[Instance]:
    """The pending model instances of a result record; `category_ids` maps names to ids."""
    out = []
    for item in record.get("instances", []):
        name = item["category"]
        if name not in category_ids:
            raise MaskdeskError(
                f"The record of {record.get('path')!r} names category {name!r}, which the "
                "model does not have; it comes from another model. Predict the image again."
            )
        try:
            mask = CropMask.from_rle(item["segmentation"])
        except (ValueError, TypeError, KeyError) as exc:
            raise MaskdeskError(
                f"The record of {record.get('path')!r} holds a mask that cannot be decoded "
                f"({exc}). Remove its line from the part file and predict the image again."
            ) from exc
        out.append(
            Instance(
                category_ids[name],
                mask,
                score=item["score"],
                box=tuple(item["box"]),
                origin=Origin.MODEL,
                review=Review.PENDING,
            )
        )
    return out


def _header_problem(obj: object) -> str | None:
    """Why `obj` is not a version-1 parts header, or None."""
    if not isinstance(obj, dict) or "maskdesk_parts" not in obj:
        return "its first line is not a maskdesk parts header"
    version = obj["maskdesk_parts"]
    if version != FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            return f"it is of parts format {version}, newer than this maskdesk reads; update it"
        return f"its header names an unknown parts format {version!r}"
    if not isinstance(obj.get("model"), str) or not obj["model"]:
        return "its header names no model"
    if not isinstance(obj.get("root"), str):
        return "its header names no root folder"
    cats = obj.get("categories")
    if not isinstance(cats, list):
        return "its header lists no categories"
    try:
        CategoryTable(Category(c["id"], c["name"]) for c in cats)
    except (ValueError, TypeError, KeyError, AttributeError):
        return "its header's categories are not unique ids and names"
    if any(type(c["id"]) is not int or not isinstance(c["name"], str) for c in cats):
        return "its header's categories are not ids and names"
    return None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _size(value: object) -> bool:
    return type(value) is int and value >= 1


def _record_problem(obj: object, model: str, names: frozenset[str]) -> str | None:
    """Why `obj` is not a sound record of `model`, or None. Masks are decoded later."""
    if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
        return "not a record"
    if obj.get("model") != model:
        return "of another model"
    try:
        safe_relative(obj["path"])
    except MaskdeskError:
        return "a path outside the root"
    if "error" in obj:
        return None if isinstance(obj["error"], str) else "an error that is not text"
    width, height, items = obj.get("width"), obj.get("height"), obj.get("instances")
    if not (_size(width) and _size(height) and isinstance(items, list)):
        return "no size or instances"
    for item in items:
        if not isinstance(item, dict) or item.get("category") not in names:
            return "an instance of an unknown category"
        score, box, seg = item.get("score"), item.get("box"), item.get("segmentation")
        if not (_number(score) and 0.0 <= score <= 1.0):  # type: ignore[operator]
            return "a score outside 0..1"
        if not (isinstance(box, list) and len(box) == 4 and all(map(_number, box))):
            return "a box that is not 4 numbers"
        if box[2] < box[0] or box[3] < box[1]:
            return "a box with corners out of order"
        if not isinstance(seg, dict) or seg.get("size") != [height, width]:
            return "a mask of another size than the image"
        if not isinstance(seg.get("counts"), str):
            return "a mask that is not a compressed RLE"
    return None


# -- writing ---------------------------------------------------------------------------------


class PartWriter:
    """Appends records to one part file, flushed per record, fsynced about once a second.

    One process writes one file; many processes may write different files of one folder.
    Reopening a file continues it: a cut-off last line is dropped, the header is kept (and must
    name the same model and categories).
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        problem = _header_problem(header)
        if problem is not None:
            raise ValueError(f"not a parts header: {problem}")
        self.path = Path(path)
        self.model: str = header["model"]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0),
                0o666,
            )
        except OSError as exc:
            raise MaskdeskError(
                f"Cannot write {self.path}: {_reason(exc)}. Choose an output in a writable folder."
            ) from exc
        try:
            if self._continue(header):
                self._write(_line(header))
                self.flush()
                fsync_folder(self.path.parent)
        except BaseException as exc:
            os.close(self._fd)
            if isinstance(exc, OSError):
                raise self._failed(exc) from exc
            raise
        self._synced = time.monotonic()

    def _failed(self, exc: OSError) -> MaskdeskError:
        return MaskdeskError(
            f"Cannot write {self.path}: {_reason(exc)}. Free some disk space or choose another "
            "output; a new run continues where this one stopped."
        )

    def _continue(self, header: dict[str, Any]) -> bool:
        """Drop a cut-off last line; True when the file is new (it needs the header)."""
        size = os.fstat(self._fd).st_size
        keep = _complete_size(self.path, size)
        if keep < size:
            os.ftruncate(self._fd, keep)
        if keep == 0:
            return True
        with open(self.path, "rb") as f:
            first = _parse(f.readline())
        if _header_problem(first) is not None:
            raise MaskdeskError(
                f"{self.path} is not a maskdesk part file (its first line is no parts header). "
                "Move it away or remove it, then run again."
            )
        assert isinstance(first, dict)
        if first["model"] != header["model"] or first["categories"] != header["categories"]:
            what = "other categories" if first["model"] == header["model"] else "another model"
            raise MaskdeskError(
                f"{self.path} holds the results of {what} ({first['model']!r}), not of "
                f"{header['model']!r}. Remove the file or its folder to start again with "
                f"{header['model']!r}, or write to another output file."
            )
        return False

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise self._failed(exc) from exc

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (see `record_of`, `failure_record`)."""
        if record.get("model") != self.model:
            raise ValueError(f"a record of {record.get('model')!r} in a part of {self.model!r}")
        self._write(_line(record))
        now = time.monotonic()
        if now - self._synced >= FSYNC_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Make what was written durable (fsync)."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise self._failed(exc) from exc
        self._synced = time.monotonic()

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _complete_size(path: Path, size: int) -> int:
    """The length of `path`'s first `size` bytes up to and including their last newline."""
    with open(path, "rb") as f:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            cut = f.read(end - start).rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
            end = start
    return 0


# -- reading ---------------------------------------------------------------------------------


def _parse(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return _DAMAGED


def part_files(sources: Sequence[Path]) -> list[Path]:
    """The part files of `sources`: each folder's `*.jsonl` by name, each file as given."""
    files: list[Path] = []
    seen: set[Path] = set()
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted((p for p in source.glob("*.jsonl") if p.is_file()), key=lambda p: p.name)
        elif source.is_file():
            found = [source]
        else:
            raise MaskdeskError(
                f"{source} does not exist; give the parts folder (OUT.json.parts) or its "
                ".jsonl files."
            )
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files


def _lines(file: Path) -> Iterator[tuple[int, int, object]]:
    """(line number, byte offset, parsed line or _DAMAGED); a last line that does not parse is
    left out."""
    try:
        with open(file, "rb") as f:
            pending: tuple[int, int, bytes] | None = None
            offset = 0
            for number, raw in enumerate(f, start=1):
                if pending is not None:
                    yield pending[0], pending[1], _parse(pending[2])
                pending = (number, offset, raw)
                offset += len(raw)
            if pending is not None:
                last = _parse(pending[2])
                if last is not _DAMAGED:
                    yield pending[0], pending[1], last
    except OSError as exc:
        raise MaskdeskError(f"Cannot read {file}: {_reason(exc)}.") from exc


def open_part(
    file: Path, damaged: list[tuple[str, int]] | None
) -> tuple[dict[str, Any] | None, Iterator[tuple[int, dict[str, Any]]]]:
    """A part file's header (None when it has none yet) and its sound records as (byte
    offset, record); damaged lines are added to `damaged` as (file, line number)."""
    lines = _lines(file)
    first = next(lines, None)
    if first is None:
        return None, iter(())
    problem = _header_problem(first[2])
    if problem is not None:
        raise MaskdeskError(
            f"{file} is not a maskdesk part file: {problem}. Leave it out, or move it out of "
            "the parts folder."
        )
    head: dict[str, Any] = first[2]  # type: ignore[assignment]
    model, names = head["model"], frozenset(c["name"] for c in head["categories"])

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        for number, offset, obj in lines:
            if _record_problem(obj, model, names) is None:
                yield offset, obj  # type: ignore[misc]
            elif damaged is not None:
                damaged.append((str(file), number))

    return head, records()


def read_parts(
    sources: Sequence[Path], damaged: list[tuple[str, int]] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(header, record) for every sound record of the part files of `sources` (folders or
    .jsonl files), in order; damaged lines go to `damaged` as (file, line number)."""
    for file in part_files(sources):
        head, records = open_part(file, damaged)
        if head is not None:
            for _, record in records:
                yield head, record


def finished_paths(folder: Path, model: str) -> set[str]:
    """Paths with a successful record of `model` in the part files of `folder`."""
    if not Path(folder).is_dir():
        return set()
    return {
        safe_relative(record["path"])
        for head, record in read_parts([folder])
        if head["model"] == model and "error" not in record
    }


# -- choosing one record per image -----------------------------------------------------------


class Where(NamedTuple):
    """Where an image's chosen record lies, and the image's size."""

    file: int  # index into the list of part files
    offset: int  # byte offset of the record's line
    width: int
    height: int

    # Packed into one int an index holds: 40 bytes an image instead of about 160.
    def pack(self) -> int:
        packed = self.offset << _FILE_BITS | self.file
        packed = packed << _SIDE_BITS | self.width
        return packed << _SIDE_BITS | self.height

    @classmethod
    def unpack(cls, packed: int) -> Where:
        rest, height = divmod(packed, 1 << _SIDE_BITS)
        rest, width = divmod(rest, 1 << _SIDE_BITS)
        offset, file = divmod(rest, 1 << _FILE_BITS)
        return cls(file, offset, width, height)


_FILE_BITS, _SIDE_BITS = 32, 32


@dataclass
class ChosenRecords:
    """Per path, where its chosen record lies (a packed `Where`), or its failure's reason when
    it has no successful record (see the module docstring for which record is chosen)."""

    files: list[Path]
    chosen: dict[str, int | str] = field(default_factory=dict)
    records: int = 0  # records added, chosen or not

    def add(self, file_index: int, offset: int, record: dict[str, Any]) -> None:
        self.records += 1
        path = safe_relative(record["path"])
        if "error" not in record:
            where = Where(file_index, offset, record["width"], record["height"])
            self.chosen[path] = where.pack()
        elif not isinstance(self.chosen.get(path), int):
            self.chosen[path] = record["error"]

    def where(self, path: str) -> Where:
        found = self.chosen[path]
        assert isinstance(found, int), f"{path} has no successful record"
        return Where.unpack(found)

    def ordered(self) -> tuple[list[str], list[tuple[str, str]]]:
        """Paths with a successful record, and failures (path, reason), in natural order."""
        ok = natural_sorted(p for p, v in self.chosen.items() if isinstance(v, int))
        reasons = {p: v for p, v in self.chosen.items() if isinstance(v, str)}
        return ok, [(p, reasons[p]) for p in natural_sorted(reasons)]


def natural_sorted(paths: Iterable[str], run: int = 8192) -> list[str]:
    """`sorted(paths, key=natural_key)`, holding the sort keys of `run` paths at a time.

    A key takes about 500 bytes, the path itself 70: sorting 100,000 paths at once would hold
    50 MB of keys. Sorted runs merged by heapq compute each key twice instead.
    """
    runs: list[list[str]] = []
    batch: list[str] = []
    for path in paths:
        batch.append(path)
        if len(batch) == run:
            runs.append(sorted(batch, key=natural_key))
            batch = []
    if batch or not runs:
        runs.append(sorted(batch, key=natural_key))
    if len(runs) == 1:
        return runs[0]
    return list(heapq.merge(*runs, key=natural_key))


class RecordReader:
    """Reads chosen records back by their `Where`, keeping a few files open."""

    KEEP_OPEN = 32

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.open: dict[int, IO[bytes]] = {}

    def record(self, where: Where) -> dict[str, Any]:
        file = self.files[where.file]
        f = self.open.pop(where.file, None)  # re-inserted last: the dict is an LRU list
        try:
            if f is None:
                if len(self.open) >= self.KEEP_OPEN:
                    self.open.pop(next(iter(self.open))).close()
                f = open(file, "rb")  # noqa: SIM115 -- kept open across calls, closed in close()
            self.open[where.file] = f
            f.seek(where.offset)
            raw = f.readline()
        except OSError as exc:
            raise MaskdeskError(f"Cannot read {file}: {_reason(exc)}.") from exc
        record = _parse(raw)
        if not isinstance(record, dict):
            raise MaskdeskError(f"{file} changed while it was read; run again.")
        return record

    def close(self) -> None:
        for f in self.open.values():
            f.close()
        self.open.clear()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def latest_records(
    folder: Path, model: str, wanted: set[str] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, chosen record) for each path of `wanted` (all when None) with a record of
    `model` in the part files of `folder`, in natural path order."""
    if not Path(folder).is_dir():
        return
    index = ChosenRecords(part_files([folder]))
    for i, file in enumerate(index.files):
        head, records = open_part(file, None)
        if head is None or head["model"] != model:
            continue
        for offset, record in records:
            if wanted is None or safe_relative(record["path"]) in wanted:
                index.add(i, offset, record)
    ok, failed = index.ordered()
    reasons = dict(failed)
    with RecordReader(index.files) as reader:
        for path in natural_sorted(ok + list(reasons)):
            if path in reasons:
                yield path, failure_record(path, model, reasons[path])
            else:
                yield path, reader.record(index.where(path))
