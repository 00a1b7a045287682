"""Errors a user can cause and fix. Their message says what happened and what to do."""


class MaskdeskError(Exception):
    """A problem the user can fix; shown as a message, never as a traceback."""


class ImageError(MaskdeskError):
    """An image file that cannot be decoded or is too large."""


class ProjectError(MaskdeskError):
    """A project store that cannot be opened, written or understood."""


class CocoError(MaskdeskError):
    """A COCO file that cannot be read or written."""


class ModelError(MaskdeskError):
    """A model or its weights that cannot be found, fetched or loaded."""
