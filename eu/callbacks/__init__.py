"""Lightning callbacks, one module per job.

- ``evaluation.py``: :class:`Evaluation`, the suites measured before, during and after a fit, and
  :class:`Schedule`, when to measure;
- ``retain_only.py``: :class:`RetainOnlyBaseline`, RetainOnlyFT trained beside a fit and compared with it;
- ``throughput.py``: :class:`ThroughputLogger`, tokens per second;
- ``progress.py``: :class:`StepProgressBar`, progress in optimizer steps.

Names are exported lazily (:mod:`eu.exports`), so that importing one callback (the module imports the throughput
logger) does not import the others, which import the module.
"""

from eu.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Evaluation": "eu.callbacks.evaluation",
        "Schedule": "eu.callbacks.evaluation",
        "HISTORY_FILE": "eu.callbacks.evaluation",
        "RetainOnlyBaseline": "eu.callbacks.retain_only",
        "ThroughputLogger": "eu.callbacks.throughput",
        "StepProgressBar": "eu.callbacks.progress",
    },
)
