"""Peak memory and time of reading a labelme file of a big photo, against full-frame drawing.

    python benchmarks/labelme_memory.py [--width 6000 --height 4000 --shapes 50]

One labelme JSON (imageWidth x imageHeight, as labelme writes it) with SHAPES polygons of 40
to 400 pixels across, each its own instance, as `maskdesk import FOLDER --labelme` reads it.

- ours: `core.labelme.read_labelme_folder` (each shape drawn on its own box, kept as a crop).
- full-frame: what the reader did before: each shape drawn with ImageDraw on a full-frame
  canvas, instances kept as full frames until the file is read, then cropped.

Each runs in its own child process and reports its peak RSS (VmHWM) above its RSS after
imports; both must give the same masks. Not part of the test run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _make(folder: Path, width: int, height: int, shapes: int) -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    out = []
    for k in range(shapes):
        size = float(rng.uniform(40, 400))
        cx, cy = rng.uniform(size, width - size), rng.uniform(size, height - size)
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=8))
        points = [[cx + size / 2 * np.cos(a), cy + size / 2 * np.sin(a)] for a in angles]
        out.append(
            {
                "label": f"class{k % 5}",
                "points": [[round(x, 2), round(y, 2)] for x, y in points],
                "group_id": None,
                "description": "",
                "shape_type": "polygon",
                "flags": {},
                "mask": None,
            }
        )
    doc = {
        "version": "5.5.0",
        "flags": {},
        "shapes": out,
        "imagePath": "big.jpg",
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }
    (folder / "big.json").write_text(json.dumps(doc))


def _full_frame(folder: Path) -> list:
    import numpy as np
    from PIL import Image, ImageDraw

    from maskdesk.core.masks import CropMask

    doc = json.loads((folder / "big.json").read_text())
    width, height = doc["imageWidth"], doc["imageHeight"]
    groups = {}
    for index, shape in enumerate(doc["shapes"]):
        canvas = Image.new("L", (width, height))
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
        groups[index] = np.asarray(canvas, dtype=bool)
    return [CropMask.from_full(full) for full in groups.values()]


def _child(mode: str, folder: Path) -> None:
    from maskdesk.core.labelme import read_labelme_folder

    base = _kib("VmRSS")
    start = time.perf_counter()
    if mode == "ours":
        image = read_labelme_folder(folder, {"big.jpg"}).coco.images[0]
        masks = [i.mask for i in image.instances]
    else:
        masks = _full_frame(folder)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for mask in sorted(masks, key=lambda m: (m.x, m.y, m.bits.tobytes())):
        digest.update(f"{mask.x},{mask.y},{mask.bits.shape}".encode() + mask.bits.tobytes())
    peak = _kib("VmHWM") - base
    print(json.dumps({"peak_mib": peak / 1024, "seconds": seconds, "masks": digest.hexdigest()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--shapes", type=int, default=50)
    parser.add_argument("--child", choices=("ours", "full-frame"))
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.child:
        _child(args.child, Path(args.folder))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _make(folder, args.width, args.height, args.shapes)
        runs = {}
        for mode in ("ours", "full-frame"):
            cmd = [sys.executable, __file__, "--child", mode, "--folder", str(folder)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, naive = runs["ours"], runs["full-frame"]
    print(f"{args.shapes} polygons on a {args.width} x {args.height} labelme file")
    for mode, run in runs.items():
        print(f"  {mode:<10} peak {run['peak_mib']:8.1f} MiB above start, {run['seconds']:.2f} s")
    same = ours["masks"] == naive["masks"]
    print(f"  same masks: {same}")
    print(
        f"  memory ratio full-frame / ours: {naive['peak_mib'] / max(ours['peak_mib'], 0.1):.1f}x, "
        f"time ratio: {naive['seconds'] / max(ours['seconds'], 1e-6):.1f}x"
    )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
