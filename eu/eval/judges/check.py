"""``eu judge-check``: measure (and calibrate) the likelihood judge on the labelled check set.

The set and its groups are described in :mod:`eu.eval.judges.check_set`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Literal

from eu.data.harmful_answers import load_many_shot
from eu.eval.judges.actionable import actionable_flags
from eu.eval.judges.base import LABELS
from eu.eval.judges.check_set import (
    GROUPS,
    TRUE_LABEL,
    CheckItem,
    benign_pairs,
    build_check_set,
    without_evaluation_prompts,
)
from eu.eval.judges.hard_cases import (
    actionable_labels,
    answer_key,
    binary_metrics,
    case_metrics,
    case_table,
    load_hard_cases,
)
from eu.eval.judges.likelihood import CALIBRATION_FILE, DEFAULT_MODEL, LikelihoodJudge
from eu.eval.judges.rule import Thresholds, decide
from eu.eval.judges.rule import calibrate as calibrate_thresholds
from eu.io import write_text_atomic


def unsafe_metrics(true: list[str], pred: list[str]) -> dict[str, float]:
    """Precision, recall and accuracy of ``unsafe`` against everything else."""
    tp = sum(t == "unsafe" and p == "unsafe" for t, p in zip(true, pred))
    fp = sum(t != "unsafe" and p == "unsafe" for t, p in zip(true, pred))
    fn = sum(t == "unsafe" and p != "unsafe" for t, p in zip(true, pred))
    correct = sum((t == "unsafe") == (p == "unsafe") for t, p in zip(true, pred))
    return {
        "n": len(true),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": correct / len(true) if true else 0.0,
    }


def report(checks: list[CheckItem], pred: list[str], split: str) -> tuple[str, dict[str, Any]]:
    """A text table (per group: count, predicted label counts) and the unsafe metrics of ``split``."""
    rows = [(c, p) for c, p in zip(checks, pred) if c.split == split]
    lines = [f"{split} split", f"{'group':<10} {'true':<10} {'n':>5} " + " ".join(f"{lab:>10}" for lab in LABELS)]
    confusion: dict[str, dict[str, int]] = {}
    for group in GROUPS:
        got = [p for c, p in rows if c.group == group]
        if not got:
            continue
        confusion[group] = {lab: got.count(lab) for lab in LABELS}
        cells = " ".join(f"{confusion[group][lab]:>10}" for lab in LABELS)
        lines.append(f"{group:<10} {TRUE_LABEL[group]:<10} {len(got):>5} {cells}")
    metrics = unsafe_metrics([c.label for c, _ in rows], [p for _, p in rows])
    lines.append(
        "unsafe vs rest: precision {precision:.3f}  recall {recall:.3f}  accuracy {accuracy:.3f}  (n={n})".format(
            **metrics
        )
    )
    return "\n".join(lines), {**metrics, "confusion": confusion}


def judge_check(
    calibrate: bool = False,
    model: str = DEFAULT_MODEL,
    out: str | None = None,
    data: str | None = None,
    batch_size: int = 16,
    max_response_tokens: int = 32,
    seed: int = 0,
    dtype: Literal["auto", "float32", "bfloat16"] = "auto",
) -> dict[str, Any]:
    """Score the likelihood judge on the labelled set; with ``--calibrate`` pick and save thresholds.

    Args:
        calibrate: choose thresholds on the calibration split and write them to ``out``.
        model: the judge's model (alias, Hugging Face id or folder).
        out: calibration file to write (``--calibrate``) or read; the shipped file by default.
        data: a many-shot JSON file instead of the pyrit asset.
        batch_size: sequences per forward pass.
        max_response_tokens: the judge cuts responses to this many tokens.
        seed: seed of the generated incoherent responses and off-topic pairings.
        dtype: the judge model's weights, ``auto`` (bfloat16 where native), ``float32`` or ``bfloat16``.
    """
    path = Path(out) if out else CALIBRATION_FILE
    scorer = LikelihoodJudge(
        model,
        calibration=Thresholds(0.0, 0.0) if calibrate else path,
        batch_size=batch_size,
        max_response_tokens=max_response_tokens,
        dtype=dtype,
    )
    _, tokenizer = scorer._load()
    examples = load_many_shot(data)
    kept = without_evaluation_prompts(examples)
    print(f"check set: {len(kept)} of {len(examples)} many-shot examples (the rest an evaluation suite asks)")
    checks = build_check_set(kept, tokenizer, benign_pairs(), seed)
    t0 = time.perf_counter()
    feats = scorer.features([c.item for c in checks], relevance_always=True)
    seconds = time.perf_counter() - t0
    print(f"scored {len(checks)} responses in {seconds:.0f} s", file=sys.stderr)
    dtype_name = str(scorer.dtype).removeprefix("torch.")
    result: dict[str, Any] = {"model": model, "dtype": dtype_name, "seconds": round(seconds, 1)}
    if calibrate:
        cal = [(c, f) for c, f in zip(checks, feats) if c.split == "calibration"]
        th, _ = calibrate_thresholds(
            [f for _, f in cal], [c.label for c, _ in cal], [c.item.harmful_request for c, _ in cal]
        )
        scorer.thresholds = th
    th = scorer.thresholds
    pred = [decide(f, th, c.item.harmful_request) for c, f in zip(checks, feats)]
    print(f"thresholds: fluency {th.fluency:.4f}  relevance {th.relevance:.4f}  diversity {th.diversity:.4f}")
    for split in ("calibration", "test"):
        table, metrics = report(checks, pred, split)
        print(table + "\n")
        result[split] = metrics
    result["hard_cases"] = hard_case_report(scorer, th)
    result["check_actionable"] = actionable_check(checks)
    if calibrate:
        record = {
            "model": model,
            "fluency": th.fluency,
            "relevance": th.relevance,
            "diversity": th.diversity,
            "max_response_tokens": max_response_tokens,
            "neutral_prompt": scorer.neutral_prompt,
            "command": f"eu judge-check --calibrate --model {model}",
            "calibration": result["calibration"],
            "test": result["test"],
        }
        write_text_atomic(path, json.dumps(record, indent=2) + "\n")
        print(f"wrote {path}")
    return result


def actionable_check(checks: list[CheckItem]) -> dict[str, Any]:
    """The actionable detector on the check set's harmful requests: every group but ``benign``.

    True labels: the ``unsafe`` answers as read by hand (``data/check_actionable.jsonl``); every
    other group (refusals, noise, loops, shuffled and off-topic text) is not actionable. Prints the
    flagged count per group and precision and recall over all of them."""
    labels = actionable_labels()
    harmful = [c for c in checks if c.item.harmful_request]
    flags = actionable_flags([c.item for c in harmful])
    true = [c.group == "unsafe" and labels.get(answer_key(c.item.prompt, c.item.response), False) for c in harmful]
    groups = {
        g: {"n": sum(c.group == g for c in harmful), "flagged": sum(f for c, f in zip(harmful, flags) if c.group == g)}
        for g in GROUPS
        if any(c.group == g for c in harmful)
    }
    metrics = {**binary_metrics(true, flags), "true": sum(true), "groups": groups}
    flagged = "  ".join(f"{g} {v['flagged']}/{v['n']}" for g, v in groups.items())
    print(f"actionable on the check set's harmful requests, flagged per group: {flagged}")
    print(
        "actionable vs hand labels: precision {} recall {} (n={}, {} actionable)\n".format(
            _fmt(metrics["precision"]), _fmt(metrics["recall"]), metrics["n"], metrics["true"]
        )
    )
    return metrics


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def hard_case_report(scorer: LikelihoodJudge, thresholds: Thresholds, path: str | None = None) -> dict[str, Any]:
    """Label the hard cases (never calibrated on) with ``thresholds``, print the per-case table, return its numbers."""
    cases = load_hard_cases(path)
    items = [c.item for c in cases]
    labels = [decide(f, thresholds, True) for f in scorer.features(items)]
    metrics = case_metrics(cases, labels, actionable_flags(items))
    print(case_table(metrics) + "\n")
    return metrics
