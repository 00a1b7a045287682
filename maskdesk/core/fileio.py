"""Atomic file writes: the target is either the old file or the complete new one, never half.

The data goes to a temporary file in the target's folder (same file system, so the final
rename is atomic), is flushed and fsynced, and then replaces the target with `os.replace`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from maskdesk.core.errors import MaskdeskError


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; folders cannot be opened this way on Windows.
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` atomically; raise MaskdeskError (old file intact) on failure."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise MaskdeskError(
            f"Cannot write {path}: folder {folder} does not exist. "
            "Create it or choose another output location."
        )
    if path.is_dir():
        raise MaskdeskError(f"Cannot write {path}: it is a folder. Choose a file name instead.")
    tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        # os.open with 0o666 lets the umask decide the permissions, as for any new file
        # (tempfile.mkstemp would make exports readable by their owner only).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise MaskdeskError(
            f"Cannot write {path}: {_reason(exc)}. "
            f"The folder {folder} is not writable; choose another output location."
        ) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            # An existing file keeps its permissions when it is replaced.
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise MaskdeskError(
                f"Cannot write {path}: {_reason(exc)}. The previous file, if any, is unchanged; "
                "free some disk space or choose another output location."
            ) from exc
        raise
    _fsync_folder(folder)


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically (UTF-8 by default)."""
    atomic_write_bytes(path, text.encode(encoding))
