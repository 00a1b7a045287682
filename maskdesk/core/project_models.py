"""The models a folder has trained, and which model is the folder's own.

Each trained model is `<store dir>/models/model-N.pt` with its card `model-N.json` (base,
classes, images trained on and held out, held-out figures, settings, date, duration). The
folder's model is a project setting: a model name (coco-v1), a file path, or a path under the
store's directory for the folder's own models, so a project moved with its folder keeps them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maskdesk.core.fileio import atomic_write_bytes
from maskdesk.core.project import Project

MODEL_SETTING = "model"
_NAME = re.compile(r"model-(\d+)")


@dataclass(frozen=True)
class ModelCard:
    """A trained model of the folder: its file and what its card says."""

    name: str
    path: Path  # the model file
    data: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.data.get("classes", [])]

    @property
    def held_out(self) -> list[str]:
        return [str(p) for p in self.data.get("held_out", [])]

    @property
    def ap(self) -> float | None:
        figures = (self.data.get("evaluation") or {}).get("new") or {}
        value = figures.get("ap")
        return None if value is None else float(value)

    def summary(self) -> str:
        """One line for a menu: name, held-out AP, classes, images, date."""
        ap = "n/a" if self.ap is None else f"{self.ap:.2f}"
        date = str(self.data.get("date", ""))[:10]
        n = int(self.data.get("train_images", 0))
        return f"{self.name}: AP {ap}, {', '.join(self.classes)}; {n} images, {date}".strip()


def card_path(model: Path) -> Path:
    return model.with_suffix(".json")


def read_card(model: Path) -> ModelCard | None:
    """The card of a model file; None when the file or its card is missing or unreadable."""
    try:
        data = json.loads(card_path(model).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not model.is_file():
        return None
    return ModelCard(model.stem, model, data)


def list_models(project: Project) -> list[ModelCard]:
    """The folder's trained models with readable cards, oldest first."""
    found = []
    for model in project.models_dir.glob("model-*.pt"):
        match = _NAME.fullmatch(model.stem)
        card = read_card(model) if match else None
        if card is not None and match is not None:
            found.append((int(match.group(1)), card))
    return [card for _, card in sorted(found, key=lambda pair: pair[0])]


def held_out_before(project: Project) -> set[str]:
    """Every image path an earlier model of this folder was measured on."""
    return {path for card in list_models(project) for path in card.held_out}


def next_name(project: Project) -> str:
    """A model name no file of the folder uses yet (model-1, model-2, ...)."""
    numbers = [
        int(m.group(1))
        for p in project.models_dir.glob("model-*")
        if (m := _NAME.match(p.name)) is not None
    ]
    return f"model-{max(numbers, default=0) + 1}"


def publish(project: Project, name: str, weights: Path, card: dict[str, Any]) -> ModelCard:
    """Move a trained model file into the folder's models as `name`, with its card.

    The card is written first and the model moved last (both atomic), so a model file in
    the folder always has its card.
    """
    project.models_dir.mkdir(parents=True, exist_ok=True)
    target = project.models_dir / f"{name}.pt"
    data = dict(card, name=name, file=target.name)
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(card_path(target), text.encode("utf-8"))
    weights.replace(target)
    return ModelCard(name, target, data)


def current_model(project: Project) -> str | None:
    """The folder's model as a name or an absolute path; None when the folder has none."""
    value = project.setting(MODEL_SETTING)
    if value is None:
        return None
    if value.startswith("models/"):
        return str(project.store_path.parent / value)
    return value


def set_current_model(project: Project, spec: str) -> None:
    """Make `spec` (a model name or file) the folder's model; the folder's own models are
    kept relative to the store's directory."""
    path = Path(spec)
    try:
        inside = path.is_absolute() and path.resolve().parent == project.models_dir.resolve()
    except OSError:
        inside = False
    project.set_setting(MODEL_SETTING, f"models/{path.name}" if inside else spec)
