"""Training progress in optimizer steps: a bar in a terminal, plain lines when output goes to a file."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar

from eu.classpath import config_entries, names_subclass
from eu.progress import Progress


class StepProgressBar(ProgressBar):
    """Shows ``step N/max_steps`` with the loss and time left (Lightning's bar counts an endless epoch)."""

    def __init__(self, every_s: float = 30.0) -> None:
        """
        Args:
            every_s: seconds between plain progress lines when the output is not a terminal.
        """
        super().__init__()
        self.every_s = every_s
        self._enabled = True
        self._progress: Progress | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else 0
        enabled = self._enabled and trainer.is_global_zero
        start = trainer.global_step
        self._progress = Progress(total, "fit", "steps", every_s=self.every_s, enabled=enabled, initial=start)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._progress is None or trainer.global_step <= self._progress.done:
            return
        loss = trainer.callback_metrics.get("loss")
        postfix = f"loss {float(loss):.4g}" if loss is not None else ""
        self._progress.update(trainer.global_step - self._progress.done, postfix)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None


def add_step_progress_bar(trainer_config: Any) -> None:
    """Use :class:`StepProgressBar` unless the config turns the bar off or names a progress bar itself."""
    if trainer_config.get("enable_progress_bar") is False:
        return
    callbacks = config_entries(trainer_config.get("callbacks"))
    if any(names_subclass(callback, ProgressBar) for callback in callbacks):
        return
    from jsonargparse import Namespace

    bar = Namespace(class_path=f"{__name__}.StepProgressBar", init_args=Namespace(every_s=30.0))
    trainer_config["callbacks"] = [*callbacks, bar]
