"""Errors never reach Qt's event loop unseen, and Ctrl-C in the terminal closes the window."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QTimer, Signal

from maskdesk.ui.safety import install_excepthook


class _Emitter(QObject):
    fired = Signal()


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_is_logged_and_shown_once(qtbot, tmp_path: Path) -> None:
    shown: list[str] = []
    log = tmp_path / "logs" / "maskdesk.log"
    previous = sys.excepthook
    try:
        assert install_excepthook(shown.append, log) == log
        emitter = _Emitter()

        def broken_slot() -> None:
            raise ZeroDivisionError("the slot divided by zero")

        emitter.fired.connect(broken_slot)
        for _ in range(2):
            QTimer.singleShot(0, emitter.fired.emit)
            qtbot.wait(50)
    finally:
        sys.excepthook = previous
    assert len(shown) == 1  # the same error again is only logged
    assert "ZeroDivisionError: the slot divided by zero" in shown[0]
    assert str(log) in shown[0]
    text = log.read_text()
    assert text.count("Traceback") == 2 and "broken_slot" in text


@pytest.mark.parametrize("when", ["running", "starting"])
def test_ctrl_c_in_the_terminal_quits_the_event_loop(tmp_path: Path, when: str) -> None:
    # "starting": Ctrl-C arrives while the window is built, before the event loop runs.
    send = {
        "running": "QTimer.singleShot(300, lambda: os.kill(os.getpid(), signal.SIGINT))",
        "starting": "os.kill(os.getpid(), signal.SIGINT)",
    }[when]
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, sys
            from PySide6.QtCore import QTimer
            from PySide6.QtWidgets import QApplication, QMainWindow
            from maskdesk.ui.safety import install_sigint

            app = QApplication([])
            window = QMainWindow()
            window.show()
            install_sigint(app)
            SEND
            QTimer.singleShot(20000, lambda: sys.exit("the window stayed open"))
            code = app.exec()
            print("closed cleanly", code)
            """
        ).replace("SEND", send)
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "closed cleanly 0" in proc.stdout
    assert "KeyboardInterrupt" not in proc.stderr
