"""The results of ``eu compare``: one row per method (the original model first) with its
attack success, domain accuracy and general capability, and its ASR after the relearning
attack as a function of N; as ``results.md`` tables and the two-panel ``results.png``.

A method's entry: ``{"metrics": summary_row(...), "relearn": [relearn rows] or None, ...}``
(:func:`eu.eval.report.summary_row`; the rows of ``eu attack relearn``'s ``relearn.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eu.eval.report import CAPABILITY_SUITE, figure, save_figure

COLUMNS = {
    "harmful_asr": "harmful ASR",
    "jailbreak_asr": "jailbreak ASR",
    "harmful_refusal_rate": "harmful refusal",
    "jailbreak_refusal_rate": "jailbreak refusal",
    "domain_accuracy": "domain accuracy",
    f"{CAPABILITY_SUITE}_accuracy": "general (MMLU) accuracy",
}
"""Headline numbers in table order, with their column names; other numbers follow by key."""
ASRS = ("harmful_asr", "jailbreak_asr")


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def results_table(methods: dict[str, dict[str, Any]], relative_to: str | None = None) -> str:
    """The main table: one row per method; ``× NAME`` is domain accuracy over method ``NAME``'s."""
    present = {k for m in methods.values() for k in m["metrics"]}
    columns = [c for c in COLUMNS if c in present] + sorted(present - set(COLUMNS))
    reference = methods.get(relative_to or "", {}).get("metrics", {}).get("domain_accuracy")
    ratio = relative_to in methods and "domain_accuracy" in columns
    names = [COLUMNS.get(c, c) for c in columns]
    if ratio:
        names.insert(columns.index("domain_accuracy") + 1, f"× {relative_to}")
    lines = ["| method | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for name, method in methods.items():
        metrics = method["metrics"]
        cells = [_cell(metrics.get(c)) for c in columns]
        if ratio:
            acc = metrics.get("domain_accuracy")
            known = acc is not None and bool(reference)  # undefined when the reference scores 0
            cells.insert(columns.index("domain_accuracy") + 1, f"{acc / reference:.2f}×" if known else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def relearn_table(methods: dict[str, dict[str, Any]]) -> str:
    """Harmful / jailbreak ASR after the relearning attack: one row per attacked method, one column per N."""
    attacked = {name: m["relearn"] for name, m in methods.items() if m.get("relearn")}
    counts = sorted({r["examples"] for rows in attacked.values() for r in rows})
    lines = ["| method | " + " | ".join(f"N = {n}" for n in counts) + " |", "|---|" + "---:|" * len(counts)]
    for name, rows in attacked.items():
        by_n = {r["examples"]: r for r in rows}
        cells = [" / ".join(_cell(by_n[n].get(k)) for k in ASRS) if n in by_n else "–" for n in counts]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(methods: dict[str, dict[str, Any]], path: Path) -> None:
    """Panel 1: ASR (the mean of harmful and jailbreak, the bar spanning the two) against domain
    accuracy, one point per method labelled by its name. Panel 2: the same ASR after the
    relearning attack against N, one line per attacked method (the band spanning the two)."""
    fig, (left, right) = figure(2)
    for i, (name, method) in enumerate(methods.items()):
        metrics, colour = method["metrics"], f"C{i % 10}"
        asrs, acc = [metrics.get(k) for k in ASRS], metrics.get("domain_accuracy")
        y = _mean(asrs)
        if acc is not None and y is not None:
            known = [a for a in asrs if a is not None]
            left.errorbar([acc], [y], yerr=[[y - min(known)], [max(known) - y]], fmt="o", color=colour, capsize=3)
            left.annotate(name[:30], (acc, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        rows = [r for r in method.get("relearn") or [] if _mean([r.get(k) for k in ASRS]) is not None]
        if rows:
            ns = [r["examples"] for r in rows]
            right.plot(ns, [_mean([r.get(k) for k in ASRS]) for r in rows], "o-", color=colour, label=name[:30])
            lows = [min(r[k] for k in ASRS if r.get(k) is not None) for r in rows]
            highs = [max(r[k] for k in ASRS if r.get(k) is not None) for r in rows]
            right.fill_between(ns, lows, highs, color=colour, alpha=0.15)
    left.set_xlabel("domain accuracy (higher is better)")
    left.set_ylabel("ASR, mean of harmful and jailbreak (bar: the two)")
    right.set_xlabel("benign fine-tuning examples N (relearning attack)")
    right.set_ylabel("ASR after relearning (band: harmful to jailbreak)")
    for ax in (left, right):
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    left.set_xlim(-0.02, 1.02)
    if right.lines:
        right.legend(fontsize=8)
    save_figure(fig, path)
