"""The review window: composition and wiring only.

Left, the image browser; centre, the canvas; right, the instances panel with the score and
opacity sliders. Every edit is an undoable command that stores at once; the model runs on the
inference thread; another program writing the project (a `maskdesk predict` beside the
window) is noticed through the store's change counter and shown without losing the selection.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QSettings,
    Qt,
    QTimer,
)
from PySide6.QtGui import QCloseEvent, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from maskdesk.core.instances import Instance, Review
from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui import icons
from maskdesk.ui.actions import make_actions
from maskdesk.ui.canvas import Canvas
from maskdesk.ui.commands import (
    DeleteInstances,
    SetImageStatus,
    UndoStacks,
    relabel,
    review,
    set_visible,
)
from maskdesk.ui.dialogs import confirm
from maskdesk.ui.editing import Editor
from maskdesk.ui.filter_bar import FilterBar
from maskdesk.ui.help_menu import finished_line, image_note
from maskdesk.ui.image_list_model import (
    ImageFilterProxyModel,
    ImageIdRole,
    ImageListModel,
    configure_view,
)
from maskdesk.ui.instance_model import (
    CLASS,
    InstanceIdRole,
)
from maskdesk.ui.instance_panel import InstancePanel
from maskdesk.ui.menus import build_menus, file_actions
from maskdesk.ui.model_runs import ModelRuns
from maskdesk.ui.picture_loader import PictureLoader
from maskdesk.ui.settings import remember_recent, setting_int
from maskdesk.ui.workers import InferenceThread

DEFAULT_SCORE = 0.5
WATCH_MS = 1000  # how often the window looks for writes by other programs
UI_BUSY_S = 0.02  # how long an edit may wait for another program's write: about a frame
MIN_LIST_HEIGHT, MIN_CANVAS, MIN_TABLE_WIDTH = 110, (240, 180), 220


class MainWindow(QMainWindow):
    """Composition only: the project lives in core, the model on the inference thread."""

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("maskdesk")
        self.resize(1280, 800)
        self.settings = settings or QSettings()
        self.project: Project | None = None
        self.image_id: int | None = None
        self.picture_id: int | None = None  # the image whose picture the canvas shows
        self.model_name = str(self.settings.value("model", "coco-v1"))
        self.undo = UndoStacks(self)
        self.acts = make_actions(self)
        self.recent_menu = QMenu(self)  # replaced by the File menu's own
        self.recent_models_menu = QMenu(self)
        self._build_widgets()
        build_menus(self)
        self.editor = Editor(self)
        icons.apply(self)  # both toolbars are built now
        self.inference = InferenceThread(self)
        self.runs = ModelRuns(self)  # the model's requests and answers
        self.pictures = PictureLoader(self)
        self.pictures.loaded.connect(self._picture_loaded)
        self._connect()
        self._watch = QTimer(self)
        self._watch.timeout.connect(self.look_for_changes)
        self._watch.start(WATCH_MS)
        self._restore_settings()

    # -- building --------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.image_model: ImageListModel | None = None
        self.image_proxy = ImageFilterProxyModel(self)
        self.image_list = QListView()
        self.image_list.setObjectName("imageList")
        configure_view(self.image_list)
        self.image_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.image_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.image_list.setModel(self.image_proxy)
        self.filters = FilterBar(self.image_proxy, lambda: self.project, lambda: self.min_score)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.filters)
        left_layout.addWidget(self.image_list)

        self.canvas = Canvas()
        self.canvas.set_message("Open a folder of images (Ctrl+O)")

        right = InstancePanel(self)
        self.instance_model, self.instance_proxy = right.model, right.proxy
        self.instance_table, self.class_editor = right.table, right.class_editor
        self.score_slider, self.opacity_slider = right.score_slider, right.opacity_slider
        self.score_label = right.score_label

        self.splitter = QSplitter()
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.canvas)
        self.splitter.addWidget(right)
        self.splitter.setSizes([240, 680, 360])
        # The window's minimum follows: filters over a thumbnail row, a picture to work on,
        # the class and score columns and both sliders.
        self.image_list.setMinimumHeight(MIN_LIST_HEIGHT)
        self.canvas.setMinimumSize(*MIN_CANVAS)
        right.setMinimumWidth(MIN_TABLE_WIDTH)
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)
        self.progress = QProgressBar()
        self.progress.setObjectName("progressBar")
        self.progress.setMaximumWidth(200)
        self.progress.hide()
        self.statusBar().addPermanentWidget(self.progress)
        self._score_changed(self.score_slider.value())

    def _connect(self) -> None:
        a = self.acts
        a["actionQuit"].triggered.connect(self.close)
        a["actionUndo"].triggered.connect(self.undo.undo)
        a["actionRedo"].triggered.connect(self.undo.redo)
        self.undo.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.undo.group.canUndoChanged.connect(a["actionUndo"].setEnabled)
        self.undo.group.canRedoChanged.connect(a["actionRedo"].setEnabled)
        a["actionDeleteInstance"].triggered.connect(self.delete_selected)
        a["actionToggleInstance"].triggered.connect(self.toggle_selected)
        a["actionAcceptInstance"].triggered.connect(lambda: self.review_selected(Review.ACCEPTED))
        a["actionRejectInstance"].triggered.connect(lambda: self.review_selected(Review.REJECTED))
        a["actionAcceptAll"].triggered.connect(self.accept_all_shown)
        a["actionRelabelInstance"].triggered.connect(self.relabel_selected)
        a["actionMarkReviewed"].triggered.connect(self.mark_reviewed_and_next)
        a["actionNextImage"].triggered.connect(lambda: self.step_image(1))
        a["actionPreviousImage"].triggered.connect(lambda: self.step_image(-1))
        a["actionNextUnreviewed"].triggered.connect(self.next_unreviewed)
        a["actionDetect"].triggered.connect(self.detect)
        a["actionPrelabelFolder"].triggered.connect(self.prelabel_folder)
        a["actionCancel"].triggered.connect(self.runs.cancel)
        a["actionCancel"].setEnabled(False)
        file_actions(self)

        self.score_slider.valueChanged.connect(self._score_changed)
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_opacity(v / 100))
        self.instance_model.visibilityRequested.connect(
            lambda iid, on: self._push(set_visible, [iid], on)
        )
        self.instance_model.relabelRequested.connect(
            lambda iid, name: self._push(relabel, [iid], name)
        )
        self.instance_table.selectionModel().selectionChanged.connect(self._table_selection)
        self.canvas.selectionChanged.connect(self._canvas_selection)
        # Once: the view keeps its selection model when the proxy's source is replaced.
        self.image_list.selectionModel().currentChanged.connect(self._current_image_changed)

        w = self.inference
        w.imageStored.connect(self._image_stored)
        w.finished.connect(self._finished)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    # -- folder and image ------------------------------------------------------------------

    def open_folder(self, folder: Path | str) -> None:
        """Open (or create) the folder's project and show its first image."""
        project = Project.open(folder)
        project.set_busy_timeout(UI_BUSY_S)  # an edit never stalls the window on a lock
        if self.project is not None:
            self.project.close()
        self.project = project
        self.undo.clear()
        self.image_id = self.picture_id = None
        old, self.image_model = self.image_model, ImageListModel.from_project(project, parent=self)
        self.image_proxy.setSourceModel(self.image_model)
        if old is not None:
            old.release()  # its thumbnail threads stop, and it goes
        self.image_model.fetchMore(QModelIndex())  # the first rows, without waiting for a paint
        # Nothing of the last folder stays on screen, and an empty folder says so.
        self.canvas.set_image(None)
        self.canvas.set_instances([], {})
        empty = not self.image_model.total()
        self.canvas.set_message(f"No images in {project.folder}" if empty else "")
        self.instance_model.set_instances([], {})
        self.inference.set_project(project)
        self.runs.folder_opened()  # the folder's own model, when it has one
        self.setWindowTitle(f"maskdesk — {project.folder}")
        self.statusBar().showMessage(project.store_note or f"Project: {project.store_path}")
        remember_recent(self.settings, "recentFolders", str(project.folder))
        self.project.changed()  # what is stored now is what is shown
        self.filters.fill_classes()
        self.filters.update_from_store()
        last = self.settings.value(f"lastImage/{project.folder}")
        if last is not None and self.show_image(int(last)):
            return
        if self.image_proxy.rowCount():
            self.image_list.setCurrentIndex(self.image_proxy.index(0, 0))

    def show_image(self, image_id: int) -> bool:
        """Select an image in the browser (which shows it); False when it is not listed."""
        if self.image_model is None:
            return False
        source = self.image_model.index_of(image_id)
        if not source.isValid():
            return False
        index = self.image_proxy.mapFromSource(source)
        if not index.isValid():
            return False
        self.image_list.setCurrentIndex(index)
        return True

    def _current_image_changed(self, current, previous) -> None:  # noqa: ANN001
        if not current.isValid() or self.project is None:
            return
        self.image_id = int(current.data(ImageIdRole))
        self.undo.activate(self.image_id)
        self.inference.keep_only(self.image_id)
        tool = self.canvas.tool()
        if tool is not None:
            tool.cancel()  # a half-drawn polygon belongs to the image it was drawn on
        self.settings.setValue(f"lastImage/{self.project.folder}", self.image_id)
        record = self.project.image(self.image_id)
        # The table follows at once; the canvas when the picture is decoded (off this thread).
        self.canvas.set_instances([], {})
        self.refresh_instances(reset=True, canvas=False)
        self.pictures.request(self.image_id, self.project.absolute_path(record))

    def _picture_loaded(self, image_id: int, rgb: object, error: str) -> None:
        if image_id != self.image_id:
            return  # the person has moved on
        self.picture_id = image_id
        self.canvas.set_image(rgb)  # type: ignore[arg-type]
        if rgb is None:
            self.canvas.set_message(error)
        self.refresh_instances()

    def refresh_instances(self, reset: bool = False, canvas: bool = True) -> None:
        """Show the current image's stored instances in the table and on the canvas. What is
        shown already is left as it is: redoing the table, the canvas layers and outlines on
        every tick of the watch during a batch stalled the window."""
        if self.project is None or self.image_id is None:
            return
        instances = self.project.instances(self.image_id)
        names = {c.id: c.name for c in self.project.categories}
        if sorted(names.values()) != self.class_editor.names:
            self.class_editor.names = sorted(names.values())
            self.editor.fill_classes(self.class_editor.names)
        selected = [i.id for i in self.selected_instances() if i.id is not None]
        if reset:
            self.instance_model.set_instances(instances, names)
        changed = reset or self.instance_model.update_instances(instances, names)
        if canvas and not self.canvas.shows(instances, names):
            # The table's colours, made for the same instances just above.
            self.canvas.set_instances(instances, names, self.instance_model.colors())
            changed = True
        if changed:
            self.select_ids([i for i in selected if any(x.id == i for x in instances)])
        self.show_note(changed)

    def show_note(self, force: bool = False) -> None:
        """The image's line (rows of the table, slider's score); a batch's line stays till then."""
        if self.project is not None and self.image_id is not None:
            record, rows = self.project.image(self.image_id), self.instance_proxy.rowCount()
            note = image_note(record, self.instance_model.instances(), rows, self.min_score)
            if force or note != getattr(self, "_note", None):
                self._note = note
                self.statusBar().showMessage(note)

    def refresh_images(self) -> None:
        """Read every image's record again (after a scan, or an import)."""
        if self.project is not None and self.image_model is not None:
            self.image_model.reread(self.project)
            self._after_rows_changed()

    def refresh_changed_images(self) -> None:
        if self.project is not None and self.image_model is not None:
            self.image_model.follow(self.project)
            self._after_rows_changed()

    def _after_rows_changed(self) -> None:
        self.filters.fill_classes()
        if self.image_proxy.active():
            self.filters.update_from_store()

    def look_for_changes(self) -> None:
        """Another connection (the worker, a CLI beside the window) wrote: show it, reading
        only the rows it changed."""
        if self.project is None or not self.project.changed():
            return
        self.refresh_changed_images()
        self.refresh_instances()

    # -- selection shared by the table and the canvas ---------------------------------------

    def selected_instances(self) -> list[Instance]:
        if self.project is None:
            return []
        # The table holds the selection: it shows the image's instances at once, the canvas
        # only once the picture is decoded.
        rows = self.instance_table.selectionModel().selectedRows()
        ids = {int(r.data(InstanceIdRole)) for r in rows}
        return [i for i in self.instance_model.instances() if i.id in ids]

    def select_ids(self, ids: list[int]) -> None:
        self.canvas.set_selection(ids)
        table = self.instance_table.selectionModel()
        table.blockSignals(True)
        table.clearSelection()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for iid in ids:
            row = self.instance_model.row_of(iid)
            if row >= 0:
                index = self.instance_proxy.mapFromSource(self.instance_model.index(row, 0))
                if index.isValid():
                    table.select(index, flags)
        table.blockSignals(False)
        self.instance_table.viewport().update()

    def _table_selection(self, *args: object) -> None:
        rows = self.instance_table.selectionModel().selectedRows()
        self.canvas.set_selection([int(r.data(InstanceIdRole)) for r in rows])

    def _canvas_selection(self, ids: list[int]) -> None:
        self.select_ids(list(ids))

    # -- edits (each one undoable, stored at once) ------------------------------------------

    def _notify(self, image_id: int) -> None:
        if image_id == self.image_id:
            self.refresh_instances()
        # Re-reading every record (10,000 in a big folder) only when this one's row changed.
        if self.project is not None and self.image_model is not None:
            index = self.image_model.index_of(image_id)
            shown = self.image_model.record(index.row()) if index.isValid() else None
            if shown != self.project.image(image_id):
                self.refresh_images()
        if self.image_proxy.active():
            self.filters.update_from_store()

    def _push(self, make, ids_or_instances, *args) -> None:  # noqa: ANN001
        if self.project is None or self.image_id is None:
            return
        ids = {i if isinstance(i, int) else i.id for i in ids_or_instances}
        instances = [i for i in self.instance_model.instances() if i.id in ids]
        if not instances:
            return
        try:
            command = make(self.project, instances, *args, self._notify)
        except ValueError as exc:  # e.g. a class name the project refuses
            self.statusBar().showMessage(f"Not done: {exc}", 10000)
            return
        self.undo.push(self.image_id, command)

    def delete_selected(self) -> None:
        chosen = self.selected_instances()
        if chosen and self.project is not None and self.image_id is not None:
            self.undo.push(self.image_id, DeleteInstances(self.project, chosen, self._notify))

    def toggle_selected(self) -> None:
        chosen = self.selected_instances()
        if chosen:
            self._push(set_visible, chosen, not chosen[0].visible)

    def review_selected(self, state: Review) -> None:
        self._push(review, self.selected_instances(), state)

    def accept_all_shown(self) -> None:
        shown = [
            i
            for i in self.instance_model.instances()
            if i.exported(self.min_score) and i.review is not Review.ACCEPTED
        ]
        self._push(review, shown, Review.ACCEPTED)

    def relabel_selected(self) -> None:
        rows = self.instance_table.selectionModel().selectedRows()
        if rows:
            self.instance_table.edit(rows[0].siblingAtColumn(CLASS))

    def mark_reviewed_and_next(self) -> None:
        if self.project is None or self.image_id is None or self.image_model is None:
            return
        row = self.image_model.index_of(self.image_id).row()
        command = SetImageStatus(self.project, self.image_id, ImageStatus.REVIEWED, self._notify)
        if self.undo.push(self.image_id, command) is not False:
            # From the reviewed image's place: a status filter may have dropped its row, and
            # the view's current row is then the next image already.
            self._next_unreviewed_after(row)

    def step_image(self, step: int) -> None:
        row = self.image_list.currentIndex().row() + step
        if 0 <= row < self.image_proxy.rowCount():
            self.image_list.setCurrentIndex(self.image_proxy.index(row, 0))

    def next_unreviewed(self) -> None:
        if self.image_model is not None:
            current = self.image_proxy.mapToSource(self.image_list.currentIndex())
            self._next_unreviewed_after(current.row())  # -1 (none shown): from the top

    def _next_unreviewed_after(self, source_row: int) -> None:
        """Show the first image not reviewed after this row of the folder, coming round."""
        assert self.image_model is not None
        self.image_model.fetch_all()
        proxy, rows = self.image_proxy, self.image_proxy.rowCount()

        def source(row: int) -> int:
            return proxy.mapToSource(proxy.index(row, 0)).row()

        start = bisect_right(range(rows), source_row, key=source)  # filtered, never sorted
        for offset in range(rows):
            row = (start + offset) % rows
            if self.image_model.record(source(row)).status is not ImageStatus.REVIEWED:
                self.image_list.setCurrentIndex(proxy.index(row, 0))
                return
        self.statusBar().showMessage("Every image is reviewed.")

    # -- score threshold, filters --------------------------------------------------------------

    @property
    def min_score(self) -> float:
        return self.score_slider.value() / 100

    def _score_changed(self, value: int) -> None:
        self.score_label.setText(f"Score ≥ {value / 100:.2f}")
        self.instance_proxy.set_min_score(value / 100)
        self.canvas.set_min_score(value / 100)
        if self.filters.low_score.isChecked():
            self.filters.update_from_store()
        self.show_note()

    # -- the model on the inference thread -------------------------------------------------------

    def choose_model(self, name: str) -> None:
        """Use this model from now on (loaded when first needed); remembered."""
        self.runs.choose(name)

    @property
    def device(self) -> str:
        return str(self.settings.value("device", "auto"))

    def detect(self) -> None:
        """Run the model on the image shown. A reviewed image is asked about first: it goes
        back to pre-labeled (one undo step), and every decided instance stays."""
        if self.project is None or self.image_id is None:
            return
        record = self.project.image(self.image_id)
        if record.status is ImageStatus.REVIEWED:
            question = (
                f"{record.path} is marked reviewed. Detect again? It goes back to pre-labeled "
                "(Undo marks it reviewed again); accepted, rejected and drawn instances stay."
            )
            if not confirm(self, "Detect a reviewed image", question):
                return
            back = SetImageStatus(self.project, record.id, ImageStatus.PRELABELED, self._notify)
            if self.undo.push(record.id, back) is False:
                return
        self.runs.request("detect", self.image_id)

    def prelabel_folder(self) -> None:
        self.runs.request("prelabel", False)

    def box_to_mask(
        self, image_id: int, box: tuple[float, float, float, float], forced: str = ""
    ) -> None:
        """The model draws the mask inside `box` on the inference thread (box-to-mask tool);
        `forced`: the class to give it instead of the model's."""
        self.runs.request("box", (image_id, box, forced))

    def _image_stored(self, image_id: int) -> None:
        # Its row, and its instances when shown, at once: one record read per stored image,
        # never the whole folder's (see look_for_changes).
        if self.project is None or self.image_model is None:
            return
        try:
            record = self.project.image(image_id)
        except ValueError:
            return  # an image of a folder closed since
        self.image_model.update_records([record])
        if image_id == self.image_id:
            self.refresh_instances()

    def _finished(self, summary: str, report: object) -> None:
        # Every row's final status, and what another program wrote meanwhile, now.
        if self.project is not None and self.project.changed():
            self.refresh_changed_images()
            self.refresh_instances()
        self.statusBar().showMessage(finished_line(self, summary))

    # -- keys, settings, closing ----------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """H held hides every mask; the key comes and goes, so actions cannot do it."""
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self.isActiveWindow():
            key = event
            assert isinstance(key, QKeyEvent)
            if (
                key.key() == Qt.Key.Key_H
                and not key.isAutoRepeat()
                and not key.modifiers()
                and not isinstance(self.focusWidget(), QLineEdit)
            ):
                self.canvas.set_masks_hidden(event.type() == QEvent.Type.KeyPress)
                return True
        return super().eventFilter(watched, event)

    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("splitter")
        if state is not None:
            self.splitter.restoreState(state)
        self.score_slider.setValue(setting_int(self.settings, "score", 50))
        self.opacity_slider.setValue(setting_int(self.settings, "opacity", 50))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # A window manager keeps the window at its minimum; without one (a bare X server)
        # nothing does, and the panels' widgets would overlap: take the minimum back.
        least = event.size().expandedTo(self.minimumSize())
        if least != event.size():
            QTimer.singleShot(0, lambda: self.resize(least))

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.runs.may_close():  # a training runs, and the person keeps it
            event.ignore()
            return
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("splitter", self.splitter.saveState())
        self.settings.setValue("score", self.score_slider.value())
        self.settings.setValue("opacity", self.opacity_slider.value())
        self.runs.close()  # a model load still going ends on its own, after the window
        self.pictures.wait()
        if self.project is not None:
            self.project.close()
            self.project = None
        super().closeEvent(event)
