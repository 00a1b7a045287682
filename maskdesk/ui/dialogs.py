"""The window's dialogs: COCO export options and what an export left out, where a picture is
exported to, missing model weights, download progress, keyboard shortcuts and yes/no
confirmations.

Each dialog is a small class that tests drive through its objectNames, plus an `ask_*`
function that runs it modally for the window. No torch here: failures arrive as `ModelFailure`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PySide6.QtCore import QStandardPaths, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from maskdesk.core.exporting import LeftOut, Scope, left_out_summary
from maskdesk.core.images import SUPPORTED_SUFFIXES
from maskdesk.ui.workers import ModelFailure

FORMATS = (("RLE (exact, default)", False), ("Polygons (RLE where a mask has holes)", True))
SCOPES = (
    ("All images", Scope.ALL),
    ("Reviewed images only", Scope.REVIEWED),
    ("Accepted instances only", Scope.ACCEPTED),
)


def threshold_text(min_score: float) -> str:
    """What the export takes, in the words the export dialog shows."""
    return (
        f"Instances at score >= {min_score:.2f} (the current threshold); "
        "accepted and hand-made ones at any score"
    )


def _plain(text: str) -> str:
    """An action's text as a person reads it: mnemonic '&' removed, '&&' kept as '&'."""
    return "&".join(part.replace("&", "") for part in text.split("&&"))


# -- export --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportChoice:
    """What the person chose in the export dialog."""

    path: Path
    polygons: bool
    scope: Scope
    min_score: float


class ExportDialog(QDialog):
    """File -> Export COCO: where to, RLE or polygons, which images or instances."""

    def __init__(self, parent: QWidget | None, *, default_path: Path, min_score: float) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export COCO")
        self._min_score = min_score

        self._path = QLineEdit(str(default_path))
        self._path.setObjectName("exportPath")
        self._path.setMinimumWidth(360)
        browse = QPushButton("Browse...")
        browse.setObjectName("exportBrowse")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self._path, 1)
        path_row.addWidget(browse)

        self._format = QComboBox()
        self._format.setObjectName("exportFormat")
        for text, polygons in FORMATS:
            self._format.addItem(text, polygons)

        self._scope = QComboBox()
        self._scope.setObjectName("exportScope")
        for text, scope in SCOPES:
            self._scope.addItem(text, scope)

        threshold = QLabel(threshold_text(min_score))
        threshold.setObjectName("exportThreshold")
        threshold.setWordWrap(True)

        form = QFormLayout()
        form.addRow("File:", path_row)
        form.addRow("Format:", self._format)
        form.addRow("Take:", self._scope)
        form.addRow("Score:", threshold)

        self._buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self._buttons.setObjectName("exportButtons")
        self._buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)
        # An empty path would write "." (the folder): there is nothing to export to.
        self._path.textChanged.connect(self._update_ok)
        self._update_ok()

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self._buttons)

    def choice(self) -> ExportChoice:
        """The choices as the widgets show them now."""
        return ExportChoice(
            path=Path(self._path.text().strip()).expanduser(),
            polygons=bool(self._format.currentData()),
            scope=Scope(self._scope.currentData()),
            min_score=self._min_score,
        )

    def _update_ok(self) -> None:
        ok = self._buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self._path.text().strip()))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export COCO", self._path.text().strip(), "COCO JSON (*.json)"
        )
        if path:
            # Some platforms' dialogs do not add the filter's suffix themselves.
            if not Path(path).suffix:
                path += ".json"
            self._path.setText(path)


def ask_export(parent: QWidget | None, default_path: Path, min_score: float) -> ExportChoice | None:
    """Run the export dialog modally; the choice, or None when cancelled."""
    dialog = ExportDialog(parent, default_path=default_path, min_score=min_score)
    try:
        if dialog.exec() == QDialog.DialogCode.Accepted:
            return dialog.choice()
        return None
    finally:
        dialog.deleteLater()


LEFT_OUT_NAMED = 10  # names in the message itself; the rest are under "Show Details"


def show_left_out(parent: QWidget | None, written: str, left_out: Sequence[LeftOut]) -> None:
    """Tell what an export wrote and name the failed images it left out (all of them in
    the details), since an export that silently drops images looks complete."""
    box = QMessageBox(parent)
    box.setObjectName("exportLeftOut")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Export COCO")
    box.setTextFormat(Qt.TextFormat.PlainText)  # file names are not markup
    box.setText(f"{written}.\n\n{left_out_summary(left_out, limit=LEFT_OUT_NAMED)}.")
    if len(left_out) > LEFT_OUT_NAMED:
        box.setDetailedText("\n".join(f"{item.path}: {item.reason}" for item in left_out))
    box.exec()
    box.deleteLater()


# -- export picture --------------------------------------------------------------------------


PICTURE_FOLDER = "pictureFolder"  # QSettings key: the folder the last picture went to


def becomes_image(folder: Path, path: Path) -> bool:
    """Whether a file at `path` would be taken as an image of the project of `folder` the
    next time the folder is scanned (the scan's rules: image suffix, no hidden part)."""
    root = folder.resolve()
    target = path.expanduser().resolve()
    if root not in target.parents:
        return False
    hidden = any(part.startswith(".") for part in target.relative_to(root).parts)
    return not hidden and target.suffix.lower() in SUPPORTED_SUFFIXES


def picture_default(folder: Path, image_path: str, remembered: str = "") -> Path:
    """Where Export picture proposes to write the picture of `image_path`: the folder the last
    picture went to, else beside the image folder, else Pictures or home; never where the
    picture would become an image of the project."""
    name = PurePosixPath(image_path).with_suffix("").as_posix().replace("/", "-") + "-masks.png"
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    places = [Path(p) for p in (remembered, str(folder.parent), pictures, str(Path.home())) if p]
    for place in places:
        if place.is_dir() and os.access(place, os.W_OK) and not becomes_image(folder, place / name):
            return place / name
    return folder.parent / name


def ask_picture_path(parent: QWidget | None, folder: Path, default: Path) -> Path | None:
    """Ask where to write the picture; a place inside the image folder is asked about first
    (No, the default, asks for another place). None when cancelled."""
    start = default
    while True:
        text, _ = QFileDialog.getSaveFileName(
            parent, "Export the picture with its masks", str(start), "Pictures (*.png *.jpg)"
        )
        if not text:
            return None
        path = Path(text)
        if not path.suffix:
            path = path.with_suffix(".png")
        if not becomes_image(folder, path) or confirm(
            parent,
            "Export picture",
            f"{path} is inside the image folder {folder}: the next time maskdesk reads the "
            "folder, the picture becomes one of its images, to review and to export.\n\n"
            "Save it there anyway?",
        ):
            return path
        start = default


# -- model errors --------------------------------------------------------------------------


class MissingWeightsDialog(QDialog):
    """A named model's weights are missing: download them, place them by hand, or open a
    model file instead. The path and the URL are selectable, to be copied."""

    def __init__(self, parent: QWidget | None, failure: ModelFailure, message: str) -> None:
        super().__init__(parent)
        self.setObjectName("missingWeightsDialog")
        self.setWindowTitle("Model weights missing")
        self.answer = "cancel"

        icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_MessageBoxIconSize)
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(size)
        )
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)

        heading = QLabel(f"<b>The weights of {failure.name} are not on this computer.</b>")
        heading.setObjectName("missingWeightsHeading")
        heading.setTextFormat(Qt.TextFormat.RichText)
        intro = QLabel(
            "Download them now, or place the file at this path yourself and choose the model again:"
        )
        intro.setWordWrap(True)
        path = self._selectable(failure.path, "weightsPath")
        source = QLabel("It can be downloaded from:")
        url = self._selectable(failure.url, "weightsUrl")
        # The window loads without downloading until asked; the Download button asks.
        message = message.replace(
            "offline mode forbids downloading them",
            "nothing is downloaded until you press Download",
        )
        details = QLabel(message)
        details.setObjectName("missingWeightsMessage")
        details.setWordWrap(True)
        details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        details.setStyleSheet("color: palette(placeholder-text);")

        text = QVBoxLayout()
        for widget in (heading, intro, path, source, url, details):
            text.addWidget(widget)
        top = QHBoxLayout()
        top.addWidget(icon)
        top.addLayout(text, 1)

        buttons = QDialogButtonBox()
        download = buttons.addButton("Download", QDialogButtonBox.ButtonRole.AcceptRole)
        download.setObjectName("downloadButton")
        download.setDefault(True)
        open_model = buttons.addButton("Open model file...", QDialogButtonBox.ButtonRole.ActionRole)
        open_model.setObjectName("openModelButton")
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("cancelButton")
        download.clicked.connect(lambda: self._answer("download"))
        open_model.clicked.connect(lambda: self._answer("open"))
        cancel.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)

    @staticmethod
    def _selectable(text: str, name: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName(name)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setCursor(Qt.CursorShape.IBeamCursor)
        label.setWordWrap(True)
        label.setStyleSheet("font-family: monospace;")
        return label

    def _answer(self, answer: str) -> None:
        self.answer = answer
        self.accept()

    def reject(self) -> None:
        self.answer = "cancel"
        super().reject()


def ask_missing_weights(parent: QWidget | None, failure: ModelFailure, message: str) -> str:
    """Run the missing-weights dialog modally: "download", "open" or "cancel"."""
    dialog = MissingWeightsDialog(parent, failure, message)
    try:
        dialog.exec()
        return dialog.answer
    finally:
        dialog.deleteLater()


def show_model_error(parent: QWidget | None, message: str) -> None:
    """Any other model error: its message, which says what to do, in a plain warning."""
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "Model not loaded",
        message,
        QMessageBox.StandardButton.Ok,
        parent,
    )
    box.setObjectName("modelErrorDialog")
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    try:
        box.exec()
    finally:
        box.deleteLater()


# -- download progress ---------------------------------------------------------------------


def _megabytes(done: int, total: int) -> str:
    digits = 1 if 0 < total < 10_000_000 or (total == 0 and done < 10_000_000) else 0
    if total > 0:
        return f"{done / 1e6:.{digits}f} of {total / 1e6:.{digits}f} MB"
    return f"{done / 1e6:.{digits}f} MB so far"


class DownloadDialog(QProgressDialog):
    """Progress of a weights download, shown at once and not modal: the window keeps
    running. `canceled` (QProgressDialog's) is what asks the worker to stop."""

    _STEPS = 1000  # the bar counts thousandths: a byte count may not fit a C int

    def __init__(self, parent: QWidget | None, name: str) -> None:
        super().__init__(parent)
        self.setObjectName("downloadDialog")
        self.setWindowTitle("Downloading model weights")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self._name = name
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.setMinimumDuration(0)
        self.setMinimumWidth(380)
        self.update_progress(0, 0)
        self.show()

    def update_progress(self, done: int, total: int) -> None:
        """Bytes `done` of `total`; a total of 0 (unknown) shows a busy bar."""
        if total > 0:
            self.setRange(0, self._STEPS)
            self.setValue(min(self._STEPS, round(self._STEPS * done / total)))
        else:
            self.setRange(0, 0)
            self.setValue(0)
        self.setLabelText(f"Downloading the weights of {self._name}\n{_megabytes(done, total)}")

    def finish(self) -> None:
        """Take the dialog away without signalling `canceled` (closing it would). Not
        deleted here, so a second call, or a late progress report, is harmless."""
        self.hide()


# -- shortcuts and confirmations -----------------------------------------------------------


class ShortcutsDialog(QDialog):
    """Every action with a keyboard shortcut, in the order given."""

    def __init__(self, parent: QWidget | None, actions: Sequence[QAction]) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        rows = [(_plain(a.text()), _keys(a)) for a in actions if _keys(a)]

        table = QTableWidget(len(rows), 2)
        table.setObjectName("shortcutsTable")
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.verticalHeader().setVisible(False)
        for row, (text, keys) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(text))
            table.setItem(row, 1, QTableWidgetItem(keys))
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(460, 520)


def _keys(action: QAction) -> str:
    """An action's shortcuts as the platform writes them, several joined by ", "."""
    native = QKeySequence.SequenceFormat.NativeText
    return ", ".join(k.toString(native) for k in action.shortcuts() if not k.isEmpty())


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    """A yes/no question; No is the default, so Enter does not destroy anything."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
