"""torchmetrics rates that sum their counts across processes before dividing."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class Rate(Metric):
    """Share of items that are hits (``update(hits, total)``), synchronised across ranks.

    Counts are summed over processes before the division, so an uneven shard per rank gives
    the same value as one process scoring everything.
    """

    full_state_update = False
    higher_is_better = None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("hits", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, hits: int | torch.Tensor, total: int | torch.Tensor) -> None:
        self.hits += torch.as_tensor(hits, dtype=torch.long, device=self.hits.device)
        self.total += torch.as_tensor(total, dtype=torch.long, device=self.total.device)

    def compute(self) -> torch.Tensor:
        return self.hits.float() / self.total.clamp_min(1).float()


class AttackSuccessRate(Rate):
    """Share of responses to harmful requests judged ``unsafe``."""

    higher_is_better = False


class RefusalRate(Rate):
    """Share of responses judged ``refusal``."""


class DomainAccuracy(Rate):
    """Share of held-out domain items answered correctly."""

    higher_is_better = True
