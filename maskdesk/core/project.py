"""The open folder: its images and their status, categories and instances; edits as methods.

Every edit method is one store transaction. Image rows are never deleted: a file that
vanished (an unmounted drive, a renamed subfolder) is flagged missing and hidden, and comes
back with its work when the file does.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from maskdesk.core.categories import Category, CategoryTable
from maskdesk.core.errors import ProjectError
from maskdesk.core.images import natural_key
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.matching import Candidates
from maskdesk.core.scan import sync_images
from maskdesk.core.store import (
    BUSY_TIMEOUT_S,
    INSTANCE_COLUMNS,
    INSTANCE_PLACEHOLDERS,
    ImageStatus,
    Store,
    instance_from_row,
    instance_values,
    locate_store,
)

__all__ = ["Added", "ImageRecord", "ImageStatus", "Project"]

_IMAGE_COLUMNS = "id, path, width, height, status, reason, model, missing"
_SELECT_INSTANCES = f"SELECT id, image_id, {INSTANCE_COLUMNS} FROM instances"


def _read_instances(conn: sqlite3.Connection, where: str, params: tuple) -> list[Instance]:
    """Instances matching a WHERE clause, read inside the caller's transaction."""
    rows = conn.execute(f"{_SELECT_INSTANCES} WHERE {where}", params).fetchall()
    return [instance_from_row(row) for row in rows]


# With (image_id, "model", "pending"): the image's pending predictions, or everything else.
# A prediction the person hid is a decision too: the next run of the model keeps it.
_PENDING = "image_id = ? AND origin = ? AND review = ? AND visible = 1"
_DECIDED = "image_id = ? AND NOT (origin = ? AND review = ? AND visible = 1)"


@dataclass(frozen=True)
class Added:
    """Added instances (ids and image id set) and the pending predictions they superseded."""

    instances: list[Instance]
    superseded: list[Instance]


@dataclass(frozen=True)
class ImageRecord:
    """One image of the folder; `path` (relative, POSIX) is its stable identity."""

    id: int
    path: str
    width: int
    height: int
    status: ImageStatus
    reason: str | None
    model: str | None
    missing: bool = False

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ImageRecord:
        iid, path, width, height, status, reason, model, missing = row
        return cls(iid, path, width, height, ImageStatus(status), reason, model, bool(missing))


class Project:
    """A folder of images and its store. Open with `Project.open(folder)`; close when done."""

    def __init__(self, folder: Path, store: Store, store_note: str | None) -> None:
        self.folder = folder
        self.store_path = store.path
        self.store_note = store_note
        self._store = store
        self._closed = False
        self._categories = CategoryTable()
        self._data_version = -1
        self._batch: sqlite3.Connection | None = None
        self._load_categories()
        self._seen_version = self._data_version

    @classmethod
    def open(cls, folder: Path | str, *, data_dir: Path | None = None) -> Project:
        """Create or reopen the project of `folder` and bring its image list up to date.

        `data_dir` replaces the user data directory (e.g. $XDG_DATA_HOME) as the root of the
        fallback place used when the folder is not writable.
        """
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise ProjectError(f"{folder} is not a folder. Choose a folder of images to open.")
        folder = folder.resolve()
        store_path, note = locate_store(folder, data_dir)
        store = Store(store_path)
        try:
            project = cls(folder, store, note)
            sync_images(store, folder)
        except BaseException:
            store.close()
            raise
        return project

    # -- images ----------------------------------------------------------------------------

    def images(self) -> list[ImageRecord]:
        """Images whose files are present, in natural order of their paths."""
        rows = self._store.query(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE missing = 0")
        records = [ImageRecord.from_row(row) for row in rows]
        records.sort(key=lambda r: natural_key(r.path))
        return records

    def stamp(self) -> int:
        """The store's change stamp now: `images_since` with it returns what changes later."""
        return int(self._store.query("SELECT COALESCE(MAX(stamp), 0) FROM images")[0][0])

    def images_since(self, stamp: int) -> list[ImageRecord]:
        """Image rows added or changed after `stamp` (missing ones included), by any
        connection: what a reader that saw the store at `stamp` has to update."""
        rows = self._store.query(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE stamp > ?", (stamp,))
        return [ImageRecord.from_row(row) for row in rows]

    def image(self, image_id: int) -> ImageRecord:
        """The image with this id (also when its file is missing); ValueError if unknown."""
        rows = self._store.query(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise ValueError(f"no image with id {image_id} in {self.store_path}")
        return ImageRecord.from_row(rows[0])

    def image_by_path(self, path: str) -> ImageRecord | None:
        """The image at this relative POSIX path (also when its file is missing), or None."""
        rows = self._store.query(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE path = ?", (path,))
        return ImageRecord.from_row(rows[0]) if rows else None

    def absolute_path(self, record: ImageRecord) -> Path:
        return self.folder.joinpath(*PurePosixPath(record.path).parts)

    def set_status(
        self, image_id: int, status: ImageStatus, reason: str | None = None
    ) -> ImageRecord:
        """Set an image's status (and the reason of a failure); returns the record before."""
        with self._edit() as conn:
            row = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,)
            ).fetchone()
            if row is None:
                raise ValueError(f"no image with id {image_id} in {self.store_path}")
            conn.execute(
                "UPDATE images SET status = ?, reason = ? WHERE id = ?",
                (ImageStatus(status).value, reason, image_id),
            )
        return ImageRecord.from_row(row)

    # -- settings kept with the folder -----------------------------------------------------

    @property
    def models_dir(self) -> Path:
        """Where the folder's trained models and their cards live (beside the store)."""
        return self.store_path.parent / "models"

    def setting(self, key: str) -> str | None:
        """A setting kept in the project (the folder's model, ...), or None when unset."""
        rows = self._store.query("SELECT value FROM meta WHERE key = ?", (f"setting.{key}",))
        return str(rows[0][0]) if rows else None

    def set_setting(self, key: str, value: str | None) -> None:
        """Keep `value` as the project's `key` (None removes it), in one transaction."""
        with self._edit() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (f"setting.{key}",))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    (f"setting.{key}", value),
                )

    # -- categories ------------------------------------------------------------------------

    @property
    def categories(self) -> CategoryTable:
        """A copy of the category table; change categories through the project's methods."""
        return CategoryTable(self._table())

    def _table(self) -> CategoryTable:
        """The cached table, reloaded when another connection (a CLI beside the GUI) wrote."""
        if self._store.query("PRAGMA data_version")[0][0] != self._data_version:
            self._load_categories()
        return self._categories

    def _load_categories(self) -> None:
        # data_version changes only with other connections' commits; our own edits update
        # the cache directly.
        self._data_version = self._store.query("PRAGMA data_version")[0][0]
        rows = self._store.query("SELECT id, name, supercategory FROM categories ORDER BY id")
        self._categories = CategoryTable(Category(*row) for row in rows)

    def ensure_categories(self, categories: Iterable[Category]) -> None:
        """Add these categories with their ids (e.g. a COCO model's); identical ones are kept.

        A clash (an id already naming something else, a name under another id) is a
        ValueError and adds nothing.
        """
        table = self.categories
        new: list[Category] = []
        for category in categories:
            if category.id not in table:
                new.append(table.insert(category))
            else:
                table.insert(category)  # raises on a different name under the same id
        if new:
            with self._edit() as conn:
                conn.executemany(
                    "INSERT INTO categories(id, name, supercategory) VALUES (?, ?, ?)",
                    [(c.id, c.name, c.supercategory) for c in new],
                )
            self._categories = table

    def add_category(self, name: str) -> Category:
        """The category called `name`, created with the next free id if new."""
        table = self.categories
        before = len(table)
        category = table.add(name.strip())
        if len(table) > before:
            with self._edit() as conn:
                conn.execute(
                    "INSERT INTO categories(id, name, supercategory) VALUES (?, ?, ?)",
                    (category.id, category.name, category.supercategory),
                )
            self._categories = table
        return category

    def rename_category(self, category_id: int, name: str) -> None:
        table = self._table()
        if category_id not in table:
            raise ValueError(f"no category with id {category_id}")
        old = table.by_id(category_id)
        renamed = Category(category_id, name.strip(), old.supercategory)
        if renamed.name == old.name:
            return
        other = table.by_name(renamed.name)
        if other is not None:
            raise ValueError(f"category name {renamed.name!r} is already used by id {other.id}")
        with self._edit() as conn:
            conn.execute("UPDATE categories SET name = ? WHERE id = ?", (renamed.name, category_id))
        self._load_categories()

    # -- instances -------------------------------------------------------------------------

    def instances(self, image_id: int) -> list[Instance]:
        """The image's instances in the order they were added, ids and image id set."""
        rows = self._store.query(f"{_SELECT_INSTANCES} WHERE image_id = ? ORDER BY id", (image_id,))
        if not rows:
            self.image(image_id)  # an unknown id is a ValueError, not an empty image
        return [instance_from_row(row) for row in rows]

    def instance(self, instance_id: int) -> Instance:
        """The stored instance with this id; ValueError if there is none."""
        rows = self._store.query(f"{_SELECT_INSTANCES} WHERE id = ?", (instance_id,))
        if not rows:
            raise ValueError(f"no instance with id {instance_id} in {self.store_path}")
        return instance_from_row(rows[0])

    def set_predictions(self, image_id: int, instances: Sequence[Instance], model: str) -> bool:
        """Replace the image's pending model instances with these; status becomes pre-labeled.

        Human instances, accepted or rejected ones and hidden ones stay, and a new prediction
        that covers one of them (same category, mask IoU >= 0.5) is dropped: a person's
        decision is not proposed again. The decided instances are read inside the edit's
        transaction, so one accepted a moment before is seen. A reviewed image is left exactly
        as it is and False is returned: reviewed work is never overwritten.
        """
        with self._edit(instances) as conn:
            found = conn.execute("SELECT status FROM images WHERE id = ?", (image_id,)).fetchone()
            if found is None:
                raise ValueError(f"no image with id {image_id} in {self.store_path}")
            if found[0] == ImageStatus.REVIEWED.value:
                return False
            decided = Candidates(
                _read_instances(
                    conn,
                    _DECIDED,
                    (image_id, Origin.MODEL.value, Review.PENDING.value),
                )
            )
            fresh = [new for new in instances if not decided.covering(new)]
            conn.execute(
                f"DELETE FROM instances WHERE {_PENDING}",
                (image_id, Origin.MODEL.value, Review.PENDING.value),
            )
            conn.executemany(
                f"INSERT INTO instances(image_id, {INSTANCE_COLUMNS}) "
                f"VALUES (?, {INSTANCE_PLACEHOLDERS})",
                [(image_id, *instance_values(i)) for i in fresh],
            )
            conn.execute(
                "UPDATE images SET status = ?, model = ?, reason = NULL WHERE id = ?",
                (ImageStatus.PRELABELED.value, model, image_id),
            )
        return True

    def add_instance(self, image_id: int, instance: Instance) -> Instance:
        """Store a new instance; returned with its id and image id (see `add_instances`)."""
        return self.add_instances(image_id, [instance]).instances[0]

    def add_instances(
        self, image_id: int, instances: Sequence[Instance], *, supersede: bool = True
    ) -> Added:
        """Store new instances in one transaction; returned with their ids, together with the
        predictions they superseded.

        An instance that carries an id keeps it (undoing a delete restores the same id); that
        id must be free. A human instance supersedes the pending predictions it covers (same
        category, mask IoU >= 0.5): they are deleted, and returned so an undo can put them
        back with their ids. An undo that puts instances back passes `supersede=False`, so
        the store returns exactly to what it was.
        """
        stored: list[Instance] = []
        superseded: list[Instance] = []
        with self._edit(instances) as conn:
            pending: Candidates | None = None
            for instance in instances:
                if supersede and instance.origin is Origin.HUMAN:
                    if pending is None:
                        pending = Candidates(
                            _read_instances(
                                conn,
                                _PENDING,
                                (image_id, Origin.MODEL.value, Review.PENDING.value),
                            )
                        )
                    covered = pending.covering(instance, remove=True)
                    conn.executemany(
                        "DELETE FROM instances WHERE id = ?", [(c.id,) for c in covered]
                    )
                    superseded += covered
                cursor = conn.execute(
                    f"INSERT INTO instances(id, image_id, {INSTANCE_COLUMNS}) "
                    f"VALUES (?, ?, {INSTANCE_PLACEHOLDERS})",
                    (instance.id, image_id, *instance_values(instance)),
                )
                stored.append(instance.with_changes(id=cursor.lastrowid, image_id=image_id))
        return Added(stored, superseded)

    def update_instance(self, instance: Instance) -> Instance:
        """Write back every field of a stored instance; returns the instance it replaced."""
        if instance.id is None:
            raise ValueError("the instance has no id; add it with add_instance first")
        assignments = ", ".join(f"{c.strip()} = ?" for c in INSTANCE_COLUMNS.split(","))
        with self._edit([instance]) as conn:
            old = _read_instances(conn, "id = ?", (instance.id,))
            if not old:
                raise ValueError(f"no instance with id {instance.id} in {self.store_path}")
            conn.execute(
                f"UPDATE instances SET {assignments} WHERE id = ?",
                (*instance_values(instance), instance.id),
            )
        return old[0]

    def delete_instance(self, instance_id: int) -> Instance:
        """Delete one instance; returns it, id and image id included, for an undo."""
        return self.delete_instances([instance_id])[0]

    def delete_instances(self, instance_ids: Sequence[int]) -> list[Instance]:
        """Delete these instances in one transaction; returns them in the order given."""
        with self._edit() as conn:
            gone = []
            for instance_id in instance_ids:
                found = _read_instances(conn, "id = ?", (instance_id,))
                if not found:
                    raise ValueError(f"no instance with id {instance_id} in {self.store_path}")
                conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,))
                gone += found
        return gone

    def clear_predictions(
        self, *, decided: bool = False, reviewed: bool = False
    ) -> tuple[int, int]:
        """Delete model instances: pending ones, or also accepted, rejected and hidden ones
        (`decided`), on images not reviewed, or on reviewed ones too (`reviewed`). Human
        instances always stay. Images left without model work become new again. Returns
        (instances, images).
        """
        where = "origin = ?" + ("" if decided else " AND review = ? AND visible = 1")
        params: list[object] = [Origin.MODEL.value]
        if not decided:
            params.append(Review.PENDING.value)
        if not reviewed:
            where += " AND image_id IN (SELECT id FROM images WHERE status != ?)"
            params.append(ImageStatus.REVIEWED.value)
        with self._edit() as conn:
            images = [
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT image_id FROM instances WHERE {where}", params
                )
            ]
            removed = conn.execute(f"DELETE FROM instances WHERE {where}", params).rowcount
            conn.execute(
                "UPDATE images SET status = ?, model = NULL WHERE status = ? AND NOT EXISTS "
                "(SELECT 1 FROM instances WHERE image_id = images.id)",
                (ImageStatus.NEW.value, ImageStatus.PRELABELED.value),
            )
        return removed, len(images)

    # -- transactions, other connections, change notices -----------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Many edits as one transaction (accept all, delete several, an import): all of them
        are stored, or none. Edit methods called inside join it.
        """
        if self._batch is not None:
            raise sqlite3.ProgrammingError("Project.batch() is already open on this project")
        try:
            with self._edit() as conn:
                self._batch = conn
                yield
        except BaseException:
            self._load_categories()  # categories added in the batch were rolled back
            raise
        finally:
            self._batch = None

    @contextmanager
    def _edit(self, instances: Iterable[Instance] = ()) -> Iterator[sqlite3.Connection]:
        """One transaction (or a part of the open batch); a constraint the edit breaks becomes
        a ValueError saying which."""
        if self._closed:
            raise sqlite3.ProgrammingError(f"the project {self.store_path} is closed")
        if self._batch is not None:
            yield self._batch
            return
        try:
            with self._store.transaction() as conn:
                yield conn
        except sqlite3.IntegrityError as exc:
            unknown = sorted({i.category_id for i in instances} - {c.id for c in self._table()})
            if unknown:
                raise ValueError(
                    f"unknown category id(s) {unknown}; add them to the project first"
                ) from exc
            if "instances.id" in str(exc):
                raise ValueError(f"instance id already used: {exc}") from exc
            if "FOREIGN KEY" in str(exc):
                raise ValueError(f"no such image in {self.store_path}: {exc}") from exc
            raise ValueError(f"edit refused by the project store: {exc}") from exc

    def connect_again(self, busy_timeout: float = BUSY_TIMEOUT_S) -> Project:
        """A new connection to this project for another thread (a worker): no folder rescan.

        Call it in the thread that will use the new connection (it reads only this project's
        folder and path, never its connection); close it there too. Connections are never
        shared between threads.
        """
        return Project(self.folder, Store(self.store_path, busy_timeout), self.store_note)

    def set_busy_timeout(self, seconds: float) -> None:
        """How long an edit waits for another program's write to end before it is refused
        as busy (a window's UI thread waits a frame at most)."""
        self._store.query(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def fingerprint(self, image_id: int) -> str:
        """A digest of everything stored for the image (size, status, every instance row with
        its id): equal digests, equal contents. What an undo compares with what it left."""
        digest = hashlib.sha1()
        for row in self._store.query(
            "SELECT width, height, status, reason FROM images WHERE id = ?", (image_id,)
        ) + self._store.query(
            f"SELECT id, {INSTANCE_COLUMNS} FROM instances WHERE image_id = ? ORDER BY id",
            (image_id,),
        ):
            digest.update(
                repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)).encode()
            )
        return digest.hexdigest()

    def changed(self) -> bool:
        """Whether another connection (a worker, `maskdesk predict` beside the window) has
        committed since the last call; this connection's own edits do not count.
        """
        version = self._store.query("PRAGMA data_version")[0][0]
        changed, self._seen_version = version != self._seen_version, version
        return changed

    def image_ids_with_class(self, category_id: int) -> set[int]:
        """Images holding a shown, not rejected instance of this class (for the browser's
        filter)."""
        rows = self._store.query(
            "SELECT DISTINCT image_id FROM instances WHERE category_id = ? AND visible = 1 "
            f"AND review != '{Review.REJECTED.value}'",
            (category_id,),
        )
        return {row[0] for row in rows}

    def image_ids_with_scores_below(self, score: float) -> set[int]:
        """Images holding a pending prediction scored below `score`: what a threshold hides
        there is worth a look."""
        rows = self._store.query(
            "SELECT DISTINCT image_id FROM instances WHERE origin = ? AND review = ? AND score < ?",
            (Origin.MODEL.value, Review.PENDING.value, score),
        )
        return {row[0] for row in rows}

    # -- summary and life cycle ------------------------------------------------------------

    def counts(self, min_score: float = 0.0) -> dict[str, Any]:
        """Figures for `maskdesk info` over present images, agreeing with an export at
        `min_score`: images, status {value: n}, missing, listed (images an export lists: all
        whose size is known, less failed ones that hold no person's work), instances (all
        stored), review {value: n}, categories {name: n} of the instances an export at
        `min_score` writes (id order, names in use only), exported (their sum).
        """
        status = {s.value: 0 for s in ImageStatus}
        for value, n in self._store.query(
            "SELECT status, count(*) FROM images WHERE missing = 0 GROUP BY status"
        ):
            status[value] = n
        missing = self._store.query("SELECT count(*) FROM images WHERE missing = 1")[0][0]
        # What an export lists: sized images, less the failed ones holding no person's work.
        exported_image = (
            "images.missing = 0 AND images.width > 0 AND images.height > 0 AND NOT ("
            f"images.status = '{ImageStatus.FAILED.value}' AND NOT EXISTS (SELECT 1 FROM "
            "instances AS d WHERE d.image_id = images.id AND NOT ("
            f"d.origin = '{Origin.MODEL.value}' AND d.review = '{Review.PENDING.value}' "
            "AND d.visible = 1)))"
        )
        listed = self._store.query(f"SELECT count(*) FROM images WHERE {exported_image}")[0][0]
        present = "JOIN images ON images.id = instances.image_id WHERE images.missing = 0"
        review = {r.value: 0 for r in Review}
        for value, n in self._store.query(
            f"SELECT review, count(*) FROM instances {present} GROUP BY review"
        ):
            review[value] = n
        table = self._table()
        # The SQL twin of Instance.exported(), so info never decodes a mask.
        per_category = {
            table.name(cid): n
            for cid, n in self._store.query(
                f"SELECT category_id, count(*) FROM instances {present} AND {exported_image} "
                f"AND visible = 1 AND review != '{Review.REJECTED.value}' AND area > 0 "
                f"AND (review = '{Review.ACCEPTED.value}' OR score IS NULL OR score >= ?) "
                "GROUP BY category_id ORDER BY category_id",
                (min_score,),
            )
        }
        return {
            "images": sum(status.values()),
            "status": status,
            "missing": missing,
            "listed": listed,
            "instances": sum(review.values()),
            "review": review,
            "categories": per_category,
            "exported": sum(per_category.values()),
        }

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
