"""Build maskdesk's desktop bundle and this platform's installer, from the checkout.

    python packaging/build.py                 # Linux: dist/maskdesk/ and dist/maskdesk_*.deb
                                              # Windows: + the Inno Setup installer
                                              # macOS: dist/maskdesk.app and a .dmg

Needs the project installed with its `packaging` extra (`pip install -e '.[packaging]'`),
on Linux also `dpkg-deb` (and `dpkg-shlibdeps` for exact dependencies). Prints what took how
long and what is big, and writes the same to DIST/build-report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from deb import build_deb  # noqa: E402
from elf import tidy_bundle  # noqa: E402

NAME = "maskdesk"


def version() -> str:
    namespace: dict[str, str] = {}
    exec((ROOT / "maskdesk" / "__init__.py").read_text(encoding="utf-8"), namespace)
    return namespace["__version__"]


def run_pyinstaller(dist: Path, work: Path, keep_cuda: bool) -> None:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        sys.exit("build.py: PyInstaller is missing; install it with: pip install -e '.[packaging]'")
    env = dict(os.environ, MASKDESK_KEEP_CUDA="1" if keep_cuda else "0")
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(HERE / "maskdesk.spec"),
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
    ]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)


def tree_size(path: Path) -> int:
    """Bytes of the regular files under `path` (links not followed, not counted twice)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def largest_parts(bundle: Path, count: int = 15) -> list[tuple[str, int]]:
    """The bundle's biggest parts: a Python package's folder or a file of torch/lib and Qt."""
    internal = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    sizes: Counter[str] = Counter()
    for path in internal.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        parts = path.relative_to(internal).parts
        if (
            parts[0] == "nvidia"
            or parts[:2] == ("torch", "lib")
            or parts[:3]
            == (
                "PySide6",
                "Qt",
                "lib",
            )
        ):
            key = "/".join(parts)  # one library each: these are the heavy ones
        elif len(parts) > 1:
            key = parts[0] + "/"
        else:
            key = parts[0]
        sizes[key] += path.lstat().st_size
    return sizes.most_common(count)


def build_inno_setup(bundle: Path, dist: Path, ver: str) -> Path | None:
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    default = Path(os.environ.get("PROGRAMFILES(X86)", r"C:\Program Files (x86)"))
    candidate = default / "Inno Setup 6" / "ISCC.exe"
    if iscc is None and candidate.exists():
        iscc = str(candidate)
    if iscc is None:
        print("build.py: Inno Setup (ISCC) not found; the installer is not built")
        return None
    subprocess.run(
        [
            iscc,
            f"/DAppVersion={ver}",
            f"/DBundleDir={bundle}",
            f"/DRootDir={ROOT}",
            f"/O{dist}",
            str(HERE / "windows" / "maskdesk.iss"),
        ],
        check=True,
    )
    return dist / f"maskdesk-{ver}-windows-x64-setup.exe"


def build_dmg(app: Path, dist: Path, ver: str) -> Path:
    import platform

    stage = dist / "dmg-stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    shutil.copytree(app, stage / app.name, symlinks=True)
    (stage / "Applications").symlink_to("/Applications")  # drag-to-install target
    out = dist / f"maskdesk-{ver}-macos-{platform.machine()}.dmg"
    out.unlink(missing_ok=True)
    subprocess.run(
        [
            "hdiutil",
            "create",
            "-volname",
            "maskdesk",
            "-srcfolder",
            str(stage),
            "-ov",
            "-format",
            "UDZO",
            str(out),
        ],
        check=True,
    )
    shutil.rmtree(stage)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build" / "pyinstaller",
        help="PyInstaller's work folder",
    )
    parser.add_argument(
        "--keep-cuda",
        action="store_true",
        help="keep every CUDA library of a CUDA torch (a GPU bundle, several GB)",
    )
    parser.add_argument(
        "--no-installer",
        action="store_true",
        help="only the bundle: no .deb, Windows installer or .dmg",
    )
    parser.add_argument(
        "--deb-compression",
        default="xz",
        choices=["xz", "zstd", "gzip"],
        help="compression of the .deb (xz: smallest, what Debian uses)",
    )
    args = parser.parse_args(argv)
    dist, ver = args.dist.resolve(), version()
    report: dict[str, object] = {"version": ver, "platform": sys.platform}

    start = time.monotonic()
    run_pyinstaller(dist, args.work.resolve(), args.keep_cuda)
    bundle = dist / NAME
    if sys.platform.startswith("linux"):
        report["elf"] = tidy_bundle(bundle)
    bundle_seconds = round(time.monotonic() - start, 1)
    bundle_bytes, largest = tree_size(bundle), largest_parts(bundle)
    report.update(
        bundle=str(bundle),
        bundle_seconds=bundle_seconds,
        bundle_bytes=bundle_bytes,
        largest=largest,
    )

    installer: Path | None = None
    installer_seconds = 0.0
    if not args.no_installer:
        start = time.monotonic()
        if sys.platform.startswith("linux"):
            installer = build_deb(
                bundle,
                dist,
                ver,
                compression=args.deb_compression,
                work=args.work.resolve() / "deb",
            )
        elif sys.platform == "win32":
            installer = build_inno_setup(bundle, dist, ver)
        elif sys.platform == "darwin":
            installer = build_dmg(dist / f"{NAME}.app", dist, ver)
        installer_seconds = round(time.monotonic() - start, 1)
    if installer is not None:
        report.update(
            installer=str(installer),
            installer_seconds=installer_seconds,
            installer_bytes=installer.stat().st_size,
        )

    (dist / "build-report.json").write_text(json.dumps(report, indent=2) + "\n")
    mib = 1024 * 1024
    print(f"bundle   {bundle}: {bundle_bytes / mib:,.0f} MiB (built in {bundle_seconds} s)")
    for part, size in largest:
        print(f"  {size / mib:8,.1f} MiB  {part}")
    if installer is not None:
        print(
            f"installer {installer}: {installer.stat().st_size / mib:,.0f} MiB "
            f"(built in {installer_seconds} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
