"""Periodic safety and domain evaluation during training, with best-checkpoint selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from eu.eval.periodic import PeriodicEval


class SafetyEval(PeriodicEval):
    """Runs a budgeted subset of the suites every ``every_n_steps`` and at the end of fit.

    Logs ``eval/harmful_asr``, ``eval/jailbreak_asr``, ``eval/*_refusal_rate`` and
    ``eval/domain_acc``, a few generations as TensorBoard text, and keeps ``best_path``: the
    checkpoint with the highest domain accuracy among those whose every ASR is at most
    ``asr_ceiling``. ``eu validate`` runs the full-size suites once.
    """

    def __init__(
        self,
        suites: str = "harmful,jailbreak,domain",
        judge: Any = "default",
        every_n_steps: int = 0,
        harmful_size: int = 20,
        jailbreak_size: int = 20,
        domain: str = "math",
        domain_size: int = 50,
        full_sizes: tuple[int, int, int] = (100, 200, 100),
        max_new_tokens: int = 48,
        batch_size: int = 16,
        before_fit: bool = False,
        asr_ceiling: float | None = None,
        best_path: str | None = None,
        text_samples: int = 3,
    ) -> None:
        """
        Args:
            suites: comma-separated suite names (see ``eu evaluate --help``).
            judge: judge spec (``default``, ``classifier:ID``, ``guard:ID``) or a judge object.
            every_n_steps: evaluate every N optimizer steps (0: only at the end of fit).
            harmful_size: harmful behaviours per periodic evaluation.
            jailbreak_size: jailbreak prompts per periodic evaluation.
            domain: built-in domain of the ``domain`` suite.
            domain_size: domain items per periodic evaluation.
            full_sizes: (harmful, jailbreak, domain) sizes for ``eu validate``.
            max_new_tokens: generation budget per response.
            batch_size: prompts generated together.
            before_fit: also evaluate the untouched model when fit starts.
            asr_ceiling: only checkpoints with every ASR at most this can become the best.
            best_path: where the best checkpoint is saved (default: LOG_DIR/best.ckpt).
            text_samples: generations per suite logged as TensorBoard text.
        """
        super().__init__(every_n_steps, before_fit)
        self.suite_names = [s.strip() for s in suites.split(",") if s.strip()]
        self.judge_spec = judge
        self.sizes = (harmful_size, jailbreak_size, domain_size)
        self.full_sizes = full_sizes
        self.domain = domain
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.asr_ceiling = asr_ceiling
        self.best_path = best_path
        self.text_samples = text_samples
        self.best_score: float | None = None
        self.history: list[dict[str, Any]] = []
        self._judge: Any = None

    def prepare_data(self) -> None:
        """Fetch the suites' assets and the judge's model once; called on rank 0 before fit."""
        from eu.eval.runner import build_suites
        from eu.models import resolve_model

        build_suites(self.suite_names, *self.full_sizes[:2], self.domain, self.full_sizes[2])
        judge_model = getattr(self._get_judge(), "model_name", None)
        if isinstance(judge_model, str):
            resolve_model(judge_model)

    def _get_judge(self) -> Any:
        if self._judge is None:
            if isinstance(self.judge_spec, str):
                from eu.eval.judges import build_judge

                self._judge = build_judge(self.judge_spec)
            else:
                self._judge = self.judge_spec
        return self._judge

    def evaluate(self, trainer: L.Trainer, pl_module: Any, full: bool = False) -> dict[str, Any]:
        """Run the suites on every rank's shard and log the synchronised metrics."""
        from eu.eval.report import summary_row
        from eu.eval.runner import build_suites, run_suites

        harmful, jailbreak, domain = self.full_sizes if full else self.sizes
        suites = build_suites(self.suite_names, harmful, jailbreak, self.domain, domain)
        needs_judge = any(its and its[0]["harmful_request"] for its in suites.values())
        results = run_suites(
            pl_module.model,
            pl_module.tokenizer,
            suites,
            self._get_judge() if needs_judge else None,
            self.max_new_tokens,
            self.batch_size,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
        )
        row = summary_row(results)
        metrics = {f"eval/{k.replace('_accuracy', '_acc')}": v for k, v in row.items()}
        step = trainer.global_step
        self.history.append({"step": step, **metrics})
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
                self._log_text(logger, results, step)
            rank_zero_info(f"eu: [step {step}] " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        return metrics

    def _log_text(self, logger: Any, results: dict[str, Any], step: int) -> None:
        add_text = getattr(getattr(logger, "experiment", None), "add_text", None)
        if add_text is None:
            return
        for name, res in results.items():
            lines = [
                f"**prompt:** {r['prompt'][:300]}  \n**response:** {r['response'][:300]}  \n"
                f"**{'label' if 'label' in r else 'correct'}:** {r.get('label', r.get('correct'))}"
                for r in res["records"][: self.text_samples]
            ]
            add_text(f"eval/{name}", "\n\n---\n\n".join(lines), step)

    def _maybe_keep_best(self, trainer: L.Trainer, metrics: dict[str, float]) -> None:
        if self.asr_ceiling is None:
            return
        asrs = [v for k, v in metrics.items() if k.endswith("_asr")]
        accs = [v for k, v in metrics.items() if k.endswith("_acc")]
        if not accs or any(a > self.asr_ceiling for a in asrs):
            return
        score = sum(accs) / len(accs)
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            path = self.best_path or str(Path(trainer.log_dir or trainer.default_root_dir) / "best.ckpt")
            trainer.save_checkpoint(path)
            rank_zero_info(f"eu: new best checkpoint {path} (domain accuracy {score:.3f}, ASR <= {self.asr_ceiling})")

    def run(self, trainer: L.Trainer, pl_module: Any, when: str) -> None:
        """Evaluate; during and after fit also consider the weights for the best checkpoint."""
        metrics = self.evaluate(trainer, pl_module)
        if when != "before":
            self._maybe_keep_best(trainer, metrics)
        if when == "after" and trainer.is_global_zero and len(self.history) > 1:
            rank_zero_info(self.before_after_table())

    def before_after_table(self) -> str:
        """A text table of every metric at the first and the last evaluation of this fit."""
        first, last = self.history[0], self.history[-1]
        names = [k for k in last if k != "step"]
        width = max(len(n) for n in names)
        lines = [f"eu: {'metric':<{width}}  step {first['step']:>5}  step {last['step']:>5}"]
        for name in names:
            before = f"{first[name]:.3f}" if name in first else "-"
            lines.append(f"eu: {name:<{width}}  {before:>10}  {last[name]:>10.3f}")
        return "\n".join(lines)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "validate":
            self.evaluate(trainer, pl_module, full=True)
