"""The objective interface and the per-stream token losses objectives are built from."""

from __future__ import annotations

import math
from typing import Any

import torch

from eu.losses import IGNORE_INDEX, chunked_weighted_token_loss, forget_token_weights


def decoder_and_head(model: Any) -> tuple[Any, Any]:
    """The decoder (token ids to hidden states) and the output projection of a causal LM."""
    return model.get_decoder(), model.get_output_embeddings()


def supervised_hidden(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hidden states at the positions that predict response tokens, their targets and sequence ids."""
    decoder, _ = decoder_and_head(model)
    hidden = decoder(
        input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
    ).last_hidden_state
    mask = batch["targets"] != IGNORE_INDEX
    return hidden[mask], batch["targets"][mask], batch["sequence_index"][mask]


def retain_loss(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Cross-entropy on response tokens, normalised by the step's supervised-token count."""
    hidden, targets, _ = supervised_hidden(model, batch)
    _, head = decoder_and_head(model)
    weights = torch.full_like(targets, 1.0, dtype=torch.float32) / batch["num_targets_norm"].clamp_min(1)
    return chunked_weighted_token_loss(hidden, head, targets, weights, "cross_entropy", chunk_size)


def forget_loss(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Mean over sequences of the mean KL(p || uniform) over their response positions."""
    hidden, targets, seq = supervised_hidden(model, batch)
    _, head = decoder_and_head(model)
    weights = forget_token_weights(seq, float(batch["num_sequences_norm"].clamp_min(1)))
    return chunked_weighted_token_loss(hidden, head, targets, weights, "kl_uniform", chunk_size)


def vocab_size(model: Any) -> int:
    return int(model.get_output_embeddings().weight.shape[0])


class Objective:
    """Turns a causal LM and a step batch ``{"retain": ..., "forget": ...}`` into named losses.

    ``__call__`` returns a dict with at least ``"loss/total"`` (the value optimised); every other
    entry is logged as it is.
    """

    needs_forget: bool = True
    """Whether training requires a forget stream."""

    def __init__(self, chunk_size: int = 1024) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = chunk_size

    def __call__(self, model: Any, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forget_metrics(self, model: Any, forget: torch.Tensor) -> dict[str, torch.Tensor]:
        """Report the forget loss and the response entropy as a fraction of ``log V``."""
        log_v = math.log(vocab_size(model))
        return {"loss/forget": forget.detach(), "forget/entropy_frac": 1.0 - forget.detach() / log_v}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"
