"""Measure domain accuracy and off-domain collapse before and after fit (and every N steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from eu.domains import domain_items
from eu.eval.domain import evaluate_domain, evaluate_off_domain
from eu.eval.periodic import PeriodicEval
from eu.io import write_text_atomic


class DomainEval(PeriodicEval):
    """Generates answers to held-out domain items and to off-domain prompts on rank 0.

    Logs ``eval/domain_acc`` and ``eval/offdomain_entropy_frac`` at the start of fit, every
    ``every_n_steps`` (0 = never) and at the end, prints a before/after summary and writes
    ``domain_eval.json`` into the run's log folder.
    """

    def __init__(
        self,
        domain: str = "math",
        num_items: int = 100,
        max_new_tokens: int = 32,
        batch_size: int = 32,
        every_n_steps: int = 0,
        before_fit: bool = True,
    ) -> None:
        """
        Args:
            domain: built-in retained domain (``math`` or ``medicine``).
            num_items: held-out items scored each time.
            max_new_tokens: generation budget per answer.
            batch_size: prompts generated together.
            every_n_steps: also evaluate every N optimizer steps (0 disables).
            before_fit: evaluate the untouched model when fit starts.
        """
        super().__init__(every_n_steps, before_fit)
        self.domain = domain
        self.num_items = num_items
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.history: list[dict[str, Any]] = []

    def prepare_data(self) -> None:
        """Build the held-out items once (fetching the domain's asset); called on rank 0 before fit."""
        domain_items(self.domain, "test")

    def run(self, trainer: L.Trainer, pl_module: Any, when: str) -> None:
        """Score the held-out domain items and the off-domain prompts (rank 0 only)."""
        if not trainer.is_global_zero:
            return
        model, tokenizer = pl_module.model, pl_module.tokenizer
        was_training = model.training
        model.eval()
        try:
            dom = evaluate_domain(model, tokenizer, self.domain, self.num_items, self.max_new_tokens, self.batch_size)
            off = evaluate_off_domain(model, tokenizer, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
        finally:
            model.train(was_training)
        entry = {"when": when, "step": trainer.global_step, "domain": dom, "off_domain": off}
        self.history.append(entry)
        metrics = {"eval/domain_acc": dom["accuracy"], "eval/offdomain_entropy_frac": off["entropy_frac"]}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        rank_zero_info(
            f"eu: [{when}, step {trainer.global_step}] held-out {self.domain} accuracy "
            f"{dom['accuracy']:.3f} ({dom['n']} items); off-domain entropy {off['entropy_frac']:.3f} of log V"
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_end(trainer, pl_module)
        if not trainer.is_global_zero:
            return
        self._report()
        if trainer.log_dir:
            write_text_atomic(Path(trainer.log_dir) / "domain_eval.json", json.dumps(self.history, indent=2))

    def _report(self) -> None:
        first, last = self.history[0], self.history[-1]
        lines = [
            f"eu: held-out {self.domain} accuracy: {first['domain']['accuracy']:.3f} ({first['when']}) -> "
            f"{last['domain']['accuracy']:.3f} ({last['when']})",
            f"eu: off-domain response entropy (fraction of log V): {first['off_domain']['entropy_frac']:.3f} -> "
            f"{last['off_domain']['entropy_frac']:.3f}",
            "eu: off-domain answers, before -> after:",
        ]
        for a, b in zip(first["off_domain"]["records"][:4], last["off_domain"]["records"][:4], strict=True):
            lines.append(
                f"  Q: {a['prompt']}\n    before: {a['response'][:100]!r}\n    after:  {b['response'][:100]!r}"
            )
        rank_zero_info("\n".join(lines))
