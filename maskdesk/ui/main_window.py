"""The review window: images of the open folder on the left, the picture with its masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QScrollArea,
    QSplitter,
)

from maskdesk.core.errors import MaskdeskError
from maskdesk.core.images import load_rgb
from maskdesk.core.project import ImageRecord, Project
from maskdesk.core.render import render_overlay

EXPORT_SCORE = 0.5


def to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of the pixels (the array may go away)."""
    height, width, _ = rgb.shape
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class MainWindow(QMainWindow):
    """Composition only: the project lives in core, pictures come from core.render."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("maskdesk")
        self.resize(1100, 720)
        self.project: Project | None = None
        self.image_list = QListWidget()
        self.image_list.currentItemChanged.connect(self._show_current)
        self.picture = QLabel("Open a folder of images")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.picture)
        scroll.setWidgetResizable(True)
        splitter = QSplitter()
        splitter.addWidget(self.image_list)
        splitter.addWidget(scroll)
        splitter.setSizes([260, 840])
        self.setCentralWidget(splitter)

    def open_folder(self, folder: Path) -> None:
        if self.project is not None:
            self.project.close()
        self.project = Project.open(folder)
        self.setWindowTitle(f"maskdesk — {self.project.folder}")
        self.image_list.clear()
        for record in self.project.images():
            item = QListWidgetItem(f"{record.path}  [{record.status.value}]")
            item.setData(Qt.ItemDataRole.UserRole, record.id)
            self.image_list.addItem(item)
        note = self.project.store_note or f"Project: {self.project.store_path}"
        self.statusBar().showMessage(note)
        if self.image_list.count():
            self.image_list.setCurrentRow(0)

    def _show_current(self, item: QListWidgetItem | None) -> None:
        if item is None or self.project is None:
            return
        record: ImageRecord = self.project.image(int(item.data(Qt.ItemDataRole.UserRole)))
        instances = self.project.instances(record.id)
        try:
            pixels = load_rgb(self.project.absolute_path(record))
        except MaskdeskError as exc:
            self.picture.setText(str(exc))
            return
        rgb = render_overlay(pixels, instances, self.project.categories, min_score=EXPORT_SCORE)
        self.picture.setPixmap(QPixmap.fromImage(to_qimage(rgb)))
        shown = sum(1 for i in instances if i.exported(EXPORT_SCORE))
        self.statusBar().showMessage(
            f"{record.path}: {record.width}x{record.height}, {shown} instances, "
            f"{record.status.value}"
        )
