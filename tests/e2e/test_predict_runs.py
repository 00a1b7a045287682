"""`maskdesk predict` on a folder as a person runs it: again, with --redo, interrupted, with an
image that breaks the model; the fixture model really detects, the store is real SQLite."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from maskdesk.cli import main
from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from tests.damaged_files import truncated_jpeg

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MODEL = REPO / "tests" / "fixtures" / "shapes-tiny.pt"


def _shapes(tmp_path: Path, count: int) -> Path:
    from maskdesk.datasets.shapes import main as shapes_main

    shapes_main([str(tmp_path / "set"), "--count", str(count), "--seed", "7", "--size", "96"])
    return tmp_path / "set" / "images"


def _predict(folder: Path, out: Path, *extra: str) -> int:
    return main(["predict", str(folder), "-o", str(out), "--model", str(FIXTURE_MODEL), *extra])


def test_a_second_run_continues_and_redo_predicts_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _shapes(tmp_path, 3)
    out = tmp_path / "out.json"
    assert _predict(folder, out) == 0
    first = json.loads(out.read_text())
    with Project.open(folder) as project:
        record = project.images()[0]
        accepted = project.instances(record.id)[0]
        project.update_instance(accepted.with_changes(review=Review.ACCEPTED))
        ids_before = {r.path: [i.id for i in project.instances(r.id)] for r in project.images()}
    capsys.readouterr()
    assert _predict(folder, out) == 0
    err = capsys.readouterr().err
    assert "0 images predicted" in err
    assert f"3 images already pre-labeled by {FIXTURE_MODEL}: skipped" in err and "--redo" in err
    second = json.loads(out.read_text())
    assert len(second["images"]) == 3  # the JSON still holds the folder's predictions
    assert len(second["annotations"]) == len(first["annotations"])
    with Project.open(folder) as project:
        ids_after = {r.path: [i.id for i in project.instances(r.id)] for r in project.images()}
    assert ids_after == ids_before  # nothing predicted, nothing rewritten

    assert _predict(folder, out, "--redo") == 0
    assert "3 images predicted" in capsys.readouterr().err
    with Project.open(folder) as project:
        again = project.instances(record.id)
        assert [i.id for i in again if i.review is Review.ACCEPTED] == [accepted.id]
        # the accepted one is not proposed a second time
        assert sum(1 for i in again if i.mask == accepted.mask) == 1


def test_a_failing_image_is_that_images_failure_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from maskdesk.inference import predictor as predictor_module

    folder = _shapes(tmp_path, 3)
    real = predictor_module.Predictor.predict
    calls = []

    def out_of_memory_on_the_second(self, rgb):
        calls.append(rgb.shape)
        if len(calls) == 2:  # what PyTorch raises when the CPU allocator gives up
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                "not enough memory: you tried to allocate 9663676416 bytes."
            )
        return real(self, rgb)

    monkeypatch.setattr(predictor_module.Predictor, "predict", out_of_memory_on_the_second)
    out = tmp_path / "out.json"
    assert _predict(folder, out) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not enough memory" in err
    with Project.open(folder) as project:
        statuses = [r.status for r in project.images()]
        assert statuses == [ImageStatus.PRELABELED, ImageStatus.FAILED, ImageStatus.PRELABELED]
        failed = project.images()[1]
        assert failed.reason is not None and "not enough memory" in failed.reason
        others = [r.path for r in project.images() if r.id != failed.id]
    # listed without objects, the failed image would read as one with none: left out, named
    assert [im["file_name"] for im in json.loads(out.read_text())["images"]] == others
    assert "left out 1 image that failed and holds no person's work" in err
    assert f"{failed.path} (" in err


def _stored(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(
                "SELECT count(*) FROM images WHERE status = 'pre-labeled'"
            ).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_ctrl_c_writes_what_is_stored_and_a_rerun_continues(tmp_path: Path) -> None:
    folder = _shapes(tmp_path, 40)
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maskdesk",
            "predict",
            str(folder),
            "-o",
            str(out),
            "--model",
            str(FIXTURE_MODEL),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    store = folder / ".maskdesk" / "project.sqlite"
    deadline = time.monotonic() + 120
    while _stored(store) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err and "run the same command again to continue" in err
    written = json.loads(out.read_text())
    done = _stored(store)
    assert 1 <= done < 40
    assert len(written["images"]) == done  # the JSON holds exactly what was stored
    assert main(["predict", str(folder), "-o", str(out), "--model", str(FIXTURE_MODEL)]) == 0
    assert _stored(store) == 40
    assert len(json.loads(out.read_text())["images"]) == 40


def test_a_truncated_jpeg_is_left_out_of_the_json_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _shapes(tmp_path, 2)
    truncated_jpeg(folder / "broken.jpg", 96, 96, seed=9)
    truncated_jpeg(folder / "drawn.jpg", 96, 96, seed=9)
    human = Instance(1, CropMask(10, 12, np.ones((20, 30), bool)), origin=Origin.HUMAN)
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "circle")])
        drawn = project.image_by_path("drawn.jpg")
        assert drawn is not None
        project.add_instance(drawn.id, human)
        shapes = [r.path for r in project.images() if not r.path.endswith(".jpg")]
    out = tmp_path / "out.json"
    assert _predict(folder, out) == 1
    err = capsys.readouterr().err
    data = json.loads(out.read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    assert sorted(names.values()) == sorted([*shapes, "drawn.jpg"])
    on_drawn = [a for a in data["annotations"] if names[a["image_id"]] == "drawn.jpg"]
    assert [(a["bbox"], a["maskdesk"]["origin"]) for a in on_drawn] == [([10, 12, 30, 20], "human")]
    left = [line for line in err.splitlines() if "left out" in line]
    assert len(left) == 1
    assert left[0].startswith(f"{out}: left out 1 image that failed and holds no person's work")
    assert "broken.jpg (" in left[0] and "truncated" in left[0]

    # loose files (not a folder's project) are named the same way
    loose = tmp_path / "loose.json"
    assert _predict(folder / "broken.jpg", loose, "--no-store") == 1
    assert json.loads(loose.read_text())["images"] == []
    assert "left out 1 image that failed" in capsys.readouterr().err
