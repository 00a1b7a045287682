"""The package data: declared once in pyproject.toml, found through importlib.resources.

Fast checks that run with every test run; the slow ones that install and run a wheel or the
bundle are marked `packaging` (test_wheel.py, test_bundle.py).
"""

from __future__ import annotations

import configparser
import struct
import tomllib
import zipfile
from pathlib import Path

import pytest

from maskdesk import resource_files
from maskdesk.resource_files import ICON_SIZES, user_samples
from maskdesk.ui.icons import ICONS
from tests.packaging.checks import build_wheel, setuptools_version

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
SAMPLE_NAMES = ["LICENSE.md", "astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]


def test_every_sub_package_is_listed_for_the_wheel() -> None:
    # The package list is explicit (resources/ is mapped into it); a new sub-package that is
    # not listed would be missing from every wheel and bundle.
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "maskdesk").rglob("__init__.py")
    }
    assert set(SETUPTOOLS["packages"]) == found | {"maskdesk.resources"}


def test_every_resource_file_is_package_data() -> None:
    data_dir = ROOT / SETUPTOOLS["package-dir"]["maskdesk.resources"]
    patterns = SETUPTOOLS["package-data"]["maskdesk.resources"]
    covered = {p for pattern in patterns for p in data_dir.glob(pattern)}
    on_disk = {
        p
        for p in data_dir.rglob("*")
        if p.is_file()
        and ".maskdesk" not in p.parts  # the samples' own project when opened in place
        and "__pycache__" not in p.parts
        and p.name != "__init__.py"
    }
    # The .ico and .icns are the Windows and macOS installers' (packaging/), not the app's.
    installers_only = {data_dir / "icons" / "maskdesk.ico", data_dir / "icons" / "maskdesk.icns"}
    assert on_disk - covered == installers_only
    assert all(".maskdesk" not in p.parts for p in covered)


def test_resources_are_found_through_the_package() -> None:
    samples = resource_files.samples_dir()
    assert sorted(p.name for p in samples.iterdir() if p.is_file()) == SAMPLE_NAMES
    assert resource_files.resource("maskdesk.desktop").is_file()
    assert resource_files.resource_path("icons", "maskdesk.svg").read_text().startswith("<?xml")


def test_the_toolbar_icons_ship_with_their_licence_and_version() -> None:
    data_dir = ROOT / SETUPTOOLS["package-dir"]["maskdesk.resources"]
    patterns = SETUPTOOLS["package-data"]["maskdesk.resources"]
    covered = {p for pattern in patterns for p in data_dir.glob(pattern)}
    shipped = [resource_files.resource_path("icons", name) for name in sorted(set(ICONS.values()))]
    licence = resource_files.resource_path("icons", "LICENSE")
    note = resource_files.resource_path("icons", "README.md").read_text()
    assert {data_dir / "icons" / p.name for p in [*shipped, licence]} <= covered
    assert licence.read_text().startswith("ISC License\n\nCopyright (c)")
    # Every file is Lucide's, of the version the note names (each file's header says which).
    assert "Lucide 1.87.0" in note
    for path in shipped:
        assert path.read_text().startswith("<!-- @license lucide-static v1.87.0 - ISC -->"), path
    # Only the icons the window uses: none left over from an earlier choice.
    svgs = {p.name for p in (data_dir / "icons").glob("*.svg")}
    assert svgs == set(ICONS.values()) | {"maskdesk.svg"}


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_each_icon_png_has_the_size_its_name_says() -> None:
    icons = resource_files.icon_files()
    assert [_png_size(p) for p in icons] == [(s, s) for s in ICON_SIZES]


def test_the_desktop_entry_starts_maskdesk_with_its_icon() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    entry.read_string(resource_files.resource("maskdesk.desktop").read_text())
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"].split()[0] == "maskdesk"
    assert section["Icon"] == "maskdesk"
    assert "Graphics" in section["Categories"].split(";")


def test_the_samples_are_copied_to_the_user_folder_once(tmp_path: Path) -> None:
    folder = user_samples(tmp_path)
    assert folder == tmp_path / "maskdesk" / "samples"
    assert sorted(p.name for p in folder.iterdir()) == SAMPLE_NAMES
    assert (folder / "chelsea.jpg").read_bytes() == (
        resource_files.samples_dir() / "chelsea.jpg"
    ).read_bytes()
    (folder / "chelsea.jpg").write_bytes(b"the user's own edit")
    (folder / "coffee.jpg").unlink()
    assert user_samples(tmp_path) == folder
    assert (folder / "chelsea.jpg").read_bytes() == b"the user's own edit"  # left alone
    assert (folder / "coffee.jpg").is_file()  # a missing one comes back


def test_an_unwritable_user_folder_opens_the_installed_samples(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    assert user_samples(blocker) == resource_files.samples_dir()


@pytest.mark.skipif(
    (setuptools_version() or (0,)) < (68,),
    reason="building the wheel offline needs setuptools>=68 in this environment",
)
def test_the_wheel_carries_the_resources_and_nothing_of_the_checkout(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    data = sorted(n for n in names if n.startswith("maskdesk/resources/"))
    assert data == sorted(
        [f"maskdesk/resources/samples/{n}" for n in SAMPLE_NAMES]
        + [f"maskdesk/resources/icons/maskdesk-{s}.png" for s in ICON_SIZES]
        + [f"maskdesk/resources/icons/{n}" for n in sorted(set(ICONS.values()))]
        + [
            "maskdesk/resources/__init__.py",
            "maskdesk/resources/icons/maskdesk.svg",
            "maskdesk/resources/icons/LICENSE",
            "maskdesk/resources/icons/README.md",
            "maskdesk/resources/maskdesk.desktop",
            "maskdesk/resources/licenses/THIRD-PARTY.md",
            "maskdesk/resources/licenses/maskdesk.txt",
        ]
    )
    assert "maskdesk/app.py" in names and "maskdesk/ui/launch.py" in names
    assert not [n for n in names if n.startswith(("tests/", "packaging/", "resources/"))]
