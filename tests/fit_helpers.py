"""Callbacks and objectives that the reliability tests load by ``class_path`` (tests/ is on the path)."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import lightning as L
import torch

from eu.objectives import ExclusiveUnlearning


class LossRecorder(L.Callback):
    """Appends every training step's logged ``loss/...`` values to a JSONL file (flushed at once)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("loss/")}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": trainer.global_step, **losses}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


class KillAt(L.Callback):
    """SIGKILLs its own process at the end of step ``step``: a crash nothing can clean up after."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class BreaksAt(ExclusiveUnlearning):
    """EU whose forget loss (``what="loss"``) or gradient (``what="gradient"``) turns NaN from training call ``at``."""

    def __init__(self, at: int = 3, what: str = "loss") -> None:
        super().__init__()
        self.at, self.what, self.calls = at, what, 0

    def __call__(self, model: Any, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        losses = super().__call__(model, batch)
        if not torch.is_grad_enabled():
            return losses
        self.calls += 1
        if self.calls < self.at:
            return losses
        if self.what == "loss":
            losses["loss/forget"] = losses["loss/forget"] * float("nan")
            losses["loss/total"] = losses["loss/total"] + losses["loss/forget"]
        else:
            weight = next(p for p in model.parameters() if p.requires_grad)
            # value 0, gradient inf * 0 = NaN: a finite loss whose gradient is not
            losses["loss/total"] = losses["loss/total"] + torch.sqrt((weight - weight.detach()).abs().sum())
        return losses
