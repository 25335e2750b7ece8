"""Tuning every method of ``eu compare`` with the same budget, on the validation split.

A method with a ``grid`` (``{eu fit option: [values]}``, e.g. learning rate × steps) is trained at
every point with the first training seed in ``OUT/tune/seedS/NAME/POINT``; a method without one is
trained once, in its final folder ``OUT/runs/seedS/NAME`` (so a later stage finds it, and the final
run reuses it). Every tuning model and the reference method are scored on the **validation**
split; then, per method, one point is chosen by a stated rule (:func:`choose_points`) and the
comparison trains that point with every seed and reports it on the test split. Nothing is chosen
on the items it is reported on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from eu.commands.grid import choose, grid_args, grid_points, point_name, varying_keys
from eu.errors import EUError

TUNE = "tune"
"""The tuning runs' folder under the comparison's ``OUT``."""


def point_metrics(result: dict[str, Any]) -> dict[str, float | None]:
    """Validation ASRs and domain accuracy of one model's ``eu evaluate`` result."""
    from eu.eval.report import summary_row

    row = summary_row(result)
    return {k: row.get(k) for k in ("harmful_asr", "jailbreak_asr", "domain_accuracy")}


def choose_points(
    scores: dict[str, list[dict[str, Any]]], reference: str | None, min_ratio: float
) -> tuple[dict[str, int], float | None]:
    """The chosen point's index per method, and the reference's validation domain accuracy.

    The rule: the reference method (``relative_to``) takes its point of highest domain accuracy
    (ties: grid order). Every other method takes, among its points whose domain accuracy is at least
    ``min_ratio`` × the reference's, the one of lowest worst ASR (the higher of harmful and jailbreak;
    ties: higher accuracy, then grid order); when none keeps that much, its point of highest domain
    accuracy (:func:`eu.commands.grid.choose`). Without a reference: the lowest worst ASR."""
    chosen: dict[str, int] = {}
    reference_accuracy = None
    if reference is not None and reference in scores:
        rows = scores[reference]
        chosen[reference] = max(range(len(rows)), key=lambda i: (rows[i]["domain_accuracy"] or 0.0, -i))
        reference_accuracy = rows[chosen[reference]]["domain_accuracy"]
    for name, rows in scores.items():
        if name == reference:
            continue
        for row in rows:
            acc = row["domain_accuracy"]
            row["ratio"] = acc / reference_accuracy if acc is not None and reference_accuracy else None
        chosen[name] = choose(rows, min_ratio if reference_accuracy else float("inf"))
    return chosen, reference_accuracy


def check_grids(methods: list[Any]) -> None:
    """Refuse a grid where it cannot be tuned: on a method that is not evaluated, or with bad keys."""
    for m in methods:
        if m.grid and not m.evaluate:
            raise EUError(
                f"methods: {m.name} has a grid but evaluate: false; a stage that is not evaluated cannot be tuned "
                "(tune the method that uses it)"
            )
        if m.grid:
            grid_points(m.grid)  # refuses an empty list or a dashed key


def tune(
    folder: Path,
    base: list[str],
    methods: list[Any],
    seed: int,
    common: list[str],
    evaluation: Any,
    device: str,
    reference: str | None,
    min_ratio: float,
) -> tuple[list[Any], dict[str, Any]]:
    """Train and score every grid point with ``seed`` on validation; the methods with their chosen
    point's arguments added, and the tuning report (every point's validation numbers, the chosen one)."""
    from eu.commands.compare import _fit, evaluate_models

    if not any(m.grid for m in methods):
        return methods, {}
    runs = folder / "runs" / f"seed{seed}"
    models: dict[str, list[tuple[dict[str, Any], str]]] = {}
    for m in methods:
        fixed = [f"--seed_everything={seed}", *common, *m.args]
        if not m.grid:
            fit = _fit(runs, m.name, [*base, *m.configs], fixed)
            if m.name == reference:
                models[m.name] = [({}, str(fit["checkpoint"]))]
            continue
        named = varying_keys(m.grid)
        for values in grid_points(m.grid):
            # {runs} still names the seed's final folder, where earlier stages are
            args = [a.replace("{runs}", str(runs)) for a in fixed] + grid_args(values)
            fit = _fit(folder / TUNE / f"seed{seed}" / m.name, point_name(values, named), [*base, *m.configs], args)
            models.setdefault(m.name, []).append((values, str(fit["checkpoint"])))
    validation = replace(evaluation, split="validation")
    results = evaluate_models(folder, [path for points in models.values() for _, path in points], validation, device)
    scores = {
        name: [{"values": values, "model": path, **point_metrics(results[path])} for values, path in points]
        for name, points in models.items()
    }
    chosen, reference_accuracy = choose_points(scores, reference, min_ratio)
    report = {"seed": seed, "split": "validation", "reference_accuracy": reference_accuracy, "methods": {}}
    for name, rows in scores.items():
        for i, row in enumerate(rows):
            row["chosen"] = i == chosen[name]
        report["methods"][name] = {"points": rows, "chosen": rows[chosen[name]]["values"]}
    tuned = [
        replace(m, args=[*m.args, *grid_args(report["methods"][m.name]["chosen"])]) if m.grid else m for m in methods
    ]
    return tuned, report


def tuning_markdown(report: dict[str, Any], min_ratio: float, reference: str | None) -> str:
    """The tuning table of ``results.md``: every point's validation numbers, the chosen one in bold."""
    if not report:
        return ""
    rule = (
        f"the reference {reference} takes its best domain accuracy; every other method the lowest worst ASR among "
        f"its points with domain accuracy ≥ {min_ratio}× the reference's ({report['reference_accuracy']:.3f}), "
        "else its best domain accuracy"
        if reference and report.get("reference_accuracy")
        else "the lowest worst ASR (no reference method)"
    )
    lines = [
        f"Tuning on the validation split, training seed {report['seed']}; the chosen point (bold) is then trained "
        f"with every seed and reported above on the test split. Rule: {rule}.",
        "",
        "| method | point | harmful ASR | jailbreak ASR | domain accuracy |",
        "|---|---|---:|---:|---:|",
    ]
    for name, method in report["methods"].items():
        for row in method["points"]:
            point = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in row["values"].items()) or "(its config)"
            cells = [row.get(k) for k in ("harmful_asr", "jailbreak_asr", "domain_accuracy")]
            text = [point, *("–" if c is None else f"{c:.3f}" for c in cells)]
            if row["chosen"]:
                text = [f"**{t}**" for t in text]
            lines.append(f"| {name} | " + " | ".join(text) + " |")
    return "\n".join(lines) + "\n"
