"""Validation and test parts of every evaluation suite.

Settings are chosen on ``validation`` and reported on ``test``; no item is in both. A built-in
suite puts each item in one part by a hash of what identifies it (the problem behind a domain
item, a behaviour, a jailbreak template's name, an MMLU question), so the parts do not move
when a suite's size or seed changes. HarmBench ships its own validation and test files and
keeps them.
"""

from __future__ import annotations

import hashlib

from eu.errors import EUError

SPLITS = ("validation", "test")
"""The evaluation parts: ``validation`` chooses, ``test`` reports."""


def check_split(split: str, option: str = "split") -> str:
    """``split`` if it names an evaluation part, else a clear error naming ``option``."""
    if split not in SPLITS:
        raise EUError(f"{option}: unknown evaluation split {split!r}; use validation (to choose) or test (to report)")
    return split


def split_of(key: str, kind: str) -> str:
    """The part of an item of suite ``kind`` identified by ``key``: about half go to each."""
    digest = hashlib.sha256(f"{kind}:{key}".encode()).digest()
    return "validation" if digest[0] % 2 == 0 else "test"


def in_split(key: str, kind: str, split: str) -> bool:
    """Whether the item of suite ``kind`` identified by ``key`` belongs to ``split``."""
    return split_of(key, kind) == check_split(split)
