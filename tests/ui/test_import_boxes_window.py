"""File ▸ Import COCO of a detection file (boxes, no masks) in the real window: the question,
the masks made on the inference thread by the fixture model, progress, Cancel, and the
summary (issue 16 item 3). Only the modal dialogs and the file dialog are replaced."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QMessageBox

from maskdesk.core import images as image_io
from maskdesk.core.instances import Origin, Review
from maskdesk.datasets import shapes
from maskdesk.datasets.reviewing import write_folder
from maskdesk.ui import menus
from maskdesk.ui.box_import import QUESTION
from maskdesk.ui.main_window import MainWindow
from tests.e2e.test_import_boxes_to_masks import SEED, _detection_file, _iou

WAIT_MS = 120_000
Yes, No = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No


def _import(
    window: MainWindow,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    count: int,
    answer: QMessageBox.StandardButton,
) -> tuple[list[str], dict[str, list], list[tuple[str, str, bool]]]:
    """Open a shapes folder, import its truth boxes as a detection file, answer `answer`;
    returns the image names, the truth per name, and the questions asked."""
    folder = tmp_path / "shapes"
    names = write_folder(folder, count, SEED, shapes.CLASSES)
    coco = tmp_path / "boxes.json"
    truth = _detection_file(folder, names, coco)
    window.open_folder(folder)
    asked: list[tuple[str, str, bool]] = []

    def exec_(box: QMessageBox) -> int:
        asked.append((box.objectName(), box.text(), box.defaultButton() == box.button(Yes)))
        box.button(answer).click()
        return box.result()

    monkeypatch.setattr(menus.QFileDialog, "getOpenFileName", lambda *a, **k: (str(coco), ""))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: QMessageBox.StandardButton.Ok)
    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return names, truth, asked


def _question(n: int, window: MainWindow) -> tuple[str, str, bool]:
    model = Path(window.model_name).name
    return (
        QUESTION,
        f"{n} boxes in boxes.json have no mask. Make masks of them with the model ({model})? "
        "They are added as pending instances to review.",
        True,
    )


def test_yes_makes_pending_masks_of_the_files_classes(
    window: MainWindow, qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    names, truth, asked = _import(window, monkeypatch, tmp_path, 3, Yes)
    n_boxes = sum(len(v) for v in truth.values())
    steps: list[tuple[int, int]] = []
    window.inference.progress.connect(lambda done, total, *_: steps.append((done, total)))
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS) as done:
        window.acts["actionImportCoco"].trigger()
        assert asked == [_question(n_boxes, window)]
    summary, report = done.args
    assert summary in window.statusBar().currentMessage()
    assert f"{n_boxes} boxes made into masks on 3 images (pending review)" in summary
    assert (report.made, report.images, report.failed, report.cancelled) == (n_boxes, 3, [], False)
    assert steps[0] == (0, 3) and steps[-1] == (3, 3)
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=WAIT_MS)

    project = window.project
    assert project is not None
    class_of = {c.id: c.name for c in project.categories}
    ious = []
    for name in names:
        record = project.image_by_path(name)
        assert record is not None
        made = project.instances(record.id)
        assert sorted(class_of[i.category_id] for i in made) == sorted(c for c, _ in truth[name])
        for instance in made:
            assert instance.origin is Origin.MODEL and instance.review is Review.PENDING
            assert instance.score is not None and 0 < instance.score <= 1
        for cls, gt in truth[name]:
            ious.append(
                max(
                    _iou(i.mask.to_full(record.width, record.height), gt)
                    for i in made
                    if class_of[i.category_id] == cls
                )
            )
    assert np.median(ious) >= 0.7, ious

    # the window's table shows the shown image's new instances
    assert window.image_id is not None
    shown = project.image(window.image_id).path
    rows = window.instance_model.instances()
    assert len(rows) == len(truth[shown])
    assert all(i.review is Review.PENDING for i in rows)
    scores = [i.score for i in rows]
    assert window.instance_proxy.rowCount() == sum(s >= window.min_score for s in scores)


def test_no_stores_nothing_beyond_the_import(
    window: MainWindow, qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    names, truth, asked = _import(window, monkeypatch, tmp_path, 2, No)
    finished: list[str] = []
    window.inference.finished.connect(lambda summary, _report: finished.append(summary))
    window.acts["actionImportCoco"].trigger()
    assert asked == [_question(sum(len(v) for v in truth.values()), window)]
    assert window.runs.waiting == [] and window.runs.loading is None
    qtbot.wait(200)
    assert finished == []
    project = window.project
    assert project is not None
    assert all(not project.instances(r.id) for r in project.images())
    assert window.instance_model.instances() == []


def test_cancel_stops_between_images_and_keeps_what_is_stored(
    window: MainWindow, qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    names, truth, _asked = _import(window, monkeypatch, tmp_path, 4, Yes)
    # The worker's second image waits until Cancel was pressed, so Cancel lands while it
    # works on it: deterministic, whatever the machine's speed.
    real = image_io.load_rgb
    cancelled = threading.Event()
    calls: list[str] = []

    def load_rgb(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if QThread.currentThread() == window.inference.thread_handle:
            calls.append(str(path))
            if len(calls) == 2:
                assert cancelled.wait(WAIT_MS / 1000)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(image_io, "load_rgb", load_rgb)
    stored: list[int] = []
    window.inference.imageStored.connect(stored.append)
    with qtbot.waitSignal(window.inference.finished, timeout=WAIT_MS) as done:
        window.acts["actionImportCoco"].trigger()
        qtbot.waitUntil(lambda: len(calls) == 2, timeout=WAIT_MS)
        assert window.acts["actionCancel"].isEnabled()
        window.acts["actionCancel"].trigger()
        cancelled.set()
    summary, report = done.args
    assert report.cancelled and summary.endswith("; cancelled")
    assert report.images == 2 and len(calls) == 2
    project = window.project
    assert project is not None
    counts = [len(project.instances(project.image_by_path(n).id)) for n in names]  # type: ignore[union-attr]
    assert counts == [len(truth[names[0]]), len(truth[names[1]]), 0, 0]
    qtbot.waitUntil(lambda: len(stored) == 2, timeout=WAIT_MS)
    assert "cancelled" in window.statusBar().currentMessage()
