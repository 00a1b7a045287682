"""Runtime hook: give a windowed executable (Windows' maskdeskw.exe, the macOS .app) real
standard streams. PyInstaller leaves them None there, and any message written to stderr
(a warning from torch, a progress line) would raise instead of going nowhere."""

import os
import sys

if sys.stdout is None:
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the whole run
if sys.stderr is None:
    sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
