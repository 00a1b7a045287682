"""The review window as a person uses it: real folders, the fixture model on its thread, a real
project store; assertions on rows, canvas pixels, the store and exported COCO files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QSettings
from PySide6.QtWidgets import QListView, QPushButton, QSlider, QTableView

from maskdesk.core.categories import Category
from maskdesk.core.coco import build_coco
from maskdesk.core.exporting import project_images
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui.canvas import Canvas
from maskdesk.ui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MODEL = REPO / "tests" / "fixtures" / "shapes-tiny.pt"
WAIT_MS = 120_000  # a loaded 2-core machine


def _grey_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    grey = np.full((60, 80, 3), 128, dtype=np.uint8)
    Image.fromarray(grey).save(folder / "img10.png")
    Image.fromarray(grey).save(folder / "img2.png")
    Image.fromarray(grey).save(folder / "sub" / "img2.png")
    bits = np.zeros((20, 20), dtype=bool)
    bits[5:15, 5:15] = True
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "square")])
        record = project.image_by_path("img2.png")
        assert record is not None
        project.add_instance(record.id, Instance(1, CropMask(30, 20, bits), score=0.9))
    return folder


def _shapes(tmp_path: Path, count: int) -> Path:
    from maskdesk.datasets.shapes import main as shapes_main

    shapes_main([str(tmp_path / "set"), "--count", str(count), "--seed", "3", "--size", "96"])
    return tmp_path / "set" / "images"


def _shown(qtbot, window: MainWindow) -> None:
    """Wait for the current image's picture: it is decoded off the UI thread."""
    qtbot.waitUntil(lambda: window.picture_id == window.image_id is not None, timeout=WAIT_MS)


def _pixel(canvas: Canvas, x: float, y: float) -> tuple[int, int, int]:
    point = canvas.image_to_widget(QPointF(x, y))
    color = canvas.grab().toImage().pixelColor(int(point.x()), int(point.y()))
    return (color.red(), color.green(), color.blue())


def _table_rows(window: MainWindow) -> list[tuple[str, str]]:
    table = window.findChild(QTableView, "instanceTable")
    model = table.model()
    return [(model.index(r, 2).data(), model.index(r, 3).data()) for r in range(model.rowCount())]


def test_the_window_lists_images_and_paints_masks(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    window.open_folder(_grey_folder(tmp_path))
    _shown(qtbot, window)
    view = window.findChild(QListView, "imageList")
    names = [view.model().index(r, 0).data() for r in range(view.model().rowCount())]
    assert names == ["img2.png", "img10.png", "sub/img2.png"]
    assert window.image_id is not None
    canvas = window.findChild(Canvas, "canvas")
    assert _pixel(canvas, 5, 55) == (128, 128, 128)
    assert _pixel(canvas, 40, 30) != (128, 128, 128)  # inside the square
    assert _table_rows(window) == [("square", "0.90")]
    window.acts["actionNextImage"].trigger()
    assert _table_rows(window) == []
    _shown(qtbot, window)
    assert _pixel(canvas, 40, 30) == (128, 128, 128)


def test_detect_fills_the_table_and_paints_each_instance(
    window: MainWindow, qtbot, tmp_path: Path
) -> None:
    folder = _shapes(tmp_path, 2)
    window.open_folder(folder)
    assert _table_rows(window) == []
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        window.acts["actionDetect"].trigger()
    qtbot.waitUntil(lambda: len(_table_rows(window)) > 0, timeout=WAIT_MS)
    _shown(qtbot, window)
    assert window.project is not None and window.image_id is not None
    stored = [i for i in window.project.instances(window.image_id) if i.exported(0.5)]
    assert len(_table_rows(window)) == len(stored) > 0
    canvas = window.canvas
    inst = max(stored, key=lambda i: i.mask.area)
    rows, cols = np.nonzero(inst.mask.bits)
    x, y = inst.mask.x + cols[len(cols) // 2] + 0.5, inst.mask.y + rows[len(rows) // 2] + 0.5
    shown = _pixel(canvas, x, y)
    canvas.set_masks_hidden(True)
    bare = _pixel(canvas, x, y)
    canvas.set_masks_hidden(False)
    assert shown != bare  # the mask colours the pixels it covers


def test_review_edits_are_stored_exported_and_undone(window: MainWindow, tmp_path: Path) -> None:
    folder = _grey_folder(tmp_path)
    with Project.open(folder) as project:
        record = project.image_by_path("img2.png")
        assert record is not None
        project.add_instance(
            record.id, Instance(1, CropMask(5, 5, np.ones((8, 8), bool)), score=0.3)
        )
    window.score_slider.setValue(0)
    window.open_folder(folder)
    project = window.project
    assert project is not None and window.image_id is not None
    image = window.image_id

    def exported() -> list[tuple]:
        data = build_coco(project_images(project), list(project.categories), min_score=0.5)
        return sorted((a["score"], a["maskdesk"]["review"]) for a in data["annotations"])

    def select(instance_id: int) -> None:
        window.canvas.set_selection([instance_id])
        window._canvas_selection([instance_id])
        table = window.instance_table
        assert [int(r.data(0x0101)) for r in table.selectionModel().selectedRows()] == [instance_id]

    square, low = project.instances(image)
    assert exported() == [(0.9, "pending")]
    select(square.id)
    window.acts["actionToggleInstance"].trigger()
    assert project.instance(square.id).visible is False and exported() == []
    window.acts["actionUndo"].trigger()
    assert project.instance(square.id).visible is True

    select(low.id)
    window.acts["actionAcceptInstance"].trigger()
    assert exported() == [(0.3, "accepted"), (0.9, "pending")]
    select(square.id)
    window.acts["actionDeleteInstance"].trigger()
    assert exported() == [(0.3, "accepted")]
    window.acts["actionUndo"].trigger()
    assert project.instance(square.id) == square  # back with its id
    window.acts["actionRedo"].trigger()
    assert [i.id for i in project.instances(image)] == [low.id]
    window.acts["actionUndo"].trigger()

    # relabel through the table, as the class editor does
    model = window.instance_model
    model.setData(model.index(model.row_of(square.id), 2), "box")
    box = project.categories.by_name("box")
    assert box is not None and project.instance(square.id).category_id == box.id
    window.acts["actionUndo"].trigger()
    assert project.instance(square.id).category_id == 1

    window.acts["actionMarkReviewed"].trigger()
    assert project.image(image).status is ImageStatus.REVIEWED
    assert window.image_id != image  # went on to the next image
    window.show_image(image)
    window.acts["actionUndo"].trigger()
    assert project.image(image).status is not ImageStatus.REVIEWED
    assert project.instance(low.id).review is Review.ACCEPTED


def test_the_score_slider_changes_rows_without_the_model(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(window.inference, "load_model", lambda *a, **k: calls.append(a))
    folder = _grey_folder(tmp_path)
    with Project.open(folder) as project:
        record = project.image_by_path("img2.png")
        assert record is not None
        for score in (0.2, 0.6):
            project.add_instance(
                record.id, Instance(1, CropMask(2, 2, np.ones((4, 4), bool)), score=score)
            )
    window.open_folder(folder)
    slider = window.findChild(QSlider, "scoreSlider")
    slider.setValue(50)
    assert sorted(s for _, s in _table_rows(window)) == ["0.60", "0.90"]
    slider.setValue(70)
    assert [s for _, s in _table_rows(window)] == ["0.90"]
    slider.setValue(10)
    assert len(_table_rows(window)) == 3
    assert calls == []


def test_a_cancelled_batch_continues_after_reopening(qtbot, tmp_path: Path) -> None:
    folder = _shapes(tmp_path, 6)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("model", str(FIXTURE_MODEL))
    first = MainWindow(settings)
    qtbot.addWidget(first)
    first.open_folder(folder)
    stored: list[int] = []
    first.inference.imageStored.connect(stored.append)
    first.inference.imageStored.connect(lambda _: first.acts["actionCancel"].trigger())
    with qtbot.waitSignal(first.inference.finished, timeout=WAIT_MS):
        first.acts["actionPrelabelFolder"].trigger()
    first.close()
    with Project.open(folder) as project:
        done = {
            r.id: [i.id for i in project.instances(r.id)]
            for r in project.images()
            if r.status is ImageStatus.PRELABELED
        }
    assert 1 <= len(done) < 6

    second = MainWindow(settings)
    qtbot.addWidget(second)
    second.open_folder(folder)
    with qtbot.waitSignal(second.inference.finished, timeout=WAIT_MS):
        second.acts["actionPrelabelFolder"].trigger()
    second.close()
    with Project.open(folder) as project:
        assert {r.status for r in project.images()} == {ImageStatus.PRELABELED}
        for image_id, ids in done.items():
            assert [i.id for i in project.instances(image_id)] == ids  # not predicted twice


def test_the_window_shows_before_torch_is_imported(tmp_path: Path) -> None:
    folder = _grey_folder(tmp_path)
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from maskdesk.ui.main_window import MainWindow\n"
        "app = QApplication([])\n"
        "w = MainWindow(); w.show(); w.open_folder(sys.argv[1]); app.processEvents()\n"
        "print('torch' in sys.modules, w.isVisible()); w.close()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    assert proc.stdout.split() == ["False", "True"], proc.stderr


def test_the_browser_filters_by_status_name_class_and_low_scores(
    window: MainWindow, tmp_path: Path
) -> None:
    folder = _grey_folder(tmp_path)  # img2.png holds a 0.9 square
    with Project.open(folder) as project:
        project.add_category("circle")
        record = project.image_by_path("img10.png")
        assert record is not None
        project.add_instance(
            record.id, Instance(2, CropMask(1, 1, np.ones((3, 3), bool)), score=0.2)
        )
    window.open_folder(folder)
    view = window.findChild(QListView, "imageList")

    def listed() -> list[str]:
        return [view.model().index(r, 0).data() for r in range(view.model().rowCount())]

    classes = window.filters.classes
    assert [classes.itemText(i) for i in range(classes.count())] == [
        "Any class",
        "square",
        "circle",
    ]
    classes.setCurrentIndex(1)
    assert listed() == ["img2.png"]
    classes.setCurrentIndex(0)
    window.filters.low_score.setChecked(True)
    assert listed() == ["img10.png"]  # its 0.2 circle is below the 0.5 threshold
    window.score_slider.setValue(10)
    assert listed() == []
    window.filters.low_score.setChecked(False)
    window.filters.name.setText("SUB")
    assert listed() == ["sub/img2.png"]
    window.filters.name.setText("")
    window.filters.status.setCurrentText("pre-labeled")
    assert listed() == []
    window.filters.status.setCurrentText("new")
    assert listed() == ["img2.png", "img10.png", "sub/img2.png"]


def test_missing_weights_ask_what_to_do_and_a_model_file_can_be_chosen(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import maskdesk.ui.dialogs as dialogs
    import maskdesk.ui.menus as menus

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    asked: list[tuple[object, str]] = []
    monkeypatch.setattr(
        dialogs,
        "ask_missing_weights",
        lambda parent, failure, message: asked.append((failure, message)) or "open",
    )
    monkeypatch.setattr(
        menus.QFileDialog, "getOpenFileName", lambda *a, **k: (str(FIXTURE_MODEL), "")
    )
    window.open_folder(_shapes(tmp_path, 1))
    window.choose_model("coco-v1")
    with qtbot.waitSignal(window.inference.modelFailed, timeout=WAIT_MS):
        window.acts["actionDetect"].trigger()
    ((failure, message),) = asked
    expected = tmp_path / "empty-torch-home" / "hub" / "checkpoints"
    assert str(expected) in failure.path and str(expected) in message
    assert failure.url.startswith("https://")
    assert window.model_name == str(FIXTURE_MODEL)  # "Open model file..." chose it
    detect = window.acts["actionDetect"]
    qtbot.waitUntil(detect.isEnabled, timeout=WAIT_MS)  # the failed load has ended
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        window.acts["actionDetect"].trigger()
    qtbot.waitUntil(lambda: len(_table_rows(window)) > 0, timeout=WAIT_MS)


def test_detect_on_a_reviewed_image_asks_first_and_keeps_decided_work(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import maskdesk.ui.main_window as main_window

    answers: list[bool] = []
    questions: list[str] = []

    def confirm(parent, title: str, text: str) -> bool:  # noqa: ANN001
        questions.append(text)
        return answers.pop(0)

    monkeypatch.setattr(main_window, "confirm", confirm)
    window.open_folder(_shapes(tmp_path, 1))
    project = window.project
    assert project is not None and window.image_id is not None
    image = window.image_id
    mark = project.add_category("mark")
    drawn = project.add_instance(
        image, Instance(mark.id, CropMask(1, 1, np.ones((4, 4), bool)), origin=Origin.HUMAN)
    )
    project.set_status(image, ImageStatus.REVIEWED)

    answers.append(False)
    window.acts["actionDetect"].trigger()
    assert "marked reviewed" in questions[-1]
    assert project.image(image).status is ImageStatus.REVIEWED
    assert [i.id for i in project.instances(image)] == [drawn.id]

    answers.append(True)
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS):
        window.acts["actionDetect"].trigger()
    assert project.image(image).status is ImageStatus.PRELABELED
    found = project.instances(image)
    assert drawn.id in [i.id for i in found] and len(found) > 1  # new predictions beside it
    window.acts["actionUndo"].trigger()  # the mark comes back
    assert project.image(image).status is ImageStatus.REVIEWED


def test_missing_weights_download_shows_progress_and_its_cancel_stops_it(
    window: MainWindow,
    qtbot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slow_download: list[int],
) -> None:
    """The download itself is the edge replaced here (no network); everything from the
    window's Detect to the worker's cancel is the real path."""

    import maskdesk.ui.dialogs as dialogs

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    answers = ["download"]
    monkeypatch.setattr(dialogs, "ask_missing_weights", lambda *a: answers.pop(0))
    errors: list[str] = []
    monkeypatch.setattr(dialogs, "show_model_error", lambda parent, message: errors.append(message))
    chunks = slow_download
    window.open_folder(_shapes(tmp_path, 1))
    window.choose_model("coco-v1")
    window.acts["actionDetect"].trigger()
    qtbot.waitUntil(lambda: window.findChild(dialogs.DownloadDialog) is not None, timeout=WAIT_MS)
    dialog = window.findChild(dialogs.DownloadDialog)
    qtbot.waitUntil(lambda: dialog.value() > 0 and "MB" in dialog.labelText(), timeout=WAIT_MS)
    assert dialog.isVisible()
    next(b for b in dialog.findChildren(QPushButton) if b.text() == "Cancel").click()
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=WAIT_MS)
    assert "cancelled; nothing was written" in errors[0] and not dialog.isVisible()
    assert len(chunks) < 400  # stopped within a chunk or so, not at the end
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"
    assert not checkpoints.exists() or not any(checkpoints.iterdir())  # no partial file left
    assert window.acts["actionDetect"].isEnabled()  # the window goes on
