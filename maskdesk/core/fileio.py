"""Atomic file writes: the target is either the old file or the complete new one, never half.

The data goes to a temporary file in the target's folder (same file system, so the final
rename is atomic), is flushed and fsynced, and then replaces the target with `os.replace`.
`atomic_writer` does the same for a file written in pieces.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from maskdesk.core.errors import MaskdeskError


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def fsync_folder(folder: Path) -> None:
    """Make a new or renamed entry of `folder` durable (POSIX; a no-op elsewhere)."""
    # Folders cannot be opened this way on Windows.
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


@contextlib.contextmanager
def atomic_writer(path: Path | str) -> Iterator[BinaryIO]:
    """A binary file, written piece by piece, that replaces `path` when the block ends.

    An exception in the block, or a failed write, leaves the target as it was and removes the
    temporary file; a failed write (OSError) is raised as MaskdeskError. Reading other files
    inside the block should turn its own OSErrors into messages: they would be worded as
    failures to write `path`.
    """
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
            yield f
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
    fsync_folder(folder)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` atomically; raise MaskdeskError (old file intact) on failure."""
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically (UTF-8 by default)."""
    atomic_write_bytes(path, text.encode(encoding))
