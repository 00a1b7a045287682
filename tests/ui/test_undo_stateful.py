"""Undo and redo with other writers, randomized: the window's per-image undo stacks on one
connection, another program (`maskdesk predict --redo`, `clear`, a second window) on another,
against a small reference model of the store written independently of the code.

The reference: per image a status and {instance id: fields}; ids come from SQLite's
AUTOINCREMENT sequence. A field edit (hide, accept, relabel, a new mask, mark reviewed) may be
undone or redone while the fields it changed still hold what it left; an edit that adds or
removes instances (draw, delete) only while everything stored for the image is what it left.
Otherwise the image's history is dropped. Masks are 2x2 squares on a 4-pixel grid, so two
masks either coincide (IoU 1) or do not touch (IoU 0) and "covers" is plain equality.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from PIL import Image
from PySide6.QtWidgets import QApplication

from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui.commands import (
    AddInstances,
    DeleteInstances,
    EditInstances,
    SetImageStatus,
    UndoStacks,
    relabel,
    review,
    set_visible,
)

APP = QApplication.instance() or QApplication([])
IMAGES = ("a.png", "b.png")
CLASSES = {1: "cat", 2: "dog"}


@dataclass(frozen=True)
class Obj:
    """An instance as the reference sees it."""

    category: int
    cell: int  # which 2x2 square of the grid
    score: float | None
    origin: Origin
    review: Review = Review.PENDING
    visible: bool = True

    @property
    def pending(self) -> bool:
        return self.origin is Origin.MODEL and self.review is Review.PENDING and self.visible


def _mask(cell: int) -> CropMask:
    return CropMask(4 * (cell % 64), 4 * (cell // 64), np.ones((2, 2), bool))


def _cell(mask: CropMask) -> int:
    assert (mask.width, mask.height, mask.area) == (2, 2, 4)
    return mask.x // 4 + 64 * (mask.y // 4)


@dataclass
class Ref:
    """One image in the reference."""

    status: ImageStatus = ImageStatus.NEW
    objs: dict[int, Obj] = field(default_factory=dict)
    # history: (kind, data) entries; `at` is how many are done
    history: list[dict] = field(default_factory=list)
    at: int = 0

    def snapshot(self) -> tuple[ImageStatus, dict[int, Obj]]:
        return self.status, dict(self.objs)


class UndoAgainstOthers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="maskdesk-undo-"))
        for name in IMAGES:
            Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(self.tmp / name)
        self.window = Project.open(self.tmp)
        self.other = self.window.connect_again()  # the program beside the window
        self.window.ensure_categories([Category(i, n) for i, n in CLASSES.items()])
        self.image_ids = [r.id for r in self.window.images()]
        self.stacks = UndoStacks(limit=1000)
        self.messages: list[str] = []
        self.stacks.message.connect(self.messages.append)
        self.ref = {i: Ref() for i in self.image_ids}
        self.next_id = 1
        self.next_cell = 0
        self.current = self.image_ids[0]
        self.stacks.activate(self.current)

    def teardown(self) -> None:
        try:
            # Undo everything that can still be undone, then redo it all: each state on the
            # way is compared with the reference, ids included.
            for image_id in self.image_ids:
                self.current = image_id
                self.stacks.activate(image_id)
                while self.stacks.group.canUndo():
                    self.undo()
                    self.matches()
                while self.stacks.group.canRedo():
                    self.redo()
                    self.matches()
        finally:
            self.stacks.clear()
            self.other.close()
            self.window.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------

    @property
    def here(self) -> Ref:
        return self.ref[self.current]

    def fresh_cell(self) -> int:
        self.next_cell += 1
        return self.next_cell

    def take_ids(self, n: int) -> list[int]:
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        return ids

    def push_field_edit(self, command, changes: dict[int, dict]) -> None:  # noqa: ANN001
        """A field edit of the window on the current image, in the store and the reference."""
        assert self.stacks.push(self.current, command)
        ref = self.here
        before = {iid: {k: getattr(ref.objs[iid], k) for k in f} for iid, f in changes.items()}
        for iid, fields in changes.items():
            ref.objs[iid] = replace(ref.objs[iid], **fields)
        self.record(dict(kind="fields", before=before, after=changes))

    def record(self, entry: dict) -> None:
        ref = self.here
        del ref.history[ref.at :]
        ref.history.append(entry)
        ref.at += 1

    def step_allowed(self, ref: Ref, entry: dict, backwards: bool) -> bool:
        if entry["kind"] == "fields":
            left = entry["after"] if backwards else entry["before"]
            return all(
                iid in ref.objs and all(getattr(ref.objs[iid], k) == v for k, v in f.items())
                for iid, f in left.items()
            )
        if entry["kind"] == "status":
            return ref.status == (entry["after"] if backwards else entry["before"])
        left = entry["after"] if backwards else entry["before"]
        return ref.snapshot() == left

    def apply_step(self, ref: Ref, entry: dict, backwards: bool) -> None:
        if entry["kind"] == "fields":
            target = entry["before"] if backwards else entry["after"]
            for iid, f in target.items():
                ref.objs[iid] = replace(ref.objs[iid], **f)
        elif entry["kind"] == "status":
            ref.status = entry["before"] if backwards else entry["after"]
        else:
            ref.status, objs = entry["before"] if backwards else entry["after"]
            ref.objs = dict(objs)

    def ref_undo_redo(self, backwards: bool) -> None:
        ref = self.here
        entry = ref.history[ref.at - 1] if backwards else ref.history[ref.at]
        if self.step_allowed(ref, entry, backwards):
            self.apply_step(ref, entry, backwards)
            ref.at += -1 if backwards else 1
        else:
            ref.history, ref.at = [], 0

    # -- the window's edits on the image on screen ----------------------------------------

    @rule(index=st.integers(0, len(IMAGES) - 1))
    def show_image(self, index: int) -> None:
        self.current = self.image_ids[index]
        self.stacks.activate(self.current)

    @precondition(lambda self: self.here.objs)
    @rule(data=st.data(), visible=st.booleans())
    def hide_or_show(self, data: st.DataObject, visible: bool) -> None:
        iid = data.draw(st.sampled_from(sorted(self.here.objs)))
        shown = self.window.instance(iid)
        self.push_field_edit(
            set_visible(self.window, [shown], visible, lambda _: None), {iid: {"visible": visible}}
        )

    @precondition(lambda self: self.here.objs)
    @rule(data=st.data(), accept=st.booleans())
    def accept_or_reject(self, data: st.DataObject, accept: bool) -> None:
        iid = data.draw(st.sampled_from(sorted(self.here.objs)))
        state = Review.ACCEPTED if accept else Review.REJECTED
        command = review(self.window, [self.window.instance(iid)], state, lambda _: None)
        self.push_field_edit(command, {iid: {"review": state}})

    @precondition(lambda self: self.here.objs)
    @rule(data=st.data(), category=st.sampled_from(sorted(CLASSES)))
    def relabel_one(self, data: st.DataObject, category: int) -> None:
        iid = data.draw(st.sampled_from(sorted(self.here.objs)))
        command = relabel(
            self.window, [self.window.instance(iid)], CLASSES[category], lambda _: None
        )
        self.push_field_edit(command, {iid: {"category": category, "review": Review.ACCEPTED}})

    @precondition(lambda self: self.here.objs)
    @rule(data=st.data())
    def brush_a_new_mask(self, data: st.DataObject) -> None:
        iid = data.draw(st.sampled_from(sorted(self.here.objs)))
        cell = self.fresh_cell()
        changes = {iid: {"mask": _mask(cell), "review": Review.ACCEPTED}}
        command = EditInstances(self.window, self.current, changes, "Brush")
        self.push_field_edit(command, {iid: {"cell": cell, "review": Review.ACCEPTED}})

    @precondition(lambda self: self.here.objs)
    @rule(data=st.data())
    def delete_some(self, data: st.DataObject) -> None:
        ids = data.draw(
            st.lists(st.sampled_from(sorted(self.here.objs)), min_size=1, max_size=2, unique=True)
        )
        before = self.here.snapshot()
        chosen = [self.window.instance(i) for i in ids]
        assert self.stacks.push(self.current, DeleteInstances(self.window, chosen))
        for iid in ids:
            del self.here.objs[iid]
        self.record(dict(kind="whole", before=before, after=self.here.snapshot()))

    @rule(data=st.data(), category=st.sampled_from(sorted(CLASSES)))
    def draw(self, data: st.DataObject, category: int) -> None:
        """A person's instance, at a new place or over a pending prediction it supersedes."""
        ref = self.here
        places = sorted({o.cell for o in ref.objs.values()})
        cell = data.draw(st.sampled_from([*places, self.fresh_cell()]))
        before = ref.snapshot()
        drawn = Instance(category, _mask(cell), origin=Origin.HUMAN, review=Review.ACCEPTED)
        assert self.stacks.push(self.current, AddInstances(self.window, self.current, [drawn], "D"))
        for iid, o in list(ref.objs.items()):
            if o.pending and o.category == category and o.cell == cell:
                del ref.objs[iid]
        (new_id,) = self.take_ids(1)
        ref.objs[new_id] = Obj(category, cell, None, Origin.HUMAN, Review.ACCEPTED)
        self.record(dict(kind="whole", before=before, after=ref.snapshot()))

    @rule(status=st.sampled_from([ImageStatus.REVIEWED, ImageStatus.PRELABELED]))
    def mark(self, status: ImageStatus) -> None:
        before = self.here.status
        assert self.stacks.push(self.current, SetImageStatus(self.window, self.current, status))
        self.here.status = status
        self.record(dict(kind="status", before=before, after=status))

    @rule(iid=st.integers(10_000, 10_010))
    def edit_a_row_that_is_gone(self, iid: int) -> None:
        """A row the screen still showed, deleted underneath: refused, nothing kept."""
        count = self.stacks.stack(self.current).count()
        stale = Instance(1, _mask(0), id=iid, image_id=self.current)
        assert not self.stacks.push(
            self.current, review(self.window, [stale], Review.ACCEPTED, lambda _: None)
        )
        assert self.stacks.stack(self.current).count() == count
        assert "not done" in self.messages[-1]

    @precondition(lambda self: self.stacks.group.canUndo())
    @rule()
    def undo(self) -> None:
        self.ref_undo_redo(backwards=True)
        self.stacks.undo()

    @precondition(lambda self: self.stacks.group.canRedo())
    @rule()
    def redo(self) -> None:
        self.ref_undo_redo(backwards=False)
        self.stacks.redo()

    # -- the other program ----------------------------------------------------------------

    @rule(index=st.integers(0, len(IMAGES) - 1), data=st.data())
    def predict_redo(self, index: int, data: st.DataObject) -> None:
        """`maskdesk predict --redo`: the model proposes objects again, at places it proposed
        before and at a new one; a person's decision there (hidden included) is kept."""
        image_id = self.image_ids[index]
        ref = self.ref[image_id]
        places = sorted({(o.category, o.cell) for o in ref.objs.values()})
        again = data.draw(st.lists(st.sampled_from(places), unique=True)) if places else []
        proposals = [*again, (data.draw(st.sampled_from(sorted(CLASSES))), self.fresh_cell())]
        stored = self.other.set_predictions(
            image_id, [Instance(c, _mask(cell), score=0.9) for c, cell in proposals], "m"
        )
        assert stored == (ref.status is not ImageStatus.REVIEWED)
        if not stored:
            return
        decided = {(o.category, o.cell) for o in ref.objs.values() if not o.pending}
        ref.objs = {i: o for i, o in ref.objs.items() if not o.pending}
        fresh = [p for p in proposals if p not in decided]
        for iid, (category, cell) in zip(self.take_ids(len(fresh)), fresh, strict=True):
            ref.objs[iid] = Obj(category, cell, 0.9, Origin.MODEL)
        ref.status = ImageStatus.PRELABELED

    @rule()
    def clear(self) -> None:
        """`maskdesk clear`: pending predictions go from images not reviewed."""
        self.other.clear_predictions()
        for ref in self.ref.values():
            if ref.status is ImageStatus.REVIEWED:
                continue
            ref.objs = {i: o for i, o in ref.objs.items() if not o.pending}
            if ref.status is ImageStatus.PRELABELED and not ref.objs:
                ref.status = ImageStatus.NEW

    @precondition(lambda self: any(r.objs for r in self.ref.values()))
    @rule(data=st.data())
    def second_window_accepts(self, data: st.DataObject) -> None:
        image_id = data.draw(st.sampled_from([i for i, r in self.ref.items() if r.objs]))
        iid = data.draw(st.sampled_from(sorted(self.ref[image_id].objs)))
        self.other.update_instance(self.other.instance(iid).with_changes(review=Review.ACCEPTED))
        ref = self.ref[image_id]
        ref.objs[iid] = replace(ref.objs[iid], review=Review.ACCEPTED)

    @rule(index=st.integers(0, len(IMAGES) - 1))
    def second_window_marks_reviewed(self, index: int) -> None:
        image_id = self.image_ids[index]
        self.other.set_status(image_id, ImageStatus.REVIEWED)
        self.ref[image_id].status = ImageStatus.REVIEWED

    # -- what must hold after every step ----------------------------------------------------

    @invariant()
    def matches(self) -> None:
        for image_id, ref in self.ref.items():
            stored = {
                i.id: Obj(i.category_id, _cell(i.mask), i.score, i.origin, i.review, i.visible)
                for i in self.window.instances(image_id)
            }
            assert stored == ref.objs, f"image {image_id}"
            assert self.window.image(image_id).status is ref.status
            stack = self.stacks.stack(image_id)
            assert (stack.count(), stack.index()) == (len(ref.history), ref.at)
        self.stacks.activate(self.current)


UndoAgainstOthers.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None
)
TestUndoAgainstOthers = UndoAgainstOthers.TestCase
