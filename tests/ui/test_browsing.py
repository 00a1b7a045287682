"""Moving through folders and images in the real window: the next unreviewed image under a
filter, an empty folder, and what each opened folder leaves behind (connections, models,
thumbnail threads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QListView, QTableView

from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui.main_window import MainWindow

WAIT_MS = 120_000


def _folder(tmp_path: Path, name: str, count: int) -> Path:
    """`count` grey pictures named 00000.png, 00001.png, ...; the first holds a square."""
    folder = tmp_path / name
    folder.mkdir()
    for index in range(count):
        grey = np.full((30, 40, 3), 60 + 40 * index, dtype=np.uint8)
        Image.fromarray(grey).save(folder / f"{index:05d}.png")
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "square")])
        first = project.images()[0]
        bits = np.ones((6, 6), dtype=bool)
        project.add_instance(first.id, Instance(1, CropMask(5, 5, bits), score=0.9))
    return folder


def _current_path(window: MainWindow) -> str:
    assert window.project is not None and window.image_id is not None
    return window.project.image(window.image_id).path


def _table_rows(window: MainWindow) -> int:
    return window.findChild(QTableView, "instanceTable").model().rowCount()


def test_mark_reviewed_and_next_under_a_status_filter_goes_to_the_very_next_image(
    window: MainWindow, tmp_path: Path
) -> None:
    window.open_folder(_folder(tmp_path, "photos", 4))
    window.filters.status.setCurrentText("new")
    window.show_image(window.project.images()[0].id)  # type: ignore[union-attr]
    assert _current_path(window) == "00000.png"
    window.acts["actionMarkReviewed"].trigger()
    assert _current_path(window) == "00001.png"  # not 00002.png: the filter dropped 00000
    window.acts["actionMarkReviewed"].trigger()
    assert _current_path(window) == "00002.png"
    view = window.findChild(QListView, "imageList")
    listed = [view.model().index(r, 0).data() for r in range(view.model().rowCount())]
    assert listed == ["00002.png", "00003.png"]

    # Without a filter the row stays: the next one is still the next unreviewed image.
    window.filters.status.setCurrentText("All images")
    window.acts["actionMarkReviewed"].trigger()
    assert _current_path(window) == "00003.png"
    assert window.project is not None
    statuses = [r.status for r in window.project.images()]
    assert statuses == [ImageStatus.REVIEWED] * 3 + [ImageStatus.NEW]


def test_an_empty_folder_clears_the_picture_the_table_and_the_current_image(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    window.open_folder(_folder(tmp_path, "photos", 2))
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)
    assert _table_rows(window) == 1 and window.canvas.image_size() == (40, 30)
    empty = tmp_path / "empty"
    empty.mkdir()
    window.open_folder(empty)
    assert window.image_id is None and window.picture_id is None
    assert _table_rows(window) == 0
    assert window.canvas.image_size() == (0, 0)
    assert window.project is not None
    assert f"No images in {window.project.folder}" in window.canvas._message
    assert window.selected_instances() == []
    window.acts["actionAcceptAll"].trigger()  # nothing to act on, and nothing fails


def test_each_folder_opened_connects_once_and_releases_the_last_one(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    requests: list[int] = []
    real = window.pictures.request
    window.pictures.request = lambda image_id, path: (  # type: ignore[method-assign]
        requests.append(image_id) or real(image_id, path)
    )
    destroyed: list[str] = []
    for index in range(3):
        if window.image_model is not None:
            old = window.image_model
            loader = old.thumbnails
            assert loader is not None
            old.destroyed.connect(lambda *_: destroyed.append("model"))
            loader.destroyed.connect(lambda *_: destroyed.append("loader"))
            loader.pool.destroyed.connect(lambda *_: destroyed.append("pool"))
        window.open_folder(_folder(tmp_path, f"f{index}", 3))
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)
    requests.clear()
    window.acts["actionNextImage"].trigger()
    assert requests == [window.image_id]  # one picture asked for, not one per folder opened
    # The two folders opened before this one left nothing: models, loaders, their pools.
    qtbot.waitUntil(lambda: len(destroyed) == 6, timeout=5_000)
    assert sorted(destroyed) == ["loader"] * 2 + ["model"] * 2 + ["pool"] * 2
    assert window.image_model is not None and window.image_model.thumbnails is not None
    assert window.image_proxy.sourceModel() is window.image_model
