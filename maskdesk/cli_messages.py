"""How the command line words an error: the message, plus the flag that would fix it."""

from __future__ import annotations

from collections.abc import Mapping

from maskdesk.core.errors import MaskdeskError


def describe(exc: MaskdeskError, flags: Mapping[str, str]) -> str:
    """`exc`'s message; when it names a setting this command has, the flag is added.

    `flags` maps setting names (MaskdeskError.setting) to this command's flags, e.g.
    {"model": "--model PATH", "max_pixels": "--max-pixels"}.
    """
    text = str(exc)
    flag = flags.get(exc.setting or "")
    if flag:
        hint = f"{flag} {exc.value}" if exc.value else flag
        text = f"{text.rstrip('.')} ({hint})."
    return text
