"""``eu sample``: write a self-generated forget corpus to a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eu.data.sampler import SampleSettings, check_sample_output, check_sample_settings, corpus_summary, sample_corpus
from eu.models import load_model, sampling_dtype
from eu.models.precision import pick_device
from eu.prompts import load_chat_tokenizer


def sample(
    model: str = "smollm2-135m-instruct",
    out: str = "forget.jsonl",
    num_pairs: int = 40_000,
    batch_size: int = 32,
    user_tokens: int = 64,
    answer_tokens: int = 128,
    temperature: float = 2.0,
    top_k: int = 100,
    seed: int = 42,
    system: str | None = None,
    draw_among_top_k: bool = False,
    dtype: str | None = "auto",
    device: str = "auto",
) -> dict[str, float]:
    """Self-generate a forget corpus of (user_text, assistant_text) pairs with ``model``.

    Args:
        model: alias, Hugging Face id or local folder of the model being unlearned.
        out: output JSONL; an interrupted run resumes from ``OUT.parts`` (same settings only).
        num_pairs: distinct rows to produce (the paper: 40,000; try 128 on a CPU).
        batch_size: rows generated at once.
        user_tokens: new tokens of the self-written user turn.
        answer_tokens: maximum new tokens of the answer.
        temperature: sampling temperature.
        top_k: top-k sampling cut-off.
        seed: base seed; chunk ``c`` uses a seed derived from it and ``c``.
        system: system turn of the sampled conversations; unset (the reference): none.
        draw_among_top_k: draw each token among the top-k candidates only: the same distribution,
            faster (benchmarks/sampling.py measures it), another corpus for the same
            seed than the default draw.
        dtype: ``auto`` (bfloat16 where the device computes it natively, as the reference on GPUs;
            else float32), float32, bfloat16 or float16.
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    settings = SampleSettings(
        num_pairs, batch_size, user_tokens, answer_tokens, temperature, top_k, seed, system, draw_among_top_k
    )
    if dtype == "auto":
        dtype = sampling_dtype()
    check_sample_settings(settings, prefix="--")
    source = {"model": model, "dtype": dtype}
    check_sample_output(Path(out), settings, source)  # refuse a mismatch before loading the model
    tokenizer = load_chat_tokenizer(model)
    lm = load_model(model, dtype)
    device = pick_device(device)
    lm.to(device).eval()
    path = sample_corpus(lm, tokenizer, Path(out), settings, source=source)
    summary = corpus_summary(path, tokenizer)
    print(json.dumps({"out": str(path), **summary}, indent=2), file=sys.stderr)
    return summary
