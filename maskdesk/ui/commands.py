"""One QUndoCommand per user edit; each calls project methods and can put back exactly what
it replaced (same ids), because the project's edits return what they replaced.

A window keeps one QUndoStack per image inside a QUndoGroup (`UndoStacks`), so Ctrl+Z undoes
the last edit of the image on screen. Every command stores its change at once (redo), and
`notify(image_id)` tells the window to refresh what it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from maskdesk.core.instances import Instance, Review
from maskdesk.core.project import ImageStatus, Project

Notify = Callable[[int], None]


def _nothing(image_id: int) -> None:
    pass


class EditInstances(QUndoCommand):
    """Replace stored instances by changed copies (visibility, class, review, mask...)."""

    def __init__(
        self, project: Project, after: Sequence[Instance], text: str, notify: Notify = _nothing
    ) -> None:
        super().__init__(text)
        if not after or any(i.id is None or i.image_id is None for i in after):
            raise ValueError("edits need stored instances (with ids and image id)")
        self.project = project
        self.after = list(after)
        self.before: list[Instance] = []
        self.notify = notify

    def _write(self, instances: Sequence[Instance]) -> list[Instance]:
        with self.project.batch():
            return [self.project.update_instance(i) for i in instances]

    def redo(self) -> None:
        self.before = self._write(self.after)
        self.notify(self.after[0].image_id or 0)

    def undo(self) -> None:
        self._write(self.before)
        self.notify(self.after[0].image_id or 0)


class DeleteInstances(QUndoCommand):
    """Delete several instances as one step; undo brings them back with their ids."""

    def __init__(
        self, project: Project, instances: Sequence[Instance], notify: Notify = _nothing
    ) -> None:
        count = len(instances)
        super().__init__(f"Delete {count} instance{'s' if count != 1 else ''}")
        self.project = project
        self.ids = [i.id for i in instances if i.id is not None]
        self.image_id = instances[0].image_id if instances else None
        self.gone: list[Instance] = []
        self.notify = notify

    def redo(self) -> None:
        self.gone = self.project.delete_instances(self.ids)
        self.notify(self.image_id or 0)

    def undo(self) -> None:
        if self.image_id is not None:
            self.project.add_instances(self.image_id, self.gone, supersede=False)
        self.notify(self.image_id or 0)


class AddInstances(QUndoCommand):
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
        super().__init__(text)
        self.project = project
        self.image_id = image_id
        self.instances = list(instances)
        self.superseded: list[Instance] = []
        self.notify = notify

    def redo(self) -> None:
        added = self.project.add_instances(self.image_id, self.instances)
        self.instances, self.superseded = added.instances, added.superseded
        self.notify(self.image_id)

    def undo(self) -> None:
        with self.project.batch():
            self.project.delete_instances([i.id for i in self.instances if i.id is not None])
            if self.superseded:
                self.project.add_instances(self.image_id, self.superseded, supersede=False)
        self.notify(self.image_id)


class ReplaceInstances(QUndoCommand):
    """Replace some instances by others as one step (split, merge); undo deletes the new
    ones and brings the old back with their ids; redo restores the new ids."""

    def __init__(
        self,
        project: Project,
        image_id: int,
        old: Sequence[Instance],
        new: Sequence[Instance],
        text: str,
        notify: Notify = _nothing,
    ) -> None:
        super().__init__(text)
        self.project = project
        self.image_id = image_id
        self.old = list(old)
        self.new = list(new)
        self.notify = notify

    def _swap(self, out: Sequence[Instance], into: Sequence[Instance]) -> list[Instance]:
        with self.project.batch():
            self.project.delete_instances([i.id for i in out if i.id is not None])
            return self.project.add_instances(self.image_id, into, supersede=False).instances

    def redo(self) -> None:
        self.new = self._swap(self.old, self.new)
        self.notify(self.image_id)

    def undo(self) -> None:
        self.old = self._swap(self.new, self.old)
        self.notify(self.image_id)


class SetImageStatus(QUndoCommand):
    """Mark an image reviewed (or back); undo restores the status and reason it had."""

    def __init__(
        self, project: Project, image_id: int, status: ImageStatus, notify: Notify = _nothing
    ) -> None:
        super().__init__(f"Mark {status.value}")
        self.project = project
        self.image_id = image_id
        self.status = status
        self.before: tuple[ImageStatus, str | None] | None = None
        self.notify = notify

    def redo(self) -> None:
        old = self.project.set_status(self.image_id, self.status)
        self.before = (old.status, old.reason)
        self.notify(self.image_id)

    def undo(self) -> None:
        if self.before is not None:
            self.project.set_status(self.image_id, *self.before)
        self.notify(self.image_id)


def review(
    project: Project, instances: Sequence[Instance], state: Review, notify: Notify
) -> EditInstances:
    """Accept or reject instances: one undo step."""
    verb = "Accept" if state is Review.ACCEPTED else "Reject"
    return EditInstances(project, [i.with_changes(review=state) for i in instances], verb, notify)


def set_visible(
    project: Project, instances: Sequence[Instance], visible: bool, notify: Notify
) -> EditInstances:
    text = "Show" if visible else "Hide"
    return EditInstances(
        project, [i.with_changes(visible=visible) for i in instances], text, notify
    )


def relabel(
    project: Project, instances: Sequence[Instance], name: str, notify: Notify
) -> EditInstances:
    """Give instances the class called `name` (created when new); a person's choice, so the
    instances count as accepted."""
    category = project.add_category(name)
    changed = [i.with_changes(category_id=category.id, review=Review.ACCEPTED) for i in instances]
    return EditInstances(project, changed, f"Relabel as {category.name}", notify)


class UndoStacks(QObject):
    """One QUndoStack per image in a QUndoGroup; the image on screen has the active one."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.group = QUndoGroup(self)
        self._stacks: dict[int, QUndoStack] = {}

    def stack(self, image_id: int) -> QUndoStack:
        stack = self._stacks.get(image_id)
        if stack is None:
            stack = self._stacks[image_id] = QUndoStack(self.group)
        return stack

    def activate(self, image_id: int) -> QUndoStack:
        stack = self.stack(image_id)
        self.group.setActiveStack(stack)
        return stack

    def push(self, image_id: int, command: QUndoCommand) -> None:
        """Run the command (stored at once) and keep it for undo on that image's stack."""
        self.stack(image_id).push(command)

    def clear(self) -> None:
        """Forget every stack (another folder was opened)."""
        for stack in self._stacks.values():
            stack.deleteLater()
        self._stacks.clear()
