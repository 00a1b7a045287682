"""Part files and their merge: records written and read back, one record chosen per image, damage
reported, and a merged file that equals maskdesk's own export (build_coco) and decodes, with
pycocotools, to the original masks pixel for pixel."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from pycocotools.coco import COCO

from maskdesk.core.categories import Category
from maskdesk.core.coco import CocoImage, build_coco
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.images import natural_key
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.parts import (
    PartWriter,
    Where,
    failure_record,
    finished_paths,
    header,
    instances_of,
    latest_records,
    natural_sorted,
    read_parts,
    record_of,
)
from maskdesk.core.parts_merge import merge

MODEL = "coco-v1"
CATEGORIES = [Category(1, "person"), Category(3, "car"), Category(18, "dog")]
NAMES = {c.id: c.name for c in CATEGORIES}
IDS = {c.name: c.id for c in CATEGORIES}


def ellipse(x: int, y: int, w: int, h: int) -> CropMask:
    bits = np.zeros((h, w), dtype=np.uint8)
    cv2.ellipse(bits, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 1, cv2.FILLED)
    return CropMask(x, y, bits.astype(bool))


def ring(x: int, y: int, size: int) -> CropMask:
    bits = np.ones((size, size), dtype=bool)
    bits[size // 3 : 2 * size // 3, size // 3 : 2 * size // 3] = False
    return CropMask(x, y, bits)


def square(x: int, y: int, size: int) -> CropMask:
    return CropMask(x, y, np.ones((size, size), dtype=bool))


def sample_images() -> list[CocoImage]:
    """Predictions as the model makes them: several shapes, scores on both sides of 0.5."""
    return [
        CocoImage(
            "été/chat 1.jpg",
            120,
            90,
            [
                Instance(18, ellipse(10, 12, 30, 20), score=0.91, box=(5.0, 5.0, 50.0, 40.0)),
                Instance(3, ring(50, 10, 24), score=0.66),
                Instance(1, ellipse(100, 70, 40, 40), score=0.8),  # crosses two borders
                Instance(1, square(3, 60, 9), score=0.35),
            ],
        ),
        CocoImage("img10.png", 64, 48, [Instance(3, square(40, 30, 8), score=0.5)]),
        CocoImage("img2.png", 64, 48, []),
        CocoImage("sub/b.png", 30, 40, [Instance(1, ellipse(2, 3, 20, 30), score=0.45)]),
    ]


def write_part(path: Path, records: list[dict[str, Any]], model: str = MODEL) -> Path:
    with PartWriter(path, header(model, CATEGORIES, "/data/photos")) as writer:
        for record in records:
            writer.write(record)
    return path


def result(image: CocoImage, model: str = MODEL) -> dict[str, Any]:
    return record_of(image.file_name, image.width, image.height, model, image.instances, NAMES)


def without_date(data: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    del data["info"]["date_created"]
    return data


@pytest.mark.parametrize("min_score", [0.5, 0.3])
def test_merge_equals_build_coco_and_decodes_to_the_original_masks(
    tmp_path: Path, min_score: float
) -> None:
    images = sample_images()
    parts = tmp_path / "out.json.parts"
    write_part(parts / "b.jsonl", [result(images[0]), result(images[3])])
    write_part(parts / "a.jsonl", [result(images[2]), result(images[1])])
    out = tmp_path / "out.json"

    report = merge([parts], out, min_score=min_score)

    data = json.loads(out.read_text(encoding="utf-8"))
    natural = [images[0], images[2], images[1], images[3]]  # été/, img2, img10, sub/
    expected = build_coco(natural, CATEGORIES, min_score=min_score)
    assert without_date(data) == without_date(expected)
    kept = [
        (image_id, inst, image)
        for image_id, image in enumerate(natural, start=1)
        for inst in image.instances
        if inst.score is not None and inst.score >= min_score
    ]
    assert (report.images, report.annotations) == (4, len(kept))
    assert len(kept) == {0.5: 4, 0.3: 6}[min_score]
    assert (report.failed, report.duplicates, report.damaged) == ([], 0, [])
    coco = COCO(str(out))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == len(kept)
    for ann, (image_id, inst, image) in zip(anns, kept, strict=True):
        assert ann["image_id"] == image_id and ann["score"] == inst.score
        decoded = coco.annToMask(ann).astype(bool)
        assert np.array_equal(decoded, inst.mask.to_full(image.width, image.height))
    assert [im["file_name"] for im in coco.dataset["images"]] == [
        "été/chat 1.jpg",
        "img2.png",
        "img10.png",
        "sub/b.png",
    ]


def test_records_hold_the_documented_fields_and_read_back_as_the_instances(
    tmp_path: Path,
) -> None:
    image = sample_images()[0]
    part = write_part(tmp_path / "p.jsonl", [result(image), failure_record("x.jpg", MODEL, "bad")])
    lines = [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {
        "maskdesk_parts": 1,
        "model": MODEL,
        "categories": [
            {"id": 1, "name": "person"},
            {"id": 3, "name": "car"},
            {"id": 18, "name": "dog"},
        ],
        "root": "/data/photos",
    }
    first = lines[1]["instances"][0]
    assert set(lines[1]) == {"path", "width", "height", "model", "instances"}
    assert (lines[1]["width"], lines[1]["height"]) == (120, 90)
    assert first["category"] == "dog" and first["score"] == 0.91
    assert first["box"] == [5.0, 5.0, 50.0, 40.0]
    assert first["segmentation"]["size"] == [90, 120]
    assert lines[2] == {"path": "x.jpg", "model": MODEL, "error": "bad"}

    back = [record for _, record in read_parts([part])]
    assert back == lines[1:]
    restored = instances_of(back[0], IDS)
    assert [(i.category_id, i.score, i.box) for i in restored] == [
        (i.category_id, i.score, i.box) for i in image.instances
    ]
    for got, original in zip(restored, image.instances, strict=True):
        assert got.origin is Origin.MODEL and got.review is Review.PENDING
        assert np.array_equal(got.mask.to_full(120, 90), original.mask.to_full(120, 90))


def test_one_record_per_image_the_last_success_wins(tmp_path: Path) -> None:
    def one(path: str, size: int) -> dict[str, Any]:
        return result(CocoImage(path, 20, 20, [Instance(1, square(1, 1, size), score=0.9)]))

    parts = tmp_path / "parts"
    write_part(
        parts / "1.jsonl",
        [
            failure_record("retried.jpg", MODEL, "out of memory"),
            one("twice.jpg", 3),
            failure_record("lost.jpg", MODEL, "first reason"),
        ],
    )
    write_part(
        parts / "2.jsonl",
        [
            one("retried.jpg", 4),
            one("twice.jpg", 5),
            failure_record("lost.jpg", MODEL, "second reason"),
            failure_record("twice.jpg", MODEL, "a later failure loses to a success"),
        ],
    )
    out = tmp_path / "out.json"
    report = merge([parts], out, min_score=0.5)
    data = json.loads(out.read_text())
    assert [im["file_name"] for im in data["images"]] == ["retried.jpg", "twice.jpg"]
    assert [a["area"] for a in data["annotations"]] == [16, 25]
    assert report.failed == [("lost.jpg", "second reason")]
    assert report.duplicates == 4  # 7 records, 3 images
    assert (report.images, report.annotations) == (2, 2)


def test_cut_off_last_line_is_skipped_and_a_damaged_line_is_reported(tmp_path: Path) -> None:
    images = sample_images()
    part = write_part(tmp_path / "p.jsonl", [result(images[1]), result(images[2])])
    lines = part.read_bytes().splitlines(keepends=True)
    cut = json.dumps(result(images[3])).encode()[:60]
    part.write_bytes(lines[0] + lines[1] + b'{"path": "broken.jpg", "wid\n' + lines[2] + cut)
    report = merge([part], tmp_path / "out.json")
    assert report.damaged == [(str(part), 3)]
    data = json.loads((tmp_path / "out.json").read_text())
    assert [im["file_name"] for im in data["images"]] == ["img2.png", "img10.png"]


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (lambda r: r["instances"][0].update(category="unicorn"), 2),
        (lambda r: r["instances"][0].update(score=1.5), 2),
        (lambda r: r["instances"][0]["segmentation"].update(size=[48, 65]), 2),
        (lambda r: r.update(model="coco-v2"), 2),
        (lambda r: r.update(path="../outside.png"), 2),
        (lambda r: r.pop("width"), 2),
    ],
)
def test_records_that_parse_but_break_the_format_are_damage(
    tmp_path: Path, change: Any, line: int
) -> None:
    images = sample_images()
    bad = result(images[1])
    change(bad)
    part = write_part(tmp_path / "p.jsonl", [result(images[2])])
    with part.open("ab") as f:
        f.write((json.dumps(bad) + "\n").encode())
        f.write((json.dumps(result(images[3])) + "\n").encode())
    damaged: list[tuple[str, int]] = []
    paths = [record["path"] for _, record in read_parts([part], damaged)]
    assert paths == ["img2.png", "sub/b.png"]
    assert damaged == [(str(part), 3)]


def test_differing_models_are_refused_naming_both_files(tmp_path: Path) -> None:
    images = sample_images()
    a = write_part(tmp_path / "a.jsonl", [result(images[1])])
    b = write_part(tmp_path / "b.jsonl", [result(images[2], "coco-v2")], model="coco-v2")
    with pytest.raises(MaskdeskError) as info:
        merge([tmp_path], tmp_path / "out.json")
    message = str(info.value)
    assert str(a) in message and str(b) in message
    assert "'coco-v1'" in message and "'coco-v2'" in message
    assert not (tmp_path / "out.json").exists()


def test_empty_and_cut_off_header_files_hold_no_records(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "cut.jsonl").write_bytes(b'{"maskdesk_parts": 1, "mod')
    assert list(read_parts([tmp_path])) == []
    with pytest.raises(MaskdeskError, match="empty"):
        merge([tmp_path], tmp_path / "out.json")
    (tmp_path / "none").mkdir()
    with pytest.raises(MaskdeskError, match="No part files"):
        merge([tmp_path / "none"], tmp_path / "out.json")


def test_a_file_that_is_not_a_part_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.jsonl").write_text('{"hello": 1}\n{"path": "a.jpg"}\n')
    with pytest.raises(MaskdeskError, match="notes.jsonl is not a maskdesk part file"):
        merge([tmp_path], tmp_path / "out.json")


def test_writer_continues_a_cut_off_file_and_refuses_another_model(tmp_path: Path) -> None:
    images = sample_images()
    part = write_part(tmp_path / "parts" / "p.jsonl", [result(images[1])])
    with part.open("ab") as f:
        f.write(json.dumps(result(images[3])).encode()[:50])  # killed mid-line
    assert finished_paths(tmp_path / "parts", MODEL) == {"img10.png"}

    write_part(part, [failure_record("c.jpg", MODEL, "unreadable"), result(images[2])])
    damaged: list[tuple[str, int]] = []
    records = [record["path"] for _, record in read_parts([part], damaged)]
    assert (records, damaged) == (["img10.png", "c.jpg", "img2.png"], [])
    assert part.read_bytes().count(b'"maskdesk_parts"') == 1
    assert finished_paths(tmp_path / "parts", MODEL) == {"img10.png", "img2.png"}
    assert finished_paths(tmp_path / "parts", "coco-v2") == set()
    assert finished_paths(tmp_path / "missing", MODEL) == set()

    with pytest.raises(MaskdeskError) as info:
        PartWriter(part, header("coco-v2", CATEGORIES, "/data/photos"))
    assert str(part) in str(info.value) and "another model" in str(info.value)


def test_latest_records_give_the_chosen_record_of_wanted_paths(tmp_path: Path) -> None:
    images = sample_images()
    parts = tmp_path / "parts"
    write_part(parts / "a.jsonl", [failure_record("img2.png", MODEL, "busy"), result(images[3])])
    write_part(parts / "b.jsonl", [result(images[2]), failure_record("z.png", MODEL, "gone")])
    write_part(parts / "c.jsonl", [result(images[1], "other")], model="other")
    got = list(latest_records(parts, MODEL, {"img2.png", "z.png", "img10.png"}))
    assert got == [
        ("img2.png", result(images[2])),
        ("z.png", failure_record("z.png", MODEL, "gone")),
    ]


def test_a_full_disk_is_a_message_naming_the_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = PartWriter(tmp_path / "p.jsonl", header(MODEL, CATEGORIES, tmp_path))

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(MaskdeskError) as info:
        writer.write(failure_record("a.jpg", MODEL, "x"))
    assert str(tmp_path / "p.jsonl") in str(info.value)
    assert "No space left on device" in str(info.value)
    monkeypatch.undo()
    writer.close()


@given(
    st.lists(
        st.lists(
            st.sampled_from(["img", "IMG", "a", "é", "1", "02", "10", " ", "-", "."]), max_size=4
        )
        .map("".join)
        .filter(bool),
        max_size=60,
        unique=True,
    ),
    st.integers(1, 7),
)
@settings(max_examples=30, deadline=None)
def test_natural_sorted_is_sorted_by_natural_key(names: list[str], run: int) -> None:
    paths = [f"{n}/{n}.png" if i % 3 == 0 else f"{n}.jpg" for i, n in enumerate(names)]
    paths = list(dict.fromkeys(paths))
    assert natural_sorted(paths, run=run) == sorted(paths, key=natural_key)


def test_where_packs_into_one_int_and_back() -> None:
    for where in [
        Where(0, 0, 1, 1),
        Where(7, 3 * 2**40 + 5, 40000, 30000),
        Where(2**20, 1, 2**31, 7),
    ]:
        assert Where.unpack(where.pack()) == where


# -- randomized: writers killed and resumed, against a reference model ----------------------


class PartsMachine(RuleBasedStateMachine):
    """Three writers (files a, b, c) write successes and failures of four images and may be
    killed mid-line and resumed. The reference keeps every sound record in (file name, line)
    order; the merge must choose as it says: the last success, else the last failure."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.parts = self.dir / "parts"
        self.writers: dict[str, PartWriter] = {}
        self.written: dict[str, list[tuple[str, int | None]]] = {"a": [], "b": [], "c": []}
        self.serial = 0

    def writer(self, name: str) -> PartWriter:
        if name not in self.writers:
            head = header(MODEL, CATEGORIES, self.dir)
            self.writers[name] = PartWriter(self.parts / f"{name}.jsonl", head)
        return self.writers[name]

    @rule(name=st.sampled_from("abc"), path=st.sampled_from(["i1.png", "i2.png", "i10.png"]))
    def succeed(self, name: str, path: str) -> None:
        self.serial += 1
        mask = CropMask(self.serial % 7, 0, np.ones((2, 1), dtype=bool))
        inst = Instance(1, mask, score=round(self.serial / 1000, 3))
        self.writer(name).write(record_of(path, 8, 4, MODEL, [inst], NAMES))
        self.written[name].append((path, self.serial))

    @rule(name=st.sampled_from("abc"), path=st.sampled_from(["i1.png", "i2.png", "i10.png"]))
    def fail(self, name: str, path: str) -> None:
        self.writer(name).write(failure_record(path, MODEL, f"reason {name}"))
        self.written[name].append((path, None))

    @rule(name=st.sampled_from("abc"), keep=st.integers(1, 40))
    def killed_mid_line(self, name: str, keep: int) -> None:
        record = failure_record("never.png", MODEL, "cut off")
        self.writer(name).close()
        del self.writers[name]
        with (self.parts / f"{name}.jsonl").open("ab") as f:
            f.write(json.dumps(record).encode()[:keep])

    @invariant()
    def merge_chooses_as_the_reference(self) -> None:
        if not self.parts.exists():
            return
        chosen: dict[str, int | None] = {}
        for name in "abc":
            for path, serial in self.written[name]:
                if serial is not None or chosen.get(path) is None:
                    chosen[path] = serial
        out = self.dir / "out.json"
        try:
            report = merge([self.parts], out, min_score=0.0)
        except MaskdeskError as exc:
            assert "empty" in str(exc) and not chosen
            return
        data = json.loads(out.read_text())
        ok = [p for p in ["i1.png", "i2.png", "i10.png"] if chosen.get(p) is not None]
        assert [im["file_name"] for im in data["images"]] == ok
        assert [a["score"] for a in data["annotations"]] == [chosen[p] / 1000 for p in ok]  # type: ignore[operator]
        failed = {p for p, s in chosen.items() if s is None}
        assert {p for p, _ in report.failed} == failed
        assert report.damaged == []
        assert report.duplicates == sum(map(len, self.written.values())) - len(chosen)
        assert finished_paths(self.parts, MODEL) == set(ok)

    def teardown(self) -> None:
        for writer in self.writers.values():
            writer.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_writers_killed_and_resumed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Durability is not what this checks, and each fsync costs milliseconds on a real disk.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    run_state_machine_as_test(
        PartsMachine, settings=settings(max_examples=15, stateful_step_count=12, deadline=None)
    )
