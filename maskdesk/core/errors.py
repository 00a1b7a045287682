"""Errors a user can cause and fix, one type per layer. Their message says what happened and
what to do, in words any face of the program can show.

Core and inference messages name no command-line flags: when a setting would fix the problem,
the error carries its name in `setting` (and a suggested `value`), and the CLI adds the flag.
"""

from __future__ import annotations


class MaskdeskError(Exception):
    """A problem the user can fix; shown as a message, never as a traceback."""

    def __init__(self, message: str, *, setting: str | None = None, value: str | None = None):
        super().__init__(message)
        self.setting = setting  # e.g. "max_pixels", "model", "device", "base", "lr", "images"
        self.value = value  # a value of that setting that would help, when there is one


class ImageError(MaskdeskError):
    """An image file that cannot be decoded or is too large."""


class ProjectError(MaskdeskError):
    """A project store that cannot be opened, written or understood."""


class CocoError(MaskdeskError):
    """A COCO file that cannot be read or written."""


class ModelError(MaskdeskError):
    """A model or its weights that cannot be found, fetched or loaded."""
