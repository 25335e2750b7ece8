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
    "harmful_actionable_rate": "harmful actionable",
    "jailbreak_actionable_rate": "jailbreak actionable",
    "harmful_refusal_rate": "harmful refusal",
    "jailbreak_refusal_rate": "jailbreak refusal",
    "domain_accuracy": "domain accuracy",
    f"{CAPABILITY_SUITE}_accuracy": "general (MMLU) accuracy",
}
"""Headline numbers in table order, with their column names; other numbers follow by key."""
ASRS = ("harmful_asr", "jailbreak_asr")


def aggregate(per_seed: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """One method's results over its training seeds (``[{suite: result}]``, one per seed):
    ``metrics`` (the mean of each headline number), ``sd`` (its sample standard deviation),
    ``counts`` (hits and items of each rate, summed over seeds) and ``intervals`` (the 95% Wilson
    interval of those pooled counts)."""
    from eu.eval.report import rate_counts, summary_row
    from eu.eval.stats import mean_sd, wilson

    rows = [summary_row(results) for results in per_seed]
    keys = [k for k in rows[0] if all(row.get(k) is not None for row in rows)]
    stats = {k: mean_sd([row[k] for row in rows]) for k in keys}
    counts: dict[str, list[int]] = {}
    for results in per_seed:
        for key, (hits, n) in rate_counts(results).items():
            total = counts.setdefault(key, [0, 0])
            total[0], total[1] = total[0] + hits, total[1] + n
    return {
        "metrics": {k: mean for k, (mean, _) in stats.items()},
        "sd": {k: sd for k, (_, sd) in stats.items()},
        "counts": counts,
        "intervals": {k: list(wilson(hits, n)) for k, (hits, n) in counts.items()},
        "seeds": len(per_seed),
    }


def aggregate_relearn(per_seed: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """``eu attack relearn`` rows of one method over its seeds: per N, the mean of each number,
    its ``sd`` and the Wilson ``intervals`` of the counts pooled over seeds."""
    from eu.eval.stats import mean_sd, wilson

    out = []
    for n in sorted({r["examples"] for rows in per_seed for r in rows}):
        rows = [r for rows in per_seed for r in rows if r["examples"] == n]
        keys = [k for k in rows[0] if k not in ("examples", "intervals", "counts") and isinstance(rows[0][k], float)]
        stats = {k: mean_sd([r[k] for r in rows if r.get(k) is not None]) for k in keys}
        counts: dict[str, list[int]] = {}
        for r in rows:
            for key, (hits, total) in r.get("counts", {}).items():
                pooled = counts.setdefault(key, [0, 0])
                pooled[0], pooled[1] = pooled[0] + hits, pooled[1] + total
        row: dict[str, Any] = {"examples": n, **{k: mean for k, (mean, _) in stats.items()}}
        row["sd"] = {k: sd for k, (_, sd) in stats.items()}
        row["intervals"] = {k: list(wilson(hits, total)) for k, (hits, total) in counts.items()}
        row["seeds"] = len(rows)
        out.append(row)
    return out


def cell(value: float | None, sd: float | None = None, interval: list[float] | None = None, digits: int = 3) -> str:
    """``0.013 ± 0.012 [0.000, 0.040]``: a mean, its sd over seeds (when there are several) and its interval."""
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    if sd:
        text += f" ± {sd:.{digits}f}"
    if interval:
        text += f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return text


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def results_table(methods: dict[str, dict[str, Any]], relative_to: str | None = None) -> str:
    """The main table: one row per method, each number as mean ± sd over seeds [95% interval];
    ``× NAME`` is domain accuracy over method ``NAME``'s with its paired-bootstrap interval, and
    ``claim`` says whether the intervals support it (:func:`eu.eval.stats.verdict`)."""
    present = {k for m in methods.values() for k in m["metrics"]}
    columns = [c for c in COLUMNS if c in present] + sorted(present - set(COLUMNS))
    ratio = relative_to in methods and "domain_accuracy" in columns
    claims = any("claim" in m for m in methods.values())
    names = ["method", "seeds"] + [COLUMNS.get(c, c) for c in columns]
    if ratio:
        names.insert(names.index(COLUMNS["domain_accuracy"]) + 1, f"× {relative_to}")
    names += ["claim"] if claims else []
    lines = ["| " + " | ".join(names) + " |", "|---|" + "---:|" * (len(names) - 1)]
    for name, method in methods.items():
        metrics, sd, intervals = method["metrics"], method.get("sd", {}), method.get("intervals", {})
        cells = [str(method.get("seeds", 1))] + [cell(metrics.get(c), sd.get(c), intervals.get(c)) for c in columns]
        if ratio:
            r = method.get("ratio") or {}
            text = "–" if r.get("value") is None else f"{r['value']:.2f}×"
            if r.get("interval"):
                text += f" [{r['interval'][0]:.2f}, {r['interval'][1]:.2f}]"
            cells.insert(columns.index("domain_accuracy") + 2, text)
        cells += [method.get("claim", "–")] if claims else []
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def methods_relearn_table(methods: dict[str, dict[str, Any]]) -> str:
    """Harmful / jailbreak ASR after the relearning attack (mean over seeds, 95% interval of the
    pooled counts): one row per attacked method, one column per N."""
    attacked = {name: m["relearn"] for name, m in methods.items() if m.get("relearn")}
    counts = sorted({r["examples"] for rows in attacked.values() for r in rows})
    lines = ["| method | " + " | ".join(f"N = {n}" for n in counts) + " |", "|---|" + "---:|" * len(counts)]
    for name, rows in attacked.items():
        by_n = {r["examples"]: r for r in rows}
        cells = [
            " / ".join(cell(by_n[n].get(k), None, by_n[n].get("intervals", {}).get(k), 2) for k in ASRS)
            if n in by_n
            else "–"
            for n in counts
        ]
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
