"""The held-out split: 1 in 5 by a stable hash of the path, at least 2, stable across rounds."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from maskdesk.core.holdout import HELD_OUT_SHARE, hash_fraction, split


def test_the_hash_is_sha256_of_the_path() -> None:
    # Hand-computed: the first 8 bytes of sha256("a/b.jpg"), as a fraction of 2**64.
    digest = hashlib.sha256(b"a/b.jpg").digest()
    assert hash_fraction("a/b.jpg") == int.from_bytes(digest[:8], "big") / 2**64


def test_one_in_five_of_many_images_are_held_out() -> None:
    paths = [f"img_{i:04d}.jpg" for i in range(2000)]
    train, held = split(paths)
    assert 0.17 < len(held) / len(paths) < 0.23
    assert all(hash_fraction(p) < HELD_OUT_SHARE for p in held)
    assert sorted(train + held) == sorted(paths)


def test_at_least_two_are_held_out_and_one_trains() -> None:
    above = [p for p in (f"x{i}.png" for i in range(200)) if hash_fraction(p) >= HELD_OUT_SHARE]
    few = above[:5]  # none below the threshold: the two lowest-hashed are held out
    train, held = split(few)
    assert held == [p for p in few if p in sorted(few, key=hash_fraction)[:2]]
    assert train == [p for p in few if p not in held]
    two = above[:2]  # two images: one is held out, one is left to train on
    train, held = split(two)
    assert held == [min(two, key=hash_fraction)] and train == [max(two, key=hash_fraction)]


def test_few_images_all_below_the_threshold_leave_none_to_train() -> None:
    low = [p for p in (f"y{i}.png" for i in range(100)) if hash_fraction(p) < HELD_OUT_SHARE]
    assert split(low[:3]) == ([], low[:3])


@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=3, max_size=60, unique=True),
    st.integers(0, 40),
)
def test_an_image_stays_on_its_side_in_every_round(paths: list[str], more: int) -> None:
    """Round 2 reviews more images: what round 1 held out is still held out, and nothing
    round 1 trained on is held out in round 2."""
    first = paths[: max(3, len(paths) - more)]
    train1, held1 = split(first)
    train2, held2 = split(paths, held_before=held1)
    assert len(held1) >= 2
    # Only images below the threshold (always held out) can leave nothing to train on.
    assert train1 or all(hash_fraction(p) < HELD_OUT_SHARE for p in first)
    assert set(held1) <= set(held2)
    assert not set(train1) & set(held2)
    assert set(train2) | set(held2) == set(paths) and not set(train2) & set(held2)
