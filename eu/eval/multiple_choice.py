"""Option likelihood for multiple-choice items: score each option as the assistant's answer and
pick the most likely, instead of parsing a generated answer.

An item has ``choices`` (each a full assistant response, e.g. ``The answer is B: Neurology.``)
and ``answer`` (the correct one). Each choice is rendered after the question through the chat
template exactly as training renders a record, and scored by the sum of its response tokens'
log-probabilities under the model; the pick is the highest (the first on a tie).
"""

from __future__ import annotations

from typing import Any

from eu.eval.judges.scoring import token_logprobs
from eu.generation import pad_id
from eu.prompts import ChatRecord, encode_record


def choice_logprobs(model: Any, tokenizer: Any, items: list[dict[str, Any]], batch_size: int = 16) -> list[list[float]]:
    """Per item, the log-likelihood of each of its ``choices`` as the response to its ``prompt``.

    An item's choices run together (up to ``batch_size`` at a time), so the prompt they share is
    computed once and reused through the KV cache: about one prompt's cost per item, not one per choice.
    """
    pad = pad_id(tokenizer)
    out = []
    for item in items:
        pairs = []
        for choice in item["choices"]:
            ids, prompt_len = encode_record(tokenizer, ChatRecord(item["prompt"], choice))
            pairs.append((ids[:prompt_len], ids[prompt_len:]))
        out.append([float(t.sum()) for t in token_logprobs(model, pad or 0, pairs, batch_size)])
    return out


def score_choices(model: Any, tokenizer: Any, records: list[dict[str, Any]], batch_size: int = 16) -> None:
    """Set ``choice`` (the pick), ``choice_logprobs`` and ``correct`` on the records that have ``choices``."""
    mc = [r for r in records if r.get("choices")]
    for r, logps in zip(mc, choice_logprobs(model, tokenizer, mc, batch_size), strict=True):
        r["choice_logprobs"] = logps
        r["choice"] = r["choices"][logps.index(max(logps))]
        r["correct"] = r["choice"] == r["answer"]
