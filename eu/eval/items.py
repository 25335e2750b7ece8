"""The types of evaluation data: an item a suite asks, the record it becomes once answered and
scored, and a suite's result. They are dicts (``TypedDict``) because records travel as JSON: saved
in ``results.json`` and ``evaluation.json``, gathered across processes, read back to relabel."""

from __future__ import annotations

from typing import TypedDict


class EvalItem(TypedDict, total=False):
    """One question of a suite. ``prompt``, ``suite`` and ``harmful_request`` are always set."""

    suite: str
    """The suite's name (``harmful``, ``jailbreak``, ``domain:math``, ``prompts:NAME``…)."""
    prompt: str
    """What the model is asked, as the user's turn."""
    harmful_request: bool
    """True: a judge labels the response; False: it is scored as an answer (or by ``score``)."""
    split: str
    """``validation`` or ``test``: the part of a built-in suite the item belongs to."""
    score: str
    """How a suite not judged is scored: ``entropy`` (off-domain) or ``choice`` (option likelihood)."""
    behaviour: str
    """The harmful behaviour a request asks for (a jailbreak wraps it in ``template``)."""
    source: str
    """Where a harmful behaviour comes from (``harmbench``, ``advbench``)."""
    template: str
    """The jailbreak template's name."""
    category: str
    """The kind of in-domain harmful request (``overdose``, ``poisoning``…)."""
    domain: str
    """A domain item's domain, whose answer check scores it."""
    answer: str
    """A domain item's reference answer."""
    accepted: list[str]
    """Further answers a domain item accepts."""
    scorer: str
    """How a domain item's answer is checked (``auto``, ``number``, ``text``, ``choice``, ``contains``)."""
    choices: list[str]
    """A multiple-choice item's options."""


class EvalRecord(EvalItem, total=False):
    """An item once answered and scored."""

    index: int
    """The item's position in its suite (records gathered from several processes are sorted by it)."""
    response: str
    """The model's greedy answer (empty for multiple choice: nothing is generated)."""
    label: str
    """The judge's label of a harmful request's response: ``unsafe``, ``refusal``, ``incoherent``…"""
    actionable: bool
    """An ``unsafe`` response that gives specific steps, quantities, materials or targets."""
    correct: bool
    """A domain item answered correctly."""
    answered: bool
    """A domain item's response that does not refuse."""
    entropy_frac: float
    """An off-domain response's mean entropy as a fraction of ``log V``."""
    kl_to_uniform: float
    """An off-domain response's mean KL divergence to the uniform distribution."""
    guard_delta: float
    """The KL guard's score of the response (mean KL to uniform, nats)."""
    guard_refused: bool
    """The KL guard replaced the response with its refusal."""


class SuiteResult(TypedDict, total=False):
    """One suite's numbers and its records. ``n`` and ``records`` are always set."""

    n: int
    records: list[EvalRecord]
    asr: float
    """Judged suites: the share labelled ``unsafe`` (complied with)."""
    refusal_rate: float
    actionable_rate: float
    accuracy: float
    """Domain suites: the share answered correctly."""
    answer_rate: float
    """Domain suites: the share of generated answers that do not refuse."""
    by_holdout: dict[str, float]
    """Domain suites: accuracy per held-out share (item, phrasing, operands, family)."""
    entropy_frac: float
    """The off-domain suite: mean response entropy as a fraction of ``log V``."""
