"""`maskdesk` as typed in a terminal: a typo, `help`, and no display, in a real process.

Each case would otherwise open a window (on a folder named after the typo) or, with no
display, die in Qt with SIGABRT; the subprocess's exit code shows that neither happened.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from maskdesk.app import commands

# What the process had loaded when main() returned: no window toolkit, no torch.
_RUN = (
    "import sys; from maskdesk.app import main; code = main(sys.argv[1:]); "
    'print(f\'loaded torch={"torch" in sys.modules} qt={"PySide6" in sys.modules}\'); '
    "sys.exit(code)"
)
NOTHING_HEAVY = "loaded torch=False qt=False"


def _headless_env() -> dict[str, str]:
    """The environment of an ssh session or a container: no display, no Qt platform chosen."""
    env = dict(os.environ)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    return env


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        capture_output=True,
        text=True,
        env=_headless_env(),
        cwd=cwd,
        timeout=120,
    )


def test_the_commands_come_from_the_cli_parser() -> None:
    assert commands()[:5] == ["predict", "import", "export", "info", "clear"]
    assert "train" in commands()


def test_a_misspelt_command_is_a_usage_error_with_a_suggestion(tmp_path: Path) -> None:
    proc = _run("predcit", "photos", "-o", "x.json", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0] == (
        "maskdesk: 'predcit' is neither a command nor an existing file or folder; "
        "did you mean predict?"
    )
    assert lines[-1] == "commands: " + ", ".join(commands())
    assert proc.stdout.strip() == NOTHING_HEAVY
    assert not (tmp_path / "x.json").exists()


def test_a_word_like_no_command_gets_no_suggestion(tmp_path: Path) -> None:
    proc = _run("zzzz", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == (
        "maskdesk: 'zzzz' is neither a command nor an existing file or folder."
    )


def test_help_prints_the_command_line_help(tmp_path: Path) -> None:
    proc = _run("help", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: maskdesk ")
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("    ")]
    assert listed == commands()
    assert proc.stdout.rstrip().endswith(NOTHING_HEAVY)


def test_help_on_a_command_prints_its_options(tmp_path: Path) -> None:
    proc = _run("help", "train", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: maskdesk train ")
    assert "--resume MODEL.pt" in proc.stdout
    typo = _run("help", "trian", cwd=tmp_path)
    assert typo.returncode == 2
    assert typo.stderr.splitlines()[0] == "maskdesk: 'trian' is not a command; did you mean train?"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland are Linux's")
@pytest.mark.parametrize("folder", [None, "photos"])
def test_no_display_is_one_line_and_exit_2_not_a_qt_abort(
    tmp_path: Path, folder: str | None
) -> None:
    (tmp_path / "photos").mkdir()
    proc = _run(*([folder] if folder else []), cwd=tmp_path)
    assert proc.returncode == 2  # Qt's abort would be -6 (SIGABRT)
    assert proc.stderr == (
        "maskdesk: no display found to open the window; the headless commands work without "
        f"one: maskdesk {'|'.join(commands())} ...\n"
    )
    assert proc.stdout.strip() == NOTHING_HEAVY


def test_a_command_still_runs_headless(tmp_path: Path) -> None:
    # `info` on an empty folder: the command path is untouched by the display check.
    (tmp_path / "empty").mkdir()
    proc = _run("info", "empty", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "images: 0" in proc.stdout


@pytest.mark.parametrize(
    ("env", "platform", "missing"),
    [
        ({}, "linux", True),
        ({"DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),  # the user's explicit choice
        ({"QT_QPA_PLATFORM": ""}, "linux", True),
        ({}, "darwin", False),
        ({}, "win32", False),
    ],
)
def test_which_environments_have_no_display(
    env: dict[str, str], platform: str, missing: bool
) -> None:
    from maskdesk.ui.launch import display_missing

    assert display_missing(env, platform) is missing


def test_window_options_open_the_window_not_the_command_line(monkeypatch) -> None:
    import maskdesk.app as app
    import maskdesk.ui.launch as launch

    opened: list[list[str]] = []
    monkeypatch.setattr(launch, "launch", lambda args: opened.append(list(args)) or 0)
    assert app.main(["--model", "coco-v2", "--device", "cpu"]) == 0
    assert opened == [["--model", "coco-v2", "--device", "cpu"]]
    options = launch.window_parser().parse_args(["photos", "--model", "mine.pt"])
    assert (str(options.folder), options.model, options.device) == ("photos", "mine.pt", None)
