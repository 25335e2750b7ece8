"""Self-generated forget corpus: the model writes its own user turns and answers them.

The recipe of Exclusive Unlearning (the authors' ``sampling.py``): render an empty user message
with the chat template (their empty system prompt renders no system turn), let the model
continue the user turn (64 new tokens), then render that turn with the generation prompt and
let the model answer (up to 128 new tokens); temperature 2.0, top-k 100, seed 42, 40,000 pairs.
Rows are written in chunks, each chunk atomically and seeded by its number, so an interrupted
run resumes without duplicating or losing rows. The settings are recorded beside the chunks
(``OUT.parts/settings.json``) and beside the finished file (``OUT.settings.json``, with its
sha256): a resume or rerun with other settings is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from eu.errors import EUError
from eu.generation import generate_from_ids
from eu.io import atomic_path, read_jsonl, write_jsonl_atomic, write_text_atomic
from eu.progress import Progress
from eu.settings import setting_changes

PARTS_FREE = ("num_pairs",)
"""Settings a resume may change: chunks do not depend on how many rows are wanted."""
SENTINEL = "\u2063EU-USER-SLOT\u2063"


@dataclass
class SampleSettings:
    """How the forget corpus is sampled (defaults are the paper's recipe)."""

    num_pairs: int = 40_000
    """Rows (user, assistant pairs) to produce: the paper's 400 x 100. CPU recipes use far
    fewer (the quickstart samples 128)."""
    batch_size: int = 32
    """Rows generated together; also the chunk written at once."""
    user_tokens: int = 64
    """New tokens for the self-written user turn."""
    answer_tokens: int = 128
    """Maximum new tokens of the answer."""
    temperature: float = 2.0
    """Sampling temperature of both turns."""
    top_k: int = 100
    """Top-k cut-off of both turns."""
    seed: int = 42
    """Base seed; chunk ``c`` draws from a seed derived from it and ``c``."""
    system: str | None = None
    """System turn of the sampled (and trained) conversations. ``None``, as the reference: no
    system turn, so a template's default system prompt (SmolLM2's) appears at both stages."""
    draw_among_top_k: bool = False
    """Draw each token among the top-k candidates only (:class:`eu.generation.TopKDraw`): the same
    distribution, faster sampling (``benchmarks/sampling.py`` measures it), another random
    stream than the default (``transformers``' draw over the whole vocabulary), so another corpus
    for the same seed."""


def check_sample_settings(settings: SampleSettings, prefix: str = "data.sample.") -> None:
    """Raise a clear ``EUError`` naming the option (``prefix`` + field) for a setting sampling cannot use."""
    for key in ("num_pairs", "batch_size", "user_tokens", "answer_tokens"):
        if getattr(settings, key) < 1:
            raise EUError(f"{prefix}{key} must be at least 1, got {getattr(settings, key)}")
    if not settings.temperature > 0:
        raise EUError(f"{prefix}temperature must be > 0, got {settings.temperature} (the recipe uses 2.0)")
    if settings.top_k < 0:
        raise EUError(f"{prefix}top_k must be >= 0 (0 turns top-k off), got {settings.top_k}")
    if settings.draw_among_top_k and settings.top_k < 1:
        raise EUError(
            f"{prefix}draw_among_top_k needs {prefix}top_k >= 1 (the candidates it draws among), got {settings.top_k}"
        )


def settings_record(settings: SampleSettings) -> dict[str, Any]:
    """The settings as a corpus records them and is keyed by; ``draw_among_top_k`` only when on, so
    corpora sampled before the option existed keep their keys and sidecars."""
    record = asdict(settings)
    if not record["draw_among_top_k"]:
        del record["draw_among_top_k"]
    return record


def sampling_system(tokenizer: Any, system: str | None) -> str | None:
    """The system turn to sample with; a clear error when the template refuses one (Gemma-2 does)."""
    if system is None:
        return None
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": "x"}]
    try:
        tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    except Exception as err:  # jinja's TemplateError, or whatever the template's raise_exception raises
        raise EUError(
            f"data.sample.system={system!r}: the chat template refuses a system turn ({err}); leave it unset"
        ) from None
    return system


def user_turn_prefix(tokenizer: Any, system: str | None = "") -> list[int]:
    """Token ids of the conversation start (``system`` turn, if any) and an open user turn for the model to write."""
    msgs = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": SENTINEL}
    ]
    text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False)
    if SENTINEL not in text:
        raise EUError("the chat template drops the user message; cannot self-generate a forget corpus")
    prefix = text[: text.index(SENTINEL)]
    return tokenizer(prefix, add_special_tokens=False)["input_ids"]


def sample_chunk(model: Any, tokenizer: Any, settings: SampleSettings, chunk: int, rows: int) -> list[dict[str, Any]]:
    """Generate ``rows`` pairs; the chunk number seeds the sampler so results do not depend on resumes.

    Each row records the system turn it was sampled with (``system``), so training renders the
    same conversation the text was sampled in.
    """
    from eu.prompts import chat_prompt_ids

    torch.manual_seed(settings.seed * 1_000_003 + chunk)
    system = sampling_system(tokenizer, settings.system)
    prefix = user_turn_prefix(tokenizer, system)
    draw = {"draw_among_top_k": settings.draw_among_top_k}
    users_ids = generate_from_ids(
        model, tokenizer, [prefix] * rows, settings.user_tokens, True, settings.temperature, settings.top_k, **draw
    )
    users = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in users_ids]
    prompts = [chat_prompt_ids(tokenizer, u, system=system) for u in users]
    answers_ids = generate_from_ids(
        model, tokenizer, prompts, settings.answer_tokens, True, settings.temperature, settings.top_k, **draw
    )
    answers = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in answers_ids]
    turn = {} if system is None else {"system": system}
    return [{**turn, "user_text": u, "assistant_text": a} for u, a in zip(users, answers, strict=True)]


def distinct_2gram_ratio(texts: list[str]) -> float:
    """Share of distinct word bigrams among all bigrams of ``texts`` (1.0 means no repetition)."""
    grams = [tuple(w[i : i + 2]) for t in texts for w in [t.split()] for i in range(len(w) - 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def check_sample_output(out: Path, settings: SampleSettings, source: dict[str, Any] | None = None) -> bool:
    """Whether ``out`` is already a corpus sampled with these settings (and ``source``); raises
    when ``out`` or ``OUT.parts`` holds something else (other settings, or files eu did not write)."""
    out = Path(out)
    record = {**settings_record(settings), **(source or {})}
    parts = out.with_name(out.name + ".parts")
    if out.exists():
        sidecar = out.with_name(out.name + ".settings.json")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            ours = out.is_file() and meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
        except (OSError, ValueError, KeyError, TypeError):
            ours = False
        if not ours:
            raise EUError(
                f"{out} exists and eu did not write it (or it changed since); refusing to overwrite it. "
                "Choose another output path, or remove the file"
            )
        diff = setting_changes(meta.get("settings", {}), record)
        if diff:
            raise EUError(
                f"{out} was sampled with other settings ({'; '.join(diff)}); choose another output path, "
                "or rerun with those settings to reuse it"
            )
        return True
    settings_file = parts / "settings.json"
    if settings_file.is_file():
        try:
            recorded = json.loads(settings_file.read_text(encoding="utf-8"))
        except ValueError:
            recorded = {}
        diff = setting_changes(recorded, record, ignore=PARTS_FREE)
        if diff:
            raise EUError(
                f"{parts} holds chunks sampled with other settings ({'; '.join(diff)}); rerun with those "
                f"settings to resume, or remove {parts} to start over"
            )
    elif parts.exists() and (not parts.is_dir() or any(parts.iterdir())):
        raise EUError(f"{parts} exists and eu did not write it; remove it or choose another output path")
    return False


def sample_corpus(
    model: Any,
    tokenizer: Any,
    out: Path,
    settings: SampleSettings,
    progress: bool = True,
    source: dict[str, Any] | None = None,
) -> Path:
    """Write ``settings.num_pairs`` distinct rows to ``out`` (JSONL), resuming from earlier chunks.

    ``source`` (e.g. the model's name and dtype) is recorded with the settings; a resume must
    match both. An existing ``out`` sampled with the same settings is returned as it is.
    """
    out = Path(out)
    if check_sample_output(out, settings, source):
        return out
    record = {**settings_record(settings), **(source or {})}
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    write_text_atomic(parts / "settings.json", json.dumps(record, sort_keys=True))
    seen: dict[tuple[str, str], dict[str, str]] = {}
    chunk = 0
    bar = Progress(settings.num_pairs, "sample forget corpus", "pairs", enabled=progress)
    while len(seen) < settings.num_pairs:
        part = parts / f"chunk-{chunk:05d}.jsonl"
        if part.is_file():
            rows = read_jsonl(part)
        else:
            rows = sample_chunk(model, tokenizer, settings, chunk, settings.batch_size)
            write_jsonl_atomic(part, rows)
        before = len(seen)
        for r in rows:
            seen.setdefault((r["user_text"], r["assistant_text"]), r)
        bar.update(min(len(seen), settings.num_pairs) - min(before, settings.num_pairs))
        chunk += 1
        if chunk > 10 * (settings.num_pairs // settings.batch_size + 1):
            raise EUError("sampling keeps producing duplicate rows; raise temperature or lower num_pairs")
    bar.close()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in list(seen.values())[: settings.num_pairs])
    # the sidecar first: a finished file always has one, and its sha256 tells eu's file from any other
    sidecar = {"settings": record, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    write_text_atomic(out.with_name(out.name + ".settings.json"), json.dumps(sidecar, indent=2, sort_keys=True))
    with atomic_path(out) as tmp:
        tmp.write_bytes(text.encode("utf-8"))
    shutil.rmtree(parts, ignore_errors=True)
    return out


def corpus_summary(path: Path, tokenizer: Any) -> dict[str, float]:
    """Count, mean token lengths of both turns and the distinct-2-gram ratio of the answers."""
    rows = read_jsonl(Path(path))
    n = max(len(rows), 1)
    return {
        "rows": len(rows),
        "mean_user_tokens": sum(len(tokenizer(r["user_text"])["input_ids"]) for r in rows) / n,
        "mean_answer_tokens": sum(len(tokenizer(r["assistant_text"])["input_ids"]) for r in rows) / n,
        "distinct_2gram_ratio": distinct_2gram_ratio([r["assistant_text"] for r in rows]),
    }
