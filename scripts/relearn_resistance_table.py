"""The table of docs/tamper_resistance.md from the runs of scripts/relearn_resistance.sh.

Usage: ``python scripts/relearn_resistance_table.py RUNS``. Reads every
``RUNS/seedS/VARIANT/attack_{benign,harmful}/relearn.json`` and the fit's RetainOnlyFT comparison
(``RUNS/seedS/VARIANT/tensorboard/version_0/baseline.json``), and prints one Markdown row per
variant, attack and N: harmful and jailbreak ASR and actionable rate, domain accuracy, each with its
95% Wilson interval (pooled over seeds), and the seeds it pools.
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


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python scripts/relearn_resistance_table.py RUNS (written by scripts/relearn_resistance.sh)")
    print(table(Path(sys.argv[1])), end="")
