"""RetainOnlyFT baseline: fine-tune on the retain data only (λ = 0)."""

from __future__ import annotations

from typing import Any

import torch

from eu.objectives.base import Objective
from eu.objectives.terms import forget_loss, retain_loss


class RetainOnly(Objective):
    """Cross-entropy on retain data; the forget loss is only measured, never optimised."""

    needs_forget = False

    def __init__(self, monitor_forget: bool = True, chunk_size: int = 1024) -> None:
        """
        Args:
            monitor_forget: also compute (without gradient) the forget loss for comparison.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        self.monitor_forget = monitor_forget

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        out = {"loss/total": retain, "loss/retain": retain.detach()}
        if self.monitor_forget and "forget" in batch:
            with torch.no_grad():
                out.update(self.forget_metrics(model, forget_loss(model, batch["forget"], self.chunk_size)))
        return out
