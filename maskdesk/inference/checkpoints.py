"""The maskdesk checkpoint: plain types and tensors only, so it loads with weights_only=True.

Layout (a dict): format, version, architecture, categories [{id, name}] in model label order
(label i + 1 is categories[i]), min_size, max_size, state_dict, training (a summary of plain
values: epochs, iterations, val AP, ...).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from maskdesk.core.categories import Category
from maskdesk.core.errors import ModelError
from maskdesk.core.fileio import atomic_write_bytes
from maskdesk.inference.architectures import ARCHITECTURES

FORMAT = "maskdesk-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A trained model with what is needed to use it without guessing."""

    architecture: str
    categories: list[Category]
    state_dict: dict[str, torch.Tensor]
    min_size: int
    max_size: int
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.categories) + 1


def is_checkpoint(obj: object) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def to_dict(ckpt: Checkpoint) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "architecture": ckpt.architecture,
        "categories": [{"id": c.id, "name": c.name} for c in ckpt.categories],
        "min_size": int(ckpt.min_size),
        "max_size": int(ckpt.max_size),
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "training": ckpt.training,
    }


def from_dict(obj: dict[str, Any], source: Path) -> Checkpoint:
    """Validate a loaded checkpoint dict; errors name the file."""
    version = obj.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ModelError(
            f"{source} is a maskdesk checkpoint of version {version}, newer than this maskdesk "
            f"reads ({VERSION}); upgrade maskdesk to use it."
        )
    try:
        architecture = str(obj["architecture"])
        categories = [Category(int(c["id"]), str(c["name"])) for c in obj["categories"]]
        ckpt = Checkpoint(
            architecture=architecture,
            categories=categories,
            state_dict=dict(obj["state_dict"]),
            min_size=int(obj["min_size"]),
            max_size=int(obj["max_size"]),
            training=dict(obj.get("training") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"{source} is a damaged maskdesk checkpoint ({exc}); re-export it."
        ) from exc
    if architecture not in ARCHITECTURES:
        raise ModelError(
            f"{source} uses architecture {architecture!r}, which this maskdesk does not know "
            f"({', '.join(ARCHITECTURES)})."
        )
    return ckpt


def load_file(path: Path | str) -> object:
    """torch.load with weights_only=True; unreadable files become ModelError."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist; check the path given to --model.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        raise ModelError(
            f"{path} is not a model file maskdesk can read ({type(exc).__name__}); give a maskdesk "
            "checkpoint or a torchvision Mask R-CNN state dict."
        ) from exc


def read_checkpoint(path: Path | str) -> Checkpoint:
    obj = load_file(path)
    if not is_checkpoint(obj):
        raise ModelError(f"{path} is not a maskdesk checkpoint.")
    assert isinstance(obj, dict)
    return from_dict(obj, Path(path))


def save_checkpoint(ckpt: Checkpoint, path: Path | str) -> None:
    """Write atomically, so an interrupted save never leaves a half checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(to_dict(ckpt), buffer)
    atomic_write_bytes(path, buffer.getvalue())
