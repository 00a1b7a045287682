"""The desktop bundle and its Debian package, built from the checkout and run as installed.

Marked `packaging` (minutes: PyInstaller, then dpkg-deb on gigabytes):

    python -m pytest -m packaging tests/packaging/test_bundle.py

builds with `packaging/build.py` into a temporary folder (or MASKDESK_PACKAGING_OUT, kept),
unpacks the .deb into a temporary root with `dpkg -x` and runs its /usr/bin/maskdesk there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maskdesk import __version__
from maskdesk.resource_files import ICON_SIZES
from tests.packaging.checks import (
    ROOT,
    check_installed_command,
)

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .deb is Linux's"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("PyInstaller", reason="pip install -e '.[packaging]'")
    out = os.environ.get("MASKDESK_PACKAGING_OUT")
    dist = Path(out).resolve() if out else tmp_path_factory.mktemp("dist")
    # zstd unless told: xz takes half an hour on the gigabytes of a CUDA torch (CI, with
    # CPU-only torch, asks for xz, Debian's usual).
    compression = os.environ.get("MASKDESK_DEB_COMPRESSION", "zstd")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "build.py"),
            "--dist",
            str(dist),
            "--work",
            str(dist / "work"),
            "--deb-compression",
            compression,
        ],
        check=True,
        timeout=3600,
    )
    return dist


@pytest.fixture(scope="module")
def deb(built: Path) -> Path:
    (deb,) = built.glob(f"maskdesk_{__version__}_*.deb")
    return deb


@pytest.fixture(scope="module")
def root(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
    return target


def test_the_package_puts_files_in_the_standard_places(deb: Path, root: Path) -> None:
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Version", "Depends"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Package: maskdesk\nVersion: {__version__}\n" in fields
    assert "libc6" in fields and "libxcb-cursor0" in fields
    icons = root / "usr/share/icons/hicolor"
    assert sorted(p.relative_to(icons).as_posix() for p in icons.rglob("maskdesk.*")) == sorted(
        [f"{s}x{s}/apps/maskdesk.png" for s in ICON_SIZES] + ["scalable/apps/maskdesk.svg"]
    )
    for path in (
        "usr/bin/maskdesk",
        "opt/maskdesk/maskdesk",
        "usr/share/applications/maskdesk.desktop",
        "usr/share/doc/maskdesk/copyright",
        "usr/share/man/man1/maskdesk.1.gz",
    ):
        assert (root / path).is_file(), path
    assert sorted(p.name for p in root.iterdir()) == ["opt", "usr"]
    assert sorted(p.name for p in (root / "usr").iterdir()) == ["bin", "share"]
    internal = root / "opt/maskdesk/_internal"
    present = {p.name for p in internal.rglob("*.so*")}
    # Left out: GPU-only CUDA libraries, Qt plugins the window never loads, test packages.
    for name in (
        "libcudnn_engines_precompiled.so.9",
        "libcusolver.so.12",
        "libqvnc.so",
        "libqgtk3.so",
    ):
        assert name not in present, name
    for package in ("triton", "pytest", "torch/test", "torch/include"):
        assert not (internal / package).exists(), package
    assert not [p for p in internal.rglob("*") if p.is_symlink() and not p.exists()]
    assert (internal / "maskdesk/resources/samples/chelsea.jpg").is_file()
    # The toolbar icons, their licence, and Qt's SVG reader that draws them.
    assert (internal / "maskdesk/resources/icons/LICENSE").is_file()
    assert (internal / "maskdesk/resources/icons/folder-open.svg").is_file()
    assert "libqsvg.so" in present


def test_the_installed_launcher_runs_headless_and_windowed(root: Path, tmp_path: Path) -> None:
    check_installed_command([str(root / "usr" / "bin" / "maskdesk")], root, tmp_path)
