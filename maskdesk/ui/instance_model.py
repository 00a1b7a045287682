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
from maskdesk.core.render import distinct_colors, instance_color

COLUMNS = ("", "", "Class", "Score", "Origin", "Review")
VISIBLE, SWATCH, CLASS, SCORE, ORIGIN, REVIEW = range(len(COLUMNS))
InstanceIdRole = Qt.ItemDataRole.UserRole + 1
SortRole = Qt.ItemDataRole.UserRole + 2
ShownAtAnyScoreRole = Qt.ItemDataRole.UserRole + 3  # accepted or human: the threshold spares it

Index = QModelIndex | QPersistentModelIndex
# Roles as plain ints: compared for every cell a view paints.
_DISPLAY, _EDIT = int(Qt.ItemDataRole.DisplayRole), int(Qt.ItemDataRole.EditRole)
_CHECK, _DECORATION = int(Qt.ItemDataRole.CheckStateRole), int(Qt.ItemDataRole.DecorationRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_ANSWERED = frozenset(
    {
        _DISPLAY,
        _EDIT,
        _CHECK,
        _DECORATION,
        _TOOLTIP,
        _FOREGROUND,
        InstanceIdRole,
        SortRole,
        ShownAtAnyScoreRole,
    }
)
_ENABLED = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_FLAGS = {
    VISIBLE: _ENABLED | Qt.ItemFlag.ItemIsUserCheckable,
    CLASS: _ENABLED | Qt.ItemFlag.ItemIsEditable,
}


_REJECTED_TEXT = QColor(140, 140, 140)


def colors_for(instances: Iterable[Instance]) -> dict[int, tuple[int, int, int]]:
    """One image's instance colours by id, the same on the canvas and in the table: no two
    alike while the image has at most 32 instances (core.render.distinct_colors)."""
    return distinct_colors(i.id for i in instances if i.id is not None)


class InstanceTableModel(QAbstractTableModel):
    """Rows: the current image's instances, in the order they were added."""

    visibilityRequested = Signal(int, bool)  # instance id, visible
    relabelRequested = Signal(int, str)  # instance id, class name

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Instance] = []
        self._names: dict[int, str] = {}
        self._colors: dict[int, tuple[int, int, int]] = {}

    # -- feeding ---------------------------------------------------------------------------

    def set_instances(self, instances: Iterable[Instance], names: Mapping[int, str]) -> None:
        """Show another image's instances (or the same image's after a reload)."""
        self.beginResetModel()
        self._rows = list(instances)
        self._names = dict(names)
        self._colors = colors_for(self._rows)
        self.endResetModel()

    def update_instances(self, instances: Sequence[Instance], names: Mapping[int, str]) -> bool:
        """The same image's instances after an edit: rows change in place where the set of ids
        is the same (the view keeps its selection), else the model is reset. Returns whether
        anything shown changed (False: no signal was sent, the view has nothing to redo)."""
        if [i.id for i in instances] != [i.id for i in self._rows]:
            self.set_instances(instances, names)
            return True
        renamed = dict(names) != self._names
        self._names = dict(names)
        changed = [row for row, new in enumerate(instances) if renamed or new != self._rows[row]]
        self._rows = list(instances)
        for row in changed:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        return bool(changed)

    def colors(self) -> dict[int, tuple[int, int, int]]:
        """The rows' colours by instance id (`colors_for`), for the canvas to match."""
        return self._colors

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
        if index.column() == VISIBLE and self._rows[index.row()].review is Review.REJECTED:
            return _ENABLED  # a rejected instance is not shown; ticking would not show it
        return _FLAGS.get(index.column(), _ENABLED)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        return self.cell(index.row(), index.column(), int(role))

    def multiData(self, index: Index, roleDataSpan: Any) -> None:  # noqa: N803 (Qt's name)
        """Every role a delegate asks for, in one call (Qt's default calls `data` per role,
        a Python call each: seven per cell painted)."""
        if index.isValid():
            self.fill(index.row(), index.column(), roleDataSpan)

    def fill(self, row: int, column: int, span: Any) -> None:
        """Answer a QModelRoleDataSpan for one cell (the proxy calls it directly)."""
        for item in span:
            role = item.role()
            value = self.cell(row, column, role) if role in _ANSWERED else None
            if value is None:
                item.clearData()
            else:
                item.setData(value)

    def cell(self, row: int, column: int, role: int) -> Any:
        """What `data` answers, from plain ints (no QModelIndex to wrap per call)."""
        if not 0 <= row < len(self._rows):
            return None
        inst = self._rows[row]
        if role in (_DISPLAY, _EDIT):
            return self._text(inst, column)
        if role == InstanceIdRole:
            return inst.id
        if role == ShownAtAnyScoreRole:
            return inst.score is None or inst.review is Review.ACCEPTED
        rejected = inst.review is Review.REJECTED
        if role == _CHECK and column == VISIBLE:
            shown = inst.visible and not rejected
            return Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked
        if role == _FOREGROUND and rejected:
            return _REJECTED_TEXT
        if role == _TOOLTIP and rejected and column in (VISIBLE, REVIEW):
            return "Rejected: not shown and not exported. Accept it (A) or undo to bring it back."
        if role == _DECORATION and column == SWATCH:
            return QColor(*self._colors.get(inst.id or 0, instance_color(inst.id or 0)))
        if role == SortRole:
            if column == SCORE:
                return -1.0 if inst.score is None else inst.score
            return self._text(inst, column) or ""
        if role == _TOOLTIP and column == CLASS and inst.crowd:
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
        if isinstance(model, InstanceTableModel):  # plain Python: no index, no QVariant
            if model.cell(source_row, SCORE, ShownAtAnyScoreRole):
                return True
            return float(model.cell(source_row, SCORE, SortRole)) >= self._min_score
        index = model.index(source_row, SCORE, source_parent)
        if model.data(index, ShownAtAnyScoreRole):
            return True
        return float(model.data(index, SortRole)) >= self._min_score

    def multiData(self, index: Index, roleDataSpan: Any) -> None:  # noqa: N803 (Qt's name)
        """Qt's proxies answer a span one `data` call per role; one call to the source."""
        model = self.sourceModel()
        if not index.isValid():
            return
        source = self.mapToSource(index)
        if isinstance(model, InstanceTableModel):
            model.fill(source.row(), source.column(), roleDataSpan)
        else:
            model.multiData(source, roleDataSpan)


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
