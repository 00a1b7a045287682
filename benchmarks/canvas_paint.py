"""Canvas repaint against re-composing the overlay per paint, in one script.

    python benchmarks/canvas_paint.py [--repeat 10]

50 elliptical instances on a 12 MP (4000 x 3000) picture, a 1280 x 800 canvas offscreen.
- canvas: a full repaint (render into a window-sized image) after the first one, fitted and
  zoomed in 4x; and the first paint, which builds the cached crop images.
- baseline (what the first window does per paint): `render_overlay` on the full picture,
  wrapped as a QImage, scaled to the widget size.

Prints best-of-N times and ratios. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.render_export import best_of, elliptical_instances  # noqa: E402
from maskdesk.core.categories import Category, CategoryTable  # noqa: E402
from maskdesk.core.render import render_overlay  # noqa: E402
from maskdesk.ui.canvas import Canvas  # noqa: E402

WIDTH, HEIGHT = 4000, 3000
VIEW_W, VIEW_H = 1280, 800


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    instances = [
        inst.with_changes(id=i + 1)
        for i, inst in enumerate(elliptical_instances(rng, 50, HEIGHT, WIDTH, 0.03, 0.4))
    ]
    names = {1: "person", 2: "bicycle", 3: "car"}
    table = CategoryTable([Category(k, v) for k, v in names.items()])

    canvas = Canvas()
    canvas.resize(VIEW_W, VIEW_H)
    canvas.show()
    app.processEvents()
    canvas.set_image(rgb)
    canvas.set_instances(instances, names)
    target = QImage(VIEW_W, VIEW_H, QImage.Format.Format_ARGB32_Premultiplied)

    def paint() -> None:
        canvas.render(target)

    start = time.perf_counter()
    paint()
    first = time.perf_counter() - start
    fitted = best_of(args.repeat, paint)
    grab = best_of(args.repeat, canvas.grab)
    canvas.set_opacity(0.7)
    opacity = best_of(args.repeat, paint)
    canvas.set_selection([1, 2, 3])
    canvas.zoom_at(4.0, QPointF(VIEW_W / 2, VIEW_H / 2))
    zoomed = best_of(args.repeat, paint)
    steps = iter([1.25, 0.8] * args.repeat)

    def wheel_step() -> None:
        canvas.zoom_at(next(steps), QPointF(400, 300))
        paint()

    zoom_step = best_of(args.repeat, wheel_step)
    canvas.fit()

    def baseline() -> None:
        out = render_overlay(rgb, instances, table)
        h, w = out.shape[:2]
        image = QImage(out.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        image.scaled(
            VIEW_W,
            VIEW_H,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )

    base = best_of(max(2, args.repeat // 3), baseline)

    print(f"50 instances on {WIDTH} x {HEIGHT}, canvas {VIEW_W} x {VIEW_H}, best of {args.repeat}")
    print(f"  first paint (builds {canvas.cache_builds} crop images): {first * 1e3:8.1f} ms")
    print(f"  repaint, fitted:                   {fitted * 1e3:8.1f} ms")
    print(f"  grab(), fitted:                    {grab * 1e3:8.1f} ms")
    print(f"  repaint after an opacity change:   {opacity * 1e3:8.1f} ms")
    print(f"  repaint, 4x zoom, 3 selected:      {zoomed * 1e3:8.1f} ms")
    print(f"  paint after a wheel step (re-layer):{zoom_step * 1e3:7.1f} ms")
    print(f"  baseline render_overlay + scale:   {base * 1e3:8.1f} ms")
    print(f"  baseline / repaint (fitted):       {base / fitted:8.1f} x")
    print(f"  baseline / repaint (4x zoom):      {base / zoomed:8.1f} x")


if __name__ == "__main__":
    main()
