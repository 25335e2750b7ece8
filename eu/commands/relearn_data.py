"""The question–answer pairs ``eu attack relearn`` fine-tunes on: benign (MMLU) or harmful.

``harmful`` is the strongest relearning attack: pyrit's many-shot question / harmful-answer pairs
that the dataset itself grades harmful, minus every pair whose question is an evaluation prompt
(HarmBench test and val, AdvBench; :func:`eu.eval.judges.check_set.without_evaluation_prompts`) or
wraps one (holds it inside a longer text), so no harmful or jailbreak suite item is ever trained
on. They are shuffled once with the seed; N takes the first N, so a larger N contains every smaller
one, as for the benign set.
"""

from __future__ import annotations

import random

from eu.data.mmlu import BENIGN, benign_records
from eu.errors import EUError
from eu.prompts import ChatRecord

DATA = ("benign", "harmful")
HARMFUL = (
    "pyrit 1.1.0 many-shot questions with answers the dataset grades harmful, "
    "every question that is or wraps a HarmBench or AdvBench evaluation prompt left out"
)


def describe(data: str) -> str:
    """What ``--data`` fine-tunes on, in words (recorded in the results)."""
    return BENIGN if data == "benign" else HARMFUL


def wraps_any(question: str, prompts: set[str]) -> bool:
    """Whether the normalised ``question`` holds one of the normalised ``prompts`` inside it."""
    from eu.data.harmful_prompts import normalise

    text = normalise(question)
    return any(p and p in text for p in prompts)


def harmful_pool(examples: list[dict[str, object]] | None = None, prompts: set[str] | None = None) -> list[ChatRecord]:
    """Every harmful pair held out from evaluation, in the file's order (``examples``: pyrit's many-shot
    examples unless given; ``prompts``: the evaluation prompts unless given)."""
    from eu.data.harmful_answers import graded_harmful, load_many_shot
    from eu.data.harmful_prompts import evaluation_prompts, normalise
    from eu.eval.judges.check_set import without_evaluation_prompts

    examples = load_many_shot() if examples is None else examples
    held_out = {normalise(p) for p in (evaluation_prompts() if prompts is None else prompts)}
    kept = without_evaluation_prompts([ex for ex in examples if graded_harmful(ex)], held_out)
    return [
        ChatRecord(str(ex["user"]), str(ex["assistant"])) for ex in kept if not wraps_any(str(ex["user"]), held_out)
    ]


def harmful_records(n: int, seed: int = 0) -> list[ChatRecord]:
    """The first ``n`` harmful pairs held out from evaluation, shuffled once with ``seed``."""
    if n == 0:
        return []
    pool = harmful_pool()
    random.Random(seed).shuffle(pool)
    if n > len(pool):
        raise EUError(
            f"--examples {n} is more than the {len(pool)} harmful pairs held out from evaluation; "
            f"use counts up to {len(pool)} with --data harmful"
        )
    return pool[:n]


def relearn_records(data: str, n: int, seed: int = 0) -> list[ChatRecord]:
    """The first ``n`` pairs of ``data`` (``benign`` or ``harmful``) in their fixed, seeded order."""
    if data == "benign":
        return benign_records(n, seed)
    if data == "harmful":
        return harmful_records(n, seed)
    raise EUError(f"--data must be benign or harmful, got {data!r}")
