"""Targeted-unlearning baseline: negative preference optimisation (Zhang et al., 2024) plus retain loss."""

from __future__ import annotations

from typing import Any

import torch

from eu.objectives.base import AgainstReference
from eu.objectives.losses import npo_loss
from eu.objectives.terms import reference_logprobs, retain_loss, sequence_logprobs


class NPO(AgainstReference):
    """``L = (2/β)·E[log(1 + (π_θ(y|x)/π_ref(y|x))^β)] + retain_weight·CE(retain)`` on forget pairs.

    ``π_ref`` is the frozen initial model: a sharded copy held by the module, or, with LoRA, the
    same weights with the adapters switched off.
    """

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
