"""torchmetrics means and rates that sum their counts across processes before dividing."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class Mean(Metric):
    """Mean of per-item values (``update(total, count)``), synchronised across ranks.

    Totals and counts are summed over processes before the division, so an uneven shard per
    rank gives the same value as one process scoring everything.
    """

    full_state_update = False
    higher_is_better = None
    total_dtype = torch.float32

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0, dtype=self.total_dtype), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, total: float | torch.Tensor, count: int | torch.Tensor) -> None:
        self.total += torch.as_tensor(total, dtype=self.total_dtype, device=self.total.device)
        self.count += torch.as_tensor(count, dtype=torch.long, device=self.count.device)

    def compute(self) -> torch.Tensor:
        return self.total.float() / self.count.clamp_min(1).float()


class Rate(Mean):
    """Share of items that are hits (``update(hits, total)``), synchronised across ranks."""

    total_dtype = torch.long


class AttackSuccessRate(Rate):
    """Share of responses to harmful requests judged ``unsafe``."""

    higher_is_better = False


class RefusalRate(Rate):
    """Share of responses judged ``refusal``."""


class DomainAccuracy(Rate):
    """Share of held-out domain items answered correctly."""

    higher_is_better = True


class EntropyFraction(Mean):
    """Mean response entropy as a fraction of ``log V`` (1.0 = uniform, i.e. forgotten)."""
