"""SQLite persistence of a project: where the file lives, its schema, and its transactions.

One file per folder, `<folder>/.maskdesk/project.sqlite`, in WAL mode so that a reader (the
GUI) and a writer (a headless `maskdesk predict`) do not block each other, and every edit is
one transaction: a crash leaves it either in or out. The schema version is kept in
`PRAGMA user_version` and checked before anything is written, so a file from a newer maskdesk
is refused, byte for byte untouched; an older one is upgraded in one transaction.

Durability: WAL with `synchronous=NORMAL`, SQLite's advice for WAL. A commit costs no fsync
(an edit takes well under a millisecond to store); a crash of maskdesk or of the whole program
loses nothing committed, and a power cut or OS crash can lose at most the last commits since
the previous checkpoint, never corrupt the file.

Each connection belongs to the thread that opened it (sqlite3's own check). Misuse of a
connection - from another thread, after `close()`, a transaction begun inside another - is a
bug and raises `sqlite3.ProgrammingError` as it is, never the "damaged file" message, which is
only for real damage.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

from maskdesk import __version__
from maskdesk.core.errors import ProjectError
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask

SCHEMA_VERSION = 3
APPLICATION_ID = 0x4D534B44  # "MSKD": tells our files apart from any other SQLite database
STORE_DIR = ".maskdesk"
STORE_FILE = "project.sqlite"
# How long a write waits for another program's write lock before it says the project is busy.
BUSY_TIMEOUT_S = 10.0


class Busy(ProjectError):
    """Another connection holds the project's write lock longer than this one waits."""


class ImageStatus(StrEnum):
    NEW = "new"
    PRELABELED = "pre-labeled"
    REVIEWED = "reviewed"
    FAILED = "failed"


_STATUSES = ", ".join(f"'{s.value}'" for s in ImageStatus)
_ORIGINS = ", ".join(f"'{o.value}'" for o in Origin)
_REVIEWS = ", ".join(f"'{r.value}'" for r in Review)

_SCHEMA_V1 = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    file_size INTEGER,
    mtime_ns INTEGER,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ({_STATUSES})),
    reason TEXT,
    model TEXT,
    missing INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE categories (
    id INTEGER PRIMARY KEY CHECK (id >= 1),
    name TEXT NOT NULL UNIQUE,
    supercategory TEXT NOT NULL DEFAULT ''
);
CREATE TABLE instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    category_id INTEGER NOT NULL REFERENCES categories(id),
    score REAL CHECK (score IS NULL OR (score >= 0 AND score <= 1)),
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    mask_x INTEGER NOT NULL, mask_y INTEGER NOT NULL,
    mask_w INTEGER NOT NULL, mask_h INTEGER NOT NULL,
    mask_counts BLOB NOT NULL,
    area INTEGER NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ({_ORIGINS})),
    review TEXT NOT NULL CHECK (review IN ({_REVIEWS})),
    visible INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX instances_by_image ON instances(image_id);
"""

# A stamp that grows with every insert or change of an image row, so a reader asks for the
# rows changed since the stamp it last saw instead of reading the whole folder again.
_STAMP = "UPDATE images SET stamp = (SELECT MAX(stamp) FROM images) + 1 WHERE id = NEW.id"
_IMAGE_FIELDS = "path, width, height, file_size, mtime_ns, status, reason, model, missing"

# Each step upgrades the schema by one version; step i takes version i + 1 to i + 2.
_UPGRADES: list[tuple[str, ...]] = [
    # 1 -> 2: COCO crowd regions are kept as instances.
    ("ALTER TABLE instances ADD COLUMN crowd INTEGER NOT NULL DEFAULT 0",),
    # 2 -> 3: image rows carry a change stamp.
    (
        "ALTER TABLE images ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX images_by_stamp ON images(stamp)",
        f"CREATE TRIGGER images_stamp_insert AFTER INSERT ON images BEGIN {_STAMP}; END",
        f"CREATE TRIGGER images_stamp_update AFTER UPDATE OF {_IMAGE_FIELDS} ON images "
        f"BEGIN {_STAMP}; END",
    ),
]

# Instance columns in the order `instance_values` produces them.
INSTANCE_COLUMNS = (
    "category_id, score, x0, y0, x1, y1, mask_x, mask_y, mask_w, mask_h, mask_counts, area, "
    "origin, review, visible, crowd"
)
INSTANCE_PLACEHOLDERS = ", ".join("?" * len(INSTANCE_COLUMNS.split(",")))


def instance_values(instance: Instance) -> tuple[object, ...]:
    """The row of an instance; the mask as compressed RLE of its crop (bytes, not pixels)."""
    mask = instance.mask
    x0, y0, x1, y1 = instance.box or (0.0, 0.0, 0.0, 0.0)
    counts = mask.crop_counts() if mask.width and mask.height else b""
    return (
        instance.category_id,
        instance.score,
        x0,
        y0,
        x1,
        y1,
        mask.x,
        mask.y,
        mask.width,
        mask.height,
        counts,
        mask.area,
        instance.origin.value,
        instance.review.value,
        int(instance.visible),
        int(instance.crowd),
    )


def instance_from_row(row: tuple[Any, ...]) -> Instance:
    """Inverse of `instance_values`, with the row's id and image id in front."""
    (
        iid,
        image_id,
        cat,
        score,
        x0,
        y0,
        x1,
        y1,
        mx,
        my,
        mw,
        mh,
        counts,
        _area,
        origin,
        review,
        vis,
        crowd,
    ) = row
    return Instance(
        category_id=cat,
        mask=CropMask.from_crop_counts(mx, my, mw, mh, bytes(counts)),
        score=score,
        box=(x0, y0, x1, y1),
        origin=Origin(origin),
        review=Review(review),
        visible=bool(vis),
        crowd=bool(crowd),
        id=iid,
        image_id=image_id,
    )


# -- where the file lives ----------------------------------------------------------------


def user_data_root() -> Path:
    """The per-user data directory of this platform (XDG on Linux and other Unixes)."""
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) if appdata else Path.home() / "AppData" / "Roaming"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    xdg = os.environ.get("XDG_DATA_HOME")
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    return Path.home() / ".local" / "share"


def fallback_dir(folder: Path, data_dir: Path | None = None) -> Path:
    """`<data root>/maskdesk/projects/<name>-<hash>`: readable name, unique per folder."""
    root = data_dir if data_dir is not None else user_data_root()
    digest = hashlib.sha256(str(folder).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    name = re.sub(r"[^\w.-]+", "_", folder.name).strip("._") or "folder"
    return root / "maskdesk" / "projects" / f"{name[:60]}-{digest}"


def _writable_dir(directory: Path) -> str | None:
    """None when files can be created in `directory` (made if needed), else why not.

    A real probe rather than os.access: access() says yes to root on a read-only mount and
    knows nothing of a `.maskdesk` that is a file.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        return f"cannot write in {directory}: {exc.strerror or exc.__class__.__name__}"
    # Never open() the store itself: closing any descriptor of it drops every POSIX lock this
    # process holds on it, SQLite's included, and another process then deletes the WAL
    # (SQLite's "How To Corrupt An SQLite Database File", 2.2). The folder probe above already
    # caught a read-only mount; access() tells a read-only file.
    store = directory / STORE_FILE
    if store.exists() and not os.access(store, os.W_OK):
        return f"cannot write {store}: the file is read-only"
    return None


def locate_store(folder: Path, data_dir: Path | None = None) -> tuple[Path, str | None]:
    """The store file for `folder` and, when it is not in the folder itself, a note saying so.

    If the folder is read-only but already holds a project (a labelled set on a read-only
    mount), that project is copied to the fallback place the first time, so its work is not
    lost from view.
    """
    local_dir = folder / STORE_DIR
    why = _writable_dir(local_dir)
    if why is None:
        return local_dir / STORE_FILE, None
    target_dir = fallback_dir(folder, data_dir)
    problem = _writable_dir(target_dir)
    if problem is not None:
        raise ProjectError(
            f"Cannot keep a project for {folder}: {why}, and {problem}. "
            "Make one of them writable, or copy the images to a writable folder."
        )
    target = target_dir / STORE_FILE
    note = f"The folder {folder} is not writable ({why}), so its project is kept in {target_dir}."
    local = local_dir / STORE_FILE
    if not target.exists() and local.is_file():
        try:
            # The WAL file holds commits not yet checkpointed into the main file.
            for suffix in ("", "-wal"):
                source = local.with_name(local.name + suffix)
                if source.is_file():
                    shutil.copyfile(source, target.with_name(target.name + suffix))
        except OSError as exc:
            raise ProjectError(
                f"Cannot copy the project {local} to {target_dir}: {exc.strerror}. "
                "Make the folder writable or free some disk space."
            ) from exc
        note += f" It started as a copy of {local}; edits go to the copy."
    return target, note


# -- opening and checking ----------------------------------------------------------------


def _not_a_store(path: Path, detail: str) -> ProjectError:
    return ProjectError(
        f"Cannot open the project {path}: {detail}. Move it aside (rename it, and "
        "keep it if it may hold work you need), then open the folder again to start a new "
        "project."
    )


class Store:
    """One open connection to a project file; edits go through `transaction()`."""

    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.conn = _connect(path, busy_timeout)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (a crash leaves it out).

        IMMEDIATE takes the write lock up front, so a read-then-write edit cannot find that
        another process wrote in between. Beginning one inside another is a bug
        (sqlite3.ProgrammingError); group edits with `Project.batch()` instead.
        """
        if self.conn.in_transaction:
            raise sqlite3.ProgrammingError(
                f"a transaction on {self.path} is already open on this connection"
            )
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._error(exc) from exc
        try:
            yield self.conn
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.IntegrityError | sqlite3.ProgrammingError
            ):
                raise self._error(exc) from exc
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise self._error(exc) from exc

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """All rows of a read; a damaged file becomes a ProjectError, not a traceback."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.ProgrammingError:
            raise  # a bug in the caller, not damage to the file
        except sqlite3.DatabaseError as exc:
            raise ProjectError(
                f"Cannot read the project {self.path}: {exc}. The file is damaged; move it "
                "aside (keep a copy) and open the folder again to start a new project."
            ) from exc

    def _error(self, exc: sqlite3.Error) -> ProjectError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return Busy(
                f"Cannot write the project {self.path}: another program is writing it; "
                "try again in a moment, or close that program."
            )
        if "readonly" in text or "read-only" in text:
            advice = "the file or its folder became read-only; make it writable"
        elif "full" in text:
            advice = "free some disk space"
        else:
            advice = "move the file aside and open the folder again to start a new project"
        return ProjectError(f"Cannot write the project {self.path}: {text}; {advice}.")

    def close(self) -> None:
        self.conn.close()


def _connect(path: Path, busy_timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    # The header is checked by SQLite itself (the first read below fails with "file is not a
    # database"): reading it with open() would release this process's locks on the file.
    try:
        # Autocommit mode: transactions are begun and ended explicitly by Store.transaction.
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
    except sqlite3.Error as exc:
        raise ProjectError(f"Cannot open the project {path}: {exc}.") from exc
    try:
        _check_and_prepare(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_and_prepare(conn: sqlite3.Connection, path: Path) -> None:
    # Everything up to the version check only reads: a file we refuse stays untouched.
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise _not_a_store(path, "it is not a SQLite database") from exc
        raise _not_a_store(path, f"the file is damaged ({exc})") from exc
    if version == 0 and tables:
        raise _not_a_store(path, "it is a SQLite database of another program")
    if version and app_id != APPLICATION_ID:
        raise _not_a_store(path, "it is a SQLite database of another program")
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"The project {path} was written by a newer maskdesk (schema {version}, this "
            f"version reads up to {SCHEMA_VERSION}); upgrade maskdesk to open it."
        )
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if version == 0:
            _create(conn)
        elif version < SCHEMA_VERSION:
            _upgrade(conn, version)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise ProjectError(
                f"The project {path} is locked by another program; close it and try again."
            ) from exc
        raise _not_a_store(path, f"the file is damaged ({exc})") from exc


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Bring a file of an older schema up to date, all steps in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded it between our check and the lock.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in _UPGRADES[version - 1 :]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # executescript would commit first; run statement by statement inside one transaction.
        upgrades = [statement for step in _UPGRADES for statement in step]
        for statement in [*_SCHEMA_V1.split(";"), *upgrades]:
            if statement.strip():
                conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [("application", "maskdesk"), ("created_with", __version__)],
        )
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
