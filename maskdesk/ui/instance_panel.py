"""The right-hand panel: the current image's instances in a table (sortable, the live score
threshold applied, the class editable in place) over the score and opacity sliders."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from maskdesk.ui.instance_model import (
    CLASS,
    SCORE,
    ClassEditor,
    InstanceProxy,
    InstanceTableModel,
)


def _slider(name: str, value: int, tip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setObjectName(name)
    slider.setRange(0, 100)
    slider.setValue(value)
    slider.setToolTip(tip)
    return slider


class InstancePanel(QWidget):
    """The table (`table` over `proxy` over `model`, `class_editor` in its class column) and
    the sliders (`score_slider` with `score_label`, `opacity_slider`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = InstanceTableModel(self)
        self.proxy = InstanceProxy(self)
        self.proxy.setSourceModel(self.model)
        table = self.table = QTableView()
        table.setObjectName("instanceTable")
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(SCORE, Qt.SortOrder.DescendingOrder)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.verticalHeader().hide()
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(CLASS, QHeaderView.ResizeMode.Stretch)
        self.class_editor = ClassEditor(parent=self)
        table.setItemDelegateForColumn(CLASS, self.class_editor)
        self.score_slider = _slider("scoreSlider", 50, "Hide instances below this score")
        self.opacity_slider = _slider("opacitySlider", 50, "Mask opacity")
        self.score_label = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(table)
        for label, slider in (
            (self.score_label, self.score_slider),
            (QLabel("Opacity"), self.opacity_slider),
        ):
            row = QHBoxLayout()
            row.addWidget(label)
            row.addWidget(slider)
            layout.addLayout(row)
