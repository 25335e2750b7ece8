"""What differs between two records of settings, in one wording for every record eu keeps: the
sampled corpus, the data plan of a checkpoint, and the fits of ``eu compare``."""

from __future__ import annotations

from typing import Any

NOT_RECORDED = "(not recorded)"
"""Shown for a setting that only one of the two records holds."""


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of nested dicts and lists (list items by index): ``{"a": {"b": [1]}}`` → ``{"a.b.0": 1}``."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat or {prefix: value}


def changed(then: dict[str, Any], now: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old, new)`` for each setting that differs, sorted by key; a setting only one
    record holds shows :data:`NOT_RECORDED` on the other side. Keys in ``ignore`` (top-level) are skipped."""
    old, new = (
        flatten({k: v for k, v in then.items() if k not in ignore}),
        flatten({k: v for k, v in now.items() if k not in ignore}),
    )
    return [
        (key, old.get(key, NOT_RECORDED), new.get(key, NOT_RECORDED))
        for key in sorted(set(old) | set(new))
        if key not in old or key not in new or old[key] != new[key]
    ]


def change_line(key: str, old: Any, new: Any) -> str:
    """``key: old -> new``, values as Python writes them (strings quoted)."""
    show = lambda v: v if v is NOT_RECORDED else repr(v)  # noqa: E731 - one use, reads best inline
    return f"{key}: {show(old)} -> {show(new)}"


def setting_changes(then: dict[str, Any], now: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """What differs between two records of settings, one ``key: old -> new`` line per setting."""
    return [change_line(*change) for change in changed(then, now, ignore)]
