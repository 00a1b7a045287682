"""Undoable edits of one image as plain values: each step records exactly what it changed and
what it left, and applies (undone or redone) only where the store still holds what it left.

A step that changes fields (hide, accept, relabel, a new mask, the image's status) checks
those fields; a step that removes or brings back instances by id (delete, add, split, merge)
checks everything stored for the image (`Project.fingerprint`), so that it can neither
duplicate an object the model predicted again nor resurrect one that `clear` removed. A
step whose check fails raises `Stale` and changes nothing: it never writes over a change it
did not make (the model, `maskdesk predict --redo`, `clear`, another window).

Steps keep masks as compressed RLE of their crops (store rows), never decoded pixels, so a
long history of big masks stays small.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from maskdesk.core.errors import ProjectError
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.store import instance_from_row, instance_values

Row = tuple[Any, ...]  # a stored instance: id, image id, then `instance_values`


class Stale(ProjectError):
    """The image changed since this history's last step, by someone else."""


def pack(instance: Instance) -> Row:
    return (instance.id, instance.image_id, *instance_values(instance))


def unpack(row: Row) -> Instance:
    return instance_from_row(row)


class _PackedMask(tuple):
    """A mask field's value kept as (x, y, width, height, RLE counts of the crop)."""


def _pack_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    packed = dict(fields)
    mask = packed.get("mask")
    if isinstance(mask, CropMask):
        counts = mask.crop_counts() if mask.width and mask.height else b""
        packed["mask"] = _PackedMask((mask.x, mask.y, mask.width, mask.height, counts))
    return packed


def _unpack_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    unpacked = dict(fields)
    mask = unpacked.get("mask")
    if isinstance(mask, _PackedMask):
        unpacked["mask"] = CropMask.from_crop_counts(*mask)
    return unpacked


def _stored(project: Project, image_id: int, ids: Sequence[int]) -> list[Instance]:
    """The instances with these ids as stored now; a clear ValueError when one is gone."""
    found = []
    for instance_id in ids:
        try:
            instance = project.instance(instance_id)
        except ValueError:
            instance = None
        if instance is None or instance.image_id != image_id:
            raise ValueError(
                f"instance {instance_id} is no longer on {project.image(image_id).path} "
                "(another program or the model changed it); the image now shows what is stored"
            )
        found.append(instance)
    return found


class Step:
    """One undoable edit of one image; `do` runs it (first time and redo), `undo` reverts it.
    Both run inside the transaction of `run`, which checks `holds` first."""

    def __init__(self, image_id: int, text: str) -> None:
        self.image_id = image_id
        self.text = text

    def do(self, project: Project) -> None:
        raise NotImplementedError

    def undo(self, project: Project) -> None:
        raise NotImplementedError

    def holds(self, project: Project) -> bool:
        """Whether the store still holds what this step's last do or undo left."""
        raise NotImplementedError

    def remember(self, project: Project) -> None:
        """Note what the do or undo just run left (inside its transaction)."""
        raise NotImplementedError

    def added(self) -> list[int]:
        """Ids of the instances this step made (to select them afterwards)."""
        return []


def run(project: Project, step: Step, *, check: bool = True, backwards: bool = False) -> None:
    """Do (or undo) `step` in one transaction, after checking that the store still holds
    what the step left (`check=False`: a new edit on what is stored now).

    Raises Stale (and changes nothing) when someone else changed what the step left;
    ValueError when a new edit no longer fits what is stored (an instance gone);
    ProjectError when the store refuses (busy, read-only).
    """
    try:
        with project.batch():
            if check and not step.holds(project):
                raise Stale(
                    f"{project.image(step.image_id).path} was changed meanwhile, by the model "
                    "or another program"
                )
            if backwards:
                step.undo(project)
            else:
                step.do(project)
            step.remember(project)
    except sqlite3.IntegrityError as exc:  # an id taken meanwhile, a class removed
        raise ValueError(f"the project refused the edit: {exc}") from exc


class Whole(Step):
    """A step that checks everything stored for its image."""

    def __init__(self, image_id: int, text: str) -> None:
        super().__init__(image_id, text)
        self.left = ""

    def holds(self, project: Project) -> bool:
        return project.fingerprint(self.image_id) == self.left

    def remember(self, project: Project) -> None:
        self.left = project.fingerprint(self.image_id)


class ChangeFields(Step):
    """Change some fields of some instances (visible, review, class, mask...): only those
    fields, read from and written to what is stored now, never a whole old row."""

    def __init__(self, image_id: int, changes: Mapping[int, Mapping[str, Any]], text: str) -> None:
        super().__init__(image_id, text)
        if not changes:
            raise ValueError("an edit needs at least one instance")
        self.changes = {iid: _pack_fields(fields) for iid, fields in changes.items()}
        self.before: dict[int, dict[str, Any]] = {}
        self.left: dict[int, dict[str, Any]] = {}

    def _current(self, project: Project, instance_id: int) -> Instance:
        return _stored(project, self.image_id, [instance_id])[0]

    def do(self, project: Project) -> None:
        before = {}
        for iid, fields in self.changes.items():
            current = self._current(project, iid)
            old = {name: getattr(current, name) for name in fields}
            if "mask" in fields and "box" not in fields:
                old["box"] = current.box  # a new mask brings its own box
            before[iid] = _pack_fields(old)
            project.update_instance(current.with_changes(**_unpack_fields(fields)))
        self.before = before

    def undo(self, project: Project) -> None:
        for iid, old in reversed(self.before.items()):
            current = self._current(project, iid)
            project.update_instance(current.with_changes(**_unpack_fields(old)))

    def _read(self, project: Project) -> dict[int, dict[str, Any]]:
        found = {}
        for iid, fields in self.before.items():
            try:
                current = project.instance(iid)
            except ValueError:
                return {}
            if current.image_id != self.image_id:
                return {}
            found[iid] = _pack_fields({name: getattr(current, name) for name in fields})
        return found

    def holds(self, project: Project) -> bool:
        return bool(self.left) and self._read(project) == self.left

    def remember(self, project: Project) -> None:
        self.left = self._read(project)


class Delete(Whole):
    """Delete instances; undo brings them back with their ids."""

    def __init__(self, image_id: int, ids: Sequence[int], text: str = "") -> None:
        n = len(ids)
        super().__init__(image_id, text or f"Delete {n} instance{'s' if n != 1 else ''}")
        self.ids = list(ids)
        self.gone: list[Row] = []

    def do(self, project: Project) -> None:
        _stored(project, self.image_id, self.ids)
        self.gone = [pack(i) for i in project.delete_instances(self.ids)]

    def undo(self, project: Project) -> None:
        project.add_instances(self.image_id, [unpack(r) for r in self.gone], supersede=False)


class Add(Whole):
    """Add instances (drawn, made by a tool); a person's instance supersedes the pending
    predictions it covers. Undo removes them and puts those back; redo restores both ids."""

    def __init__(self, image_id: int, instances: Sequence[Instance], text: str) -> None:
        super().__init__(image_id, text)
        self.fresh: list[Instance] | None = list(instances)
        self.rows: list[Row] = []
        self.superseded: list[Row] = []

    def do(self, project: Project) -> None:
        if self.fresh is not None:
            added = project.add_instances(self.image_id, self.fresh)
            self.rows = [pack(i) for i in added.instances]
            self.superseded = [pack(i) for i in added.superseded]
            self.fresh = None  # from now on only the compact rows are kept
            return
        project.delete_instances([r[0] for r in self.superseded])
        project.add_instances(self.image_id, [unpack(r) for r in self.rows], supersede=False)

    def undo(self, project: Project) -> None:
        project.delete_instances([r[0] for r in self.rows])
        restored = [unpack(r) for r in self.superseded]
        project.add_instances(self.image_id, restored, supersede=False)

    def added(self) -> list[int]:
        return [r[0] for r in self.rows]


class Replace(Whole):
    """Replace instances by others (split, merge); undo brings the old ones back with their
    ids, redo the new ones with theirs."""

    def __init__(
        self, image_id: int, old: Sequence[Instance], new: Sequence[Instance], text: str
    ) -> None:
        super().__init__(image_id, text)
        self.old_ids = [i.id for i in old if i.id is not None]
        self.old: list[Row] = []
        self.fresh: list[Instance] | None = [i.with_changes(id=None) for i in new]
        self.new: list[Row] = []

    def do(self, project: Project) -> None:
        _stored(project, self.image_id, self.old_ids)
        self.old = [pack(i) for i in project.delete_instances(self.old_ids)]
        into = self.fresh if self.fresh is not None else [unpack(r) for r in self.new]
        made = project.add_instances(self.image_id, into, supersede=False).instances
        self.new, self.fresh = [pack(i) for i in made], None

    def undo(self, project: Project) -> None:
        project.delete_instances([r[0] for r in self.new])
        project.add_instances(self.image_id, [unpack(r) for r in self.old], supersede=False)

    def added(self) -> list[int]:
        return [r[0] for r in self.new]


class SetStatus(Step):
    """Mark an image reviewed (or back); undo restores the status and reason it had."""

    def __init__(self, image_id: int, status: ImageStatus) -> None:
        super().__init__(image_id, f"Mark {ImageStatus(status).value}")
        self.status = ImageStatus(status)
        self.before: tuple[ImageStatus, str | None] | None = None
        self.left: tuple[ImageStatus, str | None] | None = None

    def do(self, project: Project) -> None:
        old = project.set_status(self.image_id, self.status)
        self.before = (old.status, old.reason)

    def undo(self, project: Project) -> None:
        if self.before is not None:
            project.set_status(self.image_id, *self.before)

    def holds(self, project: Project) -> bool:
        return self.left is not None and self._read(project) == self.left

    def remember(self, project: Project) -> None:
        self.left = self._read(project)

    def _read(self, project: Project) -> tuple[ImageStatus, str | None]:
        record = project.image(self.image_id)
        return record.status, record.reason


class Steps(Whole):
    """Several steps of one image as one: all applied, or none (one transaction)."""

    def __init__(self, image_id: int, steps: Sequence[Step], text: str) -> None:
        super().__init__(image_id, text)
        if any(s.image_id != image_id for s in steps):
            raise ValueError("the steps of one edit must be of one image")
        self.steps = list(steps)

    def do(self, project: Project) -> None:
        for step in self.steps:
            step.do(project)

    def undo(self, project: Project) -> None:
        for step in reversed(self.steps):
            step.undo(project)

    def added(self) -> list[int]:
        return [i for step in self.steps for i in step.added()]
