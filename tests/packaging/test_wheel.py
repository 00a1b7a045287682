"""The wheel, installed into a fresh virtual environment outside the checkout, works.

Marked `packaging` (about half a minute): `python -m pytest -m packaging tests/packaging`.
The fresh environment gets maskdesk from the wheel only; its dependencies (torch, Qt, ...)
are this environment's, seen through a path file rather than installed again (gigabytes).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.packaging.checks import (
    build_wheel,
    check_installed_command,
    setuptools_version,
    user_env,
)

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.skipif(
        (setuptools_version() or (0,)) < (68,),
        reason="building the wheel offline needs setuptools>=68 in this environment",
    ),
]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(work)
    env_dir = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The dependencies, after the venv's own site-packages: this environment's editable
    # maskdesk is a path hook in a .pth file, which a plain path entry does not run.
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def test_maskdesk_comes_from_the_wheel_with_its_data(venv: Path, tmp_path: Path) -> None:
    site = next((venv / "lib").glob("python3*/site-packages"))
    code = (
        "import maskdesk, maskdesk.resource_files as r; "
        "print(maskdesk.__file__); print(r.samples_dir())"
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=user_env(tmp_path / "home"),
    )
    assert proc.returncode == 0, proc.stderr
    module, samples = proc.stdout.splitlines()
    assert Path(module) == site / "maskdesk" / "__init__.py"
    assert Path(samples) == site / "maskdesk" / "resources" / "samples"


def test_the_installed_command(venv: Path, tmp_path: Path) -> None:
    check_installed_command([str(venv / "bin" / "maskdesk")], venv, tmp_path)
