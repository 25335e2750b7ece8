"""The schedule shared by the evaluation callbacks: before fit, every N steps, after fit."""

from __future__ import annotations

from typing import Any

import lightning as L


class PeriodicEval(L.Callback):
    """Calls :meth:`run` when fit starts (if ``before_fit``), every ``every_n_steps`` optimizer
    steps before the last (0: never) and when fit ends, with ``when`` = ``before``, ``during``
    or ``after``."""

    def __init__(self, every_n_steps: int = 0, before_fit: bool = True) -> None:
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps must be >= 0, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.before_fit = before_fit

    def run(self, trainer: L.Trainer, pl_module: Any, when: str) -> None:
        raise NotImplementedError

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.before_fit:
            self.run(trainer, pl_module, "before")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0 and step < (trainer.max_steps or 0):
            self.run(trainer, pl_module, "during")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run(trainer, pl_module, "after")
