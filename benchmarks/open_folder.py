"""Opening a 10,000-image folder in the image browser, against the first window's QListWidget.

    python benchmarks/open_folder.py [--count 10000] [--folder DIR]

Measures `Project.open` (first open, also with image headers read by Pillow rather than by the
quick JPEG/PNG reader, and reopen), then the time from a reopened project to a shown list with
its first rows painted: the lazy `ImageListModel` + filter proxy + QListView, and the baseline,
a QListWidget filled with every item as `ui/main_window.py` does. Then it scrolls the new list
to the end a page at a time, thumbnails requested on the way, and reports the longest page step.
The images are kept in a temp folder between runs; the project store is removed before each run
so the first open is a first open. Offscreen; not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QListView, QListWidget, QListWidgetItem  # noqa: E402

from maskdesk.core import images  # noqa: E402
from maskdesk.core.project import Project  # noqa: E402
from maskdesk.core.store import STORE_DIR  # noqa: E402
from maskdesk.ui.image_list_model import (  # noqa: E402
    ImageFilterProxyModel,
    ImageListModel,
    configure_view,
)


def make_folder(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    have = sum(1 for name in os.listdir(folder) if name.endswith(".jpg"))
    if have == count:
        return
    for stale in folder.glob("*.jpg"):
        stale.unlink()
    for i in range(count):
        shade = (i * 37) % 256
        Image.new("RGB", (64, 48), (shade, 255 - shade, 128)).save(folder / f"img{i}.jpg")


def timed(work: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def show_new(folder: Path, app: QApplication) -> tuple[QListView, ImageListModel, Project]:
    project = Project.open(folder)
    model = ImageListModel.from_project(project)
    proxy = ImageFilterProxyModel()
    proxy.setSourceModel(model)
    view = QListView()
    view.setObjectName("imageList")
    configure_view(view)
    view.resize(320, 900)
    view.setModel(proxy)
    view.show()
    app.processEvents()
    view.viewport().grab()  # the first rows painted (placeholders or thumbnails)
    assert model.rowCount() > 0
    return view, model, project


def show_baseline(folder: Path, app: QApplication) -> tuple[QListWidget, Project]:
    project = Project.open(folder)
    widget = QListWidget()
    for record in project.images():
        item = QListWidgetItem(f"{record.path}  [{record.status.value}]")
        item.setData(Qt.ItemDataRole.UserRole, record.id)
        widget.addItem(item)
    widget.resize(320, 900)
    widget.show()
    app.processEvents()
    widget.viewport().grab()
    return widget, project


def scroll_through(view: QListView, model: ImageListModel, app: QApplication) -> tuple[int, float]:
    """Page down to the last image; the number of steps and the slowest one (seconds)."""
    bar = view.verticalScrollBar()
    worst, steps = 0.0, 0
    while True:
        start = time.perf_counter()
        bar.setValue(bar.value() + bar.pageStep())
        app.processEvents()
        view.viewport().grab()
        worst = max(worst, time.perf_counter() - start)
        steps += 1
        if bar.value() >= bar.maximum() and not model.canFetchMore():
            return steps, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.gettempdir()) / f"maskdesk-bench-open-{args.count}"
    made, _ = timed(lambda: make_folder(folder, args.count))
    print(f"folder {folder}: {args.count} images ({made:.1f} s to make or check)")
    shutil.rmtree(folder / STORE_DIR, ignore_errors=True)
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)

    # First opens with headers read by Pillow (the baseline) and by the quick JPEG/PNG reader,
    # alternated, best of two each, so that neither profits from the other's warm caches.
    firsts: dict[bool, list[float]] = {False: [], True: []}
    for quick in (False, True, False, True):
        shutil.rmtree(folder / STORE_DIR, ignore_errors=True)
        images.QUICK_HEADERS = quick
        elapsed, project = timed(lambda: Project.open(folder))
        assert isinstance(project, Project)
        project.close()
        firsts[quick].append(elapsed)
    images.QUICK_HEADERS = True
    first, pillow_first = min(firsts[True]), min(firsts[False])
    again, project = timed(lambda: Project.open(folder))
    assert isinstance(project, Project)
    project.close()
    print(f"Project.open, first open:           {first:7.3f} s")
    print(f"  same, headers read by Pillow:     {pillow_first:7.3f} s (baseline)")
    print(f"  ratio Pillow headers / quick:     {pillow_first / first:7.2f} x")
    print(f"Project.open, reopen:               {again:7.3f} s")

    start = time.perf_counter()
    widget, base_project = show_baseline(folder, app)
    base = time.perf_counter() - start
    widget.close()
    base_project.close()
    start = time.perf_counter()
    view, model, new_project = show_new(folder, app)
    new = time.perf_counter() - start
    print(f"baseline QListWidget, reopen->shown:{base:7.3f} s ({args.count} items filled)")
    print(f"ImageListModel view, reopen->shown: {new:7.3f} s ({model.rowCount()} rows loaded)")
    print(f"  of which model+proxy+view (approx):{new - again:7.3f} s")
    print(f"ratio baseline / new:               {base / new:7.1f} x")
    print(f"first open + shown (new):           {first - again + new:7.3f} s (target < 2 s)")

    steps, worst = scroll_through(view, model, app)
    print(f"scroll to the end: {steps} page steps, slowest {worst * 1000:.1f} ms")
    assert model.thumbnails is not None
    model.thumbnails.shutdown()
    thumbs = len(list((new_project.store_path.parent / "thumbs").glob("*.jpg")))
    print(f"thumbnails cached on disk after the scroll: {thumbs}")
    view.close()
    new_project.close()


if __name__ == "__main__":
    main()
