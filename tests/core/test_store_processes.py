"""The project file shared by two real processes: the window's connections in this one and the
command line (`maskdesk info`, `export`, `clear`) in another. Nothing may close a descriptor
of the database file behind SQLite's back, or the other process deletes the WAL that holds
this process's edits (SQLite's "How To Corrupt An SQLite Database File", section 2.2).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "maskdesk", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def _line(output: str, start: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith(start))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (40, 30), (90, 120, 30)).save(folder / name)
    return folder


def _square(x: int) -> CropMask:
    return CropMask(x, 2, np.ones((6, 6), dtype=bool))


def test_every_edit_of_a_window_reaches_the_command_line_beside_it(folder: Path) -> None:
    # The window's two connections: the UI's and the worker's (connect_again).
    window = Project.open(folder)
    worker = window.connect_again()
    try:
        window.ensure_categories([Category(1, "thing")])
        a, b, c = (window.image_by_path(n) for n in ("a.png", "b.png", "c.png"))
        assert a is not None and b is not None and c is not None
        wal = window.store_path.with_name("project.sqlite-wal")

        window.add_instance(a.id, Instance(1, _square(1), origin=Origin.HUMAN))
        first = _cli("info", folder)
        assert _line(first.stdout, "instances stored:").startswith("instances stored: 1 ")
        assert wal.exists(), "the other process deleted the WAL under live connections"

        # Edits after the other process came and went still reach the file it reads.
        window.set_status(a.id, ImageStatus.REVIEWED)
        worker.set_predictions(b.id, [Instance(1, _square(10), score=0.9)], "m")
        window.add_instance(c.id, Instance(1, _square(20), review=Review.ACCEPTED, score=0.3))
        second = _cli("info", folder)
        assert _line(second.stdout, "reviewed:") == "reviewed: 1"
        assert _line(second.stdout, "pre-labeled:") == "pre-labeled: 1"
        assert _line(second.stdout, "instances stored:").startswith("instances stored: 3 ")

        exported = folder / "out.json"
        _cli("export", folder, "-o", exported)
        data = json.loads(exported.read_text())
        assert len(data["annotations"]) == 3
        assert wal.exists()

        # `clear` writes beside the window: the pending prediction goes, the rest stays,
        # and the window's later edits land in the same, sound file.
        cleared = _cli("clear", folder)
        assert "1 pending model instances removed from 1 images" in cleared.stderr
        window.add_instance(b.id, Instance(1, _square(30), origin=Origin.HUMAN))
        assert [i.origin for i in window.instances(b.id)] == [Origin.HUMAN]
        third = _cli("info", folder)
        assert _line(third.stdout, "instances stored:").startswith("instances stored: 3 ")
        assert wal.exists()
    finally:
        worker.close()
        window.close()

    check = sqlite3.connect(folder / ".maskdesk" / "project.sqlite")
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert check.execute("SELECT count(*) FROM instances").fetchone()[0] == 3
    finally:
        check.close()


def test_reopening_the_folder_in_the_same_process_keeps_the_other_connections_locks(
    folder: Path,
) -> None:
    # A second Project.open of a folder already open (a second window, `info` run in-process)
    # probes the folder; it must not open the database file itself.
    window = Project.open(folder)
    try:
        window.ensure_categories([Category(1, "thing")])
        a = window.image_by_path("a.png")
        assert a is not None
        window.add_instance(a.id, Instance(1, _square(1), origin=Origin.HUMAN))
        with Project.open(folder) as again:
            assert len(again.instances(a.id)) == 1
        _cli("info", folder)
        window.add_instance(a.id, Instance(1, _square(12), origin=Origin.HUMAN))
        assert window.store_path.with_name("project.sqlite-wal").exists()
        listed = _cli("info", folder)
        assert _line(listed.stdout, "instances stored:").startswith("instances stored: 2 ")
    finally:
        window.close()
