"""Built-in data for the Eraser baseline, made from sources eu already has, at run time.

Eraser as published (``eu.objectives.Eraser``) reads three streams: the harmful answers
(``eu:harmful/answers``, with fresh noise around each prompt from ``data.forget.prompt_noise``)
and two written here by the model being unlearned, each sampled once as the authors sample
theirs (temperature 0.7, top-k 20, top-p 0.95, repetition penalty 1.15) and cached per model:

- ``eu:harmful/entity-answers`` (keep): questions about the entities the harmful prompts name
  (Eraser asks GPT-3.5 for them; here a word-level heuristic picks them), answered by the model,
  refusals left out as the authors leave them out;
- ``eu:harmful/model-answers`` (align): the harmful prompts as they are, answered by the model;
  every answer is kept, refusal or not, since the term keeps what the original model says.

The refusal fine-tuning variant (``eu.objectives.EraserRefusalSFT``) reads
``eu:harmful/eraser``: the pairs of ``eu:harmful/preferences`` (a written refusal chosen over the
harmful answer), each prompt once as it is and in :data:`NOISED_COPIES` copies wrapped in random
character pieces drawn once per prompt from a seeded generator and written to a file.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
import sys
from pathlib import Path
from typing import Any

import torch

from eu.data.harmful_answers import cached_jsonl, harmful_examples
from eu.data.harmful_preferences import INSTRUCTION_VERBS, preference_rows
from eu.data.self_generated import ModelLoader, model_output_path
from eu.errors import EUError
from eu.io import build_once, cache_dir, write_jsonl_atomic
from eu.models.precision import pick_device
from eu.refusal import is_refusal

VERSION = "1"
"""Raise when the rows change, so that cached files are rebuilt."""
NOISED_COPIES = 2
"""Copies of each prompt behind random noise, beside the prompt as it is."""
PREFIX_PIECES, SUFFIX_PIECES = 50, 20
"""At most this many random pieces before and after the prompt (Eraser: up to 50 and 20 random tokens)."""
NOISE_CHARACTERS = string.ascii_letters + string.digits + string.punctuation

ENTITY_QUESTIONS = (
    "What is {e} commonly used for?",
    "Can you explain in simple terms what {e} is?",
    "Which kind of thing is {e}: a tool, a substance, a place, an idea, or something else?",
    "Where would someone usually come across {e}?",
    "What is a short piece of history about {e}?",
    "How does {e} affect everyday life?",
    "What are the main features of {e}?",
    "What is {e} similar to, and in which way?",
)
"""Questions about one entity; each entity gets one, picked by a hash of the entity."""
MAX_ENTITIES = 120
ENTITIES_PER_PROMPT = 2
ANSWER_TOKENS = 96
"""New tokens of each answer about an entity (the authors allow 1024)."""
MODEL_ANSWER_TOKENS = 128
"""New tokens of each answer to a harmful prompt (the authors allow 1024)."""
ANSWER_BATCH = 16
ANSWER_SAMPLING: dict[str, Any] = {
    "do_sample": True,
    "temperature": 0.7,
    "top_k": 20,
    "top_p": 0.95,
    "repetition_penalty": 1.15,
}
"""How the authors sample the original model's answers (generate_help_data.py, generate_algn_data.py)."""
ANSWER_SEED = 0
"""Seed of the answers' sampling."""
WORD = re.compile(r"[A-Za-z][A-Za-z.'-]*[A-Za-z]|,")
QUOTED = re.compile(r'"([^"]{3,80})"')
NOT_ENTITIES = (
    frozenset(
        (
            "about above after against also among another anyone anything around away because been before being "
            "below between both came come could detailed does doing done down during each else even ever every "
            "everyone example first from further have having here however include including into itself just "
            "know like make many more most much must need never other over own people person same several should "
            "since some someone something step steps such than that their them themselves then there these they "
            "thing things this those though through under until upon used using very want ways what when where "
            "whether which while will with within without would your yourself instructions tutorial guide list "
            "article post message script plan strategy tips details detail response answer question words sure "
            "here's specific simple best good great easy quick possible certain various different please "
            "information description text paragraph section reply tweet code following given order suitable"
        ).split()
    )
    | INSTRUCTION_VERBS
)
"""Function words and request words that are not entities."""
NOT_NOUN_ENDINGS = ("ing", "ly", "ed", "ive", "ous", "ful", "ize", "ise")
"""Endings of lower-case words that are rarely entities (verb forms, adverbs, adjectives)."""


def _rng(*key: object) -> random.Random:
    """A generator seeded by a hash of ``key`` (the same on every run and Python version)."""
    digest = hashlib.sha256("\0".join(map(str, key)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def noise(rng: random.Random, max_pieces: int, min_pieces: int = 0) -> str:
    """Random pieces of 1-5 characters, some joined by spaces, like a run of random tokens."""
    pieces = [
        rng.choice(("", " ")) + "".join(rng.choices(NOISE_CHARACTERS, k=rng.randint(1, 5)))
        for _ in range(rng.randint(min_pieces, max_pieces))
    ]
    return "".join(pieces).strip()


def noised(prompt: str, seed: int, copy: int) -> str:
    """``prompt`` behind a random prefix (1-50 pieces) and before a random suffix (0-20 pieces)."""
    rng = _rng(seed, copy, prompt)
    prefix, suffix = noise(rng, PREFIX_PIECES, 1), noise(rng, SUFFIX_PIECES)
    return f"{prefix} {prompt} {suffix}".strip()


def eraser_rows(rows: list[dict[str, str]], copies: int = NOISED_COPIES, seed: int = 0) -> list[dict[str, str]]:
    """Each preference row as it is, then ``copies`` copies whose prompt is wrapped in noise."""
    out = []
    for row in rows:
        out.append(row)
        out += [{**row, "prompt": noised(row["prompt"], seed, c)} for c in range(1, copies + 1)]
    return out


def prepare(out_dir: Path | None = None, source: str | Path | None = None) -> Path:
    """Write ``harmful-eraser.jsonl`` (prompt/chosen/rejected) into the cache once and return its path."""
    out_dir = Path(out_dir) if out_dir else cache_dir() / "forget" / f"harmful-eraser-v{VERSION}"
    return cached_jsonl(
        out_dir / "harmful-eraser.jsonl", lambda: eraser_rows(preference_rows(harmful_examples(source)))
    )


def prompt_entities(prompt: str, limit: int = ENTITIES_PER_PROMPT) -> list[str]:
    """Up to ``limit`` entities of a request's first line (a stand-in for Eraser's GPT-3.5 entity
    extraction): quoted titles, then runs of capitalised words after the first word (names), then
    the longest other words of 4+ letters that are neither function nor request words nor end
    like a verb, adverb or adjective (:data:`NOT_NOUN_ENDINGS`)."""
    lines = prompt.strip().splitlines()
    line = lines[0] if lines else ""
    found = [q.strip() for q in QUOTED.findall(line)]
    words = WORD.findall(QUOTED.sub(" , ", line))
    run: list[str] = []
    for i, word in enumerate([*words, ","]):
        if i > 0 and word[0].isupper() and word.lower() not in NOT_ENTITIES:
            run.append(word)
            continue
        if run:
            found.append(" ".join(run))
        run = []
    plain = [
        w
        for w in words
        if w.islower() and len(w) >= 4 and w not in NOT_ENTITIES and "-" not in w and not w.endswith(NOT_NOUN_ENDINGS)
    ]
    found += sorted(dict.fromkeys(plain), key=len, reverse=True)
    return list(dict.fromkeys(found))[:limit]


def entity_questions(prompts: list[str], limit: int = MAX_ENTITIES) -> list[str]:
    """One question about each distinct entity of ``prompts`` (in order of first mention), at most ``limit``."""
    entities: dict[str, None] = {}
    for prompt in prompts:
        for entity in prompt_entities(prompt):
            entities.setdefault(entity, None)
    chosen = list(entities)[:limit]
    return [ENTITY_QUESTIONS[_rng("entity", e).randrange(len(ENTITY_QUESTIONS))].format(e=e) for e in chosen]


def empty_or_refusal(answer: str) -> bool:
    """Whether ``answer`` is empty or refuses anywhere in it (the judges' patterns, :mod:`eu.refusal`):
    Eraser drops the refusals of its helpful data."""
    return not answer.strip() or is_refusal(answer, window=len(answer))


def answer_questions(
    model: Any, tokenizer: Any, questions: list[str], max_new_tokens: int = ANSWER_TOKENS
) -> list[str]:
    """Answers of ``model`` to each question, rendered with the chat template, in batches, sampled
    as :data:`ANSWER_SAMPLING` says from a generator seeded with :data:`ANSWER_SEED`."""
    from eu.generation import generate_from_ids
    from eu.prompts import chat_prompt_ids
    from eu.rng import preserved_rng

    answers = []
    with preserved_rng():
        torch.manual_seed(ANSWER_SEED)
        for start in range(0, len(questions), ANSWER_BATCH):
            batch = [chat_prompt_ids(tokenizer, q) for q in questions[start : start + ANSWER_BATCH]]
            ids = generate_from_ids(model, tokenizer, batch, max_new_tokens, **ANSWER_SAMPLING)
            answers += [tokenizer.decode(a, skip_special_tokens=True).strip() for a in ids]
    return answers


def entity_answers_path(model_name: str, questions: list[str], dtype: str | None = None) -> Path:
    """Where the answers of ``model_name`` in ``dtype`` (``None``: float32) to ``questions`` are cached."""
    spec = [model_name, questions, ANSWER_TOKENS, VERSION, ANSWER_SAMPLING, ANSWER_SEED]
    return model_output_path("keep", "entity-answers-", model_name, spec, dtype)


def model_answers_path(model_name: str, prompts: list[str], dtype: str | None = None) -> Path:
    """Where the answers of ``model_name`` in ``dtype`` (``None``: float32) to the harmful ``prompts`` are cached."""
    spec = [model_name, prompts, MODEL_ANSWER_TOKENS, VERSION, ANSWER_SAMPLING, ANSWER_SEED]
    return model_output_path("keep", "model-answers-", model_name, spec, dtype)


def _write_answers(
    path: Path,
    model_name: str,
    tokenizer: Any,
    load_model: ModelLoader,
    questions: list[str],
    max_new_tokens: int,
    keep_refusals: bool,
    what: str,
) -> Path:
    """Write ``model_name``'s answers to ``questions`` to ``path`` once (``user``/``assistant`` rows)."""

    def answer() -> None:
        print(f"eu: {model_name} answers {len(questions)} {what}", file=sys.stderr)
        model = load_model()
        model.to(pick_device()).eval()
        answers = answer_questions(model, tokenizer, questions, max_new_tokens)
        rows = [
            {"user": q, "assistant": a}
            for q, a in zip(questions, answers, strict=True)
            if a.strip() and (keep_refusals or not empty_or_refusal(a))
        ]
        if not rows:
            raise EUError(f"{model_name} refused or left empty all {len(questions)} {what}")
        write_jsonl_atomic(path, rows)
        left_out = "empty answers" if keep_refusals else "refusals and empty answers"
        print(f"eu: kept {len(rows)} answers ({left_out} left out) in {path}", file=sys.stderr)

    return build_once(path, path.is_file, answer)


def ensure_entity_answers(
    model_name: str,
    tokenizer: Any,
    load_model: ModelLoader,
    source: str | Path | None = None,
    dtype: str | None = None,
) -> Path:
    """The model's own answers about the entities of the harmful prompts (``user``/``assistant`` rows),
    generated on first use and cached; ``load_model`` is called only then and returns the model in
    ``dtype`` (``None``: float32), which keys the cache."""
    questions = entity_questions([ex["user"] for ex in harmful_examples(source)])
    path = entity_answers_path(model_name, questions, dtype)
    what = "questions about harmful prompts' entities"
    return _write_answers(path, model_name, tokenizer, load_model, questions, ANSWER_TOKENS, False, what)


def ensure_model_answers(
    model_name: str,
    tokenizer: Any,
    load_model: ModelLoader,
    source: str | Path | None = None,
    dtype: str | None = None,
) -> Path:
    """The model's own answers to the harmful prompts of the forget data, as they are (no noise),
    refusals and all (``user``/``assistant`` rows); generated on first use and cached like
    :func:`ensure_entity_answers`."""
    prompts = [str(ex["user"]) for ex in harmful_examples(source)]
    path = model_answers_path(model_name, prompts, dtype)
    what = "harmful prompts"
    return _write_answers(path, model_name, tokenizer, load_model, prompts, MODEL_ANSWER_TOKENS, True, what)
