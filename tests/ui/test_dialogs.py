"""The window's dialogs, driven as a person would: widgets found by objectName, buttons
clicked, and what each dialog shows or returns read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QWidget,
)

from maskdesk.core.exporting import Scope
from maskdesk.ui.dialogs import (
    DownloadDialog,
    ExportChoice,
    ExportDialog,
    MissingWeightsDialog,
    ShortcutsDialog,
    ask_export,
    ask_missing_weights,
    confirm,
    show_model_error,
)
from maskdesk.ui.workers import ModelFailure

FAILURE = ModelFailure(
    "coco-v2",
    missing_weights=True,
    url="https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
    path="/home/ann/.cache/maskdesk/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
)
MESSAGE = "The weights of coco-v2 are missing: offline mode forbids downloading them."


def when_modal(act: Callable[[QWidget], object]) -> None:
    """Once a modal dialog is up, `act` on it (a click); a dialog still open afterwards is
    rejected, so a failing test fails instead of hanging in exec()."""
    timer = QTimer(QApplication.instance())  # parented: kept alive until it is done
    timer.setInterval(10)
    tries = [0]

    def poll() -> None:
        tries[0] += 1
        widget = QApplication.activeModalWidget()
        if widget is None:
            if tries[0] > 300:
                timer.stop()
                timer.deleteLater()
            return
        timer.stop()
        timer.deleteLater()
        try:
            act(widget)
        finally:
            if widget.isVisible():
                widget.reject()  # type: ignore[attr-defined]

    timer.timeout.connect(poll)
    timer.start()


def child(dialog: QWidget, kind: type, name: str):
    widget = dialog.findChild(kind, name)
    assert widget is not None, f"no {kind.__name__} named {name!r}"
    return widget


def ok_button(dialog: QWidget) -> QPushButton:
    buttons = child(dialog, QDialogButtonBox, "exportButtons")
    return buttons.button(QDialogButtonBox.StandardButton.Ok)


# -- export ---------------------------------------------------------------------------------


def make_export(qtbot, tmp_path: Path, min_score: float = 0.5) -> ExportDialog:
    dialog = ExportDialog(None, default_path=tmp_path / "coco.json", min_score=min_score)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_export_defaults_to_rle_of_all_images_at_the_current_threshold(qtbot, tmp_path) -> None:
    dialog = make_export(qtbot, tmp_path, min_score=0.5)
    assert dialog.objectName() == "exportDialog"
    assert child(dialog, QLineEdit, "exportPath").text() == str(tmp_path / "coco.json")
    assert child(dialog, QComboBox, "exportFormat").currentText() == "RLE (exact, default)"
    assert child(dialog, QComboBox, "exportScope").currentText() == "All images"
    assert child(dialog, QLabel, "exportThreshold").text() == (
        "Instances at score >= 0.50 (the current threshold); "
        "accepted and hand-made ones at any score"
    )
    with qtbot.waitSignal(dialog.accepted):
        ok_button(dialog).click()
    assert dialog.choice() == ExportChoice(tmp_path / "coco.json", False, Scope.ALL, 0.5)


def test_export_label_follows_the_threshold(qtbot, tmp_path) -> None:
    dialog = make_export(qtbot, tmp_path, min_score=0.35)
    assert (
        child(dialog, QLabel, "exportThreshold")
        .text()
        .startswith("Instances at score >= 0.35 (the current threshold)")
    )
    assert dialog.choice().min_score == 0.35


@pytest.mark.parametrize(
    ("format_text", "polygons"),
    [("RLE (exact, default)", False), ("Polygons (RLE where a mask has holes)", True)],
)
@pytest.mark.parametrize(
    ("scope_text", "scope"),
    [
        ("All images", Scope.ALL),
        ("Reviewed images only", Scope.REVIEWED),
        ("Accepted instances only", Scope.ACCEPTED),
    ],
)
def test_export_choice_reads_each_format_and_scope(
    qtbot, tmp_path, format_text, polygons, scope_text, scope
) -> None:
    dialog = make_export(qtbot, tmp_path)
    formats = child(dialog, QComboBox, "exportFormat")
    scopes = child(dialog, QComboBox, "exportScope")
    assert formats.findText(format_text) >= 0 and scopes.findText(scope_text) >= 0
    formats.setCurrentIndex(formats.findText(format_text))
    scopes.setCurrentIndex(scopes.findText(scope_text))
    child(dialog, QLineEdit, "exportPath").setText(str(tmp_path / "out" / "mine.json"))
    choice = dialog.choice()
    assert (choice.path, choice.polygons, choice.scope) == (
        tmp_path / "out" / "mine.json",
        polygons,
        scope,
    )


def test_export_cannot_be_confirmed_without_a_path(qtbot, tmp_path) -> None:
    dialog = make_export(qtbot, tmp_path)
    child(dialog, QLineEdit, "exportPath").setText("  ")
    assert not ok_button(dialog).isEnabled()
    child(dialog, QLineEdit, "exportPath").setText("x.json")
    assert ok_button(dialog).isEnabled()


def test_browse_puts_the_chosen_file_with_json_suffix_in_the_path(
    qtbot, tmp_path, monkeypatch
) -> None:
    asked: list[str] = []

    def fake_save(parent, caption, start, filters):
        asked.append(filters)
        return str(tmp_path / "picked"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    dialog = make_export(qtbot, tmp_path)
    child(dialog, QPushButton, "exportBrowse").click()
    assert asked and "*.json" in asked[0]
    assert child(dialog, QLineEdit, "exportPath").text() == str(tmp_path / "picked.json")
    assert dialog.choice().path == tmp_path / "picked.json"


def test_ask_export_returns_the_choice_or_none(qtbot, tmp_path) -> None:
    def choose_polygons_and_export(dialog: QWidget) -> None:
        assert dialog.objectName() == "exportDialog"
        formats = child(dialog, QComboBox, "exportFormat")
        formats.setCurrentIndex(1)
        child(dialog, QComboBox, "exportScope").setCurrentIndex(2)
        ok_button(dialog).click()

    when_modal(choose_polygons_and_export)
    choice = ask_export(None, tmp_path / "a.json", 0.3)
    assert choice is not None
    assert (choice.path, choice.polygons, choice.scope, choice.min_score) == (
        tmp_path / "a.json",
        True,
        Scope.ACCEPTED,
        0.3,
    )

    def cancel(dialog: QWidget) -> None:
        buttons = child(dialog, QDialogButtonBox, "exportButtons")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).click()

    when_modal(cancel)
    assert ask_export(None, tmp_path / "a.json", 0.3) is None


# -- model errors ---------------------------------------------------------------------------


def test_missing_weights_shows_the_model_path_and_url_as_selectable_text(qtbot) -> None:
    dialog = MissingWeightsDialog(None, FAILURE, MESSAGE)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.objectName() == "missingWeightsDialog"
    texts = [label.text() for label in dialog.findChildren(QLabel)]
    assert any("The weights of coco-v2 are not on this computer" in t for t in texts)
    # Beside a Download button, the message does not say downloading is forbidden.
    assert not any("forbids" in t for t in texts)
    assert (
        MESSAGE.replace(
            "offline mode forbids downloading them",
            "nothing is downloaded until you press Download",
        )
        in texts
    )
    for name, value in (("weightsPath", FAILURE.path), ("weightsUrl", FAILURE.url)):
        label = child(dialog, QLabel, name)
        assert label.text() == value and label.isVisible()
        assert label.textInteractionFlags() & label.textInteractionFlags().TextSelectableByMouse
    assert child(dialog, QPushButton, "downloadButton").text() == "Download"
    assert child(dialog, QPushButton, "openModelButton").text() == "Open model file..."


@pytest.mark.parametrize(
    ("button", "answer"),
    [("downloadButton", "download"), ("openModelButton", "open"), ("cancelButton", "cancel")],
)
def test_ask_missing_weights_answers_per_button(qtbot, button, answer) -> None:
    def click(dialog: QWidget) -> None:
        assert dialog.objectName() == "missingWeightsDialog"
        child(dialog, QPushButton, button).click()

    when_modal(click)
    assert ask_missing_weights(None, FAILURE, MESSAGE) == answer


def test_closing_the_missing_weights_dialog_is_cancel(qtbot) -> None:
    when_modal(lambda dialog: dialog.close())
    assert ask_missing_weights(None, FAILURE, MESSAGE) == "cancel"


def test_other_model_errors_show_their_message(qtbot) -> None:
    seen: list[str] = []

    def read_and_ok(box: QWidget) -> None:
        assert isinstance(box, QMessageBox) and box.objectName() == "modelErrorDialog"
        seen.append(box.text())
        box.button(QMessageBox.StandardButton.Ok).click()

    when_modal(read_and_ok)
    show_model_error(None, "model.pt is not a maskdesk checkpoint: choose another file.")
    assert seen == ["model.pt is not a maskdesk checkpoint: choose another file."]


# -- download -------------------------------------------------------------------------------


def test_download_dialog_shows_megabytes_and_a_busy_bar_when_the_size_is_unknown(qtbot) -> None:
    dialog = DownloadDialog(None, "coco-v2")
    qtbot.addWidget(dialog)
    assert dialog.objectName() == "downloadDialog" and dialog.isVisible()
    assert QApplication.activeModalWidget() is None  # the window keeps working
    dialog.update_progress(12_000_000, 170_000_000)
    assert "coco-v2" in dialog.labelText()
    assert "12 of 170 MB" in dialog.labelText()
    assert dialog.maximum() > 0
    assert dialog.value() / dialog.maximum() == pytest.approx(12 / 170, abs=0.002)
    dialog.update_progress(3_000_000, 0)
    assert (dialog.minimum(), dialog.maximum()) == (0, 0)  # busy indicator
    assert "3.0 MB so far" in dialog.labelText()
    # Sizes past 2 GiB do not overflow the bar.
    dialog.update_progress(3_000_000_000, 4_000_000_000)
    assert dialog.value() / dialog.maximum() == pytest.approx(0.75)
    assert "3000 of 4000 MB" in dialog.labelText()


def test_download_cancel_emits_canceled_and_finish_does_not(qtbot) -> None:
    dialog = DownloadDialog(None, "coco-v1")
    qtbot.addWidget(dialog)
    dialog.update_progress(1_000_000, 100_000_000)
    cancels: list[bool] = []
    dialog.canceled.connect(lambda: cancels.append(True))
    dialog.finish()
    assert not dialog.isVisible() and cancels == []

    dialog = DownloadDialog(None, "coco-v1")
    qtbot.addWidget(dialog)
    cancel = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Cancel")
    with qtbot.waitSignal(dialog.canceled, timeout=1000):
        cancel.click()


# -- shortcuts and confirmations ------------------------------------------------------------


def test_shortcuts_dialog_lists_actions_with_shortcuts_in_order(qtbot) -> None:
    owner = QWidget()
    qtbot.addWidget(owner)
    undo = QAction("&Undo", owner)
    undo.setShortcut(QKeySequence("Ctrl+Z"))
    redo = QAction("&Redo", owner)
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    about = QAction("&About maskdesk", owner)  # no shortcut: not listed
    accept = QAction("Accept && next", owner)
    accept.setShortcut(QKeySequence("A"))
    native = QKeySequence.SequenceFormat.NativeText

    dialog = ShortcutsDialog(None, [undo, about, redo, accept])
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.objectName() == "shortcutsDialog"
    table = child(dialog, QTableWidget, "shortcutsTable")
    rows = [
        (table.item(row, 0).text(), table.item(row, 1).text()) for row in range(table.rowCount())
    ]
    assert rows == [
        ("Undo", QKeySequence("Ctrl+Z").toString(native)),
        (
            "Redo",
            QKeySequence("Ctrl+Shift+Z").toString(native)
            + ", "
            + QKeySequence("Ctrl+Y").toString(native),
        ),
        ("Accept & next", "A"),
    ]
    assert table.columnCount() == 2
    assert table.editTriggers() == table.EditTrigger.NoEditTriggers
    close = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Close")
    with qtbot.waitSignal(dialog.rejected, timeout=1000):
        close.click()


@pytest.mark.parametrize(
    ("button", "expected"),
    [(QMessageBox.StandardButton.Yes, True), (QMessageBox.StandardButton.No, False)],
)
def test_confirm_is_true_only_for_yes(qtbot, button, expected) -> None:
    seen: list[str] = []

    def answer(box: QWidget) -> None:
        assert isinstance(box, QMessageBox)
        seen.append(box.text())
        box.button(button).click()

    when_modal(answer)
    assert confirm(None, "Clear pre-labels", "Clear the pre-labels of 12 images?") is expected
    assert seen == ["Clear the pre-labels of 12 images?"]
