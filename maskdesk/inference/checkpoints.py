"""The maskdesk checkpoint: plain types and tensors only, so it loads with weights_only=True.

Layout (a dict): format, version, architecture, categories [{id, name}] in model label order
(label i + 1 is categories[i]), min_size, max_size, state_dict, training (a summary of plain
values: epochs, iterations, val AP, ...).
"""

from __future__ import annotations

import io
import warnings
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
        detail = f"its {exc} entry is missing" if isinstance(exc, KeyError) else str(exc)
        raise ModelError(
            f"{source} is a damaged maskdesk checkpoint ({detail}); train or save it again, "
            "or give another model file.",
            setting="model",
        ) from exc
    if architecture not in ARCHITECTURES:
        raise ModelError(
            f"{source} uses architecture {architecture!r}, which this maskdesk does not know "
            f"(it knows {', '.join(ARCHITECTURES)}); upgrade maskdesk, or give another model file.",
            setting="model",
        )
    return ckpt


# What the message says a model file should be, and what to do instead.
MODEL_FILE = "a maskdesk checkpoint or a torchvision Mask R-CNN state dict"
GIVE_ANOTHER = "give one of those"

# torch.save's legacy (pre-zip) format starts with this number, pickled with protocol 2.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def load_file(
    path: Path | str,
    *,
    expected: str = MODEL_FILE,
    fix: str = GIVE_ANOTHER,
    setting: str | None = "model",
) -> object:
    """torch.load with weights_only=True; a missing or unreadable file becomes a ModelError.

    The message says `path` is not `expected`, what it is instead, and then `fix`; `setting`
    names the setting that chose the file (None when no setting did, e.g. the weights cache).
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ModelError(
            f"Model file {path} {what}; check the path, or give another file.",
            setting=setting,
        )
    try:
        with warnings.catch_warnings():
            # Said of foreign pickles, which the error below describes better.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        raise ModelError(
            f"{path} is not {expected} ({_what_it_is(path, exc)}); {fix}.", setting=setting
        ) from exc


def _what_it_is(path: Path, exc: Exception) -> str:
    """Why torch.load failed, in the user's terms: the exception type alone (KeyError,
    UnpicklingError) tells them nothing about their file."""
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError as err:
        return f"it cannot be read: {err.strerror or err}"
    if not head:
        return "it is empty"
    # torch.save writes a zip whose first member is ARCHIVE/data.pkl (a cut-short copy has
    # lost the zip's directory at the end, but not this local header at the start) ...
    name_length = int.from_bytes(head[26:28], "little")
    torch_zip = head[:4] == b"PK\x03\x04" and head[30 : 30 + name_length].endswith(b"data.pkl")
    # ... or, in its legacy format, a pickle that starts with a magic number.
    legacy = head[:4] == b"\x80\x02\x8a\x0a" and int.from_bytes(head[4:14], "little") == (
        _LEGACY_MAGIC
    )
    if torch_zip or legacy:
        if "weights only" in str(exc).lower():
            # weights_only refuses pickled classes; loading them would run the file's code.
            return (
                "it is a PyTorch file holding Python objects, not only tensors (a whole "
                "pickled model, perhaps), which maskdesk does not load because unpickling "
                "them can run code; save the model's state_dict() instead"
            )
        return "it is a PyTorch file, but damaged or cut short"
    if head[:1] == b"\x80":
        return "it is a Python pickle, not a PyTorch file"
    if head[:4] == b"PK\x03\x04":
        return "it is a zip archive, not a PyTorch file"
    return "it is not a PyTorch file at all"


def read_checkpoint(path: Path | str) -> Checkpoint:
    obj = load_file(path, expected="a maskdesk checkpoint", fix="give a maskdesk checkpoint")
    if not is_checkpoint(obj):
        raise ModelError(
            f"{path} is not a maskdesk checkpoint (it is a PyTorch file of another kind); "
            "give a maskdesk checkpoint.",
            setting="model",
        )
    assert isinstance(obj, dict)
    return from_dict(obj, Path(path))


def save_checkpoint(ckpt: Checkpoint, path: Path | str) -> None:
    """Write atomically, so an interrupted save never leaves a half checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(to_dict(ckpt), buffer)
    atomic_write_bytes(path, buffer.getvalue())
