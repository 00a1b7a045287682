"""The inference worker on its QThread, driven as the window drives it: the fixture model on
generated shapes images in a real project, results checked in the store through the test's
own connection, errors arriving as signals while the thread lives on."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from maskdesk.core.prelabel import PrelabelReport
from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui.workers import InferenceThread, ModelFailure

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MODEL = str(REPO / "tests" / "fixtures" / "shapes-tiny.pt")
FIRST_LOAD_MS = 120_000  # the first load imports torch, which takes long on a busy 2-core box
TASK_MS = 60_000


def _shapes(tmp_path: Path, count: int) -> Path:
    from maskdesk.datasets.shapes import main as shapes_main

    shapes_main([str(tmp_path / "set"), "--count", str(count), "--seed", "11", "--size", "96"])
    return tmp_path / "set" / "images"


@pytest.fixture
def inference(qtbot) -> Iterator[InferenceThread]:
    owner = InferenceThread()
    yield owner
    assert owner.close(timeout_ms=TASK_MS), "the worker thread did not end"
    assert not owner.is_running()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.open(_shapes(tmp_path, 8)) as opened:
        yield opened


def _load(qtbot, inference: InferenceThread, name: str = FIXTURE_MODEL) -> list:
    with qtbot.waitSignal(inference.modelLoaded, timeout=FIRST_LOAD_MS) as loaded:
        inference.load_model(name, "cpu", True)
    return loaded.args


def _finish(qtbot, inference: InferenceThread, start) -> PrelabelReport:
    with qtbot.waitSignal(inference.finished, timeout=TASK_MS) as done:
        start()
    report = done.args[1]
    assert isinstance(report, PrelabelReport)
    return report


def _statuses(project: Project) -> list[ImageStatus]:
    return [r.status for r in project.images()]


def test_the_model_loads_once_in_the_worker_thread_with_its_categories(
    qtbot,
    inference: InferenceThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from maskdesk.inference import models

    calls: list[str] = []
    real = models.load_model

    def counting(spec: str, **kwargs):
        calls.append(spec)
        return real(spec, **kwargs)

    monkeypatch.setattr(models, "load_model", counting)
    threads: list[int] = []
    inference.worker.modelLoaded.connect(
        lambda *args: threads.append(threading.get_ident()), Qt.ConnectionType.DirectConnection
    )
    ui_threads: list[int] = []
    inference.modelLoaded.connect(lambda *args: ui_threads.append(threading.get_ident()))
    name, categories, note = _load(qtbot, inference)
    assert (name, categories, note) == (FIXTURE_MODEL, ["circle", "rectangle", "triangle"], "")
    assert _load(qtbot, inference)[1] == ["circle", "rectangle", "triangle"]
    assert calls == [FIXTURE_MODEL]  # the second request reused the loaded model
    assert threads and threading.get_ident() not in threads
    assert ui_threads == [threading.get_ident()] * 2  # repeated in the UI thread


def test_detect_stores_the_current_image_only(
    qtbot,
    inference: InferenceThread,
    project: Project,
) -> None:
    inference.set_project(project)
    _load(qtbot, inference)
    target = project.images()[2]
    with qtbot.waitSignal(inference.imageStored, timeout=TASK_MS) as stored:
        report = _finish(qtbot, inference, lambda: inference.detect(target.id))
    assert stored.args == [target.id]
    assert (report.total, report.stored, report.failed) == (1, 1, [])
    record = project.image(target.id)
    assert (record.status, record.model) == (ImageStatus.PRELABELED, FIXTURE_MODEL)
    found = project.instances(target.id)
    assert found and report.instances == len(found)
    names = {project.categories.name(i.category_id) for i in found}
    assert names <= {"circle", "rectangle", "triangle"}
    others = [r for r in project.images() if r.id != target.id]
    assert {r.status for r in others} == {ImageStatus.NEW}
    assert all(project.instances(r.id) == [] for r in others)


def test_prelabel_folder_reports_progress_and_stores_every_image(
    qtbot,
    inference: InferenceThread,
    project: Project,
) -> None:
    inference.set_project(project)
    _load(qtbot, inference)
    steps: list[tuple[int, int, float, float]] = []
    stored: list[int] = []
    inference.progress.connect(lambda *a: steps.append(a))
    inference.imageStored.connect(stored.append)
    report = _finish(qtbot, inference, lambda: inference.prelabel_folder(False))
    qtbot.waitUntil(lambda: len(stored) == 8, timeout=TASK_MS)
    ids = [r.id for r in project.images()]
    assert sorted(stored) == sorted(ids)
    assert [s[0] for s in steps] == list(range(0, 9))  # 0 at the start, then one per image
    assert {s[1] for s in steps} == {8}
    assert steps[-1][3] == pytest.approx(0.0) and steps[0][3] == -1.0
    assert all(s[2] > 0 for s in steps[1:])
    assert (report.total, report.stored, report.cancelled) == (8, 8, False)
    assert _statuses(project) == [ImageStatus.PRELABELED] * 8
    assert sum(len(project.instances(i)) for i in ids) == report.instances > 0


def test_cancel_stops_within_one_image_and_a_second_run_continues(
    qtbot,
    inference: InferenceThread,
    project: Project,
) -> None:
    inference.set_project(project)
    _load(qtbot, inference)
    # Cancel from the worker thread the moment the first result is stored: exactly one image.
    cancel_now = inference.worker.imageStored.connect(
        lambda _id: inference.cancel(), Qt.ConnectionType.DirectConnection
    )
    first = _finish(qtbot, inference, lambda: inference.prelabel_folder(False))
    inference.worker.imageStored.disconnect(cancel_now)
    assert (first.total, first.stored, first.cancelled) == (8, 1, True)
    done = [r for r in project.images() if r.status is ImageStatus.PRELABELED]
    assert len(done) == 1
    kept = [i.id for i in project.instances(done[0].id)]

    second = _finish(qtbot, inference, lambda: inference.prelabel_folder(False))
    assert (second.total, second.stored, second.skipped_done) == (7, 7, 1)
    assert not second.cancelled
    assert _statuses(project) == [ImageStatus.PRELABELED] * 8
    assert [i.id for i in project.instances(done[0].id)] == kept  # not predicted again


def test_cancel_from_the_ui_thread_while_busy_and_close_mid_batch(
    qtbot,
    inference: InferenceThread,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from maskdesk.inference.predictor import Predictor

    real = Predictor.predict

    def slow(self, rgb):
        time.sleep(0.4)
        return real(self, rgb)

    monkeypatch.setattr(Predictor, "predict", slow)
    inference.set_project(project)
    _load(qtbot, inference)
    with qtbot.waitSignal(inference.finished, timeout=TASK_MS) as finished:
        with qtbot.waitSignal(inference.imageStored, timeout=TASK_MS):
            inference.prelabel_folder(False)
        started = time.perf_counter()
        inference.cancel()  # a plain call from this (UI) thread while the worker predicts
        assert time.perf_counter() - started < 0.1
    report = finished.args[1]
    assert report.cancelled and 1 <= report.stored < 8

    # Closing during a batch cancels it and joins the thread within about one image.
    with qtbot.waitSignal(inference.imageStored, timeout=TASK_MS):
        inference.prelabel_folder(False)
    started = time.perf_counter()
    assert inference.close(timeout_ms=TASK_MS)
    assert time.perf_counter() - started < 10
    assert not inference.is_running()
    assert ImageStatus.NEW in _statuses(project)


def test_a_missing_model_file_is_reported_and_the_worker_lives_on(
    qtbot,
    inference: InferenceThread,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere" / "model.pt"
    with qtbot.waitSignal(inference.modelFailed, timeout=FIRST_LOAD_MS) as failed:
        inference.load_model(str(missing), "cpu", True)
    message, info = failed.args
    assert str(missing) in message
    assert isinstance(info, ModelFailure) and not info.missing_weights
    assert _load(qtbot, inference)[0] == FIXTURE_MODEL


def test_missing_named_weights_offline_say_where_to_place_them(
    qtbot,
    inference: InferenceThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with qtbot.waitSignal(inference.modelFailed, timeout=FIRST_LOAD_MS) as failed:
        inference.load_model("coco-v1", "cpu", True)
    message, info = failed.args
    expected = (
        tmp_path / "torch-home" / "hub" / "checkpoints" / "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    )
    assert info.missing_weights and not info.cancelled
    assert info.path == str(expected) and str(expected) in message
    assert info.url.startswith("https://") and info.url in message
    assert not expected.exists()  # offline: nothing was fetched
    assert _load(qtbot, inference)[1] == ["circle", "rectangle", "triangle"]


def test_a_download_reports_progress_and_cancel_stops_it(
    qtbot,
    inference: InferenceThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slow_download: list[int],
) -> None:
    from maskdesk.inference import models

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    chunks = slow_download
    seen: list[tuple[int, int]] = []
    inference.downloadProgress.connect(lambda done, total: seen.append((done, total)))
    with qtbot.waitSignal(inference.modelFailed, timeout=FIRST_LOAD_MS) as failed:
        with qtbot.waitSignal(inference.downloadProgress, timeout=FIRST_LOAD_MS):
            inference.load_model("coco-v1", "cpu", False)
        inference.cancel()
    message, info = failed.args
    assert info.cancelled and info.missing_weights and "cancelled" in message
    assert seen[0] == (0, 400 * models.CHUNK_BYTES)
    assert len(chunks) < 400  # stopped within a chunk or so of the cancel, not at the end
    assert not (tmp_path / "torch-home" / "hub" / "checkpoints").exists() or not any(
        (tmp_path / "torch-home" / "hub" / "checkpoints").iterdir()
    )
    assert _load(qtbot, inference)[0] == FIXTURE_MODEL


def test_a_broken_image_and_a_failing_prediction_fail_alone(
    qtbot,
    inference: InferenceThread,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from maskdesk.inference.predictor import Predictor

    records = project.images()
    broken = records[1]
    project.absolute_path(broken).write_bytes(b"not a picture at all")
    real = Predictor.predict
    calls: list[int] = []

    def fails_on_the_fourth(self, rgb):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom inside the model")
        return real(self, rgb)

    monkeypatch.setattr(Predictor, "predict", fails_on_the_fourth)
    inference.set_project(project)
    _load(qtbot, inference)
    failures: list[tuple[int, str]] = []
    inference.imageFailed.connect(lambda i, why: failures.append((i, why)))
    report = _finish(qtbot, inference, lambda: inference.prelabel_folder(False))
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=TASK_MS)
    # The broken file fails at decoding; the fourth prediction is the fifth image.
    assert [i for i, _ in failures] == [broken.id, records[4].id]
    assert "boom inside the model" in failures[1][1]
    assert (report.total, report.stored, len(report.failed)) == (8, 6, 2)
    after = {r.id: r for r in project.images()}
    assert after[broken.id].status is ImageStatus.FAILED and after[broken.id].reason
    assert after[records[4].id].status is ImageStatus.FAILED
    assert "boom inside the model" in (after[records[4].id].reason or "")
    assert sum(r.status is ImageStatus.PRELABELED for r in after.values()) == 6


def test_an_exception_in_a_slot_becomes_a_message_and_the_thread_lives(
    qtbot,
    inference: InferenceThread,
    project: Project,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with qtbot.waitSignal(inference.failed, timeout=TASK_MS) as no_folder:
        inference.detect(1)
    assert "No folder is open" in no_folder.args[0]
    inference.set_project(project)
    with qtbot.waitSignal(inference.failed, timeout=TASK_MS) as no_model:
        inference.prelabel_folder(False)
    assert "No model is loaded" in no_model.args[0]
    _load(qtbot, inference)
    with (
        caplog.at_level(logging.ERROR, logger="maskdesk.ui.workers"),
        qtbot.waitSignal(inference.failed, timeout=TASK_MS) as unknown,
    ):
        inference.detect(987654)
    assert "ValueError" in unknown.args[0] and "987654" in unknown.args[0]
    assert any(r.exc_info and "Detect failed" in r.getMessage() for r in caplog.records)
    assert inference.is_running()
    target = project.images()[0]
    report = _finish(qtbot, inference, lambda: inference.detect(target.id))
    assert report.stored == 1
    assert project.image(target.id).status is ImageStatus.PRELABELED


def test_importing_the_workers_module_does_not_import_torch() -> None:
    code = (
        "import sys, maskdesk.ui.workers; "
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def test_box_to_mask_keeps_the_image_for_the_next_box_and_frees_it_on_leaving(
    qtbot, inference: InferenceThread, project: Project
) -> None:
    first, second = project.images()[:2]
    with qtbot.waitSignal(inference.failed, timeout=TASK_MS) as failed:
        inference.box_to_mask(first.id, (10.0, 10.0, 50.0, 50.0))
    assert "No model is loaded" in failed.args[0]

    inference.set_project(project)
    _load(qtbot, inference)
    predictor = inference.worker._predictor
    assert predictor is not None
    runs: list[int] = []
    predictor.model.backbone.register_forward_hook(lambda *a: runs.append(1))
    answers = []
    for box in [(10.0, 10.0, 60.0, 60.0), (30.0, 20.0, 90.0, 80.0)]:
        with qtbot.waitSignal(inference.boxMasked, timeout=TASK_MS) as masked:
            inference.box_to_mask(first.id, box, "rectangle")
        answers.append(masked.args)
    assert len(runs) == 1  # the second box ran the heads only
    for image_id, instances, names, forced, _ticket in answers:
        assert image_id == first.id and forced == "rectangle" and len(instances) == 1
        assert names[instances[0].category_id] == "rectangle"  # the class asked for
    inference.keep_only(first.id)
    with qtbot.waitSignal(inference.boxMasked, timeout=TASK_MS):
        inference.box_to_mask(first.id, (10.0, 10.0, 60.0, 60.0))
    assert len(runs) == 1 and predictor._features._entry is not None
    inference.keep_only(second.id)  # the person moved on: pixels and features go
    qtbot.waitUntil(lambda: inference.worker._picture is None, timeout=TASK_MS)
    assert predictor._features._entry is None


def test_a_detached_close_returns_at_once_and_the_thread_ends_on_its_own(
    qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a window must not wait for a model load; the thread it leaves running must
    outlive its owner (a QThread destroyed while it runs aborts the process)."""
    import gc

    from maskdesk.inference import models
    from maskdesk.ui import workers

    started, gate = threading.Event(), threading.Event()
    real = models.load_model

    def gated(spec: str, **kwargs):  # noqa: ANN003, ANN202
        started.set()
        gate.wait(TASK_MS / 1000)
        return real(spec, **kwargs)

    monkeypatch.setattr(models, "load_model", gated)
    owner = InferenceThread()
    ended: list[int] = []
    owner.worker.closed.connect(lambda: ended.append(1), Qt.ConnectionType.DirectConnection)
    owner.load_model(FIXTURE_MODEL, "cpu", True)
    qtbot.waitUntil(started.is_set, timeout=FIRST_LOAD_MS)
    began = time.perf_counter()
    assert owner.close(100, detach=True) is False
    assert time.perf_counter() - began < 2.0
    assert owner.is_running()
    del owner
    gc.collect()  # the owner goes (with its window); the thread lives on
    gate.set()
    workers.wait_for_leftovers()  # what quitting the application does
    assert ended == [1] and workers._LEFTOVERS == []
