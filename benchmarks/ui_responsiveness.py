"""How long the UI thread stalls while a folder is pre-labeled: the inference worker on its
QThread against the same batch run on the UI thread.

    python benchmarks/ui_responsiveness.py [--count 40 --size 256 --interval-ms 10]

The fixture model (tests/fixtures/shapes-tiny.pt) pre-labels COUNT generated shapes images
of SIZE px in a fresh project, offscreen, while a QTimer on the UI thread ticks every
INTERVAL ms; the figure is the longest gap between two ticks during the batch.

- worker: `InferenceThread.prelabel_folder` (maskdesk.ui.workers).
- ui-thread, blocking: the same `core.prelabel` call inside one slot (what labelme does: the
  model runs in the click handler).
- ui-thread, processEvents: the same, calling `QApplication.processEvents()` after every
  image, the usual patch for a frozen window (the gap is then one image's prediction).

Each run has its own copy of the folder and a model already loaded and warmed up (one image
predicted before the clock starts). Not part of the test run.
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
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QObject, QTimer, Signal  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from maskdesk.core.prelabel import PrelabelReport, prelabel  # noqa: E402
from maskdesk.core.project import Project  # noqa: E402
from maskdesk.ui.workers import InferenceThread  # noqa: E402

MODEL = str(ROOT / "tests" / "fixtures" / "shapes-tiny.pt")


class Relay(QObject):
    fired = Signal()


class GapMeter:
    """Ticks a QTimer on the UI thread and keeps the longest gap between two ticks."""

    def __init__(self, interval_ms: int) -> None:
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.longest = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now
        self.ticks += 1

    def start(self) -> None:
        self.last = time.perf_counter()
        self.longest = 0.0
        self.ticks = 0
        self.timer.start()

    def stop(self) -> float:
        self._tick()  # the gap up to the end of the batch counts too
        self.timer.stop()
        return self.longest


def _wait_for(signals: list, start: Callable[[], None], timeout_s: float = 600) -> None:
    """Run `start`, then the event loop until one of `signals` is emitted."""
    loop = QEventLoop()
    timed_out: list[bool] = []
    guard = QTimer()
    guard.setSingleShot(True)

    def give_up() -> None:
        timed_out.append(True)
        loop.quit()

    guard.timeout.connect(give_up)
    for signal in signals:
        signal.connect(loop.quit)
    guard.start(int(timeout_s * 1000))
    start()
    loop.exec()
    guard.stop()
    for signal in signals:
        signal.disconnect(loop.quit)
    if timed_out:
        raise SystemExit(f"no result within {timeout_s} s")


def run_worker(folder: Path, warm: Path, meter: GapMeter) -> tuple[float, float, PrelabelReport]:
    owner = InferenceThread()
    worker = owner  # its signals, repeated in the UI thread
    failures: list[str] = []
    worker.failed.connect(failures.append)
    worker.modelFailed.connect(lambda message, info: failures.append(message))
    ends = [worker.finished, worker.failed, worker.modelFailed]
    with Project.open(warm) as warm_project, Project.open(folder) as project:

        def load_and_warm() -> None:
            owner.set_project(warm_project)
            owner.load_model(MODEL, "cpu", True)
            owner.detect(warm_project.images()[0].id)

        _wait_for(ends, load_and_warm)
        if failures:
            raise SystemExit(f"worker failed: {failures}")
        owner.set_project(project)
        result: list[PrelabelReport] = []
        worker.finished.connect(lambda summary, report: result.append(report))
        meter.start()
        started = time.perf_counter()
        _wait_for(ends, lambda: owner.prelabel_folder(False))
        seconds = time.perf_counter() - started
        gap = meter.stop()
        owner.close()
    if failures or not result:
        raise SystemExit(f"worker failed: {failures}")
    return gap, seconds, result[-1]


def run_ui_thread(
    folder: Path, warm: Path, meter: GapMeter, *, process_events: bool
) -> tuple[float, float, PrelabelReport]:
    from maskdesk.core.images import load_rgb
    from maskdesk.inference.models import load_model
    from maskdesk.inference.predictor import Predictor, predict_files

    predictor = Predictor(load_model(MODEL, offline=True), device="cpu")
    with Project.open(warm) as warm_project:
        predictor.predict(load_rgb(warm_project.absolute_path(warm_project.images()[0])))
    app = QApplication.instance()
    assert app is not None
    result: list[PrelabelReport] = []
    with Project.open(folder) as project:

        def batch() -> None:
            result.append(
                prelabel(
                    project,
                    predictor.model_name,
                    predictor.categories,
                    lambda paths, cancel: predict_files(predictor, paths, cancel=cancel),
                    progress=(lambda step: app.processEvents()) if process_events else None,
                )
            )

        done = Relay()
        meter.start()
        started = time.perf_counter()
        # As a button's slot would: the batch runs inside one event of the UI thread.

        def click() -> None:
            batch()
            done.fired.emit()

        _wait_for([done.fired], lambda: QTimer.singleShot(0, click))
        seconds = time.perf_counter() - started
        gap = meter.stop()
    return gap, seconds, result[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--interval-ms", type=int, default=10)
    args = parser.parse_args(argv)

    from maskdesk.datasets.shapes import main as shapes_main

    app = QApplication.instance() or QApplication([sys.argv[0]])
    meter = GapMeter(args.interval_ms)
    with tempfile.TemporaryDirectory(prefix="maskdesk-ui-bench-") as tmp:
        base = Path(tmp)
        shapes_main(
            [str(base / "set"), "--count", str(args.count), "--seed", "5", "--size", str(args.size)]
        )
        shapes_main([str(base / "warm"), "--count", "1", "--seed", "6", "--size", str(args.size)])
        folders = {}
        for name in ("worker", "blocking", "events"):
            folders[name] = base / name
            shutil.copytree(base / "set" / "images", folders[name])
        warm = base / "warm" / "images"

        print(
            f"{args.count} images of {args.size} px, fixture model, cpu, timer every "
            f"{args.interval_ms} ms, {os.cpu_count()} CPUs"
        )
        rows = {
            "worker (QThread)": run_worker(folders["worker"], warm, meter),
            "ui-thread, blocking": run_ui_thread(
                folders["blocking"], warm, meter, process_events=False
            ),
            "ui-thread, processEvents": run_ui_thread(
                folders["events"], warm, meter, process_events=True
            ),
        }
    del app
    print(f"{'run':<26} {'longest gap':>12} {'batch':>8} {'images/s':>9} {'stored':>7}")
    for name, (gap, seconds, report) in rows.items():
        print(
            f"{name:<26} {gap * 1000:>9.1f} ms {seconds:>7.2f}s "
            f"{report.stored / seconds:>9.1f} {report.stored:>7}"
        )
    worker_gap = rows["worker (QThread)"][0]
    for name in ("ui-thread, blocking", "ui-thread, processEvents"):
        print(f"longest gap, {name} / worker: {rows[name][0] / worker_gap:.1f}x")
    verdict = "meets" if worker_gap < 0.050 else "misses"
    print(f"worker longest gap {worker_gap * 1000:.1f} ms {verdict} the 50 ms target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
