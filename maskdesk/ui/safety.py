"""What keeps errors out of Qt's event loop and lets Ctrl-C in the terminal close the window.

An exception escaping a slot would otherwise be printed by PySide and forgotten, or abort the
program. `install_excepthook` writes it with its traceback to a log file in the user data
folder and shows it once in a dialog (the same error again is only logged). `install_sigint`
makes Ctrl-C quit the application cleanly: Python handles signals only between bytecodes, so
a timer wakes the interpreter while Qt's loop waits.
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QCoreApplication, QTimer

from maskdesk.core.store import user_data_root

log = logging.getLogger("maskdesk")


def log_path() -> Path:
    """Where unexpected errors are written: <user data>/maskdesk/logs/maskdesk.log."""
    return user_data_root() / "maskdesk" / "logs" / "maskdesk.log"


def _attach_file_log(path: Path) -> None:
    if any(getattr(h, "baseFilename", None) == str(path) for h in log.handlers):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


ShowFn = Callable[[str], None]


def install_excepthook(show: ShowFn, path: Path | None = None) -> Path | None:
    """Log every uncaught exception to `path` (default `log_path()`), show each kind once.

    Returns the log file, or None when it could not be created (then errors are only shown).
    """
    target = path or log_path()
    try:
        _attach_file_log(target)
    except OSError:
        target = None  # type: ignore[assignment]
    shown: set[tuple[str, str]] = set()

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            app = QCoreApplication.instance()
            if app is not None:
                QTimer.singleShot(0, app.quit)  # also when the loop has not started yet
            return
        text = "".join(traceback.format_exception(kind, exc, tb))
        log.error("unexpected error\n%s", text)
        key = (kind.__name__, str(exc))
        if key in shown:
            return
        shown.add(key)
        where = f"\n\nThe details are in {target}." if target else ""
        show(
            f"Something went wrong that maskdesk did not expect: {kind.__name__}: {exc}."
            f"{where} Your work up to the last edit is saved."
        )

    sys.excepthook = hook
    return target


def install_sigint(app: QCoreApplication, interval_ms: int = 200) -> QTimer:
    """Ctrl-C in the terminal quits `app` (closing windows as a click on Quit would)."""

    def on_sigint(signum: int, frame: object) -> None:
        # Queued, not app.quit() now: before the event loop runs (a Ctrl-C during start-up)
        # quit() does nothing, and the window would open anyway.
        QTimer.singleShot(0, app.quit)

    signal.signal(signal.SIGINT, on_sigint)
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)  # lets Python run its signal handlers
    timer.start(interval_ms)
    return timer
