"""How uniform a model's next-token distribution is while it writes a response."""

from __future__ import annotations

import math
from typing import Any

import torch

from eu.objectives.losses import kl_to_uniform_from_logits


@torch.no_grad()
def response_kl_to_uniform(model: Any, prompt_ids: list[int], response_ids: list[int]) -> float:
    """Mean ``KL(p_θ || uniform)`` over the positions that predict the response tokens.

    Low values mean a near-uniform (forgotten) distribution; ``log V`` is the most peaked.
    A response with no token is scored at the first position after the prompt.
    """
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids + response_ids], device=device)
    logits = model(input_ids=ids).logits[0]
    start = len(prompt_ids) - 1
    stop = max(len(prompt_ids) + len(response_ids) - 1, start + 1)
    return float(kl_to_uniform_from_logits(logits[start:stop]).mean())


def entropy_fraction(model: Any, kl: float) -> float:
    """Turn a KL to uniform into the entropy as a fraction of ``log V`` (1.0 = uniform)."""
    log_v = math.log(model.get_output_embeddings().weight.shape[0])
    return 1.0 - kl / log_v
