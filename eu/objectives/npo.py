"""Targeted-unlearning baseline: negative preference optimisation (Zhang et al., 2024) plus retain loss."""

from __future__ import annotations

from typing import Any

import torch

from eu.errors import EUError
from eu.losses import npo_loss
from eu.objectives.base import Objective
from eu.objectives.terms import reference_logprobs, retain_loss, sequence_logprobs


class NPO(Objective):
    """``L = (2/β)·E[log(1 + (π_θ(y|x)/π_ref(y|x))^β)] + retain_weight·CE(retain)`` on forget pairs.

    ``π_ref`` is the frozen initial model: a sharded copy held by the module, or, with LoRA, the
    same weights with the adapters switched off.
    """

    needs_reference = True

    def __init__(self, beta: float = 0.1, retain_weight: float = 1.0, chunk_size: int = 1024) -> None:
        """
        Args:
            beta: inverse temperature β of the preference loss.
            retain_weight: weight of the retain cross-entropy.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        if beta <= 0:
            raise EUError(f"objective beta must be > 0, got {beta}")
        self.beta = beta
        self.retain_weight = retain_weight

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        forget = self.forget_stream(batch)
        ref = reference_logprobs(model, reference, forget, self.chunk_size)
        policy = sequence_logprobs(model, forget, self.chunk_size)
        npo = npo_loss(policy, ref, self.beta, float(forget["num_sequences_norm"].clamp_min(1)))
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        total = npo + self.retain_weight * retain
        return {
            "loss/total": total,
            "loss/retain": retain.detach(),
            "loss/npo": npo.detach(),
            "forget/log_ratio": (policy - ref).detach().mean(),
        }
