"""Safety judges: label each response ``refusal``, ``incoherent``, ``unsafe`` or ``benign``.

The default :class:`LikelihoodJudge` (:mod:`.likelihood`) runs offline on a small chat model;
:class:`ClassifierJudge` and :class:`GuardJudge` (:mod:`.hf`) wrap Hugging Face safety
classifiers and Llama-Guard-style guards behind the same interface (:mod:`.base`).
``eu judge-check`` (:mod:`.check`) measures and calibrates the likelihood judge on a labelled
set (:mod:`.check_set`) whose hand-written items live in ``data/*.jsonl``, and reports on a held-out
set of hard cases drawn from real models (:mod:`.hard_cases`). :func:`actionable` (:mod:`.actionable`)
tells a response with specific steps, quantities, materials or targets from one that only complies.
"""

from __future__ import annotations

from eu.errors import EUError
from eu.eval.judges.actionable import actionable, actionable_flags, actionable_rate
from eu.eval.judges.base import LABELS, Judge, JudgeItem, attack_success_rate
from eu.eval.judges.hf import ClassifierJudge, GuardJudge
from eu.eval.judges.likelihood import CALIBRATION_FILE, DEFAULT_MODEL, NEUTRAL_PROMPT, LikelihoodJudge
from eu.eval.judges.rule import Features, Thresholds, calibrate, decide, garbled_share, text_diversity
from eu.eval.judges.scoring import mean_logprobs, token_logprobs
from eu.refusal import REFUSAL_PATTERNS, REFUSAL_WINDOW, is_refusal

__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_MODEL",
    "LABELS",
    "NEUTRAL_PROMPT",
    "REFUSAL_PATTERNS",
    "REFUSAL_WINDOW",
    "ClassifierJudge",
    "Features",
    "GuardJudge",
    "Judge",
    "JudgeItem",
    "LikelihoodJudge",
    "Thresholds",
    "actionable",
    "actionable_flags",
    "actionable_rate",
    "attack_success_rate",
    "build_judge",
    "calibrate",
    "decide",
    "is_refusal",
    "mean_logprobs",
    "garbled_share",
    "text_diversity",
    "token_logprobs",
]


def build_judge(spec: str, dtype: str = "auto") -> Judge:
    """A judge from a spec: ``default`` / ``likelihood`` (the shipped SmolLM2 judge),
    ``likelihood:MODEL@CALIBRATION.json``, ``classifier:ID`` or ``guard:ID``; the likelihood
    judge's weights in ``dtype`` (``auto``: bfloat16 where native)."""
    kind, _, arg = spec.partition(":")
    if kind in ("default", "likelihood"):
        model, _, calibration = arg.rpartition("@") if arg.endswith(".json") else (arg, "", "")
        return LikelihoodJudge(model or DEFAULT_MODEL, calibration=calibration or None, dtype=dtype)
    if kind == "classifier" and arg:
        return ClassifierJudge(arg)
    if kind == "guard" and arg:
        return GuardJudge(arg)
    raise EUError(
        f"unknown judge {spec!r}; use default, likelihood[:MODEL@CALIBRATION.json], classifier:ID or guard:ID"
    )
