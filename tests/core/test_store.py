"""The project file: where it lives, what it refuses, and that refusing leaves it untouched."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskdesk.core import store
from maskdesk.core.categories import Category
from maskdesk.core.errors import ProjectError
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import Project
from maskdesk.core.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    fallback_dir,
    instance_from_row,
    instance_values,
    user_data_root,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(folder / "a.png")
    return folder


def _square(x: int, y: int, size: int) -> CropMask:
    return CropMask(x, y, np.ones((size, size), dtype=bool))


def _labelled(folder: Path, data_dir: Path | None = None) -> Path:
    """Open `folder`, store one instance, close; returns the store file."""
    with Project.open(folder, data_dir=data_dir) as project:
        project.ensure_categories([Category(1, "person")])
        record = project.image_by_path("a.png")
        assert record is not None
        project.add_instance(record.id, Instance(1, _square(2, 3, 5), score=0.75))
        return project.store_path


def test_new_project_is_in_the_folder_in_wal_mode_with_its_version(folder: Path) -> None:
    path = _labelled(folder)
    assert path == folder.resolve() / ".maskdesk" / "project.sqlite"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("SELECT count(*) FROM instances").fetchone()[0] == 1
    finally:
        conn.close()


def test_newer_schema_is_refused_and_the_file_left_untouched(folder: Path) -> None:
    path = _labelled(folder)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ProjectError) as info:
        Project.open(folder)
    message = str(info.value)
    assert str(path) in message
    assert (
        f"written by a newer maskdesk (schema {SCHEMA_VERSION + 1}, this version reads up to "
        f"{SCHEMA_VERSION}); upgrade maskdesk" in message
    )
    assert path.read_bytes() == before


def test_a_file_that_is_not_sqlite_is_refused_with_what_to_do(folder: Path) -> None:
    path = folder / ".maskdesk" / "project.sqlite"
    path.parent.mkdir()
    garbage = b"these are not the bytes you are looking for\n" * 50
    path.write_bytes(garbage)
    with pytest.raises(ProjectError) as info:
        Project.open(folder)
    assert str(path.resolve()) in str(info.value)
    assert "not a SQLite database" in str(info.value)
    assert "Move it aside" in str(info.value)
    assert path.read_bytes() == garbage


def test_a_damaged_store_is_refused(folder: Path) -> None:
    path = _labelled(folder)
    data = bytearray(path.read_bytes())
    data[100:3000] = bytes(range(256)) * 11 + bytes(84)  # the schema page, header kept
    path.write_bytes(bytes(data))
    with pytest.raises(ProjectError, match="damaged.*Move it aside"):
        Project.open(folder)


def test_another_programs_database_is_refused(folder: Path) -> None:
    path = folder / ".maskdesk" / "project.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ProjectError, match="another program"):
        Project.open(folder)
    assert path.read_bytes() == before


def test_unwritable_folder_falls_back_to_the_data_dir(folder: Path, tmp_path: Path) -> None:
    # A *file* named .maskdesk makes the folder unusable even for root (CI runs as root,
    # which ignores permission bits).
    (folder / ".maskdesk").write_text("in the way")
    data_dir = tmp_path / "data"
    path = _labelled(folder, data_dir)
    expected_dir = fallback_dir(folder.resolve(), data_dir)
    assert path == expected_dir / "project.sqlite"
    assert expected_dir.parent == data_dir / "maskdesk" / "projects"
    assert expected_dir.name.startswith("photos-")
    assert (folder / ".maskdesk").read_text() == "in the way"
    with Project.open(folder, data_dir=data_dir) as project:
        assert project.store_path == path
        assert project.store_note is not None
        assert str(folder.resolve()) in project.store_note
        assert str(expected_dir) in project.store_note
        record = project.image_by_path("a.png")
        assert record is not None
        assert [i.score for i in project.instances(record.id)] == [0.75]


def test_read_only_folder_with_a_project_starts_from_a_copy(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _labelled(folder)
    before = local.read_bytes()
    real_check = store._writable_dir

    def read_only_folder(directory: Path) -> str | None:
        if directory == local.parent:
            return f"cannot write in {directory}: Read-only file system"
        return real_check(directory)

    monkeypatch.setattr(store, "_writable_dir", read_only_folder)
    with Project.open(folder, data_dir=tmp_path / "data") as project:
        assert project.store_path != local
        assert project.store_note is not None and "copy" in project.store_note
        record = project.image_by_path("a.png")
        assert record is not None
        assert [i.score for i in project.instances(record.id)] == [0.75]
        project.add_instance(record.id, Instance(1, _square(10, 10, 4)))
    with Project.open(folder, data_dir=tmp_path / "data") as project:
        assert len(project.instances(record.id)) == 2
    assert local.read_bytes() == before


def test_fallback_places_differ_for_folders_of_the_same_name(tmp_path: Path) -> None:
    a = fallback_dir(tmp_path / "one" / "photos", tmp_path)
    b = fallback_dir(tmp_path / "two" / "photos", tmp_path)
    assert a != b
    assert a.name.startswith("photos-") and b.name.startswith("photos-")
    odd = fallback_dir(Path("/mnt/Ferien: Åland?"), tmp_path)
    assert odd.name.startswith("Ferien_Åland-")


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG applies elsewhere")
def test_user_data_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_data_root() == tmp_path
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # invalid per the spec: ignored
    assert user_data_root() == Path.home() / ".local" / "share"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert user_data_root() == Path.home() / ".local" / "share"


def test_instance_rows_round_trip_exactly() -> None:
    rng = np.random.default_rng(3)
    bits = rng.random((17, 23)) > 0.5
    instances = [
        Instance(3, CropMask(40, 7, bits), score=0.123456789, box=(39.5, 6.25, 63.0, 24.75)),
        Instance(
            1,
            CropMask(0, 0, np.zeros((0, 0), dtype=bool)),
            origin=Origin.HUMAN,
            review=Review.REJECTED,
            visible=False,
        ),
        Instance(2, CropMask(3, 4, bits), origin=Origin.HUMAN, crowd=True),
    ]
    for instance in instances:
        values = instance_values(instance)
        back = instance_from_row((9, 5, *values))
        assert back == instance
        assert back.crowd == instance.crowd
        assert back.id == 9 and back.image_id == 5
        assert back.mask.x == instance.mask.x and back.mask.y == instance.mask.y
        assert np.array_equal(back.mask.bits, instance.mask.bits)
    assert instance_values(instances[0])[11] == int(bits.sum())  # area column
