"""The table of docs/tamper_resistance.md from the runs of scripts/relearn_resistance.sh.

Usage: ``python scripts/relearn_resistance_table.py RUNS [--plot FILE.png]``. Reads every
``RUNS/seedS/VARIANT/attack_{benign,harmful}/relearn.json`` and the fit's RetainOnlyFT comparison
(``RUNS/seedS/VARIANT/tensorboard/version_0/baseline.json``), and prints one Markdown row per
variant, attack and N: harmful and jailbreak ASR and actionable rate, domain accuracy, each with its
95% Wilson interval (pooled over seeds), and the seeds it pools. ``--plot`` also draws harmful ASR
against N, one line per variant and attack, with the intervals as bars.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from eu.eval.stats import format_rate, wilson

RATES = ("harmful_asr", "harmful_actionable_rate", "jailbreak_asr", "jailbreak_actionable_rate", "domain_accuracy")


def rows(runs: Path) -> dict[tuple[str, str, int], dict[str, list[int]]]:
    """(variant, attack, N) -> rate -> [hits, n] pooled over the seeds found, plus ``seeds``."""
    pooled: dict[tuple[str, str, int], dict[str, Any]] = defaultdict(lambda: {"seeds": []})
    for report in sorted(runs.glob("seed*/*/attack_*/relearn.json")):
        variant, attack = report.parent.parent.name, report.parent.name.removeprefix("attack_")
        seed = report.parent.parent.parent.name.removeprefix("seed")
        for row in json.loads(report.read_text(encoding="utf-8"))["rows"]:
            cell = pooled[(variant, attack, row["examples"])]
            cell["seeds"].append(seed)
            for key in RATES:
                if key in row.get("counts", {}):
                    hits, n = row["counts"][key]
                    old = cell.setdefault(key, [0, 0])
                    cell[key] = [old[0] + hits, old[1] + n]
    return pooled


def table(runs: Path) -> str:
    """The Markdown table."""
    lines = [
        "| variant | attack | N | harmful ASR | harmful actionable | jailbreak ASR | jailbreak actionable "
        "| domain accuracy | seeds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (variant, attack, n), cell in sorted(rows(runs).items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        cells = []
        for key in RATES:
            if key not in cell:
                cells.append("–")
                continue
            hits, total = cell[key]
            cells.append(format_rate(hits / total, wilson(hits, total)))
        lines.append(f"| {variant} | {attack} | {n} | " + " | ".join(cells) + f" | {', '.join(cell['seeds'])} |")
    return "\n".join(lines) + "\n"


def plot(runs: Path, path: Path) -> None:
    """Harmful ASR (pooled over seeds) against N, one line per variant and attack, Wilson intervals as bars."""
    from eu.eval.report import figure, save_figure

    lines: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
    for (variant, attack, n), cell in sorted(rows(runs).items()):
        if "harmful_asr" in cell:
            lines[(variant, attack)].append((n, *cell["harmful_asr"]))
    fig, ax = figure()
    for i, ((variant, attack), points) in enumerate(sorted(lines.items())):
        ns, rates = [p[0] for p in points], [hits / total for _, hits, total in points]
        bounds = [wilson(hits, total) for _, hits, total in points]
        below = [max(0.0, r - lo) for r, (lo, _) in zip(rates, bounds, strict=True)]
        above = [max(0.0, hi - r) for r, (_, hi) in zip(rates, bounds, strict=True)]
        style = "o-" if attack == "benign" else "s--"
        ax.errorbar(
            ns, rates, yerr=[below, above], fmt=style, color=f"C{i % 10}", capsize=3, label=f"{variant}, {attack}"
        )
    ax.set_xlabel("fine-tuning pairs N (relearning attack)")
    ax.set_ylabel("harmful ASR after the attack (95% interval)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if lines:
        ax.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="The relearning-resistance table (and plot) of a runs folder.")
    parser.add_argument("runs", type=Path, help="the folder scripts/relearn_resistance.sh wrote")
    parser.add_argument("--plot", type=Path, default=None, help="also draw harmful ASR against N into this PNG")
    args = parser.parse_args()
    if not args.runs.is_dir():
        sys.exit(f"{args.runs}: not a folder; give the RUNS folder scripts/relearn_resistance.sh wrote")
    print(table(args.runs), end="")
    if args.plot is not None:
        plot(args.runs, args.plot)
