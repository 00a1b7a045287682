"""Recent lists and typed reads of the window's settings file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from maskdesk.ui.settings import remember_recent, setting_float, setting_int, setting_list


def test_recent_lists_put_the_newest_first_once_and_keep_a_few(tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    for folder in ["/a", "/b", "/c", "/a"]:
        remember_recent(settings, "recentFolders", folder, keep=3)
    assert setting_list(settings, "recentFolders") == ["/a", "/c", "/b"]
    remember_recent(settings, "recentFolders", "/d", keep=3)
    assert setting_list(settings, "recentFolders") == ["/d", "/a", "/c"]
    settings.sync()
    again = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert setting_list(again, "recentFolders") == ["/d", "/a", "/c"]


def test_a_hand_edited_value_of_the_wrong_type_gives_the_default(tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("score", "lots")
    settings.setValue("brushRadius", "big")
    settings.setValue("recentFolders", "/only/one")
    assert setting_int(settings, "score", 50) == 50
    assert setting_float(settings, "brushRadius", 10.0) == 10.0
    assert setting_list(settings, "recentFolders") == ["/only/one"]
    assert setting_int(settings, "missing", 7) == 7
