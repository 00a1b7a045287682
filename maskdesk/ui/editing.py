"""The repair tools: the toolbar (tool choice, class for new instances, speck size), the
canvas tools' gestures turned into undoable edits, and split, merge, fill holes and specks.

The pixel work is core's (`mask_ops`); each edit is a command from commands.py, stored at once.
An instance a person edits counts as accepted; one a person draws (brush, polygon, box) is
human-made and accepted. Box to mask asks the loaded model on the inference thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QComboBox, QInputDialog, QLabel, QMenu, QSpinBox, QToolBar

from maskdesk.core import mask_ops
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.ui import label_picker
from maskdesk.ui.commands import (
    AddInstances,
    Command,
    DeleteInstances,
    EditInstances,
    Edits,
    ReplaceInstances,
)
from maskdesk.ui.settings import setting_float, setting_int
from maskdesk.ui.tools import RADIUS_STEP, BoxTool, BrushTool, Point, PolygonTool, Tool

if TYPE_CHECKING:
    from maskdesk.ui.main_window import MainWindow

TOOL_ACTIONS = {
    "actionToolSelect": "select",
    "actionToolBox": "box",
    "actionToolBrush": "brush",
    "actionToolEraser": "eraser",
    "actionToolPolygon": "polygon",
}
DEFAULT_CLASS = "object"
DEFAULT_SPECK = 50  # pixels


class Editor(QObject):
    """Owns the tools and turns what they emit into edits of the window's current image."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.select_tool = Tool(self)
        self.box_tool = BoxTool(self)
        self.brush = BrushTool(erase=False, parent=self)
        self.eraser = BrushTool(erase=True, parent=self)
        self.polygon_tool = PolygonTool(self)
        self.tools: dict[str, Tool] = {
            t.name: t
            for t in (self.select_tool, self.box_tool, self.brush, self.eraser, self.polygon_tool)
        }
        self.box_tool.boxDrawn.connect(self.box_drawn)
        self.brush.stroked.connect(self.stroke)
        self.eraser.stroked.connect(self.stroke)
        self.polygon_tool.polygonDone.connect(self.polygon_done)
        self._build_toolbar()

    # -- toolbar ------------------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        w, a = self.window, self.window.acts
        bar = QToolBar("Tools", w)
        bar.setObjectName("toolsToolBar")
        w.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)  # a row of its own: never cut off
        w.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        group = QActionGroup(self)
        for name, tool in TOOL_ACTIONS.items():
            action = a[name]
            action.setCheckable(True)
            group.addAction(action)
            bar.addAction(action)
            action.triggered.connect(lambda _=False, t=tool: self.use(t))
        a["actionToolSelect"].setChecked(True)
        bar.addSeparator()
        bar.addWidget(QLabel(" Class "))
        self.class_chooser = QComboBox()
        self.class_chooser.setObjectName("classChooser")
        self.class_chooser.setEditable(True)
        self.class_chooser.setMinimumContentsLength(12)
        self.class_chooser.setToolTip(
            "Class of new instances (brush, polygon, Shift+box); type a new name to add one. "
            "Left empty, the window asks after each drawing until one is chosen."
        )
        line = self.class_chooser.lineEdit()
        if line is not None:
            line.setPlaceholderText("ask when I draw")
        bar.addWidget(self.class_chooser)
        bar.addSeparator()
        for name in (
            "actionSplitInstance",
            "actionMergeInstances",
            "actionFillHoles",
            "actionRemoveSpecks",
        ):
            bar.addAction(a[name])
        self.speck_size = QSpinBox()
        self.speck_size.setObjectName("speckSize")
        self.speck_size.setRange(2, 1_000_000)
        self.speck_size.setValue(setting_int(w.settings, "speckSize", DEFAULT_SPECK))
        self.speck_size.setSuffix(" px")
        self.speck_size.setToolTip("Remove specks: parts smaller than this many pixels go")
        self.speck_size.valueChanged.connect(lambda v: w.settings.setValue("speckSize", v))
        bar.addWidget(self.speck_size)
        a["actionBrushSmaller"].triggered.connect(lambda: self._grow(-1))
        a["actionBrushLarger"].triggered.connect(lambda: self._grow(1))
        a["actionSplitInstance"].triggered.connect(self.split_selected)
        a["actionMergeInstances"].triggered.connect(self.merge_selected)
        a["actionFillHoles"].triggered.connect(self.fill_holes_selected)
        a["actionRemoveSpecks"].triggered.connect(self.remove_specks_selected)
        self.set_radius(setting_float(w.settings, "brushRadius", 10.0))
        w.addActions([a[n] for n in ("actionBrushSmaller", "actionBrushLarger")])
        tools_menu = QMenu("&Tools", w)
        # Before Help, the last menu.
        w.menuBar().insertMenu(w.menuBar().actions()[-1], tools_menu)
        for name in TOOL_ACTIONS:
            tools_menu.addAction(a[name])
        tools_menu.addSeparator()
        for name in (
            "actionBrushSmaller",
            "actionBrushLarger",
            "actionSplitInstance",
            "actionMergeInstances",
            "actionFillHoles",
            "actionRemoveSpecks",
        ):
            tools_menu.addAction(a[name])

    def fill_classes(self, names: Sequence[str]) -> None:
        """The project's class names in the chooser, keeping what is typed or chosen (none is
        chosen for the person: an empty box means "ask when I draw")."""
        current = self.class_chooser.currentText()
        self.class_chooser.blockSignals(True)
        self.class_chooser.clear()
        self.class_chooser.addItems(sorted(names))
        self.class_chooser.setCurrentText(current)
        self.class_chooser.blockSignals(False)

    def class_name(self) -> str | None:
        """The class for new instances: the chooser's text; when it is empty, the person is
        asked (label_picker) and the answer fills the chooser. None when they cancel."""
        text = self.class_chooser.currentText().strip()
        if text:
            return text
        w = self.window
        if w.project is None:
            return None
        names = [c.name for c in w.project.categories]
        chosen = w.selected_instances()
        suggestion = w.project.categories.name(chosen[0].category_id) if chosen else ""
        answer = label_picker.ask(w, names, suggestion)
        if answer:
            self.class_chooser.setCurrentText(answer)
        return answer

    def use(self, name: str) -> None:
        """Make `name` the canvas's tool (select, box, brush, eraser, polygon)."""
        tool = self.tools[name]
        self.window.canvas.set_tool(None if name == "select" else tool)
        for action_name, tool_name in TOOL_ACTIONS.items():
            self.window.acts[action_name].setChecked(tool_name == name)

    def current(self) -> str:
        tool = self.window.canvas.tool()
        return "select" if tool is None else tool.name

    def set_radius(self, radius: float) -> None:
        """One radius (image pixels) for the brush and the eraser; remembered."""
        self.brush.set_radius(radius)
        self.eraser.set_radius(self.brush.radius)
        self.window.settings.setValue("brushRadius", self.brush.radius)

    def _grow(self, steps: int) -> None:
        self.set_radius(self.brush.radius * RADIUS_STEP**steps)
        self.window.statusBar().showMessage(f"Brush radius {self.brush.radius:.1f} px")

    # -- gestures into edits ------------------------------------------------------------------

    def _size(self) -> tuple[int, int] | None:
        w = self.window
        if w.project is None or w.image_id is None or w.picture_id != w.image_id:
            return None
        record = w.project.image(w.image_id)
        if record.width is None or record.height is None:
            return None
        return record.width, record.height

    def _tell(self, text: str) -> None:
        self.window.statusBar().showMessage(text)

    def _new_instance(
        self, mask: CropMask, name: str, score: float | None = None
    ) -> Instance | None:
        """A person's instance of class `name` (created when new), with the model's score when
        the model drew it; None, with the reason on the status bar, when the project refuses
        that name (the drawing stays on screen)."""
        assert self.window.project is not None
        try:
            category = self.window.project.add_category(name)
        except ValueError as exc:
            self._tell(f"Not added: {exc}. Choose another class in the toolbar and draw again.")
            return None
        return Instance(category.id, mask, score=score, origin=Origin.HUMAN, review=Review.ACCEPTED)

    def _add(self, instances: list[Instance | None], text: str) -> None:
        w = self.window
        made = [i for i in instances if i is not None]
        if w.project is None or w.image_id is None or not made:
            return
        command = AddInstances(w.project, w.image_id, made, text, w._notify)
        if w.undo.push(w.image_id, command):
            self.fill_classes([c.name for c in w.project.categories])
            w.select_ids(command.step.added())

    def _edit(self, pairs: list[tuple[Instance, CropMask]], text: str) -> None:
        """Give instances new masks (accepted: a person vouched for them); an emptied
        instance is deleted. One undo step, stored whole or not at all."""
        w = self.window
        if w.project is None or w.image_id is None or not pairs:
            return
        emptied = [old for old, mask in pairs if mask.is_empty()]
        changes = {
            old.id: {"mask": mask, "review": Review.ACCEPTED}
            for old, mask in pairs
            if old.id is not None and not mask.is_empty() and mask != old.mask.tight()
        }
        parts: list[Command] = []
        if changes:
            parts.append(EditInstances(w.project, w.image_id, changes, text, w._notify))
        if emptied:
            parts.append(DeleteInstances(w.project, emptied, w._notify))
        if not parts:
            self._tell(f"{text}: nothing to change.")
            return
        command = parts[0] if len(parts) == 1 else Edits(w.project, parts, text, w._notify)
        w.undo.push(w.image_id, command)

    def stroke(self, points: list[Point], radius: float, erase: bool) -> None:
        size = self._size()
        if size is None:
            return
        width, height = size
        chosen = self.window.selected_instances()
        if erase:
            if not chosen:
                self._tell("Select an instance to erase from (Select tool, or the table).")
                return
            self._edit(
                [(i, mask_ops.erase_stroke(i.mask, points, radius, width, height)) for i in chosen],
                "Erase",
            )
            return
        if len(chosen) > 1:
            self._tell("Select one instance to paint on, or none to draw a new one.")
            return
        if chosen:
            mask = mask_ops.paint_stroke(chosen[0].mask, points, radius, width, height)
            self._edit([(chosen[0], mask)], "Brush")
            return
        mask = mask_ops.stroke(points, radius, width, height)
        if mask.is_empty():
            return
        name = self.class_name()
        if name is None:
            self._tell("Not added: no class chosen. Choose one in the toolbar and draw again.")
            return
        self._add([self._new_instance(mask, name)], "Brush new instance")

    def polygon_done(self, points: list[Point]) -> None:
        size = self._size()
        if size is None:
            return
        mask = mask_ops.polygon(points, *size)
        if mask.is_empty():
            self._tell("The polygon covers no pixel centre; nothing was added.")
            return
        name = self.class_name()
        instance = None if name is None else self._new_instance(mask, name)
        if instance is None:
            if name is None:
                self._tell("Not added: no class chosen. Press Enter to be asked again.")
            # Kept on the canvas: Enter adds it once another class is chosen.
            self.polygon_tool.points = list(points)
            self.polygon_tool.changed.emit()
            return
        self._add([instance], "Polygon")

    def box_drawn(self, x0: float, y0: float, x1: float, y1: float, keep_class: bool) -> None:
        """Ask the model for the mask in the box, for the image whose picture it was drawn on
        (none while the next image's picture is still on its way), clipped to the picture."""
        w = self.window
        size = self._size()
        if size is None or w.image_id is None:
            if w.image_id is not None:
                self._tell("The picture is still loading: draw the box again once it shows.")
            return
        width, height = size
        box = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
        if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:  # under a pixel inside: a slip
            self._tell("The box is outside the picture; nothing was asked.")
            return
        forced = ""
        if keep_class:
            name = self.class_name()
            if name is None:
                self._tell("No class chosen: nothing was asked.")
                return
            forced = name
        w.box_to_mask(w.image_id, box, forced)

    def box_masked(self, image_id: int, instances: list, names: dict, forced: str) -> None:
        """The model's answer to a box drawn in this folder: add it as a person's instance of
        the image it was drawn on (the window drops answers for a folder closed since)."""
        w = self.window
        if w.project is None or not instances:
            return
        made = []
        for inst in instances:
            if inst.mask.is_empty():
                self._tell("The model found no mask in that box; draw it with the brush.")
                continue
            name = forced or names.get(inst.category_id, DEFAULT_CLASS)
            new = self._new_instance(inst.mask, name, inst.score)
            if new is None:
                continue  # the name was refused, and the status bar says why
            made.append(new)
            if inst.score is not None and not forced:
                self._tell(f"Box to mask: {name} ({inst.score:.2f})")
        if made:
            command = AddInstances(w.project, image_id, made, "Box to mask", w._notify)
            if w.undo.push(image_id, command) is False:
                return
            self.fill_classes([c.name for c in w.project.categories])
            if image_id == w.image_id:
                w.select_ids([i.id for i in command.instances if i.id is not None])

    # -- whole-instance operations -------------------------------------------------------------

    def split_selected(self) -> None:
        w = self.window
        chosen = w.selected_instances()
        if w.project is None or w.image_id is None or not chosen:
            return
        old, new = [], []
        for inst in chosen:
            pieces = mask_ops.parts(inst.mask)
            if len(pieces) > 1:
                old.append(inst)
                new += [
                    inst.with_changes(mask=p, box=None, review=Review.ACCEPTED, id=None)
                    for p in pieces
                ]
        if not old:
            self._tell("The selected instance is in one piece: nothing to split.")
            return
        command = ReplaceInstances(
            w.project, w.image_id, old, new, f"Split into {len(new)}", w._notify
        )
        w.undo.push(w.image_id, command)
        w.select_ids([i.id for i in command.new if i.id is not None])

    def merge_selected(self) -> None:
        w = self.window
        chosen = w.selected_instances()
        if w.project is None or w.image_id is None or len(chosen) < 2:
            self._tell("Select two or more instances to merge (Ctrl+click).")
            return
        # The merged instance keeps the largest one's class and origin; when the classes
        # differ, the person chooses the class to keep (Cancel merges nothing).
        first = max(chosen, key=lambda i: i.mask.area)
        category_id = first.category_id
        ids = list(dict.fromkeys(i.category_id for i in chosen))
        if len(ids) > 1:
            ids.sort(key=lambda c: c != first.category_id)
            names = [w.project.categories.name(c) for c in ids]
            name, ok = QInputDialog.getItem(
                w,
                "Merge instances",
                "These instances differ in class. Keep the class:",
                names,
                0,
                False,
            )
            if not ok:
                return
            category_id = ids[names.index(name)]
        merged = first.with_changes(
            mask=mask_ops.merge([i.mask for i in chosen]),
            box=None,
            review=Review.ACCEPTED,
            id=None,
            category_id=category_id,
        )
        command = ReplaceInstances(
            w.project, w.image_id, chosen, [merged], f"Merge {len(chosen)}", w._notify
        )
        w.undo.push(w.image_id, command)
        w.select_ids([i.id for i in command.new if i.id is not None])

    def fill_holes_selected(self) -> None:
        chosen = self.window.selected_instances()
        self._edit([(i, mask_ops.fill_holes(i.mask)) for i in chosen], "Fill holes")

    def remove_specks_selected(self) -> None:
        chosen = self.window.selected_instances()
        size = self.speck_size.value()
        edits = [(i, mask_ops.remove_specks(i.mask, size)) for i in chosen]
        self._edit(edits, f"Remove specks < {size} px")
