"""Thumbnails made off the UI thread, cached on disk in the project's store folder and in memory.

Workers in a QThreadPool get only a file path and a size: they never touch the project store.
Results cross to the UI thread through one queued signal. The newest request is served first,
and requests for rows the user scrolled past long ago are dropped, so scrolling a 10,000-image
folder never builds a backlog.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap

from maskdesk.core.errors import ImageError
from maskdesk.core.images import load_rgb, read_size

__all__ = [
    "DEFAULT_SIZE",
    "ThumbnailLoader",
    "cache_key",
    "decode_thumbnail",
    "placeholder",
]

DEFAULT_SIZE = 96
# The same transposes as PIL.ImageOps.exif_transpose (and core.images' numpy views).
_T = Image.Transpose
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: _T.FLIP_LEFT_RIGHT,
    3: _T.ROTATE_180,
    4: _T.FLIP_TOP_BOTTOM,
    5: _T.TRANSPOSE,
    6: _T.ROTATE_270,
    7: _T.TRANSVERSE,
    8: _T.ROTATE_90,
}


def cache_key(relative_path: str, file_size: int, mtime_ns: int, size: int) -> str:
    """The cache file's name: changes whenever the file (or the thumbnail size) does."""
    text = f"{relative_path}\0{file_size}\0{mtime_ns}\0{size}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest() + ".jpg"


def decode_thumbnail(path: Path, size: int) -> Image.Image:
    """An upright RGB thumbnail at most `size` pixels on its longer side; ImageError if broken.

    JPEGs are decoded at a reduced scale (`Image.draft`, 1/2 to 1/8 in the decoder) and turned
    upright with the EXIF orientation that `read_size` reports, the tag `load_rgb` applies.
    Everything else goes through `load_rgb`, so every mode is handled as the canvas shows it.
    """
    header = read_size(path)  # applies the pixel limit and the project's orientation rules
    try:
        with Image.open(path, formats=("JPEG",)) as im:
            im.draft("RGB", (size, size))  # decoder-side 1/2..1/8 scale, >= size
            im.load()
            small = im.convert("RGB") if im.mode != "RGB" else im.copy()
    except UnidentifiedImageError:
        small = Image.fromarray(load_rgb(path))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"Cannot read image {path}: the file is damaged ({exc}).") from exc
    else:
        method = _TRANSPOSE.get(header.orientation)
        if method is not None:
            small = small.transpose(method)
    small.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return small


def _to_qimage(im: Image.Image) -> QImage:
    rgb = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    height, width, _ = rgb.shape
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def placeholder(size: int, *, broken: bool = False) -> QPixmap:
    """A grey square while a thumbnail is on its way; a crossed red one for a broken file."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(225, 225, 225) if not broken else QColor(250, 228, 228))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if broken:
        painter.setPen(QPen(QColor(200, 40, 40), max(2, size // 16)))
        inset = size // 4
        painter.drawLine(inset, inset, size - inset, size - inset)
        painter.drawLine(size - inset, inset, inset, size - inset)
    else:
        painter.setPen(QPen(QColor(190, 190, 190), 1))
        painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return pixmap


@dataclass(frozen=True)
class _Job:
    relative_path: str
    path: Path


class _Bridge(QObject):
    """Lives in the UI thread; workers emit on it, so delivery is a queued call."""

    done = Signal(str, QImage, str)  # relative path, image (null if broken), error message


class _Runnable(QRunnable):
    """Serves one request: the newest one still pending when a pool thread becomes free."""

    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self._take = loader._take
        self._bridge = loader._bridge
        self._cache_dir = loader.cache_dir
        self._size = loader.size

    def run(self) -> None:
        job = self._take()
        if job is None:
            return  # dropped as stale, or served by an earlier runnable
        image, error = _make(job, self._cache_dir, self._size)
        with contextlib.suppress(RuntimeError):  # the loader went away while we worked
            self._bridge.done.emit(job.relative_path, image, error)


def _make(job: _Job, cache_dir: Path, size: int) -> tuple[QImage, str]:
    """Read the disk cache or decode and write it; never raises."""
    try:
        info = job.path.stat()
        cached = cache_dir / cache_key(job.relative_path, info.st_size, info.st_mtime_ns, size)
        if cached.is_file():
            image = QImage(str(cached))
            if not image.isNull():
                return image, ""
        small = decode_thumbnail(job.path, size)
    except ImageError as exc:
        return QImage(), str(exc)
    except OSError as exc:
        return QImage(), f"Cannot read image {job.path}: {exc.strerror or exc}."
    except Exception as exc:  # a worker must report, never die silently
        return QImage(), f"Cannot make a thumbnail of {job.path}: {exc}"
    _write(small, cached)
    return _to_qimage(small), ""


def _write(image: Image.Image, target: Path) -> None:
    """Atomic write; a cache that cannot be written (read-only disk) is simply skipped."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                image.save(handle, format="JPEG", quality=88)
            os.replace(temp, target)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass


class ThumbnailLoader(QObject):
    """Thumbnails by relative path: `thumbnail()` answers from memory or queues a request.

    `ready(relative_path)` fires in the UI thread when a requested thumbnail (or its "broken"
    placeholder) is in memory.
    """

    ready = Signal(str)

    def __init__(
        self,
        cache_dir: Path,
        *,
        size: int = DEFAULT_SIZE,
        memory_items: int = 2000,
        max_pending: int = 256,
        threads: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.cache_dir = Path(cache_dir)
        self.size = size
        self._memory: OrderedDict[str, QPixmap] = OrderedDict()
        self._memory_items = memory_items
        self._max_pending = max_pending
        self._errors: dict[str, str] = {}
        self._in_flight: set[str] = set()
        self._pending: OrderedDict[str, _Job] = OrderedDict()  # shared with workers
        self._lock = threading.Lock()
        self._bridge = _Bridge()
        self._bridge.done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self.pool = QThreadPool(self)
        ideal = QThreadPool.globalInstance().maxThreadCount()
        self.pool.setMaxThreadCount(threads or max(1, min(4, ideal)))
        self.loading = placeholder(size)
        self.broken = placeholder(size, broken=True)

    def thumbnail(self, relative_path: str, path: Path) -> QPixmap | None:
        """The thumbnail if in memory (or the broken placeholder); else None and a request."""
        found = self._memory.get(relative_path)
        if found is not None:
            self._memory.move_to_end(relative_path)
            return found
        if relative_path in self._errors:
            return self.broken
        self.request(relative_path, path)
        return None

    def error(self, relative_path: str) -> str | None:
        """Why this file's thumbnail could not be made, if it could not."""
        return self._errors.get(relative_path)

    def request(self, relative_path: str, path: Path) -> None:
        """Queue a thumbnail unless one is already on its way."""
        if relative_path in self._in_flight:
            return
        self._in_flight.add(relative_path)
        with self._lock:
            self._pending[relative_path] = _Job(relative_path, path)
            stale: list[str] = []
            while len(self._pending) > self._max_pending:
                stale.append(self._pending.popitem(last=False)[0])
        self._in_flight.difference_update(stale)  # asked again if they come back into view
        self.pool.start(_Runnable(self))

    def forget(self, relative_path: str) -> None:
        """Drop what memory holds for a file (e.g. it changed on disk)."""
        self._memory.pop(relative_path, None)
        self._errors.pop(relative_path, None)

    def shutdown(self) -> None:
        """Drop queued work and wait for running workers (before the loader goes away)."""
        with self._lock:
            self._pending.clear()
        self._in_flight.clear()
        self.pool.clear()
        self.pool.waitForDone()

    def _take(self) -> _Job | None:
        """Worker side: the newest pending request (the rows the user looks at now)."""
        with self._lock:
            if not self._pending:
                return None
            return self._pending.popitem(last=True)[1]

    @Slot(str, QImage, str)
    def _deliver(self, relative_path: str, image: QImage, error: str) -> None:
        self._in_flight.discard(relative_path)
        if error:
            self._errors[relative_path] = error
        else:
            self._memory[relative_path] = QPixmap.fromImage(image)
            self._memory.move_to_end(relative_path)
            while len(self._memory) > self._memory_items:
                self._memory.popitem(last=False)
        self.ready.emit(relative_path)
