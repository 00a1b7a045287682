"""Bring a project's image list up to date with its folder: new files are added, changed ones
measured again, vanished ones flagged missing (their rows and work are kept)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from maskdesk.core.errors import MaskdeskError
from maskdesk.core.images import read_size, scan_folder
from maskdesk.core.store import ImageStatus, Store


def _measure(path: Path) -> tuple[int, int, str | None]:
    """Upright width, height and, when the file cannot be read, why (size then 0 x 0)."""
    try:
        size = read_size(path)
    except (MaskdeskError, OSError) as exc:
        return 0, 0, str(exc)
    return size.width, size.height, None


def sync_images(store: Store, folder: Path) -> None:
    """Add new files, re-measure changed ones, flag vanished ones (rows are kept)."""
    known = {
        row[1]: row
        for row in store.query("SELECT id, path, file_size, mtime_ns, status, missing FROM images")
    }
    present: set[str] = set()
    added: list[tuple[object, ...]] = []
    remeasured: list[tuple[object, ...]] = []
    broken: list[tuple[object, ...]] = []
    back: list[tuple[int]] = []
    for rel in scan_folder(folder):
        path = folder.joinpath(*PurePosixPath(rel).parts)
        try:
            stat = path.stat()
        except OSError:
            continue  # vanished between the scan and now: treated as missing
        present.add(rel)
        row = known.get(rel)
        if row is not None and (row[2], row[3]) == (stat.st_size, stat.st_mtime_ns):
            if row[5]:
                back.append((row[0],))
            continue
        width, height, reason = _measure(path)
        stamp = (stat.st_size, stat.st_mtime_ns)
        if row is None:
            status = ImageStatus.FAILED if reason else ImageStatus.NEW
            added.append((rel, width, height, *stamp, status.value, reason))
        elif reason:
            # Keep the old size: the instances drawn on it still refer to it.
            broken.append((*stamp, ImageStatus.FAILED.value, reason, row[0]))
        else:
            # A failure recorded for the old file says nothing about the new one.
            old = ImageStatus(row[4])
            status = ImageStatus.NEW if old is ImageStatus.FAILED else old
            remeasured.append((width, height, *stamp, status.value, row[0]))
    gone = [(row[0],) for rel, row in known.items() if rel not in present and not row[5]]
    if not (added or remeasured or broken or back or gone):
        return  # reopening an unchanged folder writes nothing
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO images(path, width, height, file_size, mtime_ns, status, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            added,
        )
        conn.executemany(
            "UPDATE images SET width = ?, height = ?, file_size = ?, mtime_ns = ?, "
            "status = ?, reason = NULL, missing = 0 WHERE id = ?",
            remeasured,
        )
        conn.executemany(
            "UPDATE images SET file_size = ?, mtime_ns = ?, status = ?, reason = ?, "
            "missing = 0 WHERE id = ?",
            broken,
        )
        conn.executemany("UPDATE images SET missing = 0 WHERE id = ?", back)
        conn.executemany("UPDATE images SET missing = 1 WHERE id = ?", gone)
