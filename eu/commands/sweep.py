"""``eu sweep -c configs/sweep/NAME.yaml``: a small grid over one recipe's settings, chosen on
validation and reported on test.

Every grid point is the base recipe with one value per grid key (``eu fit --KEY=VALUE``; a key
with a single value sets every point and is left out of run names and columns); beside
each, RetainOnlyFT is trained with the same training settings (the point's ``trainer.*``,
``model.optimizer.*``, ``model.lr_schedule``, ``data.retain.*`` and ``seed_everything`` values;
the forget-side keys do not change RetainOnlyFT, so points that differ only there share one).

1. Every point and its RetainOnlyFT are trained with the first seed and scored on the
   **validation** split.
2. One point is chosen by a stated rule (:func:`choose`): the lowest validation ASR among the
   points whose domain accuracy is at least ``claim.min_ratio`` × their RetainOnlyFT's, else the
   highest ratio.
3. The chosen point and its RetainOnlyFT are trained with every seed and scored on the **test**
   split: mean ± sd over seeds, 95% intervals, and the claim's verdict from the intervals.

Training, evaluation and resuming are ``eu compare``'s (:mod:`eu.commands.compare`), without the
relearning attack. ``OUT/sweep.md`` and ``sweep.json`` hold both tables.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from eu.commands.compare import Claim, Method, Suites
from eu.commands.grid import choose, grid_args, grid_points, point_name, varying_keys
from eu.errors import EUError

RETAIN_ONLY = "RetainOnly"
SHARED_WITH_RETAIN_ONLY = ("trainer.", "model.optimizer.", "model.lr_schedule", "data.retain.", "seed_everything")
"""Grid keys that change RetainOnlyFT too: how long, how fast and on what it trains."""


def retain_only_values(values: dict[str, Any]) -> dict[str, Any]:
    """The part of a grid point that RetainOnlyFT shares (:data:`SHARED_WITH_RETAIN_ONLY`)."""
    return {k: v for k, v in values.items() if k.startswith(SHARED_WITH_RETAIN_ONLY)}


def retain_only_name(values: dict[str, Any], named: Collection[str] | None = None) -> str:
    """The run name of the RetainOnlyFT run that trains like the grid point ``values``.

    ``named``: the keys that may appear in the name, as for :func:`point_name`.
    """
    shared = [key for key in retain_only_values(values) if named is None or key in named]
    return f"{RETAIN_ONLY}_{point_name(values, shared)}" if shared else RETAIN_ONLY


def sweep(
    base: list[str],
    grid: dict[str, list[Any]],
    retain_only: list[str] | None = None,
    out: str = "sweep",
    seeds: list[int] | None = None,
    seed: int | None = None,
    evaluation: Suites | None = None,
    claim: Claim | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Choose a grid point on validation, report it on test beside RetainOnlyFT; writes OUT/sweep.md and sweep.json.

    Args:
        base: the recipe and overlays every point starts from, in ``-c`` order.
        grid: ``{eu fit option: [values]}``, e.g. ``{"model.objective.init_args.forget_weight": [0.4, 0.8]}``.
        retain_only: the overlays that make the base RetainOnlyFT; default ``configs/methods/retain_only.yaml``.
        out: the sweep's folder (``eu compare``'s layout, plus sweep.md and sweep.json).
        seeds: training seeds: the first trains every point, all of them train the chosen one
            (default 42, 43, 44).
        seed: the older single-seed form, read as ``seeds: [seed]``.
        evaluation: the suites every model is scored on, as ``eu compare`` (its split is set by the sweep).
        claim: what the chosen point must reach on test, and the ratio the choice asks for.
        device: ``auto``, ``cpu`` or ``cuda`` for evaluation.
    """
    from eu.commands.compare import compare, seeds_of
    from eu.io import write_text_atomic

    claim = claim or Claim()
    seeds = seeds_of(seeds, seed)
    evaluation = evaluation or Suites()
    retain_only = retain_only if retain_only is not None else ["configs/methods/retain_only.yaml"]
    points, named = grid_points(grid), varying_keys(grid)
    names = [point_name(p, named) for p in points]
    if len(set(names)) < len(names):
        raise EUError(f"grid: two points get the same run name ({names}); make the values differ in their text")
    baselines: dict[str, dict[str, Any]] = {}
    for values in points:
        baselines.setdefault(retain_only_name(values, named), retain_only_values(values))
    methods = {name: Method(name, [], grid_args(values)) for name, values in zip(names, points, strict=True)}
    methods |= {name: Method(name, list(retain_only), grid_args(shared)) for name, shared in baselines.items()}
    validation = replace(evaluation, split="validation")
    chosen_on = compare(
        base, list(methods.values()), out=out, seeds=seeds[:1], evaluation=validation, attack=False,
        device=device, report="results-validation",
    )  # fmt: skip
    rows = []
    for name, values in zip(names, points, strict=True):
        reference = retain_only_name(values, named)
        rows.append(_row(name, values, chosen_on["methods"][name], chosen_on["methods"][reference], reference))
    pick = choose(rows, claim.min_ratio)
    reference = rows[pick]["retain_only"]
    tested = compare(
        base, [methods[rows[pick]["name"]], methods[reference]], out=out, seeds=seeds,
        evaluation=replace(evaluation, split="test"), attack=False, claim=claim, relative_to=reference, device=device,
    )  # fmt: skip
    report = {
        "base": base,
        "grid": grid,
        "seeds": seeds,
        "claim": asdict(claim),
        "validation": rows,
        "chosen": rows[pick]["name"],
        "test": {name: tested["methods"][name] for name in (rows[pick]["name"], reference)},
        "compare": {"validation": "results-validation.json", "test": "results.json"},
    }
    folder = Path(out)
    write_text_atomic(folder / "sweep.json", json.dumps(report, indent=2, ensure_ascii=False))
    write_text_atomic(folder / "sweep.md", sweep_markdown(report))
    print(sweep_markdown(report))
    print(f"eu: wrote {folder / 'sweep.md'} and sweep.json", file=sys.stderr)
    return report


def _row(
    name: str, values: dict[str, Any], method: dict[str, Any], baseline: dict[str, Any], reference: str
) -> dict[str, Any]:
    metrics, base_acc = method["metrics"], baseline["metrics"].get("domain_accuracy")
    acc = metrics.get("domain_accuracy")
    fit = [method.get("fit_seconds"), baseline.get("fit_seconds")]
    return {
        "name": name,
        "values": values,
        "harmful_asr": metrics.get("harmful_asr"),
        "jailbreak_asr": metrics.get("jailbreak_asr"),
        "domain_accuracy": acc,
        "retain_only": reference,
        "retain_only_accuracy": base_acc,
        "ratio": acc / base_acc if acc is not None and base_acc else None,
        "fit_seconds": fit[0][0] if fit[0] else None,
        "retain_only_fit_seconds": fit[1][0] if fit[1] else None,
    }


def sweep_markdown(report: dict[str, Any]) -> str:
    """``sweep.md``: every point on validation (the chosen one marked), then the chosen point and
    its RetainOnlyFT on test over every seed, with intervals and the claim's verdict."""
    from eu.eval.comparison import cell, results_table

    def number(value: Any, form: str = ".3f") -> str:
        return "–" if value is None else format(value, form)

    named = varying_keys(report["grid"])
    keys = [key for key in report["grid"] if key in named]
    shared = {key: values[0] for key, values in report["grid"].items() if key not in named}
    claim, seeds = report["claim"], report["seeds"]
    head = [k.rsplit(".", 1)[-1] for k in keys]
    head += ["harmful ASR", "jailbreak ASR", "domain acc", "RetainOnly acc", "× RetainOnly", "fit min", "chosen"]
    lines = [
        "# Sweep",
        "",
        f"## Validation: every point, seed {seeds[0]}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---:|" * len(head),
    ]
    for row in report["validation"]:
        cells = [str(row["values"][k]) for k in keys]
        cells += [number(row[k]) for k in ("harmful_asr", "jailbreak_asr", "domain_accuracy", "retain_only_accuracy")]
        minutes = row["fit_seconds"] / 60 if row["fit_seconds"] is not None else None
        chosen = "**chosen**" if row["name"] == report["chosen"] else ""
        cells += [f"{number(row['ratio'], '.2f')}×", number(minutes, ".1f"), chosen]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Rule: the lowest worst-case ASR (the higher of harmful and jailbreak) among the points whose "
        f"domain accuracy is at least {claim['min_ratio']}× their RetainOnlyFT's; when none is, the highest "
        "ratio. Chosen on validation only.",
    ]
    if shared:
        lines.append("Every point: " + ", ".join(f"{key} = {value}" for key, value in shared.items()) + ".")
    test = report["test"]
    reference = next(name for name in test if name != report["chosen"])
    lines += [
        "",
        f"## Test: {report['chosen']} beside {reference}, seeds {', '.join(map(str, seeds))}",
        "",
        results_table(test, reference),
        f"Claim: harmful and jailbreak ASR ≤ {claim['max_asr']} and domain accuracy ≥ {claim['min_ratio']}× "
        f"RetainOnlyFT's, judged on the 95% intervals: **{test[report['chosen']].get('claim', 'undecided')}**. "
        "Each number: mean ± sd over seeds [95% interval]; the ratio's interval is a paired bootstrap over items.",
    ]
    chosen = test[report["chosen"]]
    held = sorted(k for k in chosen["metrics"] if k.startswith("domain_accuracy_"))
    if held:
        lines += ["", "Domain accuracy per held-out share (test): " + "; ".join(
            f"{k.removeprefix('domain_accuracy_')} {cell(chosen['metrics'][k], None, chosen['intervals'].get(k), 2)}"
            f" vs {cell(test[reference]['metrics'].get(k), None, test[reference]['intervals'].get(k), 2)}"
            for k in held
        ) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
