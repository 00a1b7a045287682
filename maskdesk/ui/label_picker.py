"""The class picker shown after drawing when no class is chosen in the toolbar (as labelme asks
after each shape): a line with completion over the project's classes and the list of them.

The answer goes into the toolbar's class box, so the next drawing takes it without asking;
emptying the box makes the window ask again.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QVBoxLayout,
    QWidget,
)


class LabelPicker(QDialog):
    """Type a class (completed from `names`, any part of the name, any case) or pick one."""

    def __init__(self, names: Sequence[str], suggestion: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("labelPicker")
        self.setWindowTitle("Class of the new instance")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Class of what you drew (a new name adds a class):"))
        self.line = QLineEdit(suggestion)
        self.line.setObjectName("labelPickerText")
        self.line.setPlaceholderText("type a class name")
        completer = QCompleter(sorted(names), self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.line.setCompleter(completer)
        self.line.selectAll()
        layout.addWidget(self.line)
        self.list = QListWidget()
        self.list.setObjectName("labelPickerList")
        self.list.addItems(sorted(names))
        self.list.currentTextChanged.connect(self.line.setText)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout.addWidget(self.list)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.line.textChanged.connect(self._allow)
        self._allow(self.line.text())

    def _allow(self, text: str) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(text.strip()))

    def name(self) -> str:
        return self.line.text().strip()


def ask(parent: QWidget, names: Sequence[str], suggestion: str = "") -> str | None:
    """The class the person picks or types; None when they cancel."""
    picker = LabelPicker(names, suggestion, parent)
    if picker.exec() != QDialog.DialogCode.Accepted:
        return None
    return picker.name() or None
