"""What the Ray engine costs against the local one, on the same images in the same run.

    pip install -e '.[ray]'
    python benchmarks/ray_overhead.py [--images 80] [--model tests/fixtures/shapes-tiny.pt]

Both engines run in this process, as `maskdesk predict` drives them, on N synthetic 256x256
shapes images with the fixture model (or --model), one torch thread per model:

- local: `predict_files` (decoding ahead on 2 threads, batch 1), the baseline;
- Ray, 1 worker and 2 workers, on a local Ray of 2 CPUs started here
  (`ray.init(num_cpus=2)`): decode actors feeding model actors, results streamed back in
  order.

Printed: Ray's start-up (ray.init, then the first result: actors started, model loaded from
the object store), the steady rate (images/s after the first result), the per-image overhead
of 1 worker against local ((1/ray rate) - (1/local rate)), and the ratio of each steady rate
to local. The annotations of every run are compared with the local ones. Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from maskdesk.datasets.shapes import generate  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "shapes-tiny.pt"


def _timed(results: object) -> tuple[float, float, list[object]]:
    """(seconds to the first result, seconds in all, the instances of each image)."""
    started = time.perf_counter()
    first = 0.0
    found: list[object] = []
    for result in results:  # type: ignore[attr-defined]
        if not found:
            first = time.perf_counter() - started
        found.append(result.instances)
    return first, time.perf_counter() - started, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=80, help="shapes images (80)")
    parser.add_argument("--model", default=str(FIXTURE), help="model file (the fixture)")
    args = parser.parse_args()
    try:
        import ray
    except ImportError:
        print("needs Ray: pip install -e '.[ray]'", file=sys.stderr)
        return 2
    from maskdesk.inference.models import load_model
    from maskdesk.inference.predictor import Predictor, predict_files
    from maskdesk.inference.ray_engine import RayEngine

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.images):
            path = Path(tmp) / f"s{i:04d}.png"
            Image.fromarray(generate(5, i).image).save(path)
            paths.append(path)
        predictor = Predictor(load_model(args.model, offline=True), "cpu", threads=1)
        _first, local_s, local = _timed(predict_files(predictor, paths, decoders=2))
        local_rate = len(paths) / local_s
        print(f"{len(paths)} images, model {Path(args.model).name}, {os.cpu_count()} CPUs")
        print(f"local engine, 1 thread:  {local_rate:6.2f} images/s ({local_s:.1f} s)")

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - started
        print(f"ray.init (local Ray, 2 CPUs): {init_s:.1f} s")
        same = True
        for workers in (1, 2):
            engine = RayEngine.start(args.model, workers=workers, device="cpu")
            first, total, found = _timed(engine.run(paths, lambda: False))
            steady = (len(paths) - 1) / max(total - first, 1e-9)
            same &= found == local
            line = (
                f"Ray, {workers} worker{'s' if workers > 1 else ' '}: first result after "
                f"{first:5.1f} s, then {steady:6.2f} images/s = {steady / local_rate:.2f}x local"
            )
            if workers == 1:
                overhead = 1 / steady - 1 / local_rate
                line += f"; overhead {overhead * 1000:+.1f} ms an image"
            print(line)
        ray.shutdown()
        print("annotations equal to the local engine's:", "yes" if same else "NO")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
