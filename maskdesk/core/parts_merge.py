"""`maskdesk merge`: one COCO file from part files (core.parts), streamed, with a report.

Each image is written once (the record core.parts chooses), with ids 1..n in natural path
order; failed images are left out and reported; instances under the score threshold are left
out. The file equals, as data, what `coco.build_coco` makes of the same images, categories (the
model's, from the headers) and threshold, apart from `info.date_created`.

Memory stays small for any number of images: pass 1 reads every line once and keeps, per path,
only where its chosen record lies (`ChosenRecords`); pass 2 writes the JSON in pieces, one
`json.dumps` per image and per annotation, reading each chosen record again by its byte offset.
"""

from __future__ import annotations

import json
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import maskdesk
from maskdesk.core.coco import annotation
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.fileio import atomic_writer
from maskdesk.core.parts import (
    ChosenRecords,
    RecordReader,
    instances_of,
    open_part,
    part_files,
    safe_relative,
)


@dataclass
class MergeReport:
    """What a merge wrote, what it left out and why."""

    output: Path
    model: str
    images: int = 0  # images written (with or without instances)
    annotations: int = 0  # instances written
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), left out
    duplicates: int = 0  # records set aside because another record of their path won
    damaged: list[tuple[str, int]] = field(default_factory=list)  # (file, line number)


def merge(
    sources: Sequence[Path],
    output: Path,
    *,
    min_score: float = 0.5,
    only: Container[str] | None = None,
) -> MergeReport:
    """Merge the part files of `sources` (folders or .jsonl files) into the COCO file
    `output`, written atomically; see the module docstring. `only`: the paths to take (all
    by default)."""
    files = part_files(sources)
    named = ", ".join(map(str, sources))
    if not files:
        raise MaskdeskError(
            f"No part files (*.jsonl) in {named}; give the OUT.json.parts folder of a predict run."
        )
    index = ChosenRecords(files)
    damaged: list[tuple[str, int]] = []
    first: tuple[Path, dict[str, Any]] | None = None
    for i, file in enumerate(files):
        head, records = open_part(file, damaged)
        if head is None:
            continue
        if first is None:
            first = (file, head)
        elif (head["model"], head["categories"]) != (first[1]["model"], first[1]["categories"]):
            what = "categories" if head["model"] == first[1]["model"] else "models"
            raise MaskdeskError(
                f"{first[0]} and {file} hold predictions of different {what} "
                f"({first[1]['model']!r}, {head['model']!r}); merge the parts of one "
                "model at a time."
            )
        for offset, record in records:
            if only is None or safe_relative(record["path"]) in only:
                index.add(i, offset, record)
    if first is None:
        raise MaskdeskError(
            f"The part files in {named} are empty: no run got as far as its first image. "
            "Predict first, then merge."
        )
    ok, failed = index.ordered()
    report = MergeReport(Path(output), first[1]["model"], failed=failed, damaged=damaged)
    report.duplicates = index.records - len(index.chosen)
    with RecordReader(files) as reader, atomic_writer(output) as out:
        _write_coco(out, index, ok, first[1]["categories"], reader, min_score, report)
    return report


def _dumps(obj: object) -> str:
    # As write_coco writes: compact, UTF-8, no NaN.
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class _JsonWriter:
    """Writes JSON text in buffered pieces; `item` adds one element to the open array."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.pieces: list[str] = []
        self.first = True

    def raw(self, text: str) -> None:
        """Text between arrays, ending where the next array's first element goes."""
        self._put(text)
        self.first = True

    def item(self, obj: object) -> None:
        text = _dumps(obj)
        self._put(text if self.first else "," + text)
        self.first = False

    def _put(self, text: str) -> None:
        self.pieces.append(text)
        if len(self.pieces) >= 2048:
            self.flush()

    def flush(self) -> None:
        self.out.write("".join(self.pieces).encode("utf-8"))
        self.pieces.clear()


def _write_coco(
    out: IO[bytes],
    index: ChosenRecords,
    ok: list[str],
    cats: list[dict[str, Any]],
    reader: RecordReader,
    min_score: float,
    report: MergeReport,
) -> None:
    """The COCO JSON of the images `ok`, with build_coco's keys, order and annotations."""
    info = {
        "description": "maskdesk export",
        "version": maskdesk.__version__,
        "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    w = _JsonWriter(out)
    w.raw('{"info":' + _dumps(info) + ',"licenses":[],"images":[')
    for image_id, path in enumerate(ok, start=1):
        where = index.where(path)
        w.item({"id": image_id, "file_name": path, "width": where.width, "height": where.height})
    w.raw('],"annotations":[')
    category_ids = {c["name"]: c["id"] for c in cats}
    for image_id, path in enumerate(ok, start=1):
        where = index.where(path)
        record = reader.record(where)
        # Instances under the threshold are never exported: no need to decode their masks.
        record["instances"] = [i for i in record["instances"] if i["score"] >= min_score]
        try:
            instances = instances_of(record, category_ids)
        except MaskdeskError as exc:
            raise MaskdeskError(f"{index.files[where.file]}: {exc}") from exc
        # The same filter as build_coco's, so both write the same instances.
        for inst in instances:
            if not inst.exported(min_score):
                continue
            mask = inst.mask.clipped(where.width, where.height).tight()
            if mask.is_empty():
                continue
            report.annotations += 1
            ann = annotation(
                report.annotations, image_id, inst, mask, where.height, where.width, False
            )
            w.item(ann)
    categories = [{"id": c["id"], "name": c["name"], "supercategory": ""} for c in cats]
    w.raw('],"categories":' + _dumps(categories) + "}")
    w.flush()
    report.images = len(ok)
