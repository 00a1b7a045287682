"""Model ▸ Train on reviewed images: what would be trained on and held out, the settings, the
round's progress, and the held-out figures of the current and the new model side by side.

The training itself runs in a child process (training_run); this dialog only shows it, so the
person goes on reviewing in the window meanwhile. Adopting the new model is folder_models'.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from maskdesk.core.errors import MaskdeskError
from maskdesk.core.training_set import TrainingSet, collect
from maskdesk.ui.dialogs import confirm
from maskdesk.ui.training_run import TrainingRun, TrainSettings
from maskdesk.ui.training_views import LossCurve, duration, fill_result, progress_text, verdict

if TYPE_CHECKING:
    from maskdesk.ui.main_window import MainWindow

CURRENT = "current"  # the base "current model": the window's model when Start is pressed
BASES = (("coco-v1", "coco-v1"), ("coco-v2", "coco-v2"), ("tiny (from scratch)", "tiny"))
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_BUDGET_S = 120
DEFAULT_EPOCHS = 5
FILE = "file"


def _label(name: str, text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _button(name: str, text: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setAutoDefault(False)
    return button


class TrainingDialog(QDialog):
    """One training round of the window's folder, from the settings to the verdict."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setObjectName("trainDialog")
        self.setWindowTitle("Train on reviewed images")
        self.main = window
        assert window.project is not None
        self.folder = window.project.folder
        self.store_dir = window.project.store_path.parent
        self.run: TrainingRun | None = None
        self.training_set: TrainingSet | None = None
        self._build()
        self.look_again()

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.setup = QGroupBox("Reviewed images")
        box = QVBoxLayout(self.setup)
        self.summary = _label("trainSummary")
        box.addWidget(self.summary)
        self.details = QWidget()  # the split in full; only the summary once training runs
        row = QHBoxLayout(self.details)
        row.setContentsMargins(0, 0, 0, 0)
        self.counts = QTableWidget(0, 2)
        self.counts.setObjectName("trainCounts")
        self.counts.setHorizontalHeaderLabels(["Train", "Held out"])
        self.counts.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.counts.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.counts.setToolTip("Instances per class on the images trained on and held out")
        self.held_out = QListWidget()
        self.held_out.setObjectName("trainHeldOut")
        self.held_out.setToolTip(
            "Held out: never trained on, they measure the current and the new model "
            "(1 image in 5, at least 2, the same in every round)"
        )
        held = QVBoxLayout()
        held.addWidget(QLabel("Held-out images"))
        held.addWidget(self.held_out)
        row.addWidget(self.counts, 3)
        row.addLayout(held, 2)
        box.addWidget(self.details)
        self.warnings = _label("trainWarnings")
        self.warnings.setStyleSheet("color: #a15c00;")
        box.addWidget(self.warnings)
        layout.addWidget(self.setup)

        self.options = QGroupBox("Settings")
        form = QFormLayout(self.options)
        self.base = QComboBox()
        self.base.setObjectName("trainBase")
        self.base.addItem(f"Current model ({_short(self.main.model_name)})", CURRENT)
        for text, spec in BASES:
            self.base.addItem(text, spec)
        self.base.addItem("A model file…", FILE)
        self.base.setToolTip("The model the new one starts from")
        self.base.activated.connect(self._base_chosen)
        self._base_index = 0
        form.addRow("Start from", self.base)
        self.use_budget = QRadioButton("Time budget")
        self.use_budget.setObjectName("trainUseBudget")
        self.use_epochs = QRadioButton("Epochs")
        self.use_epochs.setObjectName("trainUseEpochs")
        self.budget = QSpinBox()
        self.budget.setObjectName("trainBudget")
        self.budget.setRange(10, 7 * 24 * 3600)
        self.budget.setValue(DEFAULT_BUDGET_S)
        self.budget.setSuffix(" s")
        self.epochs = QSpinBox()
        self.epochs.setObjectName("trainEpochs")
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(DEFAULT_EPOCHS)
        group = QButtonGroup(self)
        length = QHBoxLayout()
        for radio, spin in ((self.use_budget, self.budget), (self.use_epochs, self.epochs)):
            group.addButton(radio)
            radio.toggled.connect(spin.setEnabled)
            length.addWidget(radio)
            length.addWidget(spin)
        length.addStretch(1)
        self.use_budget.setChecked(True)
        self.epochs.setEnabled(False)
        form.addRow("Train for", length)
        self.device = QComboBox()
        self.device.setObjectName("trainDevice")
        self.device.addItems(list(DEVICES))
        device = self.main.device
        self.device.setCurrentIndex(DEVICES.index(device) if device in DEVICES else 0)
        form.addRow("Device", self.device)
        layout.addWidget(self.options)

        self.progress_box = QGroupBox("Training")
        box = QVBoxLayout(self.progress_box)
        self.round_line = _label("trainRound")
        box.addWidget(self.round_line)
        self.progress = _label("trainProgress", "Starting…")
        self.bar = QProgressBar()
        self.bar.setObjectName("trainProgressBar")
        self.bar.setRange(0, 0)
        self.curve = LossCurve()
        box.addWidget(self.progress)
        box.addWidget(self.bar)
        box.addWidget(self.curve)
        self.progress_box.hide()
        layout.addWidget(self.progress_box)

        self.result_box = QGroupBox("Held-out figures")
        box = QVBoxLayout(self.result_box)
        self.result_table = QTableWidget(0, 2)
        self.result_table.setObjectName("trainResult")
        self.result_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.rule = _label("trainRule")
        self.verdict = _label("trainVerdict")
        box.addWidget(self.result_table)
        box.addWidget(self.rule)
        box.addWidget(self.verdict)
        self.result_box.hide()
        layout.addWidget(self.result_box)

        self.status = _label("trainStatus")
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.start_button = _button("trainStart", "Start training")
        self.cancel_button = _button("trainCancel", "Cancel training")
        self.keep_button = _button("trainKeep", "Keep the current model")
        self.adopt_button = _button("trainAdopt", "Use the new model")
        self.close_button = _button("trainClose", "Close")
        buttons.addStretch(1)
        for button in (
            self.start_button,
            self.cancel_button,
            self.keep_button,
            self.adopt_button,
            self.close_button,
        ):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.keep_button.clicked.connect(self.keep)
        self.adopt_button.clicked.connect(self.adopt)
        self.close_button.clicked.connect(self.reject)
        self._show_buttons(start=True)
        self.setMinimumWidth(560)

    def _show_buttons(self, *, start: bool = False, cancel: bool = False, result: bool = False):
        self.start_button.setVisible(start)
        self.cancel_button.setVisible(cancel)
        self.keep_button.setVisible(result)
        self.adopt_button.setVisible(result)
        self.close_button.setVisible(not cancel and not result)

    # -- before the start ----------------------------------------------------------------------

    def look_again(self) -> None:
        """Collect the reviewed images as they are now and show the split."""
        project = self.main.project
        problem = ""
        try:
            if project is None or project.folder != self.folder:
                raise MaskdeskError(f"{self.folder} is no longer open in the window.")
            self.training_set = collect(project)
            self.training_set.check()
        except MaskdeskError as exc:
            problem = str(exc)
        found = self.training_set
        if found is not None:
            n_train, n_held = len(found.train), len(found.held_out)
            self.summary.setText(
                f"{n_train + n_held} reviewed images in {self.folder.name}: {n_train} to train "
                f"on, {n_held} held out to measure the models."
            )
            self.counts.setRowCount(len(found.counts))
            self.counts.setVerticalHeaderLabels(list(found.counts))
            for row, (train, held) in enumerate(found.counts.values()):
                for column, value in enumerate((train, held)):
                    item = QTableWidgetItem(str(value))
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.counts.setItem(row, column, item)
            self.held_out.clear()
            self.held_out.addItems([image.file_name for image in found.held_out])
        fit_rows(self.counts)
        self.counts.setMinimumWidth(260)
        notes = ([problem] if problem else []) + (found.warnings() if found is not None else [])
        self.warnings.setText("\n".join(notes))
        self.warnings.setVisible(bool(notes))
        self.start_button.setEnabled(not problem)
        if problem:
            self.start_button.setToolTip(problem)

    def _base_chosen(self, index: int) -> None:
        if self.base.itemData(index) != FILE:
            self._base_index = index
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Start from a model file", str(self.folder), "PyTorch models (*.pt *.pth)"
        )
        if not path:
            self.base.setCurrentIndex(self._base_index)
            return
        self.base.insertItem(index, _short(path), path)
        self.base.setItemData(index, path, Qt.ItemDataRole.ToolTipRole)
        self.base.setCurrentIndex(index)
        self._base_index = index

    def settings(self) -> TrainSettings:
        """The round as chosen; "current model" is the window's model now."""
        base = str(self.base.currentData())
        current = self.main.model_name
        return TrainSettings(
            folder=str(self.folder),
            base=current if base == CURRENT else base,
            current=current,
            device=self.device.currentText(),
            budget_s=self.budget.value() if self.use_budget.isChecked() else None,
            epochs=self.epochs.value() if self.use_epochs.isChecked() else None,
        )

    # -- the round -----------------------------------------------------------------------------

    def running(self) -> bool:
        """True while the child trains: not once it has made its model (it is only exiting)."""
        return self.run is not None and self.run.running() and self.run.model is None

    def start(self) -> None:
        if self.running():
            return
        project = self.main.project
        if project is None or project.folder != self.folder:
            # The model to compare with is the window's, of the folder open now.
            self.status.setText(f"{self.folder} is no longer open in the window; open it again.")
            return
        chosen = self.settings()
        if self.run is not None:
            self.run.deleteLater()  # the round that failed: its process has ended
        run = self.run = TrainingRun(chosen, self.store_dir, self)
        run.started.connect(self._started)
        run.progress.connect(self._progress)
        run.evaluating.connect(self._evaluating)
        run.done.connect(self._done)
        run.failed.connect(self._failed)
        self.options.hide()  # what was chosen is said in the progress line
        self.details.hide()
        self.result_box.hide()
        self.progress_box.show()
        self.adjustSize()
        self.curve.clear()
        self.bar.setRange(0, 0)
        self.progress.setText("Starting the training process…")
        length = (
            f"{chosen.epochs} epoch{'s' if chosen.epochs != 1 else ''}"
            if chosen.epochs is not None
            else f"about {duration(chosen.budget_s or 0)}"
        )
        self.round_line.setText(
            f"From {_short(chosen.base)}, {length} on {chosen.device}; the current model "
            f"{_short(chosen.current)} is measured beside it."
        )
        self.status.setText("")
        self._show_buttons(cancel=True)
        self.cancel_button.setEnabled(True)
        run.start()

    def cancel(self) -> None:
        """Stop the child (it is killed if it does not stop); the current model stays."""
        if self.run is not None and self.running():
            self.cancel_button.setEnabled(False)
            self.progress.setText("Stopping the training process…")
            self.run.cancel()

    def _started(self, event: dict[str, Any]) -> None:
        held = event.get("held_out") or []
        self.progress.setText(
            f"Training on {event.get('train_images', '?')} images ({len(held)} held out): "
            "loading the base model…"
        )

    def _progress(self, event: dict[str, Any]) -> None:
        total, done = event.get("total"), event.get("iteration")
        if isinstance(total, int) and isinstance(done, int) and total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        self.progress.setText(progress_text(event))
        loss = event.get("loss")
        if isinstance(loss, int | float):
            self.curve.add(float(loss))

    def _evaluating(self, event: dict[str, Any]) -> None:
        self.bar.setRange(0, 0)
        if event.get("model") == "new":
            what = "the new model"
        else:
            what = f"the current model ({_short(event.get('name'))})"
        self.progress.setText(f"Measuring {what} on the held-out images…")

    def _done(self, event: dict[str, Any]) -> None:
        card: dict[str, Any] = event["card"]
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.progress.setText(
            f"{card.get('name', 'The new model')} trained in "
            f"{float(card.get('duration_s') or 0):.0f} s, {card.get('iterations', '?')} "
            "iterations."
        )
        fill_result(self.result_table, card)
        rule = (card.get("evaluation") or {}).get("rule")
        self.rule.setText(str(rule)[:1].upper() + str(rule)[1:] if rule else "")
        self.rule.setVisible(bool(rule))
        self.verdict.setText(verdict(card))
        self.result_box.show()
        self._show_buttons(result=True)
        adopt = bool(card.get("adopt"))
        self.adopt_button.setDefault(adopt)
        self.keep_button.setDefault(not adopt)
        (self.adopt_button if adopt else self.keep_button).setFocus()
        self.status.setText(f"Saved as {Path(event['model']).name} in this folder's models.")
        self.status.setToolTip(str(event["model"]))
        self._fit()

    def _fit(self) -> None:
        fit_rows(self.result_table, most=12)
        self.adjustSize()

    def _failed(self, message: str) -> None:
        self.options.show()  # to try again; the split was seen before the start
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.progress.setText("No new model.")
        self.status.setText(message)
        self._show_buttons(start=True)
        self.adjustSize()
        self.main.statusBar().showMessage(message.split("\n")[0], 20000)

    # -- the verdict ---------------------------------------------------------------------------

    def adopt(self) -> None:
        from maskdesk.ui.folder_models import adopt

        if self.run is None or self.run.model is None:
            return
        if adopt(self.main, self.run.model, self.folder):
            self.accept()

    def keep(self) -> None:
        if self.run is not None and self.run.model is not None:
            self.main.statusBar().showMessage(
                f"The current model stays; {self.run.model.stem} is kept under Model ▸ "
                "Models of this folder.",
                20000,
            )
        self.accept()

    def reject(self) -> None:
        """Close (Esc, the title bar's button, Close): while training, asks first."""
        if self.running():
            question = "Training is running. Stop it and close? The current model stays."
            if not confirm(self, "Stop training", question):
                return
            self.cancel()
        super().reject()


def fit_rows(table: QTableWidget, most: int = 8) -> None:
    """As tall as its rows (`most` of them at most, then it scrolls): nothing squashed."""
    rows = min(table.rowCount(), most)
    height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
    height += sum(table.rowHeight(r) for r in range(rows)) if rows else 24
    table.setFixedHeight(height)


def _short(spec: object) -> str:
    text = str(spec or "")
    return Path(text).name if ("/" in text or "\\" in text) else text


__all__ = ["TrainingDialog"]
