"""Lazily exported package names: ``from eu.data import UnlearningDataModule`` without importing every module.

A package's ``__init__`` maps each public name to the module that defines it; the module is
imported on first access. That keeps ``import eu.callbacks.throughput`` from importing the
evaluation callback (which imports the LightningModule, which imports the throughput logger).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, homes: dict[str, str]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``, whose names live in the modules ``homes`` gives
    (``{"Evaluation": "eu.callbacks.evaluation"}``)."""
    names = sorted(homes)

    def get(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(homes[name]), name)

    return names, get, lambda: names
