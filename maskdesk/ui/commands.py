"""One QUndoCommand per user edit, each wrapping a history step of core (`core/history.py`)
that records exactly what it changed and applies only where the store still holds what the
image's history left.

A window keeps one QUndoStack per image inside a QUndoGroup (`UndoStacks`), so Ctrl+Z undoes
the last edit of the image on screen. `UndoStacks.push` stores an edit at once and keeps it
only when it was stored; an undo or redo that finds what it left changed by someone else (the
model, a `maskdesk predict` beside the window, another window) drops that image's history
with a one-line message instead of writing over the other change. Histories are bounded:
HISTORY_LIMIT steps per image, for the IMAGES_KEPT images shown last. `notify(image_id)`
tells the window to refresh what it shows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from maskdesk.core import history
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.instances import Instance, Review
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.store import Busy

Notify = Callable[[int], None]
HISTORY_LIMIT = 100  # undo steps kept per image
IMAGES_KEPT = 50  # images whose history is kept: the most recently shown ones


def _nothing(image_id: int) -> None:
    pass


class Command(QUndoCommand):
    """A history step on an image's undo stack. `UndoStacks` runs it the first time (before
    pushing it); the outcome of an undo or redo is read back from `failure`, since an
    exception cannot leave a Qt virtual."""

    def __init__(self, project: Project, step: history.Step, notify: Notify = _nothing) -> None:
        super().__init__(step.text)
        self.project = project
        self.step = step
        self.notify = notify
        self.failure: Exception | None = None
        self.skip = True  # QUndoStack.push() calls redo(): the edit ran already

    @property
    def image_id(self) -> int:
        return self.step.image_id

    def first(self) -> None:
        """Store the edit on what is stored now; raises when it cannot be."""
        history.run(self.project, self.step, check=False)

    def redo(self) -> None:
        self._apply(backwards=False)

    def undo(self) -> None:
        self._apply(backwards=True)

    def _apply(self, backwards: bool) -> None:
        if self.skip:
            self.skip = False
            return
        self.failure = None
        try:
            history.run(self.project, self.step, backwards=backwards)
        except (ValueError, MaskdeskError) as exc:
            self.failure = exc
        self.notify(self.image_id)


class EditInstances(Command):
    """Change some fields of an image's instances: {instance id: {field: new value}}."""

    def __init__(
        self,
        project: Project,
        image_id: int,
        changes: Mapping[int, Mapping[str, Any]],
        text: str,
        notify: Notify = _nothing,
    ) -> None:
        super().__init__(project, history.ChangeFields(image_id, changes, text), notify)


def _image_of(instances: Sequence[Instance]) -> int:
    ids = {i.image_id for i in instances}
    if not instances or None in ids or len(ids) != 1:
        raise ValueError("an edit needs stored instances of one image")
    return int(instances[0].image_id or 0)


def _change(
    project: Project,
    instances: Sequence[Instance],
    fields: Mapping[str, Any],
    text: str,
    notify: Notify,
) -> EditInstances:
    changes = {i.id: fields for i in instances if i.id is not None}
    return EditInstances(project, _image_of(instances), changes, text, notify)


class DeleteInstances(Command):
    """Delete several instances as one step; undo brings them back with their ids."""

    def __init__(
        self, project: Project, instances: Sequence[Instance], notify: Notify = _nothing
    ) -> None:
        ids = [i.id for i in instances if i.id is not None]
        super().__init__(project, history.Delete(_image_of(instances), ids), notify)


class AddInstances(Command):
    """Add instances (drawn or made by a tool); undo removes them and puts back the pending
    predictions they superseded; redo adds them again with the same ids."""

    def __init__(
        self,
        project: Project,
        image_id: int,
        instances: Sequence[Instance],
        text: str,
        notify: Notify = _nothing,
    ) -> None:
        super().__init__(project, history.Add(image_id, instances, text), notify)

    @property
    def instances(self) -> list[Instance]:
        """The added instances as stored (ids set)."""
        assert isinstance(self.step, history.Add)
        return [history.unpack(r) for r in self.step.rows]


class ReplaceInstances(Command):
    """Replace some instances by others as one step (split, merge)."""

    def __init__(
        self,
        project: Project,
        image_id: int,
        old: Sequence[Instance],
        new: Sequence[Instance],
        text: str,
        notify: Notify = _nothing,
    ) -> None:
        super().__init__(project, history.Replace(image_id, old, new, text), notify)

    @property
    def new(self) -> list[Instance]:
        assert isinstance(self.step, history.Replace)
        return [history.unpack(r) for r in self.step.new]


class SetImageStatus(Command):
    """Mark an image reviewed (or back); undo restores the status and reason it had."""

    def __init__(
        self, project: Project, image_id: int, status: ImageStatus, notify: Notify = _nothing
    ) -> None:
        super().__init__(project, history.SetStatus(image_id, status), notify)


class Edits(Command):
    """Several steps of one image as one undo step, stored together or not at all (instead of
    a QUndoStack macro, which a failing push would leave open)."""

    def __init__(
        self, project: Project, commands: Sequence[Command], text: str, notify: Notify = _nothing
    ) -> None:
        steps = [c.step for c in commands]
        image_id = steps[0].image_id if steps else 0
        super().__init__(project, history.Steps(image_id, steps, text), notify)


def review(
    project: Project, instances: Sequence[Instance], state: Review, notify: Notify
) -> EditInstances:
    """Accept or reject instances: one undo step."""
    verb = "Accept" if state is Review.ACCEPTED else "Reject"
    return _change(project, instances, {"review": state}, verb, notify)


def set_visible(
    project: Project, instances: Sequence[Instance], visible: bool, notify: Notify
) -> EditInstances:
    return _change(project, instances, {"visible": visible}, "Show" if visible else "Hide", notify)


def relabel(
    project: Project, instances: Sequence[Instance], name: str, notify: Notify
) -> EditInstances:
    """Give instances the class called `name` (created when new); a person's choice, so the
    instances count as accepted."""
    category = project.add_category(name)
    fields = {"category_id": category.id, "review": Review.ACCEPTED}
    return _change(project, instances, fields, f"Relabel as {category.name}", notify)


class UndoStacks(QObject):
    """One QUndoStack per image in a QUndoGroup; the image on screen has the active one."""

    message = Signal(str)  # one line for the status bar: an edit refused, a history dropped

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        limit: int = HISTORY_LIMIT,
        keep: int = IMAGES_KEPT,
    ) -> None:
        super().__init__(parent)
        self.group = QUndoGroup(self)
        self._stacks: OrderedDict[int, QUndoStack] = OrderedDict()
        self._limit = limit
        self._keep = keep

    def stack(self, image_id: int) -> QUndoStack:
        stack = self._stacks.get(image_id)
        if stack is None:
            stack = self._stacks[image_id] = QUndoStack(self.group)
            stack.setUndoLimit(self._limit)
            self._forget_oldest()
        self._stacks.move_to_end(image_id)
        return stack

    def activate(self, image_id: int) -> QUndoStack:
        stack = self.stack(image_id)
        self.group.setActiveStack(stack)
        return stack

    def push(self, image_id: int, command: Command) -> bool:
        """Store the edit and keep it for undo on that image's stack. False (and a message)
        when it could not be stored: nothing is then kept."""
        stack = self.stack(image_id)
        try:
            command.first()
        except (ValueError, MaskdeskError) as exc:
            command.notify(image_id)  # show what is stored now
            self.message.emit(f"{command.text()}: not done. {_sentence(exc)}")
            return False
        stack.push(command)
        command.notify(image_id)
        return True

    def undo(self) -> None:
        """Undo the last edit of the image on screen."""
        self._step(backwards=True)

    def redo(self) -> None:
        self._step(backwards=False)

    def _step(self, backwards: bool) -> None:
        stack = self.group.activeStack()
        if stack is None or not (stack.canUndo() if backwards else stack.canRedo()):
            return
        image_id = next(i for i, s in self._stacks.items() if s is stack)
        command = stack.command(stack.index() - 1 if backwards else stack.index())
        assert isinstance(command, Command)
        if backwards:
            stack.undo()
        else:
            stack.redo()
        failure = command.failure
        if failure is None:
            return
        if isinstance(failure, Busy):
            # Nothing was written: put the stack back where it was, to try again later.
            command.skip = True
            if backwards:
                stack.redo()
            else:
                stack.undo()
            verb = "not undone" if backwards else "not redone"
            self.message.emit(f"{command.text()}: {verb}. {_sentence(failure)}")
        else:
            self._drop(image_id, str(failure))

    def _drop(self, image_id: int, why: str) -> None:
        stack = self._stacks.get(image_id)
        if stack is not None and stack.count():
            stack.clear()
            self.message.emit(f"Undo history of this image dropped: {why.rstrip('.')}.")

    def _forget_oldest(self) -> None:
        while len(self._stacks) > self._keep:
            oldest = next(iter(self._stacks))
            stack = self._stacks.pop(oldest)
            self.group.removeStack(stack)
            stack.clear()  # the commands go now, not at the next event loop
            stack.deleteLater()

    def clear(self) -> None:
        """Forget every stack (another folder was opened)."""
        for stack in self._stacks.values():
            self.group.removeStack(stack)
            stack.clear()
            stack.deleteLater()
        self._stacks.clear()


def _sentence(exc: Exception) -> str:
    text = str(exc).strip()
    return text if text.endswith(".") else text + "."
