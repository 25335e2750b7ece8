"""The throughput logger every run gets (added by ``UnlearningModule.configure_callbacks``)."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class ThroughputLogger(L.Callback):
    """Logs ``perf/tokens_per_sec`` (non-padding tokens) and ``perf/supervised_tokens_per_sec``.

    Rates are measured between consecutive batch ends, so they include data loading, the
    optimizer step and logging, and are summed over data-parallel ranks.
    """

    def __init__(self) -> None:
        self._last: float | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if self._last is not None:
            elapsed = now - self._last
            tokens = sum(int((b["sequence_index"] >= 0).sum()) for b in batch.values())
            supervised = sum(int((b["targets"] >= 0).sum()) for b in batch.values())
            world = trainer.world_size
            pl_module.log("perf/tokens_per_sec", tokens * world / elapsed, batch_size=1)
            pl_module.log("perf/supervised_tokens_per_sec", supervised * world / elapsed, batch_size=1)
        self._last = now

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = None
