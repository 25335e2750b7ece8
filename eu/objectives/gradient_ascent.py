"""Targeted-unlearning baseline: gradient ascent on the forget data, descent on the retain data."""

from __future__ import annotations

from typing import Any

import torch

from eu.objectives.base import ForgetWeighted
from eu.objectives.terms import forget_cross_entropy


class GradientAscent(ForgetWeighted):
    """``L = (1 − λ)·CE(retain) − λ·CE(forget)``: makes the forget responses unlikely.

    Unlike EU it needs the unwanted answers themselves as forget data (a JSONL of prompt and
    response pairs), and the forget term is unbounded below.

    Args:
        forget_weight: λ, the weight of the ascent term.
    """

    def __init__(self, forget_weight: float = 0.5, chunk_size: int = 1024) -> None:
        super().__init__(forget_weight, chunk_size)

    def forget_term(self, model: Any, forget: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Minus the cross-entropy of the forget responses; logs the cross-entropy."""
        ce = forget_cross_entropy(model, forget, self.chunk_size)
        return -ce, {"loss/forget_ce": ce.detach()}
