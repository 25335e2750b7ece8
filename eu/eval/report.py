"""Write evaluation results: ``results.json``, ``results.md`` and ``results.png``, atomically,
and each model's results as it finishes (``models/NAME.json``, with the arguments they need);
the before/after report of a training run's evaluations."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from eu.io import atomic_path, write_text_atomic

RUN_INTERNALS = re.compile(r"checkpoints|tensorboard|lightning_logs|version_\d+")
"""Folders a run folder holds its checkpoints in (``checkpoints/last.ckpt``,
``tensorboard/version_0/best.ckpt``): a checkpoint is named by the folder above them."""
CAPABILITY_SUITE = "mmlu"
"""The general-capability suite: an accuracy, but not the domain's."""


def unique_names(candidates: dict[str, list[str]]) -> dict[str, str]:
    """A name per key: its first candidate; keys sharing a name move on to their next candidates
    until every name is unique (keys that still share their last candidate are named by themselves)."""
    level = dict.fromkeys(candidates, 0)
    while True:
        names = {key: c[min(level[key], len(c) - 1)] if c else key for key, c in candidates.items()}
        counts = Counter(names.values())
        clash = [key for key in candidates if counts[names[key]] > 1 and level[key] < len(candidates[key]) - 1]
        if not clash:
            return {key: key if counts[name] > 1 else name for key, name in names.items()}
        for key in clash:
            level[key] += 1


def path_suffix(path: str, parts: int, stem: bool = False) -> str:
    """The last ``parts`` components of ``path`` joined by ``/`` (the file's extension dropped if ``stem``)."""
    tail = list(Path(path).parts[-parts:])
    if not tail:
        return ""
    if stem:
        tail[-1] = Path(tail[-1]).stem
    return Path(*tail).as_posix()


def model_names(models: list[str]) -> dict[str, str]:
    """How users name each model: an eu checkpoint by its run folder
    (``runs/quickstart/checkpoints/last.ckpt`` → ``quickstart``), a folder by its name, an
    alias or hub id as given; models that would share a name get longer path suffixes."""
    candidates = {}
    for model in models:
        path = Path(model)
        if path.suffix == ".ckpt":
            depth = 2  # the file and its folder, then past the run folder's internals
            while depth < len(path.parts) and RUN_INTERNALS.fullmatch(path.parts[-depth]):
                depth += 1
        elif path.is_dir():
            depth = 1
        else:
            candidates[model] = [model]
            continue
        depth = min(depth, len(path.parts))
        longer = [path_suffix(model, n) for n in range(depth, len(path.parts))]
        candidates[model] = [path.parts[-depth], *longer, model]
    return unique_names(candidates)


def summary_row(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Headline numbers of one model: ASR (and refusal rate) per harmful suite, accuracy per
    domain suite (and per held-out share, ``domain_accuracy_family``…), entropy fraction for the
    off-domain suite."""
    row = {}
    for name, res in results.items():
        key = name.split(":")[0] if name in ("harmful", "jailbreak", "domain") else name
        if "entropy_frac" in res:
            row[f"{key}_entropy_frac"] = res["entropy_frac"]
            continue
        row[f"{key}_{'asr' if 'asr' in res else 'accuracy'}"] = res.get("asr", res.get("accuracy"))
        for group, value in res.get("by_holdout", {}).items():  # held out by family, phrasing, operands…
            row[f"{key}_accuracy_{group}"] = value
        if "refusal_rate" in res:
            row[f"{key}_refusal_rate"] = res["refusal_rate"]
        for rate in ("actionable_rate", "answer_rate"):
            if rate in res:
                row[f"{key}_{rate}"] = res[rate]
    return row


HOLDOUT_KEYS = ("holdout", "phrasing")
"""Item fields that say how a domain item is held out (the diverse sets' ``holdout``: item,
phrasing, operands, family; ``math-basic``'s ``phrasing``: seen or held_out)."""


def holdout_key(records: list[dict[str, Any]]) -> str | None:
    """The first of :data:`HOLDOUT_KEYS` whose values tell the records apart, else ``None``."""
    return next((key for key in HOLDOUT_KEYS if len({r.get(key) for r in records}) > 1), None)


def accuracy_outcomes(results: dict[str, dict[str, Any]]) -> dict[str, list[bool]]:
    """Per-item correctness behind each accuracy of :func:`summary_row`, under the same keys
    (``domain_accuracy``, ``domain_accuracy_held_out``, ``mmlu_accuracy``…), in item order."""
    out: dict[str, list[bool]] = {}
    for name, res in results.items():
        records = sorted(res.get("records", []), key=lambda r: r.get("index", 0))
        if not records or "correct" not in records[0]:
            continue
        key = name.split(":")[0] if name in ("harmful", "jailbreak", "domain") else name
        out[f"{key}_accuracy"] = [bool(r["correct"]) for r in records]
        group = holdout_key(records)
        for value in sorted({str(r.get(group)) for r in records}) if group else ():
            out[f"{key}_accuracy_{value}"] = [bool(r["correct"]) for r in records if str(r.get(group)) == value]
    return out


RATE_FIELDS = {
    "asr": ("label", "unsafe"),
    "refusal_rate": ("label", "refusal"),
    "actionable_rate": ("actionable", True),
    "accuracy": ("correct", True),
    "answer_rate": ("answered", True),
}
"""Each rate a suite reports, as the record field and the value that counts as a hit."""
PARTIAL_RATES = ("answer_rate",)
"""Rates over the records that carry their field only (a domain suite's generated answers)."""


def rate_counts(results: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    """``[hits, n]`` behind each rate of :func:`summary_row`, under the same keys (``harmful_asr``,
    ``domain_accuracy``, ``domain_accuracy_held_out``…), counted from the records."""
    out: dict[str, list[int]] = {}
    for name, res in results.items():
        records = res.get("records", [])
        key = name.split(":")[0] if name in ("harmful", "jailbreak", "domain") else name
        for rate, (field, hit) in RATE_FIELDS.items():
            # a rate counts the records that carry its field: all of them, or for the answer rate the
            # generated answers (multiple-choice items are scored without generating)
            have = [r for r in records if field in r]
            if have and (len(have) == len(records) or rate in PARTIAL_RATES):
                out[f"{key}_{rate}"] = [sum(r[field] == hit for r in have), len(have)]
        group = holdout_key(records) if records and "correct" in records[0] else None
        for value in sorted({str(r.get(group)) for r in records}) if group else ():
            hits = [bool(r["correct"]) for r in records if str(r.get(group)) == value]
            out[f"{key}_accuracy_{value}"] = [sum(hits), len(hits)]
    return out


def summary_intervals(results: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """The 95% Wilson interval of each rate in :func:`summary_row`, under the same keys (rates
    only: entropy fractions have none)."""
    from eu.eval.stats import wilson

    return {key: list(wilson(hits, n)) for key, (hits, n) in rate_counts(results).items()}


def metric_intervals(results: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """:func:`summary_intervals` under the logged metric names (``eval/domain_acc``, ``eval/harmful_asr``…)."""
    return {f"eval/{k.replace('_accuracy', '_acc')}": v for k, v in summary_intervals(results).items()}


def before_after(first: dict[str, Any], last: dict[str, Any], examples: dict[str, int]) -> str:
    """Every metric at two evaluations (``{"step", "metrics", "suites"}``) as a text table,
    then the first ``examples[suite]`` answers of each suite, before -> after."""
    names = list(last["metrics"])
    width = max((len(n) for n in names), default=6)
    spans = [metric_intervals(entry.get("suites", {})) for entry in (first, last)]
    lines = [f"eu: {'metric':<{width}}  {'step ' + str(first['step']):>18}  {'step ' + str(last['step']):>18}"]
    for name in names:
        cells = []
        for entry, span in zip((first, last), spans):
            value = entry["metrics"].get(name)
            text = "-" if value is None else f"{value:.3f}"
            if value is not None and name in span:
                text += f" [{span[name][0]:.2f}, {span[name][1]:.2f}]"
            cells.append(f"{text:>18}")
        lines.append(f"eu: {name:<{width}}  " + "  ".join(cells))
    lines.append("eu: rates with their 95% Wilson interval; the split and item counts are on the lines above")
    for suite, res in last["suites"].items():
        pairs = list(zip(first["suites"].get(suite, {}).get("records", []), res["records"]))[: examples.get(suite, 0)]
        if pairs:
            lines.append(f"eu: {suite} answers, before -> after:")
        for a, b in pairs:
            lines.append(
                f"  Q: {a['prompt'][:100]}\n    before: {a['response'][:100]!r}\n    after:  {b['response'][:100]!r}"
            )
    return "\n".join(lines)


def markdown_table(models: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The results table: one row per model (named by :func:`model_names`), one column per headline number."""
    from eu.eval.stats import format_rate

    names = model_names(list(models))
    rows = {names[m]: summary_row(r) for m, r in models.items()}
    intervals = {names[m]: summary_intervals(r) for m, r in models.items()}
    columns = sorted({c for r in rows.values() for c in r})
    n_by_suite = {name: res["n"] for r in models.values() for name, res in r.items()}
    splits = sorted(
        {str(it.get("split")) for r in models.values() for res in r.values() for it in res.get("records", [])[:1]}
    )
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for model, row in rows.items():
        cells = [format_rate(row.get(c), intervals[model].get(c), 3) for c in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Items per suite: " + ", ".join(f"{k} {v}" for k, v in n_by_suite.items()))
    if splits and splits != ["None"]:
        lines.append("Split: " + ", ".join(s.replace("None", "a user's file") for s in splits) + ".")
    lines.append("Rates with their 95% Wilson interval in brackets.")
    return "\n".join(lines) + "\n"


def figure(ncols: int = 1) -> tuple[Any, Any]:
    """A matplotlib figure of ``ncols`` 5 × 4 inch panels, drawn off-screen; ``(fig, axes)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(5 * ncols, 4))


def save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` as a PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def plot(models: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    """ASR (mean over harmful suites) against domain accuracy, one point per model labelled by its run name."""
    fig, ax = figure()
    names = model_names(list(models))
    for model, res in models.items():
        asrs = [r["asr"] for r in res.values() if "asr" in r]
        accs = [r["accuracy"] for name, r in res.items() if "accuracy" in r and name != CAPABILITY_SUITE]
        if asrs and accs:
            x, y = sum(accs) / len(accs), sum(asrs) / len(asrs)
            ax.scatter([x], [y])
            ax.annotate(names[model][:30], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("domain accuracy (higher is better)")
    ax.set_ylabel("attack success rate (lower is better)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


SAMPLES_PER_LABEL = 3
SAMPLE_CHARS = 400


def record_label(record: dict[str, Any]) -> str:
    """What a record was scored as: the judge's label, ``correct``/``wrong``, or ``entropy``."""
    if "label" in record:
        return str(record["label"])
    if "correct" in record:
        return "correct" if record["correct"] else "wrong"
    return "entropy" if "entropy_frac" in record else "unscored"


def _quote(text: str) -> str:
    text = " ".join(str(text).split())
    return (text[:SAMPLE_CHARS] + " …") if len(text) > SAMPLE_CHARS else text


def samples_markdown(
    models: dict[str, dict[str, dict[str, Any]]], per_label: int = SAMPLES_PER_LABEL, seed: int = 0
) -> str:
    """``samples.md``: for each model and suite, up to ``per_label`` responses of every label it
    was given, drawn with a fixed seed, so that a reader can check the scoring in a minute."""
    import random

    names = model_names(list(models))
    lines = [
        "# Samples",
        "",
        f"Up to {per_label} responses per label, model and suite, drawn with seed {seed}; "
        f"prompts and responses cut at {SAMPLE_CHARS} characters.",
    ]
    for model, results in models.items():
        lines += ["", f"## {names[model]}"]
        for suite, res in results.items():
            by_label: dict[str, list[dict[str, Any]]] = {}
            for record in res.get("records", []):
                by_label.setdefault(record_label(record), []).append(record)
            counts = ", ".join(f"{label} {len(rs)}" for label, rs in sorted(by_label.items()))
            lines += ["", f"### {suite} ({counts})"]
            for label, records in sorted(by_label.items()):
                picked = random.Random(f"{seed}:{model}:{suite}:{label}").sample(records, min(per_label, len(records)))
                for r in sorted(picked, key=lambda r: r.get("index", 0)):
                    extra = f" (reference: {_quote(r['answer'])})" if "answer" in r and "label" not in r else ""
                    lines += [
                        "",
                        f"- **{label}**{extra}, item {r.get('index', '?')}",
                        f"  - prompt: {_quote(r['prompt'])}",
                        f"  - response: {_quote(r.get('response', ''))}",
                    ]
    return "\n".join(lines) + "\n"


def write_results(out_dir: str | Path, models: dict[str, dict[str, dict[str, Any]]]) -> Path:
    """Write the result files for ``{model: {suite: result}}`` into ``out_dir``: ``results.json``,
    ``results.md``, ``results.png`` and ``samples.md``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps(models, indent=2, ensure_ascii=False))
    write_text_atomic(out / "results.md", markdown_table(models))
    write_text_atomic(out / "samples.md", samples_markdown(models))
    plot(models, out / "results.png")
    return out


def model_result_path(out_dir: str | Path, model: str) -> Path:
    """Where the results of ``model`` are saved inside an evaluation folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_")[-60:]
    return Path(out_dir) / "models" / f"{slug}-{hashlib.sha256(model.encode()).hexdigest()[:8]}.json"


def save_model_result(out_dir: str | Path, model: str, arguments: dict[str, Any], results: dict[str, Any]) -> Path:
    """Save one model's results with the ``arguments`` they were computed under (atomically)."""
    path = model_result_path(out_dir, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"model": model, "arguments": arguments, "results": results}
    write_text_atomic(path, json.dumps(record, indent=2, ensure_ascii=False))
    return path


def read_model_result(out_dir: str | Path, model: str) -> dict[str, Any] | None:
    """The record saved for ``model`` in ``out_dir`` (``model``, ``arguments``, ``results``), or ``None``."""
    try:
        saved = json.loads(model_result_path(out_dir, model).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and saved.get("model") == model else None
