"""Targeted-unlearning baseline: gradient ascent on the forget data, descent on the retain data."""

from __future__ import annotations

from typing import Any

import torch

from eu.objectives.base import Objective, checked_forget_weight, forget_batch, forget_cross_entropy, retain_loss


class GradientAscent(Objective):
    """``L = (1 − λ)·CE(retain) − λ·CE(forget)``: makes the forget responses unlikely.

    Unlike EU it needs the unwanted answers themselves as forget data (a JSONL of prompt and
    response pairs), and the forget term is unbounded below.
    """

    def __init__(self, forget_weight: float = 0.5, chunk_size: int = 1024) -> None:
        """
        Args:
            forget_weight: λ, the weight of the ascent term.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        self.forget_weight = checked_forget_weight(forget_weight)

    def __call__(self, model: Any, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        forget_ce = forget_cross_entropy(model, forget_batch(batch, "GradientAscent"), self.chunk_size)
        total = (1.0 - self.forget_weight) * retain - self.forget_weight * forget_ce
        return {"loss/total": total, "loss/retain": retain.detach(), "loss/forget_ce": forget_ce.detach()}
