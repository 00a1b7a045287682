"""How the command line words an error: the message, plus the flag that would fix it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

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


def float_arg(valid: Callable[[float], bool], otherwise: str) -> Callable[[str], float]:
    """An argparse type: a number for which `valid` holds; else "TEXT {otherwise}"."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"{text} {otherwise}")
        return value

    return parse
