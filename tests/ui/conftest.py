"""The real review window for a test: isolated settings, the fixture model chosen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from maskdesk.ui.main_window import MainWindow

FIXTURE_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "shapes-tiny.pt"


@pytest.fixture
def window(qtbot, tmp_path: Path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("model", str(FIXTURE_MODEL))
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()
