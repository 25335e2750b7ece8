"""Evaluation during training: a shared schedule and one suite-driven evaluation callback.

The throughput logger every run gets lives in :mod:`eu.callbacks.throughput`; what is measured (the
suites) lives in :mod:`eu.eval`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from eu.eval.report import before_after
from eu.io import write_text_atomic

# items per suite and evaluation when ``sizes`` / ``full_sizes`` do not name the suite
# (``offdomain``: all its prompts); ``full_sizes`` are what ``eu validate`` runs
SIZES = {"harmful": 20, "jailbreak": 20, "domain": 100}
FULL_SIZES = {"harmful": 100, "jailbreak": 200, "domain": 100}
MAX_NEW_TOKENS, BATCH_SIZE, EXAMPLES = 32, 16, 2  # per suite, when a dict does not name the suite
HISTORY_FILE = "evaluation.json"


class Schedule(L.Callback):
    """Calls :meth:`run` when fit starts (if ``before_fit``), every ``every_n_steps`` optimizer
    steps before the last (0: never) and when fit ends, with ``when`` = ``before``, ``during``
    or ``after``."""

    def __init__(self, every_n_steps: int = 0, before_fit: bool = True) -> None:
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps must be >= 0, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.before_fit = before_fit

    def run(self, trainer: L.Trainer, pl_module: Any, when: str) -> None:
        """The scheduled work; ``when`` is ``before``, ``during`` or ``after``."""
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


def per_suite(value: int | dict[str, int], suite: str, default: int) -> int:
    """``value`` for every suite, or ``value[suite]`` (``default`` when the suite is not named)."""
    return value.get(suite, default) if isinstance(value, dict) else value


class Evaluation(Schedule):
    """Runs evaluation suites on the model being trained: at the start of fit (``before_fit``),
    every ``every_n_steps`` optimizer steps and at the end.

    Suites: ``domain`` (held-out accuracy ``eval/domain_acc``, and ``eval/domain_answer_rate``, the share
    of answers that do not refuse), ``offdomain`` (response entropy
    as a fraction of log V, ``eval/offdomain_entropy_frac``), ``harmful`` and ``jailbreak``
    (attack success and refusal rates by the judge, ``eval/harmful_asr``, ...), and the file
    suites of ``eu evaluate``. Every rank takes a shard of the items. Logs the metrics and a few
    generations as TensorBoard text, keeps ``best_path`` (the highest domain accuracy among the
    evaluations whose every ASR is at most ``asr_ceiling``), prints one before/after report and
    writes every evaluation with its items to ``evaluation.json`` in the run's log folder.
    ``eu validate`` runs the suites once at ``full_sizes``.
    """

    def __init__(
        self,
        suites: str = "domain,offdomain,harmful,jailbreak",
        domain: str = "math",
        sizes: dict[str, int] | None = None,
        full_sizes: dict[str, int] | None = None,
        max_new_tokens: int | dict[str, int] = MAX_NEW_TOKENS,
        batch_size: int | dict[str, int] = BATCH_SIZE,
        judge: Any = "default",
        every_n_steps: int = 0,
        before_fit: bool = True,
        asr_ceiling: float | None = None,
        best_path: str | None = None,
        text_samples: int = 3,
        examples: int | dict[str, int] = EXAMPLES,
        split: str | None = None,
    ) -> None:
        """
        Args:
            suites: comma-separated suite names: domain, offdomain, harmful, jailbreak and
                ``eu evaluate``'s file suites (see ``eu evaluate --help``).
            domain: built-in domain of the ``domain`` suite: ``math`` or ``medicine`` (the diverse
                sets), ``math-basic`` or ``medicine-basic`` (the earlier narrow ones).
            sizes: items per suite and evaluation, e.g. ``{domain: 100, harmful: 10}``;
                unnamed suites: harmful 20, jailbreak 20, domain 100, offdomain all 8.
            full_sizes: items per suite for ``eu validate``; unnamed: harmful 100, jailbreak
                200, domain 100, offdomain all.
            max_new_tokens: generation budget per response, for every suite or per suite
                (e.g. ``{domain: 24, harmful: 32}``; unnamed suites: 32).
            batch_size: prompts generated together, for every suite or per suite (unnamed: 16).
            judge: judge spec (``default``, ``classifier:ID``, ``guard:ID``) or a judge object.
            every_n_steps: also evaluate every N optimizer steps (0 disables).
            before_fit: evaluate the untouched model when fit starts.
            asr_ceiling: only evaluations with every ASR at most this can become the best checkpoint.
            best_path: where the best checkpoint is saved (default: LOG_DIR/best.ckpt).
            text_samples: generations per suite logged as TensorBoard text.
            examples: answers per suite printed before -> after at the end of fit (for every
                suite or per suite; unnamed suites: 2).
            split: the evaluation part the built-in suites draw from: ``validation`` or ``test``;
                default ``validation`` when ``asr_ceiling`` chooses a best checkpoint (nothing is
                chosen on the items it is reported on), else ``test``.
        """
        from eu.eval.splits import check_split

        super().__init__(every_n_steps, before_fit)
        self.split = check_split(split or ("validation" if asr_ceiling is not None else "test"), "split")
        self.suite_names = [s.strip() for s in suites.split(",") if s.strip()]
        self.domain = domain
        self.sizes = {**SIZES, **(sizes or {})}
        self.full_sizes = {**FULL_SIZES, **(full_sizes or {})}
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.judge_spec = judge
        self.asr_ceiling = asr_ceiling
        self.best_path = best_path
        self.text_samples = text_samples
        self.examples = examples
        self.best_score: float | None = None
        self.history: list[dict[str, Any]] = []
        self._judge: Any = None

    def build_suites(self, full: bool = False) -> dict[str, list[dict[str, Any]]]:
        """The items of every suite at the periodic (or ``full``) sizes."""
        from eu.eval.runner import build_suites

        sizes = self.full_sizes if full else self.sizes
        return build_suites(
            self.suite_names,
            harmful_size=sizes["harmful"],
            jailbreak_size=sizes["jailbreak"],
            domain=self.domain,
            domain_size=sizes["domain"],
            offdomain_size=sizes.get("offdomain"),
            split=self.split,
        )

    def prepare_data(self) -> None:
        """Fetch the suites' assets and, when a suite needs one, the judge's model; called on rank 0 before fit."""
        from eu.eval.runner import needs_judge
        from eu.models import resolve_model

        if needs_judge(self.build_suites(full=True)):
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

    def evaluate(
        self, trainer: L.Trainer, pl_module: Any, full: bool = False, when: str = "validate"
    ) -> dict[str, float]:
        """Run the suites on every rank's shard, log the synchronised metrics and keep them in ``history``."""
        from eu.eval.report import summary_row
        from eu.eval.runner import needs_judge

        suites = self.build_suites(full)
        judge = self._get_judge() if needs_judge(suites) else None
        # generate in the run's precision: autocast under bf16-mixed, as training computes
        with trainer.strategy.precision_plugin.forward_context():
            results = self._run(trainer, pl_module, suites, judge)
        metrics = {f"eval/{k.replace('_accuracy', '_acc')}": v for k, v in summary_row(results).items()}
        step = trainer.global_step
        self.history.append({"when": when, "step": step, "metrics": metrics, "suites": results})
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
                self._log_text(logger, results, step)
            counts = ", ".join(f"{name} {res['n']}" for name, res in results.items())
            values = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
            rank_zero_info(f"eu: [{when}, step {step}] {values} (items: {counts}, {self.split} split)")
        return metrics

    def _run(self, trainer: L.Trainer, pl_module: Any, suites: dict[str, Any], judge: Any) -> dict[str, Any]:
        from eu.eval.runner import run_suites

        results: dict[str, Any] = {}
        for name, items in suites.items():
            results |= run_suites(
                pl_module.model,
                pl_module.tokenizer,
                {name: items},
                judge,
                per_suite(self.max_new_tokens, name, MAX_NEW_TOKENS),
                per_suite(self.batch_size, name, BATCH_SIZE),
                rank=trainer.global_rank,
                world_size=trainer.world_size,
            )
        return results

    def _log_text(self, logger: Any, results: dict[str, Any], step: int) -> None:
        add_text = getattr(getattr(logger, "experiment", None), "add_text", None)
        if add_text is None:
            return
        for name, res in results.items():
            lines = []
            for r in res["records"][: self.text_samples]:
                key = next((k for k in ("label", "correct", "entropy_frac") if k in r), "correct")
                lines.append(
                    f"**prompt:** {r['prompt'][:300]}  \n**response:** {r['response'][:300]}  \n**{key}:** {r.get(key)}"
                )
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
        """Evaluate; during and after fit also consider the weights for the best checkpoint;
        after fit print the report and write the history."""
        metrics = self.evaluate(trainer, pl_module, when=when)
        if when != "before":
            self._maybe_keep_best(trainer, metrics)
        if when == "after" and trainer.is_global_zero:
            rank_zero_info(self.report())
            if trainer.log_dir:
                write_text_atomic(Path(trainer.log_dir) / HISTORY_FILE, json.dumps(self.history, indent=2))

    def report(self) -> str:
        """Every metric at the first and the last evaluation of this fit, then a few answers before -> after."""
        examples = {name: per_suite(self.examples, name, EXAMPLES) for name in self.history[-1]["suites"]}
        return before_after(self.history[0], self.history[-1], examples)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "validate":
            self.evaluate(trainer, pl_module, full=True)
