"""Render the application icon from its SVG: the PNG sizes, the Windows .ico, the macOS .icns.

    python packaging/render_icons.py      # needs rsvg-convert (Debian: librsvg2-bin) and Pillow

The results are committed in resources/icons/, so building never needs this; run it after
editing resources/icons/maskdesk.svg.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512)  # Pillow adds the @2x variants from these


def main() -> int:
    svg = ICONS / "maskdesk.svg"
    for size in SIZES:
        subprocess.run(
            [
                "rsvg-convert",
                "-w",
                str(size),
                "-h",
                str(size),
                str(svg),
                "-o",
                str(ICONS / f"maskdesk-{size}.png"),
            ],
            check=True,
        )
    largest = Image.open(ICONS / "maskdesk-512.png")
    # Each size from its own rendering (crisper small sizes than a downscale of 512).
    ico_frames = [Image.open(ICONS / f"maskdesk-{s}.png") for s in ICO_SIZES]
    ico_frames[-1].save(
        ICONS / "maskdesk.ico", sizes=[(s, s) for s in ICO_SIZES], append_images=ico_frames[:-1]
    )
    largest.save(ICONS / "maskdesk.icns", sizes=[(s, s) for s in ICNS_SIZES])
    print(f"rendered {len(SIZES)} PNGs, maskdesk.ico and maskdesk.icns in {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
