"""Decodes the picture to show off the UI thread: a 12 MP JPEG takes ~65 ms, a 50 MP one
several times that, and the window must not stall while a person flips through images.

Only the latest request matters: an older one still waiting is skipped, and a result that
arrives after the person moved on is dropped by the window (it checks the image id).
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from maskdesk.core.errors import MaskdeskError
from maskdesk.core.images import load_rgb


class _Bridge(QObject):
    done = Signal(int, object, str)  # image id, RGB array or None, error message


class _Job(QRunnable):
    def __init__(self, loader: PictureLoader, image_id: int, path: Path) -> None:
        super().__init__()
        self.loader, self.image_id, self.path = loader, image_id, path

    def run(self) -> None:
        if not self.loader.is_latest(self.image_id):
            return  # the person has moved on before this one started
        try:
            pixels, error = load_rgb(self.path), ""
        except MaskdeskError as exc:
            pixels, error = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is this picture's, shown as text
            pixels, error = None, f"Cannot show {self.path}: {type(exc).__name__}: {exc}"
        self.loader.bridge.done.emit(self.image_id, pixels, error)


class PictureLoader(QObject):
    """`request(image_id, path)`; `loaded(image_id, rgb | None, error)` on the UI thread."""

    loaded = Signal(int, object, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = _Bridge()
        self.bridge.done.connect(self.loaded)  # queued: the bridge emits from the pool
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._lock = threading.Lock()
        self._latest = -1

    def request(self, image_id: int, path: Path) -> None:
        with self._lock:
            self._latest = image_id
        self._pool.start(_Job(self, image_id, path))

    def is_latest(self, image_id: int) -> bool:
        with self._lock:
            return image_id == self._latest

    def wait(self) -> None:
        """Let every started decode finish (closing the window, tests)."""
        self._pool.waitForDone()
