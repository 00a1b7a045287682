"""What the window redoes on its UI thread while a batch stores images: each stored image's
row, and the shown image once when its own predictions land; never the whole folder or the
shown image's table and canvas again on every look for changes (issue 13, part 5: that work,
once a second, stalled the window 60-290 ms in a batch, and 0.25 s in a folder of 10,000)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QListView

from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui.image_list_model import StatusRole
from maskdesk.ui.main_window import MainWindow
from maskdesk.ui.workers import WORKER_NICENESS

WAIT_MS = 120_000  # a loaded 2-core machine


def _shapes(tmp_path: Path, count: int) -> Path:
    from maskdesk.datasets.shapes import main as shapes_main

    shapes_main([str(tmp_path / "set"), "--count", str(count), "--seed", "3", "--size", "96"])
    return tmp_path / "set" / "images"


def _statuses(window: MainWindow) -> list[str]:
    view = window.findChild(QListView, "imageList")
    model = view.model()
    return [model.index(r, 0).data(StatusRole) for r in range(model.rowCount())]


def test_a_batch_updates_rows_one_by_one_and_the_shown_image_once(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.open_folder(_shapes(tmp_path, 6))
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)
    assert window.project is not None
    reads: list[int] = []
    every_image = window.project.images
    monkeypatch.setattr(window.project, "images", lambda: reads.append(1) or every_image())
    resets: list[int] = []
    window.instance_model.modelReset.connect(lambda: resets.append(1))
    builds = window.canvas.layer_builds
    seen: list[list[str]] = []

    def stored(image_id: int) -> None:
        seen.append(_statuses(window))  # the row is there at once, not with the next look
        window.look_for_changes()  # as if the watch ticked after every stored image

    window.inference.imageStored.connect(stored)
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        window.acts["actionPrelabelFolder"].trigger()

    assert [s.count(ImageStatus.PRELABELED.value) for s in seen] == [1, 2, 3, 4, 5, 6]
    assert reads == []  # never the whole folder: the batch's end reads the changed rows
    assert _statuses(window) == [ImageStatus.PRELABELED.value] * 6
    shown = window.project.instances(window.image_id)
    assert shown and window.instance_model.instances() == shown
    assert len(resets) == 1  # the shown image's predictions landed once
    qtbot.waitUntil(lambda: window.canvas.layer_builds > builds, timeout=WAIT_MS)
    assert window.canvas.shows(shown, {c.id: c.name for c in window.project.categories})


def test_another_program_is_still_noticed(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writes the window's own worker did not announce: only the changed rows are read; an
    # image that came with a scan makes the window read the folder.
    folder = _shapes(tmp_path, 3)
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)
    assert window.project is not None
    reads: list[int] = []
    every_image = window.project.images
    monkeypatch.setattr(window.project, "images", lambda: reads.append(1) or every_image())
    with Project.open(folder) as other:
        last = other.images()[-1]
        other.set_status(last.id, ImageStatus.REVIEWED)
    window.look_for_changes()
    assert _statuses(window)[-1] == ImageStatus.REVIEWED.value
    assert reads == []

    (folder / "shapes_00000.png").rename(folder / "zz_new.png")
    with Project.open(folder):
        pass  # a scan beside the window: one image gone, one come
    window.look_for_changes()
    assert reads == [1]
    model = window.image_model
    assert model is not None
    assert [model.record(r).path for r in range(model.total())][-1] == "zz_new.png"
    assert model.total() == 3


def _niceness_of_threads() -> dict[str, list[int]]:
    """Nice values of this process's threads by name (Linux: /proc/self/task)."""
    found: dict[str, list[int]] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            # Field 19 of stat, counted after the parenthesised name (which may hold spaces).
            nice = int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
        found.setdefault(name, []).append(nice)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_model_runs_nicer_than_the_window(window: MainWindow, qtbot, tmp_path: Path) -> None:
    # torch's intra-op threads and the decoder start from the inference thread and inherit
    # its priority, so a window update gets a core at once, however busy the model keeps them.
    window.open_folder(_shapes(tmp_path, 2))
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        window.acts["actionDetect"].trigger()
    threads = _niceness_of_threads()
    ui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    # Threads take their creator's name: the inference thread's, cut at 15 characters.
    assert set(threads["maskdeskInferen"]) == {min(ui + WORKER_NICENESS, 19)} != {ui}
