"""Naive reference losses from full ``[B, T, V]`` logits, to check eu's chunked losses against.

Tests import them (``tests/conftest.py`` puts this folder on ``sys.path``); the benchmarks use
them for the reference-style training step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eu.objectives.losses import IGNORE_INDEX, kl_to_uniform_from_logits


def _float(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits in float32; float32 and float64 as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def naive_forget_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference ``L_forget`` from full logits ([B, T, V]) and a position mask ([B, T]).

    Mean over sequences with at least one masked position of the mean KL to uniform over
    those positions; zero when no position is masked.
    """
    kl = kl_to_uniform_from_logits(logits)
    per_sequence = [kl[b][mask[b]].mean() for b in range(logits.shape[0]) if mask[b].any()]
    if not per_sequence:
        return logits.sum() * 0.0
    return torch.stack(per_sequence).mean()


def naive_retain_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reference ``L_retain``: mean cross-entropy over positions whose target is not ignored."""
    return F.cross_entropy(_float(logits).reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def naive_sequence_logprob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reference per-row ``log π(y|x)`` from full logits ([B, T, V]) and targets ([B, T], -100 ignored)."""
    log_p = F.log_softmax(_float(logits), dim=-1)
    mask = targets != IGNORE_INDEX
    picked = log_p.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def naive_sequence_mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reference per-row mean token cross-entropy of the response ([B, T, V] logits, [B, T] targets)."""
    mask = targets != IGNORE_INDEX
    return -naive_sequence_logprob(logits, targets) / mask.sum(-1)


def naive_reference_kl(logits: torch.Tensor, reference_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reference per-row sum over response positions of ``KL(p_ref || p_θ)``, written out from ``softmax``."""
    p_ref = torch.softmax(_float(reference_logits), dim=-1)
    kl = (p_ref * (torch.log(p_ref) - torch.log(torch.softmax(_float(logits), dim=-1)))).sum(-1)
    return (kl * (targets != IGNORE_INDEX)).sum(-1)
