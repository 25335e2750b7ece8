"""The labelled check set of ``eu judge-check``, built from real data and eu's item files.

The set is built from pyrit's ``many_shot_examples.json`` (harmful questions with answers, each
graded ``Harmful`` or ``Not harmful`` by the dataset), eu's built-in domains and the
hand-written items in ``data/`` (``refusals.jsonl``: refusal templates, ``general_qa.jsonl``:
general benign questions with answers):

- ``unsafe``: the answers graded harmful, after their questions;
- ``refusal``: a refusal written for every question (the templates);
- ``uniform`` (incoherent): uniformly random tokens of the judge's tokenizer, decoded, the kind
  of text a near-uniform model writes;
- ``shuffled`` (incoherent): an answer's tokens in random order;
- ``repetitive`` (incoherent): a degenerate loop, the kind of text greedy decoding draws from a
  collapsed model (``staking,,,,,,,``): a few tokens of an answer, then one to three of them
  repeated to the response length;
- ``off_topic`` (true label incoherent, i.e. not an answer): a benign answer after a harmful question;
- ``benign``: maths and medicine answers and general Q&A after their own (benign) prompts.

Every item is keyed by its question; a hash of the key puts it in the calibration or the
held-out test half, so no question is in both. Questions that an evaluation suite asks (HarmBench,
AdvBench) are left out (:func:`without_evaluation_prompts`). The hard cases (:mod:`.hard_cases`)
are a separate set, never calibrated on.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eu.data.harmful_answers import graded_harmful
from eu.eval.judges.base import JudgeItem
from eu.io import read_jsonl

GROUPS = ("unsafe", "refusal", "uniform", "shuffled", "repetitive", "off_topic", "benign")
TRUE_LABEL = {
    "unsafe": "unsafe",
    "refusal": "refusal",
    "uniform": "incoherent",
    "shuffled": "incoherent",
    "repetitive": "incoherent",
    "off_topic": "incoherent",
    "benign": "benign",
}
DATA_DIR = Path(__file__).with_name("data")
"""The hand-written items, one JSON object per line: ``refusals.jsonl``, ``general_qa.jsonl``."""


def load_items(name: str) -> list[dict[str, str]]:
    """The rows of ``data/NAME.jsonl``."""
    path = DATA_DIR / f"{name}.jsonl"
    return read_jsonl(path)


def refusal_templates() -> list[str]:
    """Refusals to write after a harmful question; ``{req}`` stands for the request."""
    return [row["template"] for row in load_items("refusals")]


def general_qa() -> list[tuple[str, str]]:
    """General benign (prompt, answer) pairs."""
    return [(row["prompt"], row["answer"]) for row in load_items("general_qa")]


@dataclass
class CheckItem:
    """One labelled response of the check set."""

    item: JudgeItem
    label: str
    group: str
    split: str


def split_of(key: str) -> str:
    """``calibration`` or ``test``, fixed by a hash of ``key``."""
    return "calibration" if hashlib.sha256(key.encode("utf-8")).digest()[0] % 2 == 0 else "test"


def benign_pairs(per_domain: int = 100) -> list[tuple[str, str]]:
    """Benign (prompt, answer) pairs: held-out maths and medicine items plus general Q&A."""
    from eu.domains import domain_items

    pairs = []
    for domain in ("math-basic", "medicine-basic"):  # the sets the check set was calibrated with
        items = domain_items(domain, "test")
        step = max(1, len(items) // per_domain)
        pairs += [(it["user_text"], it["assistant_text"]) for it in items[::step][:per_domain]]
    return pairs + general_qa()


def without_evaluation_prompts(examples: list[dict[str, Any]], exclude: set[str] | None = None) -> list[dict[str, Any]]:
    """``examples`` minus those whose question an evaluation suite asks (``exclude``, normalised; by default
    :func:`eu.data.harmful_prompts.evaluation_prompts`): the judge is never fitted on what it will be asked to judge."""
    from eu.data.harmful_prompts import evaluation_prompts, normalise

    held_out = evaluation_prompts() if exclude is None else {normalise(p) for p in exclude}
    return [ex for ex in examples if normalise(str(ex["user"])) not in held_out]


def _request(question: str) -> str:
    q = question.strip().rstrip(".!?")
    return q[:1].lower() + q[1:]


def build_check_set(
    examples: list[dict[str, Any]],
    tokenizer: Any,
    benign: list[tuple[str, str]],
    seed: int = 0,
    max_tokens: int = 64,
) -> list[CheckItem]:
    """The labelled set: per question an answer (if graded harmful), a refusal, a uniform or a
    shuffled response (alternating), and for every other question an off-topic benign answer;
    plus every benign pair after its own prompt. Generated responses have up to ``max_tokens``
    tokens (the default generation budget of ``eu evaluate``)."""
    rng = random.Random(seed)
    refusals = refusal_templates()
    special = set(tokenizer.all_special_ids)
    vocab = [i for i in range(len(tokenizer)) if i not in special]
    out: list[CheckItem] = []

    def add(prompt: str, response: str, group: str, key: str, harmful: bool = True) -> None:
        out.append(CheckItem(JudgeItem(prompt, response, harmful), TRUE_LABEL[group], group, split_of(key)))

    for n, ex in enumerate(examples):
        q, answer = ex["user"], ex["assistant"]
        if graded_harmful(ex):
            add(q, answer, "unsafe", q)
        add(q, refusals[n % len(refusals)].format(req=_request(q)), "refusal", q)
        if n % 2 == 0:
            ids = rng.choices(vocab, k=rng.randint(16, max_tokens))
            add(q, tokenizer.decode(ids, skip_special_tokens=True), "uniform", q)
            add(q, tokenizer.decode(_degenerate_loop(rng, answer, tokenizer, max_tokens)), "repetitive", q)
        else:
            ids = tokenizer(answer, add_special_tokens=False)["input_ids"][:max_tokens]
            if len(ids) >= 8:
                rng.shuffle(ids)
                add(q, tokenizer.decode(ids), "shuffled", q)
            if benign:
                add(q, rng.choice(benign)[1], "off_topic", q)
    for prompt, answer in benign:
        add(prompt, answer, "benign", prompt, harmful=False)
    return out


def _degenerate_loop(rng: random.Random, answer: str, tokenizer: Any, max_tokens: int) -> list[int]:
    """A few tokens of ``answer`` followed by one to three of its tokens repeated (``staking,,,,``)."""
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
    head = ids[: rng.randint(0, 3)]
    start = rng.randrange(len(ids))
    unit = ids[start : start + rng.randint(1, 3)]
    length = rng.randint(16, max_tokens)
    return (head + unit * length)[:length]
