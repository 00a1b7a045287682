"""Memory of a long review session in the real window: EDITS mask edits and STEPS image steps.

    python benchmarks/long_session.py [--edits 5000 --steps 2000 --images 40 --size 1000]

A folder of IMAGES pictures of SIZE x SIZE px, each pre-labeled with one prediction covering
most of it, is opened in the real window (offscreen). Then the window steps through the
images (Next, wrapping round) STEPS times, and on the image shown it makes EDITS mask edits
in all, spread evenly, through the editor's own path (the brush and fill-holes path: a new
mask for the instance, stored at once, one undo step each).

Printed: the window's resident memory (VmRSS) after opening the folder and after the session,
and what the history holds. The baseline, measured in the same process: the earlier commands,
which kept every edit's instance before and after with its decoded mask and had no limit;
its cost per edit is measured on BASELINE_EDITS edits and scaled to EDITS.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from maskdesk.core.categories import Category  # noqa: E402
from maskdesk.core.instances import Instance  # noqa: E402
from maskdesk.core.masks import CropMask  # noqa: E402
from maskdesk.core.project import Project  # noqa: E402
from maskdesk.ui.main_window import MainWindow  # noqa: E402

BASELINE_EDITS = 300


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def disc(size: int, shift: int) -> CropMask:
    yy, xx = np.mgrid[:size, :size]
    c, r = size / 2 + shift, size * 0.45
    return CropMask(0, 0, (xx - c) ** 2 + (yy - c) ** 2 <= r * r)


def make_folder(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        pixels = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((size, size)).save(folder / f"img{k:04d}.png")
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "thing")])
        mask = disc(size, 0)
        for record in project.images():
            project.set_predictions(record.id, [Instance(1, mask, score=0.9)], "bench")


def session(window: MainWindow, app: QApplication, edits: int, steps: int, size: int) -> float:
    masks = [disc(size, 0), disc(size, 3)]
    per_step = edits / steps
    done = 0
    start = time.perf_counter()
    for step in range(steps):
        window.step_image(1) if window.image_list.currentIndex().row() + 1 < (
            window.image_proxy.rowCount()
        ) else window.image_list.setCurrentIndex(window.image_proxy.index(0, 0))
        app.processEvents()
        target = round((step + 1) * per_step)
        while done < target:
            instance = window.instance_model.instances()[0]
            mask = masks[0] if instance.mask.tight() != masks[0].tight() else masks[1]
            window.editor._edit([(instance, mask)], "Brush")
            done += 1
        app.processEvents()
    return time.perf_counter() - start


def baseline_per_edit(size: int) -> float:
    """MiB per edit the earlier commands kept: the instance before and after, masks decoded."""
    masks = [disc(size, 0), disc(size, 3)]
    gc.collect()
    before = rss_mib()
    kept = []
    for k in range(BASELINE_EDITS):
        # A fresh decode per edit, as reading the stored instance back gave each command.
        old = Instance(1, CropMask.from_crop_counts(0, 0, size, size, masks[k % 2].crop_counts()))
        new = Instance(
            1, CropMask.from_crop_counts(0, 0, size, size, masks[1 - k % 2].crop_counts())
        )
        kept.append(([old], [new]))
    grown = rss_mib() - before
    del kept
    gc.collect()
    return grown / BASELINE_EDITS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    tmp = Path(tempfile.mkdtemp(prefix="maskdesk-long-"))
    try:
        folder = tmp / "photos"
        make_folder(folder, args.images, args.size)
        settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings)
        window.show()
        window.open_folder(folder)
        app.processEvents()
        gc.collect()
        opened = rss_mib()
        seconds = session(window, app, args.edits, args.steps, args.size)
        window.pictures.wait()
        app.processEvents()
        gc.collect()
        after = rss_mib()
        stacks = window.undo._stacks
        held = sum(s.count() for s in stacks.values())
        per_edit = baseline_per_edit(args.size)
        window.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    grown = after - opened
    old = per_edit * args.edits
    print(
        f"{args.edits} mask edits of {args.size}x{args.size} and {args.steps} image steps "
        f"over {args.images} images in {seconds:.0f} s"
    )
    print(
        f"window memory: {opened:.0f} MiB after opening, {after:.0f} MiB after the session "
        f"(+{grown:.0f} MiB); history holds {held} steps on {len(stacks)} images"
    )
    print(
        f"baseline (decoded masks before and after, no limit): {per_edit:.2f} MiB per edit, "
        f"+{old:.0f} MiB for {args.edits} edits (scaled from {BASELINE_EDITS})"
    )
    print(f"ratio: the session grew {old / max(grown, 1.0):.0f}x less than the baseline's history")


if __name__ == "__main__":
    main()
