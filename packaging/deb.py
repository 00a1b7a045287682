"""The Debian package of the bundle: /opt/maskdesk, /usr/bin/maskdesk, menu entry and icons.

Called by build.py; `build_deb(bundle, out_dir, version)` returns the .deb's path. Files are
owned by root (dpkg-deb --root-owner-group), so neither fakeroot nor root is needed. No
maintainer scripts: dpkg's triggers of desktop-file-utils and hicolor-icon-theme refresh the
menu and icon caches when the files come and go.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESOURCES = ROOT / "resources"
MAINTAINER = os.environ.get(
    "MASKDESK_DEB_MAINTAINER", "maskdesk maintainers <maskdesk@users.noreply.github.com>"
)
# Used when dpkg-shlibdeps is not there: what the bundle's libraries need from the system
# on Debian 12 / Ubuntu 22.04 (C and C++ runtimes, OpenGL, fonts, X11/xcb and Wayland).
FALLBACK_DEPENDS = (
    "libc6 (>= 2.34), libgcc-s1, libstdc++6, zlib1g, libglib2.0-0, libdbus-1-3, "
    "libfontconfig1, libfreetype6, libgl1, libegl1, libx11-6, libx11-xcb1, libxcb1, "
    "libxcb-cursor0, libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-randr0, "
    "libxcb-render-util0, libxcb-render0, libxcb-shape0, libxcb-shm0, libxcb-sync1, "
    "libxcb-util1, libxcb-xfixes0, libxcb-xkb1, libxkbcommon0, libxkbcommon-x11-0, "
    "libwayland-client0, libwayland-cursor0, libwayland-egl1"
)
SHARED_LIBRARY = re.compile(r"\.so(\.|$)")

CONTROL = """\
Package: maskdesk
Version: {version}
Architecture: amd64
Maintainer: {maintainer}
Installed-Size: {size_kib}
Depends: {depends}
Section: graphics
Priority: optional
Description: pre-label images with Mask R-CNN, review masks, export COCO
 maskdesk pre-labels a folder of images with Mask R-CNN (torchvision's COCO
 models, or one fine-tuned on your own classes), keeps every instance as a
 raster mask to accept, reject or repair in its review window, and writes
 COCO JSON that pycocotools, CVAT, Label Studio and detectron2 read.
 .
 This package is a self-contained build with its own Python, Qt and PyTorch
 under /opt/maskdesk; it runs the models on the CPU.
"""

COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: maskdesk
Comment: /opt/maskdesk is a PyInstaller bundle: maskdesk with a Python interpreter and
 the libraries it runs on, each unmodified and under its own licence, listed in
 /opt/maskdesk/_internal/maskdesk/resources/licenses/THIRD-PARTY.md; their licence
 files are in the *.dist-info folders under /opt/maskdesk/_internal.

Files: *
Copyright: 2025 the maskdesk authors
License: Expat

Files: opt/maskdesk/_internal/maskdesk/resources/samples/*
Copyright: NASA, SpaceX, Stefan van der Walt, Rachel Michetti
License: public-domain and CC0-1.0
 See /opt/maskdesk/_internal/maskdesk/resources/samples/LICENSE.md.

Files: {lucide}
Copyright: Lucide Icons and Contributors; Cole Bemis (the icons derived from Feather)
License: ISC and Expat
 The toolbar icons, Lucide's. See
 /opt/maskdesk/_internal/maskdesk/resources/icons/LICENSE.

License: Expat
{expat}
"""

README_DEBIAN = """\
maskdesk for Debian
===================

The whole application (Python, Qt, PyTorch) lives in /opt/maskdesk; /usr/bin/maskdesk
starts it. It writes only to the user's folders: ~/.local/share/maskdesk (the copy of
the sample photos, projects of read-only folders, the error log), ~/.config/maskdesk
(settings) and the torch hub cache for downloaded weights (~/.cache/torch/hub, or
$TORCH_HOME/hub).

This build carries the CPU part of PyTorch only: the models run on the CPU, and a
GPU is not used even when there is one. For a GPU, install maskdesk with pip into a
virtual environment with PyTorch's CUDA wheels.
"""

CHANGELOG = """\
maskdesk ({version}) unstable; urgency=medium

  * Desktop bundle of maskdesk {version}.

 -- {maintainer}  Wed, 01 Jan 2025 00:00:00 +0000
"""


def _gzip(text: str, target: Path) -> None:
    """gzip -9n: no name or time stamp in the header, as Debian wants."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(target, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as out,
    ):
        out.write(text.encode("utf-8"))


def _install(source: Path, target: Path, mode: int = 0o644) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def _copy_tree(source: Path, target: Path) -> None:
    """Hard links where the file system allows (the bundle is gigabytes), copies otherwise."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=link_or_copy)


def _is_program(path: Path) -> bool:
    """An executable file: an ELF program (not a shared library), or a script outside the
    bundle's `_internal` (inside, scripts are library modules that happen to have a #!)."""
    if not path.stat().st_mode & 0o111 or SHARED_LIBRARY.search(path.name):
        return False
    with open(path, "rb") as f:
        head = f.read(4)
    return head == b"\x7fELF" or (head[:2] == b"#!" and "_internal" not in path.parts)


def _normalise_modes(tree: Path) -> None:
    """0755 for folders and programs, 0644 for everything else (shared libraries included)."""
    for dirpath, _dirnames, filenames in os.walk(tree):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            # A hard-linked bundle file shares its mode with dist/: harmless there too.
            path.chmod(0o755 if _is_program(path) else 0o644)


def _depends(stage: Path) -> str:
    """Versioned dependencies from dpkg-shlibdeps on the bundle's ELF files, if it is there."""
    if shutil.which("dpkg-shlibdeps") is None:
        return FALLBACK_DEPENDS
    elves, lib_dirs = [], set()
    for path in stage.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    elves.append(path)
                    lib_dirs.add(path.parent)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "debian").mkdir()
        (Path(scratch) / "debian" / "control").write_text(
            "Source: maskdesk\n\nPackage: maskdesk\nArchitecture: amd64\n"
        )
        proc = subprocess.run(
            ["dpkg-shlibdeps", "-O", "--ignore-missing-info", "--warnings=0"]
            + [f"-l{d}" for d in sorted(lib_dirs)]
            + [f"-e{p}" for p in sorted(elves)],
            cwd=scratch,
            capture_output=True,
            text=True,
        )
    match = re.search(r"^shlibs:Depends=(.*)$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not match:
        print(f"deb.py: dpkg-shlibdeps failed, using the fixed list:\n{proc.stderr[-2000:]}")
        return FALLBACK_DEPENDS
    return match.group(1)


def _toolbar_icons() -> str:
    """The Lucide icons as installed (every SVG of resources/icons/ but the app's own), one
    per continuation line of a Files field."""
    names = sorted(p.name for p in (RESOURCES / "icons").glob("*.svg") if p.name != "maskdesk.svg")
    return "\n ".join(f"opt/maskdesk/_internal/maskdesk/resources/icons/{n}" for n in names)


def build_deb(
    bundle: Path,
    out_dir: Path,
    version: str,
    *,
    compression: str = "xz",
    work: Path | None = None,
) -> Path:
    work = work or out_dir / "deb-stage"
    stage = work / "maskdesk"
    shutil.rmtree(work, ignore_errors=True)
    stage.mkdir(parents=True)
    _copy_tree(bundle, stage / "opt" / "maskdesk")
    _install(HERE / "linux" / "maskdesk", stage / "usr" / "bin" / "maskdesk", 0o755)
    _install(RESOURCES / "maskdesk.desktop", stage / "usr/share/applications/maskdesk.desktop")
    icons = stage / "usr" / "share" / "icons" / "hicolor"
    for png in sorted((RESOURCES / "icons").glob("maskdesk-*.png")):
        size = png.stem.split("-")[1]
        _install(png, icons / f"{size}x{size}" / "apps" / "maskdesk.png")
    _install(RESOURCES / "icons" / "maskdesk.svg", icons / "scalable" / "apps" / "maskdesk.svg")
    man = (HERE / "linux" / "maskdesk.1").read_text(encoding="utf-8")
    _gzip(man, stage / "usr" / "share" / "man" / "man1" / "maskdesk.1.gz")
    doc = stage / "usr" / "share" / "doc" / "maskdesk"
    expat = (RESOURCES / "licenses" / "maskdesk.txt").read_text(encoding="utf-8")
    expat_body = expat.split("\n\n", 2)[2]  # the licence text after its title and copyright
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        COPYRIGHT.format(expat=_as_control_text(expat_body), lucide=_toolbar_icons())
    )
    (doc / "README.Debian").write_text(README_DEBIAN)
    _gzip(CHANGELOG.format(version=version, maintainer=MAINTAINER), doc / "changelog.gz")
    _normalise_modes(stage)

    size_kib = sum(p.lstat().st_size for p in stage.rglob("*") if not p.is_dir()) // 1024 + 1
    (stage / "DEBIAN").mkdir()
    (stage / "DEBIAN" / "control").write_text(
        CONTROL.format(
            version=version,
            maintainer=MAINTAINER,
            size_kib=size_kib,
            depends=_depends(stage / "opt"),
        )
    )
    _normalise_modes(stage / "DEBIAN")
    out = out_dir / f"maskdesk_{version}_amd64.deb"
    out.unlink(missing_ok=True)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(stage), str(out)],
        check=True,
    )
    shutil.rmtree(work)
    return out


def _as_control_text(text: str) -> str:
    """A free-text field of a Debian control-style file: each line indented, '.' for blanks."""
    return "\n".join(f" {line}" if line.strip() else " ." for line in text.strip().splitlines())
