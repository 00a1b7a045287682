"""Typed reads of QSettings values: a value of the wrong type (a hand-edited or older settings
file) gives the default, never an exception."""

from __future__ import annotations

from PySide6.QtCore import QSettings


def setting_list(settings: QSettings, key: str) -> list[str]:
    value = settings.value(key, [])
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def setting_int(settings: QSettings, key: str, default: int) -> int:
    try:
        return int(str(settings.value(key, default)))
    except ValueError:
        return default


def setting_float(settings: QSettings, key: str, default: float) -> float:
    try:
        return float(str(settings.value(key, default)))
    except ValueError:
        return default


def remember_recent(settings: QSettings, key: str, value: str, keep: int = 10) -> None:
    """Put `value` first in the recent list `key` (once), keeping the `keep` newest."""
    recent = [value] + [v for v in setting_list(settings, key) if v != value]
    settings.setValue(key, recent[:keep])
