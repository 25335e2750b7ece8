"""Response log-likelihoods under a causal language model, batched with a shared-prefix KV cache."""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch

from eu.progress import Progress


def _shared_prefix(seqs: list[list[int]], limit: int) -> int:
    n = 0
    while n < limit and all(s[n] == seqs[0][n] for s in seqs):
        n += 1
    return n


def _cache_kwarg(model: Any) -> str:
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _logits(model: Any, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, cache: Any) -> torch.Tensor:
    kwargs = {_cache_kwarg(model): cache, "use_cache": cache is not None} if cache is not None else {}
    try:
        return model(input_ids=ids, attention_mask=mask, logits_to_keep=keep, **kwargs).logits
    except TypeError:  # a model without logits_to_keep
        return model(input_ids=ids, attention_mask=mask, **kwargs).logits[:, keep]


@torch.no_grad()
def token_logprobs(
    model: Any, pad_id: int, pairs: list[tuple[list[int], list[int]]], batch_size: int = 16, desc: str | None = None
) -> list[torch.Tensor]:
    """Log-likelihood of every response token given its prompt, ``pairs`` of ``(prompt_ids, response_ids)``.

    Pairs are sorted by length and run ``batch_size`` at a time, right-padded. Prompt tokens
    that all rows of a batch share (the system header, a fixed neutral prompt) run once and are
    reused through the KV cache; logits are computed only where a response token is predicted.
    With ``desc``, progress is shown under that name.
    """
    device = next(model.parameters()).device
    out = [torch.zeros(0, dtype=torch.float64) for _ in pairs]
    order = sorted((i for i, (_, r) in enumerate(pairs) if r), key=lambda i: (len(pairs[i][0]), len(pairs[i][1])))
    progress = Progress(len(order), desc or "", "responses", enabled=desc is not None)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        seqs = [pairs[i][0] + pairs[i][1] for i in idx]
        starts = [len(pairs[i][0]) for i in idx]  # index of the first response token
        shared = _shared_prefix(seqs, min(starts) - 1)
        cache = None
        if shared:
            pre = model(input_ids=torch.tensor([seqs[0][:shared]], device=device), use_cache=True)
            cache = pre["cache"] if "cache" in pre else pre["past_key_values"]
            cache.batch_repeat_interleave(len(seqs))
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        first = min(starts) - 1  # first position whose logits predict a response token
        keep = torch.arange(first - shared, width - 1 - shared)
        logits = _logits(model, ids[:, shared:].to(device), mask.to(device), keep.to(device), cache)
        logp = logits.float().log_softmax(-1)
        target = ids[:, first + 1 : width].to(device)
        tok_lp = logp.gather(-1, target[..., None])[..., 0].double().cpu()
        for row, seq in enumerate(seqs):
            lo, hi = starts[row] - 1 - first, len(seq) - 1 - first
            out[idx[row]] = tok_lp[row, lo:hi].clone()
        progress.update(len(idx))
    progress.close()
    return out


def mean_logprobs(
    model: Any, pad_id: int, pairs: list[tuple[list[int], list[int]]], batch_size: int = 16, desc: str | None = None
) -> list[float]:
    """Mean of :func:`token_logprobs` per pair; ``-inf`` for an empty response."""
    logprobs = token_logprobs(model, pad_id, pairs, batch_size, desc)
    return [float(t.mean()) if len(t) else -math.inf for t in logprobs]
