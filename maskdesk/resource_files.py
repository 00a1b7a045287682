"""The files shipped with maskdesk: sample photos, the application icon, the toolbar icons
(Lucide, with their licence; see ui/icons.py), the .desktop entry.

They are the package data of `maskdesk.resources` (the repository's top-level `resources/`
folder, mapped into the package by pyproject.toml) and are found through importlib.resources,
so a wheel, an editable install and a PyInstaller bundle all find them the same way.
"""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from maskdesk.core.store import user_data_root

PACKAGE = "maskdesk.resources"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SAMPLE_SUFFIXES = (".jpg", ".md")  # the photos and their licence


def resource(*parts: str) -> Traversable:
    """One file or folder of the package data, e.g. `resource("icons", "maskdesk.svg")`."""
    node = files(PACKAGE)
    for part in parts:
        node = node.joinpath(part)
    return node


def resource_path(*parts: str) -> Path:
    """The same as a real path on disk: Qt and the project store need one.

    Every way maskdesk is installed (wheel, editable, bundle) keeps its data as plain files;
    a zipped install would not, and is refused here with a clear error instead of a
    confusing one later.
    """
    node = resource(*parts)
    if not isinstance(node, Path) or not node.exists():
        raise FileNotFoundError(
            f"maskdesk's data file {'/'.join(parts)} is missing from this installation "
            f"(looked in {node}); reinstall maskdesk."
        )
    return node


def samples_dir() -> Path:
    """The sample photos as installed (may be read-only: /opt, a system site-packages)."""
    return resource_path("samples")


def icon_files() -> list[Path]:
    """The application icon's PNG renderings, smallest first (Qt picks the size it needs)."""
    return [resource_path("icons", f"maskdesk-{size}.png") for size in ICON_SIZES]


def user_samples(data_root: Path | None = None) -> Path:
    """A copy of the samples in the user's data folder, made once; the folder to open.

    The window writes its project (`.maskdesk/`) beside the images it opens; on a copy that
    stays out of the installation, which is then read-only and removes cleanly. Files the
    user already has are left alone. If the copy cannot be made, the installed folder is
    returned (its project then goes to the store's user-folder fallback).
    """
    source = samples_dir()
    target = (data_root or user_data_root()) / "maskdesk" / "samples"
    try:
        target.mkdir(parents=True, exist_ok=True)
        for item in sorted(source.iterdir()):
            if item.is_file() and item.suffix.lower() in SAMPLE_SUFFIXES:
                copy = target / item.name
                if not copy.exists():
                    partial = copy.with_name(copy.name + ".part")
                    shutil.copyfile(item, partial)
                    os.replace(partial, copy)  # a copy cut short never looks complete
    except OSError:
        return source
    return target
