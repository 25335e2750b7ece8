"""Classes named in configs by ``class_path``, looked up without building anything."""

from __future__ import annotations

import importlib
from typing import Any


def resolve_class(class_path: Any) -> type | None:
    """The class ``class_path`` names (``package.module.Class``), or ``None`` when it names none."""
    module, _, name = str(class_path or "").rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if isinstance(found, type) else None


def config_entries(value: Any) -> list[Any]:
    """The entries of a config value that may be one item, a list, a bool or ``None``."""
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, list) else [value]


def names_subclass(entry: Any, base: type) -> bool:
    """Whether a ``{class_path, init_args}`` config entry names a subclass of ``base``."""
    cls = resolve_class(entry.get("class_path") if hasattr(entry, "get") else None)
    return cls is not None and issubclass(cls, base)
