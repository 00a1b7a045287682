"""Start-up time of a built maskdesk against the source install, in the same run.

    python packaging/startup_time.py dist/maskdesk/maskdesk [--runs 5]

Measures, for each, the median wall time of
  - `maskdesk --version` (interpreter and bootloader start, no Qt, no torch),
  - the window: from starting `maskdesk` (offscreen) until it has opened the samples' copy
    and written that folder's project, i.e. the window is shown and its folder read,
  - `maskdesk predict` of the four samples with the fixture model (torch's import included),
each run with a fresh user (empty HOME and XDG folders), and prints the bundle/source ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"
FIXTURE = ROOT / "tests" / "fixtures" / "shapes-tiny.pt"


def fresh_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "XDG_", "QT_"))}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        TORCH_HOME=str(home / "torch"),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


def version(cmd: list[str], home: Path) -> float:
    start = time.perf_counter()
    subprocess.run([*cmd, "--version"], env=fresh_env(home), check=True, capture_output=True)
    return time.perf_counter() - start


def window(cmd: list[str], home: Path) -> float:
    store = home / "data" / "maskdesk" / "samples" / ".maskdesk" / "project.sqlite"
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=fresh_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while not store.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited with {proc.returncode} before opening its window")
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    time.sleep(1)  # Ctrl-C before the event loop runs is not seen; let it start
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    return elapsed


def predict(cmd: list[str], home: Path) -> float:
    photos = home / "photos"
    photos.mkdir()
    for jpg in SAMPLES.glob("*.jpg"):
        shutil.copyfile(jpg, photos / jpg.name)
    start = time.perf_counter()
    subprocess.run(
        [
            *cmd,
            "predict",
            str(photos),
            "-o",
            str(home / "out.json"),
            "--model",
            str(FIXTURE),
            "--device",
            "cpu",
        ],
        env=fresh_env(home),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def median_time(measure: Callable[[list[str], Path], float], cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as scratch:
            times.append(measure(cmd, Path(scratch)))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("built", type=Path, help="the built executable or launcher")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    source = [sys.executable, "-m", "maskdesk"]
    built = [str(args.built.resolve())]
    for name, measure in (("--version", version), ("window", window), ("predict", predict)):
        median_time(measure, built, 1)  # warm the page cache for both: compare warm starts
        median_time(measure, source, 1)
        b = median_time(measure, built, args.runs)
        s = median_time(measure, source, args.runs)
        print(f"{name:10} built {b:6.2f} s   source {s:6.2f} s   built/source {b / s:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
