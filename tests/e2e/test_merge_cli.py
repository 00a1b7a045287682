"""`maskdesk merge` as a user drives it: shards' part folders in, one COCO file out, exit codes
and the messages on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from maskdesk.cli import main
from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask
from maskdesk.core.parts import PartWriter, failure_record, header, record_of

CATEGORIES = [Category(1, "person"), Category(3, "car")]
NAMES = {c.id: c.name for c in CATEGORIES}


def square(x: int, y: int, size: int) -> CropMask:
    return CropMask(x, y, np.ones((size, size), dtype=bool))


def shard(folder: Path, name: str, records: list[dict], model: str = "coco-v1") -> Path:
    """A part folder as `predict -o OUT.json` leaves it on one machine."""
    parts = folder / "out.json.parts"
    with PartWriter(parts / f"{name}.jsonl", header(model, CATEGORIES, folder)) as writer:
        for record in records:
            writer.write(record)
    return parts


def found(path: str, *scores: float, model: str = "coco-v1") -> dict:
    instances = [
        Instance(1 + 2 * (i % 2), square(2 * i, 1, 3), score=s) for i, s in enumerate(scores)
    ]
    return record_of(path, 16, 12, model, instances, NAMES)


def test_shards_merge_into_one_file_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = shard(tmp_path / "m1", "part-m1-7", [found("img10.jpg", 0.9, 0.2), found("img1.jpg")])
    b = shard(tmp_path / "m2", "part-m2-9", [found("img2.jpg", 0.6, 0.4, 0.35)])
    out = tmp_path / "out.json"
    assert main(["merge", str(a), str(b), "-o", str(out), "--score", "0.3"]) == 0
    assert capsys.readouterr().err == f"3 images, 4 instances at score >= 0.3 written to {out}\n"
    coco = COCO(str(out))
    assert [im["file_name"] for im in coco.dataset["images"]] == [
        "img1.jpg",
        "img2.jpg",
        "img10.jpg",
    ]
    assert [a["score"] for a in coco.dataset["annotations"]] == [0.6, 0.4, 0.35, 0.9]
    assert [a["category_id"] for a in coco.dataset["annotations"]] == [1, 3, 1, 1]

    assert main(["merge", str(a), str(b / "part-m2-9.jsonl"), "-o", str(out)]) == 0
    assert capsys.readouterr().err == f"3 images, 2 instances at score >= 0.5 written to {out}\n"


def test_failed_images_and_damaged_lines_exit_1_and_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = shard(
        tmp_path,
        "p",
        [
            failure_record("a.jpg", "coco-v1", "cannot decode the file; it may be truncated"),
            found("b.jpg", 0.9),
            failure_record("b.jpg", "coco-v1", "out of memory"),
            failure_record("c.jpg", "coco-v1", "out of memory"),
        ],
    )
    with (parts / "p.jsonl").open("ab") as f:
        f.write(b"not json\n")
        f.write(json.dumps(found("d.jpg", 0.8)).encode() + b"\n")
    out = tmp_path / "out.json"
    assert main(["merge", str(parts), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"2 images, 2 instances at score >= 0.5 written to {out}; 2 images failed (left out); "
        "1 damaged line skipped; 1 duplicate record set aside\n"
        "failed images (run predict again to retry them):\n"
        "  a.jpg: cannot decode the file; it may be truncated\n"
        "  c.jpg: out of memory\n"
        "damaged lines (not records; their images may be missing):\n"
        f"  {parts / 'p.jsonl'}, line 6\n"
    )
    assert [im["file_name"] for im in json.loads(out.read_text())["images"]] == ["b.jpg", "d.jpg"]


def _user_error(tmp_path: Path, case: str) -> tuple[list[str], list[str]]:
    """(arguments, what the message must name) for one user error."""
    good = shard(tmp_path / "m1", "p", [found("a.jpg", 0.9)])
    out = str(tmp_path / "out.json")
    if case == "no part files":
        (tmp_path / "empty").mkdir()
        return ["merge", str(tmp_path / "empty"), "-o", out], ["No part files", "empty"]
    if case == "missing":
        return ["merge", str(tmp_path / "nope"), "-o", out], ["nope does not exist"]
    if case == "models":
        other = shard(tmp_path / "m2", "p", [found("b.jpg", 0.9, model="v2")], model="v2")
        return ["merge", str(good), str(other), "-o", out], [
            str(good / "p.jsonl"),
            str(other / "p.jsonl"),
            "different models",
        ]
    if case == "output folder":
        missing = str(tmp_path / "no" / "out.json")
        return ["merge", str(good), "-o", missing], ["does not exist; create it"]
    assert case == "output is a folder"
    return ["merge", str(good), "-o", str(tmp_path)], ["is a folder"]


@pytest.mark.parametrize(
    "case", ["no part files", "missing", "models", "output folder", "output is a folder"]
)
def test_user_errors_exit_2_with_one_plain_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    argv, named = _user_error(tmp_path, case)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("maskdesk: ") and err.count("\n") == 1
    for text in named:
        assert text in err
    assert not (tmp_path / "out.json").exists()


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    argv, named = _user_error(tmp_path, "models")
    done = subprocess.run(
        [sys.executable, "-m", "maskdesk", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and named[0] in done.stderr


def test_a_score_outside_0_1_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["merge", str(tmp_path), "-o", str(tmp_path / "o.json"), "--score", "1.5"])
    assert info.value.code == 2
    assert "1.5 is outside 0..1" in capsys.readouterr().err
