"""Which reviewed images are held out to measure a trained model: 1 in 5 (at least 2),
chosen by a stable hash of the image's path.

An image below the hash threshold is held out in every round, whatever else is reviewed.
Images held out in an earlier round (its model card says which) stay held out, so an image a
model was measured on is never trained on by a later one, and rounds compare on the same
images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HELD_OUT_SHARE = 0.2
MIN_HELD_OUT = 2


def hash_fraction(path: str) -> float:
    """A number in [0, 1) fixed by the path alone (the same on every machine and run)."""
    digest = hashlib.sha256(path.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split(paths: Sequence[str], held_before: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(training paths, held-out paths) of these reviewed image paths, both in input order.

    Held out: paths whose hash falls below HELD_OUT_SHARE, those held out before, and, while
    fewer than MIN_HELD_OUT, the lowest-hashed of the others; at least one path is left to
    train on.
    """
    before = set(held_before)
    held = {p for p in paths if hash_fraction(p) < HELD_OUT_SHARE or p in before}
    rest = sorted((p for p in paths if p not in held), key=hash_fraction)
    while len(held) < MIN_HELD_OUT and len(rest) > 1:
        held.add(rest.pop(0))
    return [p for p in paths if p not in held], [p for p in paths if p in held]
