"""Built-in forget data for targeted-unlearning baselines: harmful questions with harmful answers.

``eu:harmful/answers`` names the answers of pyrit's ``many_shot_examples.json`` that the dataset
itself grades harmful. EU does not need them (it forgets self-generated text); gradient ascent
and NPO do. The harmful and jailbreak evaluation suites use other prompts (HarmBench, AdvBench).
"""

from __future__ import annotations

import json
from pathlib import Path

from eu.io import atomic_path, cache_dir

VERSION = "1"


def prepare(out_dir: Path | None = None, source: str | Path | None = None) -> Path:
    """Write ``harmful-answers.jsonl`` (``user``/``assistant`` rows) into the cache and return its path."""
    from eu.eval.judge_check import graded_harmful, load_many_shot

    out_dir = Path(out_dir) if out_dir else cache_dir() / "forget" / f"harmful-v{VERSION}"
    path = out_dir / "harmful-answers.jsonl"
    if not path.is_file():
        rows = [
            {"user": ex["user"], "assistant": ex["assistant"]} for ex in load_many_shot(source) if graded_harmful(ex)
        ]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
