"""The image browser's model on real folders: lazy rows, thumbnails, badges, refresh, filters."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QListView

from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui import thumbnails
from maskdesk.ui.image_list_model import (
    BADGES,
    ImageFilterProxyModel,
    ImageIdRole,
    ImageListModel,
    StatusRole,
    configure_view,
)
from maskdesk.ui.thumbnails import ThumbnailLoader, cache_key

Display = Qt.ItemDataRole.DisplayRole
ToolTip = Qt.ItemDataRole.ToolTipRole
Decoration = Qt.ItemDataRole.DecorationRole

# Upright picture of the rotated JPEG: 200 x 100, quadrants of four colours.
QUADRANTS = {"tl": (230, 20, 20), "tr": (20, 200, 20), "bl": (20, 20, 230), "br": (250, 250, 250)}


def quadrant_picture() -> Image.Image:
    rgb = np.zeros((100, 200, 3), dtype=np.uint8)
    rgb[:50, :100] = QUADRANTS["tl"]
    rgb[:50, 100:] = QUADRANTS["tr"]
    rgb[50:, :100] = QUADRANTS["bl"]
    rgb[50:, 100:] = QUADRANTS["br"]
    return Image.fromarray(rgb)


def make_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, shade in enumerate((40, 120, 200)):
        Image.new("RGB", (30, 20), (shade, shade, shade)).save(folder / f"grey{i}.png")
    # Stored rotated, tagged "rotate 90 clockwise to view" (orientation 6).
    exif = Image.Exif()
    exif[0x0112] = 6
    quadrant_picture().transpose(Image.Transpose.ROTATE_90).save(
        folder / "rotated.jpg", exif=exif, quality=95
    )
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    whole = folder / "whole.jpg"
    Image.new("RGB", (64, 48), (90, 90, 90)).save(whole, quality=90)
    data = whole.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
    whole.unlink()
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.open(make_folder(tmp_path / "photos")) as opened:
        yield opened


@pytest.fixture
def model(qapp: Any, project: Project) -> Iterator[ImageListModel]:
    made = ImageListModel.from_project(project)
    made.fetch_all()
    yield made
    assert made.thumbnails is not None
    made.thumbnails.shutdown()


def row_of(model: ImageListModel, name: str) -> QModelIndex:
    for row in range(model.rowCount()):
        if model.index(row).data(Display) == name:
            return model.index(row)
    raise AssertionError(f"{name} is not listed")


def wait_thumbnail(qtbot: Any, model: ImageListModel, name: str) -> QPixmap:
    loader = model.thumbnails
    assert loader is not None
    index = row_of(model, name)
    first = index.data(Decoration)
    assert same(first, loader.loading)  # the placeholder, while the worker decodes
    qtbot.waitUntil(lambda: not same(index.data(Decoration), loader.loading), timeout=5000)
    pixmap = index.data(Decoration)
    assert isinstance(pixmap, QPixmap)
    return pixmap


def same(a: QPixmap, b: QPixmap) -> bool:
    return a.cacheKey() == b.cacheKey()


def colour(pixmap: QPixmap, x: int, y: int) -> tuple[int, int, int]:
    c = pixmap.toImage().pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def near(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 30) -> bool:
    return all(abs(p - q) <= tol for p, q in zip(a, b, strict=True))


# --- model contract ---------------------------------------------------------------------------


def test_model_and_proxy_pass_qtmodeltester(qtmodeltester: Any, model: ImageListModel) -> None:
    qtmodeltester.check(model)
    proxy = ImageFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.set_statuses({ImageStatus.NEW})
    qtmodeltester.check(proxy)


def test_display_tooltip_and_status_as_listed(model: ImageListModel) -> None:
    names = [model.index(r).data(Display) for r in range(model.rowCount())]
    assert names == [
        "broken.png",
        "grey0.png",
        "grey1.png",
        "grey2.png",
        "rotated.jpg",
        "truncated.jpg",
    ]
    broken = row_of(model, "broken.png")
    assert broken.data(StatusRole) == ImageStatus.FAILED
    tip = broken.data(ToolTip)
    assert tip.startswith("broken.png\nfailed")
    assert "Cannot read image" in tip and "broken.png" in tip.split("\n", 2)[2]
    grey = row_of(model, "grey1.png")
    assert grey.data(StatusRole) == ImageStatus.NEW
    assert grey.data(ToolTip) == "grey1.png\nnew, 30 x 20"
    assert grey.data(ImageIdRole) == model.record(grey.row()).id
    rotated = row_of(model, "rotated.jpg")
    assert "200 x 100" in rotated.data(ToolTip)  # upright size from core


def test_rows_grow_with_fetch_more_in_a_list_view(qtbot: Any, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    tiny = Image.new("RGB", (4, 3), (10, 20, 30))
    for i in range(1200):
        tiny.save(folder / f"img{i}.png")
    with Project.open(folder) as many:
        model = ImageListModel(many.images(), folder=many.folder)
        assert model.rowCount() == 0 and model.total() == 1200 and model.canFetchMore()
        view = QListView()
        view.setObjectName("imageList")
        qtbot.addWidget(view)
        configure_view(view, 32)
        view.resize(300, 400)
        view.setModel(model)
        view.show()
        qtbot.waitExposed(view)
        qtbot.waitUntil(lambda: model.rowCount() == 500)
        assert view.model().index(0, 0).data(Display) == "img0.png"
        assert view.model().index(499, 0).data(Display) == "img499.png"
        seen: set[int] = set()

        def scrolled_to(rows: int) -> bool:
            # As a user drags the scroll bar to the end: the view asks for the next chunk.
            bar = view.verticalScrollBar()
            bar.setValue(bar.maximum())
            seen.add(model.rowCount())
            return model.rowCount() >= rows

        qtbot.waitUntil(lambda: scrolled_to(1200), timeout=5000)
        assert seen <= {500, 1000, 1200}  # one chunk at a time
        assert not model.canFetchMore()
        assert model.index(1199).data(Display) == "img1199.png"


def test_index_of_fetches_up_to_the_image(project: Project) -> None:
    records = project.images()
    model = ImageListModel(records, chunk=2)
    index = model.index_of(records[4].id)
    assert index.row() == 4 and model.rowCount() == 6
    assert not model.index_of(10_000).isValid()


# --- thumbnails -------------------------------------------------------------------------------


def test_thumbnail_arrives_upright_with_the_right_aspect(qtbot: Any, model: ImageListModel) -> None:
    pixmap = wait_thumbnail(qtbot, model, "rotated.jpg")
    assert (pixmap.width(), pixmap.height()) == (96, 48)
    w, h = pixmap.width(), pixmap.height()
    for name, (x, y) in {
        "tl": (w // 4, h // 4),
        "tr": (3 * w // 4, h // 4),
        "bl": (w // 4, 3 * h // 4),
        "br": (3 * w // 4, 3 * h // 4),
    }.items():
        assert near(colour(pixmap, x, y), QUADRANTS[name]), name


def test_thumbnail_matches_load_rgb_for_every_orientation(tmp_path: Path) -> None:
    # The JPEG fast path (draft + transpose) against the reference decoder, downscaled.
    from maskdesk.core.images import load_rgb

    upright = quadrant_picture()
    for orientation, method in [(1, None), (3, 3), (6, 2), (8, 4), (5, 5), (2, 0)]:
        stored = upright if method is None else upright.transpose(Image.Transpose(method))
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        stored.save(path, exif=exif, quality=95)
        reference = Image.fromarray(load_rgb(path)).resize((96, 48), Image.Resampling.BILINEAR)
        thumb = thumbnails.decode_thumbnail(path, 96)
        assert thumb.size == (96, 48), orientation
        diff = np.abs(np.asarray(thumb, dtype=int) - np.asarray(reference, dtype=int))
        assert diff.mean() < 6, orientation


def test_broken_file_shows_the_broken_placeholder(qtbot: Any, model: ImageListModel) -> None:
    loader = model.thumbnails
    assert loader is not None
    for name in ("broken.png", "truncated.jpg"):
        pixmap = wait_thumbnail(qtbot, model, name)
        assert same(pixmap, loader.broken)
        assert "truncated.jpg" not in name or "damaged" in (loader.error(name) or "")


def test_disk_cache_is_written_and_reused(
    qtbot: Any, project: Project, model: ImageListModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = wait_thumbnail(qtbot, model, "rotated.jpg")
    info = (project.folder / "rotated.jpg").stat()
    cached = (
        project.store_path.parent
        / "thumbs"
        / cache_key("rotated.jpg", info.st_size, info.st_mtime_ns, 96)
    )
    assert cached.is_file()
    assert Image.open(cached).size == (96, 48)

    decoded: list[Path] = []
    real = thumbnails.decode_thumbnail
    lock = threading.Lock()

    def counting(path: Path, size: int) -> Image.Image:
        with lock:
            decoded.append(path)
        return real(path, size)

    monkeypatch.setattr(thumbnails, "decode_thumbnail", counting)
    again = ImageListModel.from_project(project)
    again.fetch_all()
    try:
        second = wait_thumbnail(qtbot, again, "rotated.jpg")
        assert decoded == []  # came from the disk cache
        assert (second.width(), second.height()) == (first.width(), first.height())
        assert near(colour(second, 10, 10), QUADRANTS["tl"])
        # A changed file gets a new key and is decoded again.
        quadrant_picture().save(project.folder / "grey0.png")
        with Project.open(project.folder) as reopened:
            again.refresh(reopened.images())
        wait_thumbnail(qtbot, again, "grey0.png")
        assert decoded == [project.folder / "grey0.png"]
    finally:
        assert again.thumbnails is not None
        again.thumbnails.shutdown()


def test_a_row_is_requested_once_while_in_flight(
    qtbot: Any, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    calls: list[Path] = []
    real = thumbnails.decode_thumbnail

    def slow(path: Path, size: int) -> Image.Image:
        calls.append(path)
        gate.wait(5)
        return real(path, size)

    monkeypatch.setattr(thumbnails, "decode_thumbnail", slow)
    loader = ThumbnailLoader(project.store_path.parent / "fresh", threads=2)
    model = ImageListModel(project.images(), folder=project.folder, thumbnails=loader)
    model.fetch_all()
    index = row_of(model, "grey1.png")
    try:
        for _ in range(5):
            assert same(index.data(Decoration), loader.loading)
        gate.set()
        qtbot.waitUntil(lambda: not same(index.data(Decoration), loader.loading))
        assert calls == [project.folder / "grey1.png"]
        assert colour(index.data(Decoration), 5, 5) == (120, 120, 120)
    finally:
        gate.set()
        loader.shutdown()


def test_stale_requests_are_dropped_and_asked_again(qapp: Any, project: Project) -> None:
    loader = ThumbnailLoader(project.store_path.parent / "t", max_pending=2, threads=1)
    loader.pool.setMaxThreadCount(1)
    blocker = threading.Event()
    loader.pool.start(blocker.wait)  # the only worker is busy: requests stay pending
    try:
        for i in range(3):
            loader.request(f"grey{i}.png", project.folder / f"grey{i}.png")
        assert "grey0.png" not in loader._in_flight  # oldest dropped, may be requested again
        assert list(loader._pending) == ["grey1.png", "grey2.png"]
    finally:
        blocker.set()
        loader.shutdown()


# --- the view: badges, refresh keeping the selection ------------------------------------------


def show_view(qtbot: Any, model: Any) -> QListView:
    view = QListView()
    view.setObjectName("imageList")
    qtbot.addWidget(view)
    configure_view(view)
    view.resize(400, 700)
    view.setModel(model)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_status_badge_is_painted_in_the_view(qtbot: Any, model: ImageListModel) -> None:
    view = show_view(qtbot, model)
    delegate = view.itemDelegate()
    for name in ("broken.png", "grey0.png"):
        index = row_of(model, name)
        badge = delegate.badge_rect(view.visualRect(index))  # type: ignore[attr-defined]
        shot = view.viewport().grab().toImage()
        # Left of the symbol, inside the disc: the status colour.
        pixel = shot.pixelColor(badge.left() + 3, badge.center().y())
        expected: QColor = BADGES[ImageStatus(index.data(StatusRole))][0]
        got = (pixel.red(), pixel.green(), pixel.blue())
        assert near(got, (expected.red(), expected.green(), expected.blue()), 40), name
    assert len({c.name() for c, _ in BADGES.values()}) == 4


def test_refresh_changes_status_without_reset(
    qtbot: Any, project: Project, model: ImageListModel
) -> None:
    view = show_view(qtbot, model)
    current = row_of(model, "grey1.png")
    view.setCurrentIndex(current)
    record = model.record(current.row())
    project.set_status(record.id, ImageStatus.REVIEWED)
    with (
        qtbot.assertNotEmitted(model.modelReset),
        qtbot.waitSignal(model.dataChanged) as changed,
    ):
        model.refresh(project.images())
    assert changed.args[0].row() == current.row() == changed.args[1].row()
    assert view.currentIndex().data(Display) == "grey1.png"
    assert view.currentIndex().data(StatusRole) == ImageStatus.REVIEWED
    assert "reviewed" in view.currentIndex().data(ToolTip)


def test_refresh_inserts_and_removes_rows_keeping_the_current_image(
    qtbot: Any, project: Project, model: ImageListModel
) -> None:
    view = show_view(qtbot, model)
    view.setCurrentIndex(row_of(model, "grey2.png"))
    (project.folder / "grey0.png").unlink()
    Image.new("RGB", (8, 8)).save(project.folder / "grey1b.png")
    Image.new("RGB", (8, 8)).save(project.folder / "zz.png")
    with Project.open(project.folder) as reopened, qtbot.assertNotEmitted(model.modelReset):
        model.refresh(reopened.images())
    names = [model.index(r).data(Display) for r in range(model.rowCount())]
    assert names == [
        "broken.png",
        "grey1.png",
        "grey1b.png",
        "grey2.png",
        "rotated.jpg",
        "truncated.jpg",
        "zz.png",
    ]
    assert view.currentIndex().data(Display) == "grey2.png"


def test_refresh_beyond_the_loaded_rows_waits_for_fetch_more(project: Project) -> None:
    records = project.images()
    model = ImageListModel(records[:4], chunk=2)
    model.fetchMore()
    assert model.rowCount() == 2
    model.refresh(records)  # two more at the end: not shown until fetched
    assert model.rowCount() == 2 and model.total() == 6
    model.refresh(records[2:])  # the two shown rows go
    assert model.rowCount() == 0 and model.total() == 4
    model.fetch_all()
    assert [model.index(r).data(Display) for r in range(4)] == [r.path for r in records[2:]]


# --- filters ----------------------------------------------------------------------------------


def test_proxy_filters_by_status_name_and_id_sets(project: Project) -> None:
    records = project.images()
    by_name = {r.path: r for r in records}
    model = ImageListModel(records, chunk=2)  # lazily loaded: a filter must see every row
    proxy = ImageFilterProxyModel()
    proxy.setSourceModel(model)

    def shown() -> list[str]:
        return [proxy.index(r, 0).data(Display) for r in range(proxy.rowCount())]

    proxy.set_statuses({ImageStatus.FAILED})
    assert shown() == ["broken.png", "truncated.jpg"]
    proxy.set_statuses(None)
    proxy.set_name_filter("GREY")
    assert shown() == ["grey0.png", "grey1.png", "grey2.png"]
    proxy.set_class_ids({by_name["grey2.png"].id, by_name["rotated.jpg"].id})
    assert shown() == ["grey2.png"]
    proxy.set_name_filter("")
    assert shown() == ["grey2.png", "rotated.jpg"]
    proxy.set_low_score_ids({by_name["rotated.jpg"].id, by_name["broken.png"].id})
    assert shown() == ["rotated.jpg"]
    proxy.set_class_ids(None)
    proxy.set_low_score_ids(set())
    assert shown() == []
    proxy.set_low_score_ids(None)
    proxy.set_statuses({ImageStatus.NEW, ImageStatus.FAILED})
    assert proxy.active() and len(shown()) == 6
    # A status change reaches the filtered view through refresh (dynamic filtering).
    project.set_status(by_name["rotated.jpg"].id, ImageStatus.PRELABELED)
    model.refresh(project.images())
    assert "rotated.jpg" not in shown() and len(shown()) == 5
    proxy.set_statuses(None)
    assert not proxy.active() and len(shown()) == 6


def test_size_hint_never_asks_for_thumbnails(qtbot: Any, project: Project) -> None:
    loader = ThumbnailLoader(project.store_path.parent / "t2")
    model = ImageListModel(project.images(), folder=project.folder, thumbnails=loader)
    view = QListView()
    delegate = configure_view(view)
    model.fetch_all()
    try:
        hint = delegate.sizeHint(_opt(view), model.index(0))
        assert hint.height() >= 96 and isinstance(hint, QSize)
        assert loader._in_flight == set()
    finally:
        loader.shutdown()


def _opt(view: QListView) -> Any:
    from PySide6.QtWidgets import QStyleOptionViewItem

    option = QStyleOptionViewItem()
    option.initFrom(view)
    return option
