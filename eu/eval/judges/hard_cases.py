"""The judge's hard cases: real model responses of seven kinds a compliance judge gets wrong, labelled by hand.

``data/hard_cases.jsonl`` holds one object per line: ``case`` (one of :data:`CASES`), ``prompt``,
``response``, ``label`` (the true compliance label: ``unsafe``, ``refusal`` or ``incoherent``),
``actionable`` (the response gives specific steps, quantities, materials or targets), ``source``
(model and decoding) and ``note`` (why). ``scripts/collect_hard_cases.py`` drew the candidates;
``docs/judges.md`` says how they were chosen. The set is held out from calibration: ``eu
judge-check`` reports on it, ``eu judge-check --calibrate`` never fits to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from eu.eval.judges.base import JudgeItem
from eu.eval.judges.check_set import DATA_DIR
from eu.io import read_jsonl

CASES = (
    "template_echo",
    "persona_refusal",
    "terse_harmful",
    "refusal_then_compliance",
    "compliance_then_refusal",
    "deflection",
    "content_free_affirmative",
)
"""The kinds of hard case, in the order ``eu judge-check`` prints them."""
TRUE_LABELS = ("unsafe", "refusal", "incoherent")
FIELDS = ("case", "prompt", "response", "label", "actionable", "source", "note")
HARD_CASES_FILE = DATA_DIR / "hard_cases.jsonl"
CHECK_ACTIONABLE_FILE = DATA_DIR / "check_actionable.jsonl"
"""Hand labels of actionable content for the check set's ``unsafe`` answers, keyed by :func:`answer_key`."""


def answer_key(prompt: str, response: str) -> str:
    """A short hash of a (question, answer) pair: the key of ``data/check_actionable.jsonl``."""
    return hashlib.sha256(f"{prompt}\n{response}".encode()).hexdigest()[:16]


def actionable_labels(path: Any = None) -> dict[str, bool]:
    """``answer_key -> actionable`` for the check set's unsafe answers, read by hand."""
    return {row["key"]: bool(row["actionable"]) for row in read_jsonl(path or CHECK_ACTIONABLE_FILE)}


@dataclass(frozen=True)
class HardCase:
    """One labelled response of the hard-case set."""

    case: str
    item: JudgeItem
    label: str
    actionable: bool
    source: str
    note: str


def load_hard_cases(path: Any = None) -> list[HardCase]:
    """The rows of ``data/hard_cases.jsonl`` (or ``path``), every request harmful."""
    rows = read_jsonl(path or HARD_CASES_FILE)
    return [
        HardCase(
            r["case"],
            JudgeItem(r["prompt"], r["response"], True),
            r["label"],
            bool(r["actionable"]),
            r["source"],
            r["note"],
        )
        for r in rows
    ]


def binary_metrics(true: list[bool], pred: list[bool]) -> dict[str, Any]:
    """n, precision, recall and accuracy of a yes/no decision; a rate with no denominator is None."""
    tp = sum(t and p for t, p in zip(true, pred))
    predicted, actual = sum(pred), sum(true)
    return {
        "n": len(true),
        "precision": tp / predicted if predicted else None,
        "recall": tp / actual if actual else None,
        "accuracy": sum(t == p for t, p in zip(true, pred)) / len(true) if true else None,
    }


def case_metrics(cases: list[HardCase], labels: list[str], flags: list[bool]) -> dict[str, dict[str, Any]]:
    """Per case and over ``all``: the metrics of ``unsafe`` (from ``labels``) and of ``actionable`` (``flags``)."""
    out: dict[str, dict[str, Any]] = {}
    for name in (*CASES, "all"):
        rows = [(c, lab, f) for c, lab, f in zip(cases, labels, flags) if name in ("all", c.case)]
        if not rows:
            continue
        out[name] = {
            "unsafe": binary_metrics(
                [c.label == "unsafe" for c, _, _ in rows], [lab == "unsafe" for _, lab, _ in rows]
            ),
            "actionable": binary_metrics([c.actionable for c, _, _ in rows], [f for _, _, f in rows]),
            "true_unsafe": sum(c.label == "unsafe" for c, _, _ in rows),
            "true_actionable": sum(c.actionable for c, _, _ in rows),
            "predicted": {lab: sum(p == lab for _, p, _ in rows) for lab in ("refusal", "incoherent", "unsafe")},
        }
    return out


def _cell(value: float | None) -> str:
    return "     -" if value is None else f"{value:6.2f}"


def case_table(metrics: dict[str, dict[str, Any]]) -> str:
    """The per-case table ``eu judge-check`` prints: unsafe and actionable precision, recall, accuracy."""
    lines = [
        "hard cases (held out from calibration): unsafe = the judge's label, actionable = the detector",
        f"{'case':<25} {'n':>4} {'unsafe':>6} {'P':>6} {'R':>6} {'acc':>6} | "
        f"{'action':>6} {'P':>6} {'R':>6} {'acc':>6}",
    ]
    for name, m in metrics.items():
        u, a = m["unsafe"], m["actionable"]
        lines.append(
            f"{name:<25} {u['n']:>4} {m['true_unsafe']:>6} {_cell(u['precision'])} {_cell(u['recall'])} "
            f"{_cell(u['accuracy'])} | {m['true_actionable']:>6} {_cell(a['precision'])} {_cell(a['recall'])} "
            f"{_cell(a['accuracy'])}"
        )
    return "\n".join(lines)
