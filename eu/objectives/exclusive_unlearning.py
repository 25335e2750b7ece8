"""Exclusive Unlearning: ``L = λ·KL(p_θ || uniform) on forget + (1 − λ)·CE on retain``."""

from __future__ import annotations

from typing import Any

import torch

from eu.objectives.base import Objective, checked_forget_weight, forget_batch, forget_loss, retain_loss


class ExclusiveUnlearning(Objective):
    """The reference EU objective (Sasaki et al., 2026)."""

    def __init__(self, forget_weight: float = 0.4, chunk_size: int = 1024) -> None:
        """
        Args:
            forget_weight: λ, the weight of the forget term; the paper uses 0.4.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        self.forget_weight = checked_forget_weight(forget_weight)

    def __call__(self, model: Any, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        forget = forget_loss(model, forget_batch(batch, "ExclusiveUnlearning"), self.chunk_size)
        total = self.forget_weight * forget + (1.0 - self.forget_weight) * retain
        return {"loss/total": total, "loss/retain": retain.detach(), **self.forget_metrics(model, forget)}
