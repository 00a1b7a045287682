"""The image browser's filter bar: status, file name, class present, instances below the
score. Status and name filter in the proxy alone; the other two ask the project store."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QVBoxLayout, QWidget

from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui.image_list_model import ImageFilterProxyModel

ALL_IMAGES = "All images"
ANY_CLASS = "Any class"


class FilterBar(QWidget):
    """Drives `proxy`; `project()` and `min_score()` are read when a filter needs them."""

    def __init__(
        self,
        proxy: ImageFilterProxyModel,
        project: Callable[[], Project | None],
        min_score: Callable[[], float],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.proxy = proxy
        self._project = project
        self._min_score = min_score
        self.status = QComboBox()
        self.status.setObjectName("statusFilter")
        self.status.addItems([ALL_IMAGES, *[s.value for s in ImageStatus]])
        self.name = QLineEdit()
        self.name.setObjectName("nameFilter")
        self.name.setPlaceholderText("Filter by name")
        self.classes = QComboBox()
        self.classes.setObjectName("classFilter")
        self.classes.addItem(ANY_CLASS, None)
        self.low_score = QCheckBox("Has instances below the score")
        self.low_score.setObjectName("lowScoreFilter")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.status, self.name, self.classes, self.low_score):
            layout.addWidget(widget)
        self.status.currentTextChanged.connect(self._status_changed)
        self.name.textChanged.connect(proxy.set_name_filter)
        self.classes.currentIndexChanged.connect(lambda _: self.update_from_store())
        self.low_score.toggled.connect(lambda _: self.update_from_store())

    def _status_changed(self, text: str) -> None:
        self.proxy.set_statuses(None if text == ALL_IMAGES else {ImageStatus(text)})

    def update_from_store(self) -> None:
        """Recompute the filters that need the store (after edits, or a new threshold)."""
        project = self._project()
        if project is None:
            return
        category = self.classes.currentData()
        self.proxy.set_class_ids(
            None if category is None else project.image_ids_with_class(int(category))
        )
        self.proxy.set_low_score_ids(
            project.image_ids_with_scores_below(self._min_score())
            if self.low_score.isChecked()
            else None
        )

    def fill_classes(self) -> None:
        """Offer the project's classes, keeping the one chosen."""
        project = self._project()
        if project is None:
            return
        names = [(c.name, c.id) for c in project.categories]
        shown = [
            (self.classes.itemText(i), self.classes.itemData(i))
            for i in range(1, self.classes.count())
        ]
        if shown == names:
            return
        chosen = self.classes.currentData()
        self.classes.blockSignals(True)
        self.classes.clear()
        self.classes.addItem(ANY_CLASS, None)
        for name, category_id in names:
            self.classes.addItem(name, category_id)
        self.classes.setCurrentIndex(max(0, self.classes.findData(chosen)))
        self.classes.blockSignals(False)
