"""The instances panel's Qt models: a table over the current image's instances, a proxy that
sorts and applies the live score threshold, and the class editor.

The table is a thin adapter: it shows instances and turns a person's edits (the visible
checkbox, a new class name) into requests (`visibilityRequested`, `relabelRequested`); the
window makes them undoable commands, which write the store and hand back the new instances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.render import instance_color

COLUMNS = ("", "", "Class", "Score", "Origin", "Review")
VISIBLE, SWATCH, CLASS, SCORE, ORIGIN, REVIEW = range(len(COLUMNS))
InstanceIdRole = Qt.ItemDataRole.UserRole + 1
SortRole = Qt.ItemDataRole.UserRole + 2
ShownAtAnyScoreRole = Qt.ItemDataRole.UserRole + 3  # accepted or human: the threshold spares it

Index = QModelIndex | QPersistentModelIndex


def color_of(instance: Instance) -> tuple[int, int, int]:
    """The instance's colour everywhere (canvas, table): fixed by its id."""
    return instance_color(instance.id or 0)


class InstanceTableModel(QAbstractTableModel):
    """Rows: the current image's instances, in the order they were added."""

    visibilityRequested = Signal(int, bool)  # instance id, visible
    relabelRequested = Signal(int, str)  # instance id, class name

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Instance] = []
        self._names: dict[int, str] = {}

    # -- feeding ---------------------------------------------------------------------------

    def set_instances(self, instances: Iterable[Instance], names: Mapping[int, str]) -> None:
        """Show another image's instances (or the same image's after a reload)."""
        self.beginResetModel()
        self._rows = list(instances)
        self._names = dict(names)
        self.endResetModel()

    def update_instances(self, instances: Sequence[Instance], names: Mapping[int, str]) -> None:
        """The same image's instances after an edit: rows change in place where the set of ids
        is the same (the view keeps its selection), else the model is reset."""
        self._names = dict(names)
        if [i.id for i in instances] != [i.id for i in self._rows]:
            self.set_instances(instances, names)
            return
        changed = [row for row, new in enumerate(instances) if new != self._rows[row]]
        self._rows = list(instances)
        for row in changed:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def instance(self, row: int) -> Instance:
        return self._rows[row]

    def instances(self) -> list[Instance]:
        return list(self._rows)

    def row_of(self, instance_id: int) -> int:
        """The row of an instance id, -1 when it is not shown."""
        return next((r for r, i in enumerate(self._rows) if i.id == instance_id), -1)

    # -- Qt's model interface --------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {VISIBLE: "Shown on the canvas and exported", SWATCH: "Colour"}.get(section)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == VISIBLE:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        if index.column() == CLASS:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        inst = self._rows[index.row()]
        column = index.column()
        if role == InstanceIdRole:
            return inst.id
        if role == ShownAtAnyScoreRole:
            return inst.score is None or inst.review is Review.ACCEPTED
        if column == VISIBLE and role == Qt.ItemDataRole.CheckStateRole:
            return Qt.CheckState.Checked if inst.visible else Qt.CheckState.Unchecked
        if column == SWATCH and role == Qt.ItemDataRole.DecorationRole:
            return QColor(*color_of(inst))
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self._text(inst, column)
        if role == SortRole:
            if column == SCORE:
                return -1.0 if inst.score is None else inst.score
            return self._text(inst, column) or ""
        if role == Qt.ItemDataRole.ToolTipRole and column == CLASS and inst.crowd:
            return "A crowd region (a group of objects)"
        return None

    def _text(self, inst: Instance, column: int) -> str | None:
        if column == CLASS:
            name = self._names.get(inst.category_id, f"class {inst.category_id}")
            return f"{name} (crowd)" if inst.crowd else name
        if column == SCORE:
            return "" if inst.score is None else f"{inst.score:.2f}"
        if column == ORIGIN:
            return "model" if inst.origin is Origin.MODEL else "human"
        if column == REVIEW:
            return inst.review.value
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """A person's edit becomes a request; the rows change when the window feeds them."""
        if not index.isValid():
            return False
        inst = self._rows[index.row()]
        if inst.id is None:
            return False
        if index.column() == VISIBLE and role == Qt.ItemDataRole.CheckStateRole:
            checked = Qt.CheckState(value) == Qt.CheckState.Checked
            if checked != inst.visible:
                self.visibilityRequested.emit(inst.id, checked)
            return True
        if index.column() == CLASS and role == Qt.ItemDataRole.EditRole:
            name = str(value).strip()
            if name and name != self._names.get(inst.category_id):
                self.relabelRequested.emit(inst.id, name)
            return bool(name)
        return False


class InstanceProxy(QSortFilterProxyModel):
    """Sorts by any column (scores as numbers) and hides rows below the live score
    threshold, except accepted and human instances, which exports always keep."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._min_score = 0.0
        self.setSortRole(SortRole)

    @property
    def min_score(self) -> float:
        return self._min_score

    def set_min_score(self, value: float) -> None:
        if value != self._min_score:
            if hasattr(self, "beginFilterChange"):  # Qt 6.9 and later
                self.beginFilterChange()
                self._min_score = value
                self.endFilterChange()
            else:
                self._min_score = value
                self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        index = model.index(source_row, SCORE, source_parent)
        if model.data(index, ShownAtAnyScoreRole):
            return True
        return float(model.data(index, SortRole)) >= self._min_score


class ClassEditor(QStyledItemDelegate):
    """Relabel with an editable list of the project's classes; a new name makes a new class."""

    def __init__(self, names: Sequence[str] = (), parent: Any = None) -> None:
        super().__init__(parent)
        self.names = list(names)

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Index) -> QWidget:
        editor = QComboBox(parent)
        editor.setObjectName("classEditor")
        editor.setEditable(True)
        editor.addItems(self.names)
        editor.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        return editor

    def setEditorData(self, editor: QWidget, index: Index) -> None:
        assert isinstance(editor, QComboBox)
        name = str(index.data(Qt.ItemDataRole.EditRole) or "").removesuffix(" (crowd)")
        editor.setCurrentText(name)

    def setModelData(self, editor: QWidget, model: Any, index: Index) -> None:
        assert isinstance(editor, QComboBox)
        model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)
