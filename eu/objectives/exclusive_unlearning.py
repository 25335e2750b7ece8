"""Exclusive Unlearning: ``L = λ·KL(p_θ || uniform) on forget + (1 − λ)·CE on retain``."""

from __future__ import annotations

from typing import Any

import torch

from eu.objectives.base import ForgetWeighted
from eu.objectives.terms import forget_loss


class ExclusiveUnlearning(ForgetWeighted):
    """The reference EU objective (Sasaki et al., 2026).

    Args:
        forget_weight: λ, the weight of the forget term; the paper uses 0.4.
    """

    def __init__(self, forget_weight: float = 0.4, chunk_size: int = 1024) -> None:
        super().__init__(forget_weight, chunk_size)

    def forget_term(self, model: Any, forget: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """KL(p_θ || uniform) on the forget responses; logs it and the entropy fraction."""
        kl = forget_loss(model, forget, self.chunk_size)
        return kl, self.forget_metrics(model, kl)
