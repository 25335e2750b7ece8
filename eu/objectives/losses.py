"""Pure tensor losses used by the objectives.

Token losses are computed from *hidden states* in chunks: each chunk is projected to
logits, reduced to one number per token, and discarded; the backward pass recomputes the
chunk. The full ``[tokens, vocab]`` logits of a batch therefore never exist at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

Head = Callable[[torch.Tensor], torch.Tensor]

IGNORE_INDEX = -100


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are reduced in float32; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def kl_to_uniform_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(logits) || Uniform_V) = log V - H(p)`` for each row of ``logits``."""
    logits = _upcast(logits)
    log_p = F.log_softmax(logits, dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    return math.log(logits.shape[-1]) - entropy


def cross_entropy_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row next-token cross-entropy (no reduction)."""
    return F.cross_entropy(_upcast(logits), targets, reduction="none")


def _chunk_values(hidden: torch.Tensor, head: Head, targets: torch.Tensor, kind: str) -> torch.Tensor:
    logits = head(hidden)
    if kind == "kl_uniform":
        return kl_to_uniform_from_logits(logits)
    return cross_entropy_from_logits(logits, targets)


def chunked_token_losses(
    hidden: torch.Tensor, head: Head, targets: torch.Tensor, kind: str, chunk_size: int = 1024
) -> torch.Tensor:
    """One loss per row of ``hidden`` ([N, H] -> [N]), projecting ``chunk_size`` rows at a time.

    ``kind`` is ``"cross_entropy"`` (``targets`` are the next tokens) or ``"kl_uniform"``
    (``targets`` are ignored). Each chunk is checkpointed, so only ``chunk_size`` rows of
    logits are alive in forward or backward.
    """
    if kind not in ("cross_entropy", "kl_uniform"):
        raise ValueError(f"unknown token loss kind {kind!r}")
    return _map_chunks(lambda h, t: _chunk_values(h, head, t, kind), hidden, targets, chunk_size=chunk_size)


def _map_chunks(
    fn: Callable[..., torch.Tensor], hidden: torch.Tensor, *rows: torch.Tensor, chunk_size: int
) -> torch.Tensor:
    """``fn(hidden[chunk], *(r[chunk] for r in rows))`` over chunks of rows, concatenated; each chunk is
    checkpointed when a gradient is needed, so only ``chunk_size`` rows of logits are alive at once."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    dtype = torch.promote_types(hidden.dtype, torch.float32)
    needs_grad = torch.is_grad_enabled() and hidden.requires_grad
    parts = [hidden.new_zeros(0, dtype=dtype)]
    for start in range(0, hidden.shape[0], chunk_size):
        args = [x[start : start + chunk_size] for x in (hidden, *rows)]
        parts.append(checkpoint(fn, *args, use_reentrant=False) if needs_grad else fn(*args))
    return torch.cat(parts).to(dtype)


def chunked_weighted_token_loss(
    hidden: torch.Tensor,
    head: Head,
    targets: torch.Tensor,
    weights: torch.Tensor,
    kind: str,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """``sum_t weights[t] * loss_t`` over the rows of ``hidden``; see :func:`chunked_token_losses`."""
    return (chunked_token_losses(hidden, head, targets, kind, chunk_size) * weights).sum()


def sequence_sums(values: torch.Tensor, sequence_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum ``values`` ([N]) per distinct sequence id; returns ``(sums, ids)`` in ascending id order."""
    ids, inverse = torch.unique(sequence_ids, return_inverse=True)
    sums = values.new_zeros(ids.numel()).index_add(0, inverse, values)
    return sums, ids


def npo_loss(
    policy_logprob: torch.Tensor, reference_logprob: torch.Tensor, beta: float, normaliser: float | None = None
) -> torch.Tensor:
    """Negative preference optimisation: ``(2/β) · mean log(1 + (π_θ(y|x) / π_ref(y|x))^β)``.

    Arguments are per-sequence log-probabilities of the responses. ``normaliser`` replaces the
    number of sequences in the mean (for example the global count across ranks).
    """
    log_ratio = policy_logprob - reference_logprob
    n = float(log_ratio.numel()) if normaliser is None else float(normaliser)
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).sum() / max(n, 1.0)


def kl_from_reference_logits(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """``KL(p_ref || p_θ) = Σ_v p_ref(v)·(log p_ref(v) − log p_θ(v))`` for each row (``p = softmax``)."""
    log_p = F.log_softmax(_upcast(logits), dim=-1)
    log_ref = F.log_softmax(_upcast(reference_logits), dim=-1)
    return (log_ref.exp() * (log_ref - log_p)).sum(-1)


def chunked_reference_kl(
    hidden: torch.Tensor,
    head: Head,
    reference_hidden: torch.Tensor,
    reference_head: Head,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """``KL(p_ref || p_θ)`` per row of ``hidden`` ([N, H] -> [N]), ``chunk_size`` rows of logits at a time.

    ``reference_hidden`` ([N, H']) and ``reference_head`` give the frozen reference's logits,
    computed without gradient; each chunk is checkpointed as in :func:`chunked_token_losses`.
    """

    def chunk(h: torch.Tensor, ref_h: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            reference_logits = reference_head(ref_h)
        return kl_from_reference_logits(head(h), reference_logits)

    return _map_chunks(chunk, hidden, reference_hidden, chunk_size=chunk_size)


def thresholded_ascent(cross_entropy: torch.Tensor, threshold: float) -> torch.Tensor:
    """Eraser's unlearning term ``max(0, γ − CE)``: gradient ascent on CE that stops once CE reaches ``γ``."""
    return torch.clamp(threshold - cross_entropy, min=0.0)


def forget_token_weights(sequence_ids: torch.Tensor, normaliser: float | None = None) -> torch.Tensor:
    """Weights that turn a token sum into "mean over sequences of the mean over their tokens".

    ``sequence_ids`` ([N]) says which sequence each selected token belongs to. Each token gets
    ``1 / (tokens in its sequence * number of sequences)``; ``normaliser`` replaces the number of
    sequences (for example the global count across data-parallel ranks).
    """
    if sequence_ids.numel() == 0:
        return torch.zeros(0, dtype=torch.float32, device=sequence_ids.device)
    _, inverse, counts = torch.unique(sequence_ids, return_inverse=True, return_counts=True)
    n_sequences = float(counts.numel()) if normaliser is None else float(normaliser)
    return 1.0 / (counts[inverse].float() * n_sequences)
