"""RetainOnlyFT trained beside a run, the same way, so that its summary can say what unlearning cost."""

from __future__ import annotations

import copy
import inspect
import json
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from eu.callbacks.evaluation import Evaluation
from eu.callbacks.progress import StepProgressBar
from eu.errors import EUError
from eu.io import write_text_atomic
from eu.objectives import RetainOnly

BASELINE_FILE = "baseline.json"


class RetainOnlyBaseline(L.Callback):
    """After fit, trains RetainOnlyFT from the same base model, on the same retain batches, for
    the same steps, with the same optimizer, schedule, precision, gradient clipping and seed;
    evaluates it on the run's :class:`~eu.callbacks.Evaluation` suites (``suites`` of them, at
    the same sizes) and prints each metric before, after this run and after RetainOnlyFT, with
    the ratio. Writes ``baseline.json`` beside ``evaluation.json``. List it after the
    ``Evaluation`` callback. Single-device runs only (a multi-device run skips it with a warning).
    """

    def __init__(self, suites: str = "domain") -> None:
        """
        Args:
            suites: comma-separated suites of the run's Evaluation to measure the baseline on.
        """
        self.suites = [s.strip() for s in suites.split(",") if s.strip()]
        self.result: dict[str, Any] | None = None
        self.module: Any = None
        """The trained baseline module, after fit."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.world_size > 1:
            rank_zero_warn("eu: RetainOnlyBaseline runs on a single device only; skipped")
            return
        evaluation = self._evaluation(trainer)
        accepted = inspect.signature(type(pl_module).__init__).parameters
        settings = {k: v for k, v in pl_module.hparams.items() if k in accepted}  # not the CLI's own entries
        settings["robust"] = None  # RetainOnlyFT has no forget term to make relearning-resistant
        baseline = type(pl_module)(
            **settings, objective=RetainOnly(monitor_forget=False), optimizer=pl_module.optimizer_factory
        )
        sub = L.Trainer(
            accelerator=trainer.strategy.root_device.type,
            devices=1,
            precision=trainer.precision,
            max_steps=trainer.max_steps,
            gradient_clip_val=trainer.gradient_clip_val,
            accumulate_grad_batches=trainer.accumulate_grad_batches,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            callbacks=[StepProgressBar()],
            default_root_dir=trainer.default_root_dir,
        )
        rank_zero_info(f"eu: training the RetainOnlyFT baseline the same way ({trainer.max_steps} steps)")
        seed = os.environ.get("PL_GLOBAL_SEED")
        if seed is not None:
            L.seed_everything(int(seed), verbose=False)
        sub.fit(baseline, datamodule=trainer.datamodule)
        self.module = baseline
        measure = copy.copy(evaluation)
        measure.suite_names, measure.history = self.suites, []
        metrics = measure.evaluate(sub, baseline, when="baseline")
        first, last = evaluation.history[0]["metrics"], evaluation.history[-1]["metrics"]
        self.result = {
            "steps": trainer.max_steps,
            "before": {k: first[k] for k in metrics if k in first},
            "run": {k: last[k] for k in metrics if k in last},
            "retain_only": metrics,
            "ratio_intervals": ratio_intervals(evaluation.history[-1]["suites"], measure.history[-1]["suites"]),
            "split": evaluation.split,
        }
        rank_zero_info(comparison_table(self.result, type(pl_module.objective).__name__))
        if trainer.log_dir:
            path = Path(trainer.log_dir) / BASELINE_FILE
            write_text_atomic(path, json.dumps(self.result, indent=2))

    def _evaluation(self, trainer: L.Trainer) -> Evaluation:
        evaluation = next((cb for cb in trainer.callbacks if isinstance(cb, Evaluation)), None)
        if evaluation is None or not any(h["when"] == "after" for h in evaluation.history):
            raise EUError(
                "RetainOnlyBaseline compares with the run's evaluation: list eu.callbacks.Evaluation before it "
                "in trainer.callbacks"
            )
        if missing := [s for s in self.suites if s not in evaluation.suite_names]:
            raise EUError(f"RetainOnlyBaseline suites {missing} are not in the Evaluation's {evaluation.suite_names}")
        return evaluation


def ratio_intervals(run: dict[str, Any], retain_only: dict[str, Any]) -> dict[str, list[float]]:
    """95% paired-bootstrap intervals of this run's accuracy over RetainOnlyFT's, per accuracy
    metric (``eval/domain_acc``, ``eval/domain_acc_held_out``…) both evaluations share the items of."""
    from eu.eval.report import accuracy_outcomes
    from eu.eval.stats import ratio_interval

    ours, theirs = accuracy_outcomes(run), accuracy_outcomes(retain_only)
    out = {}
    for key in ours.keys() & theirs.keys():
        interval = ratio_interval([ours[key]], [theirs[key]])
        if interval is not None:
            out[f"eval/{key.replace('_accuracy', '_acc')}"] = list(interval)
    return out


def comparison_table(result: dict[str, Any], method: str) -> str:
    """Each metric before training, after this run and after RetainOnlyFT, and this run over
    RetainOnlyFT with its 95% bootstrap interval (resampling the evaluation's items)."""
    lines = [
        f"eu: {method} against RetainOnlyFT trained the same way ({result['steps']} steps, same retain data, "
        f"optimizer, precision and seed), on the {result.get('split', 'test')} split:",
        f"eu: {'metric':30}{'before':>10}{method[:14]:>16}{'RetainOnly':>12}{'ratio':>8}  95% interval",
    ]
    intervals = result.get("ratio_intervals", {})
    for key, base in result["retain_only"].items():
        before, run = result["before"].get(key, float("nan")), result["run"].get(key, float("nan"))
        ratio = f"{run / base:.2f}" if base else "-"
        interval = f"  [{intervals[key][0]:.2f}, {intervals[key][1]:.2f}]" if key in intervals else ""
        lines.append(f"eu: {key:30}{before:>10.3f}{run:>16.3f}{base:>12.3f}{ratio:>8}{interval}")
    return "\n".join(lines)
