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


@pytest.fixture
def slow_download(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the network download (the one edge faked here) by one that reports 400 chunks
    slowly and stops only when cancelled; returns the byte counts reported so far."""
    import time

    from maskdesk.inference import models

    chunks: list[int] = []

    def download(url: str, dest: Path, *, progress=None) -> None:  # noqa: ANN001
        total = 400 * models.CHUNK_BYTES
        for done in range(0, total + 1, models.CHUNK_BYTES):
            chunks.append(done)
            models._report(progress, done, total, url)  # raises DownloadCancelled on cancel
            time.sleep(0.02)
        raise AssertionError("the download was not cancelled")

    monkeypatch.setattr(models, "download", download)
    return chunks
