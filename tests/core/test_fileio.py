"""Atomic writes: the target holds the old file or the whole new one, and no debris is left."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from maskdesk.core import fileio
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.fileio import atomic_write_bytes, atomic_write_text


def test_writes_new_file_and_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"
    atomic_write_bytes(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_text_is_utf8_and_non_ascii_paths_work(tmp_path: Path) -> None:
    target = tmp_path / "données" / "étiquettes_猫.json"
    target.parent.mkdir()
    atomic_write_text(target, '{"name": "chat noir ✓"}')
    assert target.read_bytes().decode("utf-8") == '{"name": "chat noir ✓"}'


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_file_follows_umask_and_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.json"
        atomic_write_bytes(fresh, b"x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # not mkstemp's 0o600
    finally:
        os.umask(old_umask)
    kept = tmp_path / "kept.json"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    atomic_write_bytes(kept, b"new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640


def test_failure_while_writing_keeps_old_file_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"precious")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full_disk)
    with pytest.raises(MaskdeskError) as info:
        atomic_write_bytes(target, b"half-written" * 1000)
    message = str(info.value)
    assert str(target) in message and "No space left on device" in message
    assert "choose another" in message
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_interrupt_is_not_swallowed_and_leaves_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"precious")

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_unwritable_folder_is_reported_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refuse_in_tmp(path: object, flags: int, mode: int = 0o777) -> int:
        if Path(str(path)).parent == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(fileio.os, "open", refuse_in_tmp)
    with pytest.raises(MaskdeskError) as info:
        atomic_write_bytes(tmp_path / "out.json", b"x")
    message = str(info.value)
    assert "out.json" in message and "Permission denied" in message
    assert "not writable" in message and "choose another" in message
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_or_folder_as_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MaskdeskError, match="does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "out.json", b"x")
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_bytes(b"")
    with pytest.raises(MaskdeskError, match="does not exist"):
        atomic_write_bytes(not_a_folder / "out.json", b"x")
    (tmp_path / "sub").mkdir()
    with pytest.raises(MaskdeskError, match="is a folder"):
        atomic_write_bytes(tmp_path / "sub", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "sub"]
