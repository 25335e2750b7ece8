"""Exclusive Unlearning: ``L = λ·KL(p_θ || uniform) on forget + (1 − λ)·CE on retain``."""

from __future__ import annotations

from typing import Any

import torch

from eu.errors import EUError
from eu.objectives.base import Objective, forget_loss, retain_loss


class ExclusiveUnlearning(Objective):
    """The reference EU objective (Sasaki et al., 2026)."""

    def __init__(self, forget_weight: float = 0.4, chunk_size: int = 1024) -> None:
        """
        Args:
            forget_weight: λ, the weight of the forget term; the paper uses 0.4.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        if not 0.0 <= forget_weight <= 1.0:
            raise EUError(f"objective forget_weight (λ) must lie in [0, 1], got {forget_weight}")
        self.forget_weight = forget_weight

    def __call__(self, model: Any, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if "forget" not in batch:
            raise EUError("ExclusiveUnlearning needs a forget stream: set data.forget.path")
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        forget = forget_loss(model, batch["forget"], self.chunk_size)
        total = self.forget_weight * forget + (1.0 - self.forget_weight) * retain
        return {"loss/total": total, "loss/retain": retain.detach(), **self.forget_metrics(model, forget)}
