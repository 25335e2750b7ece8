"""Evaluation: suites, generation and scoring, judges, reports, intervals, the KL guard.

The public names are exported lazily (:mod:`eu.exports`); the other modules are imported by path.
"""

from eu.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EvalItem": "eu.eval.items",
        "EvalRecord": "eu.eval.items",
        "SuiteResult": "eu.eval.items",
        "build_suites": "eu.eval.runner",
        "run_suites": "eu.eval.runner",
        "KLGuard": "eu.eval.guard",
        "wilson": "eu.eval.stats",
        "ratio_interval": "eu.eval.stats",
        "mean_sd": "eu.eval.stats",
        "format_rate": "eu.eval.stats",
        "summary_row": "eu.eval.report",
        "check_split": "eu.eval.splits",
    },
)
