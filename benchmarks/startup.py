"""Time from starting Python to the review window on screen, against a window that imports
torch first (as one that loads its model at start-up would), in fresh processes; and what
the toolbar icons cost, against the same window with text-only toolbars.

    python benchmarks/startup.py [--repeat 3]

Offscreen Qt; the window opens the bundled samples. Prints the best times and the ratio.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "resources" / "samples"

WINDOW = """
import sys, time
{preload}
from PySide6.QtWidgets import QApplication
from maskdesk.ui.main_window import MainWindow
app = QApplication([])
window = MainWindow()
window.show()
app.processEvents()
window.open_folder(sys.argv[1])
app.processEvents()
assert window.isVisible()
print("torch" in sys.modules)
window.close()
"""


def run(preload: str) -> tuple[float, str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(Path("/tmp/md-bench-home"))}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", WINDOW.format(preload=preload), str(SAMPLES)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    return time.perf_counter() - start, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ours = min(run("")[0] for _ in range(args.repeat))
    _, torch_loaded = run("")
    base = min(run("import torch, torchvision")[0] for _ in range(args.repeat))
    print(f"window on screen (samples open), torch imported: {torch_loaded}: {ours:.2f} s")
    print(f"baseline, torch imported first:                          {base:.2f} s")
    print(f"ratio baseline / ours: {base / ours:.1f}x (target: ours under 1 s)")
    # The same window without its icons (icons.apply made a no-op in the child only).
    no_icons = "import maskdesk.ui.icons as icons; icons.apply = lambda window: None"
    text_only = min(run(no_icons)[0] for _ in range(args.repeat))
    print(f"text-only toolbars (no icons):                           {text_only:.2f} s")
    print(f"icons cost: {ours - text_only:+.2f} s ({ours / text_only:.2f}x)")


if __name__ == "__main__":
    main()
