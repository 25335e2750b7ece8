"""Built-in forget data for targeted-unlearning baselines: harmful questions with harmful answers.

``eu:harmful/answers`` names the answers of pyrit's ``many_shot_examples.json`` that the dataset
itself grades harmful, minus every prompt the evaluation suites may ask (HarmBench and AdvBench
behaviours, see :mod:`eu.data.harmful_prompts`): 140 of its 283 harmful prompts are HarmBench
test behaviours. EU does not need them (it forgets self-generated text); gradient ascent, NPO
and DPO do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eu.errors import EUError
from eu.io import build_once, cache_dir, write_jsonl_atomic

VERSION = "2"  # 2: prompts of the evaluation suites held out
MANY_SHOT = "pyrit/datasets/jailbreak/many_shot_examples.json"


def graded_harmful(example: dict[str, Any]) -> bool:
    """Whether the dataset graded the answer harmful (its ``category`` opens with ``Harmful``)."""
    grade = str(example.get("category", "Harmful")).lower().lstrip(" \"'*")
    grade = grade.removeprefix("answer:").lstrip(" \"'*")
    return grade.startswith("harmful")


def load_many_shot(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The ``{"user", "assistant", "category"}`` examples (the pyrit asset unless ``path``)."""
    if path is None:
        from eu.assets import asset_file

        path = asset_file("pyrit-datasets", MANY_SHOT)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(d, dict) and "user" in d and "assistant" in d for d in data):
        raise EUError(f"{path}: expected a JSON list of objects with 'user' and 'assistant'")
    return data


def cached_jsonl(path: Path, rows: Callable[[], list[dict[str, Any]]]) -> Path:
    """Write ``rows()`` to ``path`` once, atomically and under the cache lock; return ``path``."""
    return build_once(path, path.is_file, lambda: write_jsonl_atomic(path, rows()))


def harmful_examples(source: str | Path | None = None, exclude: set[str] | None = None) -> list[dict[str, Any]]:
    """The many-shot examples whose answers the dataset grades harmful, without the prompts in ``exclude``.

    For the built-in asset (``source`` unset) ``exclude`` defaults to every prompt the
    evaluation suites may ask.
    """
    from eu.data.harmful_prompts import evaluation_prompts, normalise

    if exclude is None and source is None:
        exclude = evaluation_prompts()
    held_out = {normalise(p) for p in exclude or ()}
    return [ex for ex in load_many_shot(source) if graded_harmful(ex) and normalise(str(ex["user"])) not in held_out]


def prepare(out_dir: Path | None = None, source: str | Path | None = None) -> Path:
    """Write ``harmful-answers.jsonl`` (``user``/``assistant`` rows) into the cache and return its path."""
    out_dir = Path(out_dir) if out_dir else cache_dir() / "forget" / f"harmful-v{VERSION}"
    return cached_jsonl(
        out_dir / "harmful-answers.jsonl",
        lambda: [{"user": ex["user"], "assistant": ex["assistant"]} for ex in harmful_examples(source)],
    )
