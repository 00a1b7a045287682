"""What the bundle leaves out: Qt plugins maskdesk never loads, CUDA libraries nothing links.

Imported by `maskdesk.spec` (PyInstaller runs the spec with this folder on sys.path). The
rules are written against PyInstaller's table of contents: entries `(dest, source, kind)`,
`dest` being the path inside the bundle's `_internal` folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import PurePosixPath

Entry = tuple[str, str, str]

# Python modules that are in the environment but never imported by maskdesk, or only by code
# maskdesk never runs. triton and cuda-python come with CUDA builds of torch; torch imports
# them inside try blocks (a CPU-only torch has neither).
EXCLUDED_MODULES = [
    "triton",
    "cuda",
    "torch.utils.tensorboard",
    "torch.utils.benchmark",
    "tensorboard",
    "pytest",
    "_pytest",
    "pytestqt",
    "faster_coco_eval",
    "mypy",
    "ruff",
    "pip",
    "setuptools",
    "tkinter",
    "IPython",
    "matplotlib",
    "PyInstaller",
]

# Qt plugin folders the window uses; any other plugin folder is left out. `styles` holds
# the Windows 11 style, `xcbglintegrations` and the `wayland-*` folders the Linux windowing.
QT_PLUGIN_DIRS = {
    "platforms",
    "platformthemes",
    "platforminputcontexts",
    "imageformats",
    "iconengines",
    "styles",
    "xcbglintegrations",
    "wayland-decoration-client",
    "wayland-graphics-integration-client",
    "wayland-shell-integration",
}
# Within those folders, what goes. Platforms: no framebuffer, VNC or EGL-only back ends
# (the desktop ones are xcb, wayland, windows, cocoa; offscreen and minimal run headless
# checks). Image formats: maskdesk decodes pictures with Pillow; Qt reads only its own JPEG
# thumbnail cache (and SVG for themed icons). The virtual keyboard would drag in QtQuick.
# The GTK theme would bundle the build machine's GTK stack, which must match the desktop's
# own; without it Qt draws its own style and dialogs (the portal theme still gives the
# desktop's file dialogs where xdg-desktop-portal runs).
QT_PLUGINS_DROPPED = re.compile(
    r"(qeglfs|qlinuxfb|qminimalegl|qvkkhrdisplay|qvnc|qdirect2d|qwebgl|qgtk3"
    r"|qgif|qicns|qico|qpdf|qtga|qtiff|qwbmp|qwebp|qmacheif|qmacjp2"
    r"|qtvirtualkeyboardplugin)\b"
)
QT_TRANSLATIONS_KEPT = re.compile(r"qtbase_[a-z_A-Z]+\.qm$")

# Shared libraries torch loads on demand rather than links: the CUDA linear algebra and
# runtime compiler, only ever used on a GPU.
TORCH_LAZY_CUDA = {"libtorch_cuda_linalg.so", "libcaffe2_nvrtc.so"}
# Loaded by torch/__init__.py through ctypes, so no other library names it.
TORCH_PRELOADED = {"libtorch_global_deps.so"}
# Loaded by PyInstaller's bootloader, not linked by anything in the bundle.
PRELOADED_TOP_LEVEL = ("libpython", "python3")
# Files of the torch wheel no program of maskdesk's runs: headers, CMake files, the protobuf
# compiler, and the C++ test programs and test folder some builds ship.
UNUSED_FILES = re.compile(
    r"^torch/(include|share|test)/|^torch/bin/(protoc|test_|\w+Test$)|^torch/lib/lib(torchbind_test|"
    r"aoti_custom_ops|backend_with_compiler)\.|\.(a|lib|pyi)$"
)


def _parts(dest: str) -> tuple[str, ...]:
    return PurePosixPath(dest.replace("\\", "/")).parts


def qt_plugin_kept(dest: str) -> bool:
    """False for a Qt plugin (or a plugin-dependent file) the app never loads."""
    parts = _parts(dest)
    if "plugins" not in parts:
        return True
    i = parts.index("plugins")
    if i == 0 or parts[i - 1] not in ("Qt", "PySide6") or len(parts) < i + 3:
        return True
    folder, name = parts[i + 1], parts[-1]
    return folder in QT_PLUGIN_DIRS and not QT_PLUGINS_DROPPED.search(name)


def data_kept(dest: str) -> bool:
    parts = _parts(dest)
    if "translations" in parts and parts[0] == "PySide6":
        return bool(QT_TRANSLATIONS_KEPT.search(parts[-1]))
    return not UNUSED_FILES.search("/".join(parts)) and qt_plugin_kept(dest)


def needed_libraries(path: str) -> list[str]:
    """The DT_NEEDED entries of an ELF file (objdump is there: PyInstaller needs it too)."""
    out = subprocess.run(
        ["objdump", "-p", path], capture_output=True, text=True, check=False
    ).stdout
    return [line.split()[1] for line in out.splitlines() if line.strip().startswith("NEEDED")]


def _prunable(dest: str) -> bool:
    """Libraries that may go when nothing kept links them: CUDA's, torch's, Qt's own, and
    system libraries PyInstaller copied into the top folder for a plugin that was dropped."""
    parts = _parts(dest)
    return (
        parts[0] == "nvidia"
        or parts[:2] == ("torch", "lib")
        or parts[:3] == ("PySide6", "Qt", "lib")
        or (len(parts) == 1 and not parts[0].startswith(PRELOADED_TOP_LEVEL))
    )


def prune_binaries(
    binaries: Iterable[Entry], *, keep_cuda: bool
) -> tuple[list[Entry], list[Entry]]:
    """Drop dropped-plugin and unneeded CUDA libraries; returns (kept, dropped).

    A library under nvidia/, torch/lib/ or PySide6/Qt/lib/ stays only when something kept
    links it (DT_NEEDED, followed transitively), so the Qt libraries of dropped plugins go
    and, without `keep_cuda`, so does every CUDA library that is only loaded on demand on a
    GPU (cuDNN's engines, cuSOLVER, NVRTC, ...): `import torch` still succeeds and the app
    runs on the CPU. With `keep_cuda` (a GPU bundle) every CUDA library stays.
    """
    entries = list(binaries)
    dropped = [
        e
        for e in entries
        if e[2] != "SYMLINK"
        and (not qt_plugin_kept(e[0]) or UNUSED_FILES.search("/".join(_parts(e[0]))))
    ]
    if not keep_cuda:
        dropped += [e for e in entries if _parts(e[0])[-1] in TORCH_LAZY_CUDA]
    gone = {e[0] for e in dropped}
    files = [e for e in entries if e[0] not in gone and e[2] != "SYMLINK"]
    if sys.platform.startswith("linux") and shutil.which("objdump"):
        by_name: dict[str, list[Entry]] = {}
        for e in files:
            by_name.setdefault(_parts(e[0])[-1], []).append(e)
        reached: set[str] = set()
        todo = [
            e
            for e in files
            if e[2] == "EXTENSION"  # Python imports these itself
            or not _prunable(e[0])
            or _parts(e[0])[-1] in TORCH_PRELOADED
            or (keep_cuda and _parts(e[0])[0] == "nvidia")
        ]
        while todo:
            e = todo.pop()
            if e[0] in reached:
                continue
            reached.add(e[0])
            for name in needed_libraries(e[1]):
                todo.extend(by_name.get(name, []))
        unused = [e for e in files if e[0] not in reached]
        dropped += unused
        gone |= {e[0] for e in unused}
    kept = [e for e in entries if e[0] not in gone]
    return kept, dropped


def drop_dangling_links(
    binaries: list[Entry], datas: list[Entry]
) -> tuple[list[Entry], list[Entry]]:
    """Remove the links PyInstaller makes (in the top folder, to a library deeper down)
    whose target was left out; they sit in either list."""
    present = {_normalise(e[0]) for e in binaries + datas if e[2] != "SYMLINK"}

    def keep(e: Entry) -> bool:
        return e[2] != "SYMLINK" or _normalise(str(PurePosixPath(e[0]).parent / e[1])) in present

    return [e for e in binaries if keep(e)], [e for e in datas if keep(e)]


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in _parts(path):
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)
