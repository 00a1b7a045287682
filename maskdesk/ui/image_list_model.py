"""The image browser's model: the project's images as rows, loaded lazily, with thumbnails.

A thin adapter over `Project.images()` records: `refresh(records)` turns a changed store into
row inserts, removals and `dataChanged`, never a reset, so the view keeps its selection.
The filter proxy and the delegate that paints each image's status badge live here too.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QListView, QStyledItemDelegate, QStyleOptionViewItem

from maskdesk.core.project import ImageRecord, ImageStatus, Project
from maskdesk.ui.thumbnails import DEFAULT_SIZE, ThumbnailLoader

__all__ = [
    "BADGES",
    "CHUNK",
    "ImageFilterProxyModel",
    "ImageIdRole",
    "ImageListDelegate",
    "ImageListModel",
    "PathRole",
    "ReasonRole",
    "RecordRole",
    "StatusRole",
    "configure_view",
]

_USER = int(Qt.ItemDataRole.UserRole)
ImageIdRole = _USER + 1  # int
StatusRole = _USER + 2  # str: the ImageStatus value; ImageStatus(value) to get the enum
ReasonRole = _USER + 3  # str | None: why a failed image failed
PathRole = _USER + 4  # str: relative POSIX path
RecordRole = _USER + 5  # ImageRecord

CHUNK = 500  # rows added per fetchMore

# Status badge: colour and symbol, distinct in hue and in shape for colour-blind users.
BADGES: dict[ImageStatus, tuple[QColor, str]] = {
    ImageStatus.NEW: (QColor(140, 140, 140), "N"),
    ImageStatus.PRELABELED: (QColor(30, 110, 220), "P"),
    ImageStatus.REVIEWED: (QColor(30, 160, 60), "✓"),
    ImageStatus.FAILED: (QColor(210, 40, 40), "!"),
}

_Index = QModelIndex | QPersistentModelIndex


class ImageListModel(QAbstractListModel):
    """Rows are image records in the project's natural order; shown `CHUNK` more at a time."""

    def __init__(
        self,
        records: Sequence[ImageRecord] = (),
        *,
        folder: Path | None = None,
        thumbnails: ThumbnailLoader | None = None,
        chunk: int = CHUNK,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.folder = folder
        self.thumbnails = thumbnails
        self._chunk = chunk
        self._records: list[ImageRecord] = list(records)
        self._stamp = -1  # the store's change stamp these rows were read at (`follow`)
        self._loaded = 0
        self._rows: dict[str, int] = {}  # relative path -> row, for thumbnails arriving
        self._reindex()
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)

    @classmethod
    def from_project(
        cls, project: Project, *, size: int = DEFAULT_SIZE, parent: QObject | None = None
    ) -> ImageListModel:
        """A model over the project's images, thumbnails cached beside the project store."""
        loader = ThumbnailLoader(project.store_path.parent / "thumbs", size=size)
        stamp = project.stamp()  # before the rows: a change meanwhile is read again
        model = cls(project.images(), folder=project.folder, thumbnails=loader, parent=parent)
        model._stamp = stamp
        loader.setParent(model)
        return model

    # -- Qt model interface ------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._loaded

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._loaded < len(self._records)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid():
            return
        count = min(self._chunk, len(self._records) - self._loaded)
        if count <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._loaded, self._loaded + count - 1)
        self._loaded += count
        self.endInsertRows()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < self._loaded:
            return None
        record = self._records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return record.path
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(record)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(record)
        if role == ImageIdRole:
            return record.id
        if role == StatusRole:
            return record.status.value  # a str (QVariant flattens the StrEnum anyway)
        if role == ReasonRole:
            return record.reason
        if role == PathRole:
            return record.path
        if role == RecordRole:
            return record
        return None

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        names.update(
            {
                ImageIdRole: QByteArray(b"imageId"),
                StatusRole: QByteArray(b"status"),
                ReasonRole: QByteArray(b"reason"),
                PathRole: QByteArray(b"path"),
                RecordRole: QByteArray(b"record"),
            }
        )
        return names

    # -- queries -----------------------------------------------------------------------------

    def total(self) -> int:
        """Images in the folder, loaded into rows or not."""
        return len(self._records)

    def record(self, row: int) -> ImageRecord:
        return self._records[row]

    def fetch_all(self) -> None:
        """Load every remaining row (a filter needs to see them all)."""
        while self.canFetchMore():
            self.fetchMore()

    def index_of(self, image_id: int) -> QModelIndex:
        """The row of this image, fetching up to it if needed; invalid if it is not listed."""
        for row, record in enumerate(self._records):
            if record.id == image_id:
                while row >= self._loaded:
                    self.fetchMore()
                return self.index(row)
        return QModelIndex()

    # -- updates -----------------------------------------------------------------------------

    def refresh(self, records: Sequence[ImageRecord]) -> None:
        """Bring the rows to `records` (as `Project.images()` returns them) without a reset.

        Rows whose image vanished are removed, new images inserted where the natural order
        puts them, and changed records (status, reason, size) announced with `dataChanged`;
        persistent indexes, and so the view's selection and current row, survive.
        """
        new_ids = {r.id for r in records}
        self._remove_absent(new_ids)
        self._insert_new(records)
        changed = [
            row
            for row, (old, new) in enumerate(zip(self._records, records, strict=True))
            if old != new
        ]
        for row in changed:
            old = self._records[row]
            self._records[row] = records[row]
            if self.thumbnails is not None and (old.width, old.height) != (
                records[row].width,
                records[row].height,
            ):
                self.thumbnails.forget(old.path)
        for first, last in _runs(r for r in changed if r < self._loaded):
            self.dataChanged.emit(self.index(first), self.index(last))

    def reread(self, project: Project) -> None:
        """Every image's record again: O(folder), 0.1-0.25 s for 10,000 images."""
        self._stamp = project.stamp()  # first: a change meanwhile is read again
        self.refresh(project.images())

    def follow(self, project: Project) -> None:
        """Only the rows any connection added or changed since the last read; the whole
        folder is read only when an image came or went (a scan)."""
        stamp = project.stamp()
        changed = project.images_since(self._stamp)
        if any(r.missing or not self._lists(r) for r in changed):
            self.reread(project)
        else:
            self._stamp = stamp
            self.update_records(changed)

    def _lists(self, record: ImageRecord) -> bool:
        row = self._rows.get(record.path)
        return row is not None and self._records[row].id == record.id

    def update_records(self, records: Sequence[ImageRecord]) -> None:
        """These images' records changed (a batch stored them): their rows follow, found by
        path, without reading the whole folder as `refresh` does. An image not listed (or
        missing now) is left for `refresh`."""
        for record in records:
            row = self._rows.get(record.path)
            if row is None or record.missing or self._records[row].id != record.id:
                continue
            old, self._records[row] = self._records[row], record
            if old == record:
                continue
            if self.thumbnails is not None and (old.width, old.height) != (
                record.width,
                record.height,
            ):
                self.thumbnails.forget(old.path)
            if row < self._loaded:
                self.dataChanged.emit(self.index(row), self.index(row))

    def _remove_absent(self, keep: set[int]) -> None:
        gone = [row for row, r in enumerate(self._records) if r.id not in keep]
        for first, last in reversed(list(_runs(gone))):
            shown_last = min(last, self._loaded - 1)
            if first <= shown_last:
                self.beginRemoveRows(QModelIndex(), first, shown_last)
                del self._records[first : last + 1]
                self._loaded -= shown_last - first + 1
                self.endRemoveRows()
            else:
                del self._records[first : last + 1]
        self._reindex()

    def _insert_new(self, records: Sequence[ImageRecord]) -> None:
        known = {r.id for r in self._records}
        row = 0
        pending: list[ImageRecord] = []
        for record in [*records, None]:
            if record is not None and record.id not in known:
                pending.append(record)
                continue
            if pending:
                self._insert(row, pending)
                row += len(pending)
                pending = []
            row += 1
        self._reindex()

    def _insert(self, row: int, new: list[ImageRecord]) -> None:
        # Inside the shown rows (or right after them when all are shown) the view is told;
        # beyond them the records simply wait for fetchMore.
        if row < self._loaded or self._loaded == len(self._records):
            self.beginInsertRows(QModelIndex(), row, row + len(new) - 1)
            self._records[row:row] = new
            self._loaded += len(new)
            self.endInsertRows()
        else:
            self._records[row:row] = new

    def _reindex(self) -> None:
        self._rows = {r.path: row for row, r in enumerate(self._records)}

    # -- thumbnails --------------------------------------------------------------------------

    def release(self) -> None:
        """Another folder is shown: stop the thumbnail work and let the model go (with its
        loader and the loader's threads)."""
        if self.thumbnails is not None:
            self.thumbnails.ready.disconnect(self._thumbnail_ready)
            self.thumbnails.shutdown()
        self.deleteLater()

    def _decoration(self, record: ImageRecord) -> Any:
        loader = self.thumbnails
        if loader is None or self.folder is None:
            return None
        found = loader.thumbnail(record.path, self.folder / record.path)
        return loader.loading if found is None else found

    def _thumbnail_ready(self, relative_path: str) -> None:
        row = self._rows.get(relative_path)
        if row is not None and row < self._loaded:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


def _tooltip(record: ImageRecord) -> str:
    size = f"{record.width} x {record.height}" if record.width else "size unknown"
    lines = [record.path, f"{record.status.value}, {size}"]
    if record.model:
        lines.append(f"model: {record.model}")
    if record.status is ImageStatus.FAILED and record.reason:
        lines.append(record.reason)
    return "\n".join(lines)


def _runs(rows: Any) -> Any:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    first = last = None
    for row in rows:
        if last is not None and row == last + 1:
            last = row
            continue
        if first is not None:
            yield first, last
        first = last = row
    if first is not None:
        yield first, last


class ImageFilterProxyModel(QSortFilterProxyModel):
    """The filter bar's logic: status, file name, class present, instances below a score.

    The two id-set filters are computed by the window from the project; None means no filter.
    While any filter is on, every image is loaded into the source so none is missed.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._statuses: frozenset[ImageStatus] | None = None
        self._name = ""
        self._class_ids: frozenset[int] | None = None
        self._low_score_ids: frozenset[int] | None = None

    def set_statuses(self, statuses: Collection[ImageStatus] | None) -> None:
        """Show only these statuses; None (or all four) shows every status."""
        value = None if statuses is None else frozenset(ImageStatus(s) for s in statuses)
        self._change(lambda: setattr(self, "_statuses", value))

    def set_name_filter(self, text: str) -> None:
        """Show paths containing `text`, case-insensitively; "" shows all."""
        self._change(lambda: setattr(self, "_name", text.strip().casefold()))

    def set_class_ids(self, image_ids: Collection[int] | None) -> None:
        """Show only these images (those with the chosen class); None turns the filter off."""
        value = None if image_ids is None else frozenset(image_ids)
        self._change(lambda: setattr(self, "_class_ids", value))

    def set_low_score_ids(self, image_ids: Collection[int] | None) -> None:
        """Show only these images (those with instances below a score); None: no filter."""
        value = None if image_ids is None else frozenset(image_ids)
        self._change(lambda: setattr(self, "_low_score_ids", value))

    def active(self) -> bool:
        return bool(
            self._statuses is not None
            or self._name
            or self._class_ids is not None
            or self._low_score_ids is not None
        )

    def accepts(self, record: ImageRecord) -> bool:
        """Whether the filters let this image through (the rule, apart from Qt)."""
        if self._statuses is not None and record.status not in self._statuses:
            return False
        if self._name and self._name not in record.path.casefold():
            return False
        if self._class_ids is not None and record.id not in self._class_ids:
            return False
        return self._low_score_ids is None or record.id in self._low_score_ids

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        record = self.sourceModel().index(source_row, 0, source_parent).data(RecordRole)
        return record is None or self.accepts(record)

    def _change(self, apply: Any) -> None:
        self.beginFilterChange()
        apply()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        source = self.sourceModel()
        if self.active() and isinstance(source, ImageListModel):
            source.fetch_all()


class ImageListDelegate(QStyledItemDelegate):
    """Paints the item as usual plus its status badge on the thumbnail's top-left corner.

    Its size hint never asks for the thumbnail, so laying out 10,000 rows decodes nothing.
    """

    def __init__(self, icon_size: int = DEFAULT_SIZE, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.icon_size = icon_size

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        text_height = option.fontMetrics.height()
        return QSize(self.icon_size + 200, max(self.icon_size, text_height) + 6)

    def badge_rect(self, item: QRect) -> QRect:
        """Where the badge of the item painted in `item` goes (for tests and hit-testing)."""
        side = max(14, self.icon_size // 5)
        return QRect(item.left() + 5, item.top() + 5, side, side)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        super().paint(painter, option, index)
        badge = BADGES.get(ImageStatus(index.data(StatusRole) or ImageStatus.NEW))
        if badge is None:
            return
        colour, symbol = badge
        rect = self.badge_rect(option.rect)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.setBrush(colour)
        painter.drawEllipse(rect)
        font = QFont(painter.font())
        font.setBold(True)
        font.setPixelSize(max(8, rect.height() - 5))
        painter.setFont(font)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, symbol)
        painter.restore()


def configure_view(view: QListView, icon_size: int = DEFAULT_SIZE) -> ImageListDelegate:
    """Set a list view up for the image browser: uniform rows, thumbnail size, badge delegate."""
    view.setUniformItemSizes(True)  # layout of 10,000 rows without asking each one
    view.setIconSize(QSize(icon_size, icon_size))
    view.setLayoutMode(QListView.LayoutMode.Batched)
    view.setBatchSize(200)
    delegate = ImageListDelegate(icon_size, view)
    view.setItemDelegate(delegate)
    return delegate
