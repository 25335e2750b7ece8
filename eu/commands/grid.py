"""Grids of ``eu fit`` settings and the rule that chooses a point: shared by ``eu sweep`` and ``eu compare``."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Collection
from typing import Any

from eu.errors import EUError


def point_name(values: dict[str, Any], named: Collection[str] | None = None) -> str:
    """A run-folder name for one grid point: ``forget_weight-0.6_max_steps-160`` (last key parts).

    ``named``: the keys that appear in the name (default all); a key with one value in the grid
    is a setting every point shares and names nothing.
    """
    parts = [f"{key.rsplit('.', 1)[-1]}-{value}" for key, value in values.items() if named is None or key in named]
    return re.sub(r"[^A-Za-z0-9_.-]+", "", "_".join(parts)) or "base"


def varying_keys(grid: dict[str, list[Any]]) -> set[str]:
    """The grid keys with more than one value: the ones that tell points apart."""
    return {key for key, values in grid.items() if len(values) > 1}


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the grid's key order (first key slowest)."""
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise EUError(f"grid: {key} needs a non-empty list of values, got {values!r}")
        if key.startswith("-") or "=" in key:
            raise EUError(f"grid: write keys as eu fit options without dashes, e.g. trainer.max_steps, got {key!r}")
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def grid_args(values: dict[str, Any]) -> list[str]:
    """``eu fit`` arguments that set a grid point: ``--key=value`` (lists and dicts as JSON)."""
    return [
        f"--{key}={json.dumps(value) if isinstance(value, (list, dict)) else value}" for key, value in values.items()
    ]


def worst_asr(row: dict[str, Any]) -> float:
    """The higher of a row's harmful and jailbreak ASR (1.0 when one is missing)."""
    asrs = [row.get("harmful_asr"), row.get("jailbreak_asr")]
    return max(1.0 if a is None else a for a in asrs)


def choose(rows: list[dict[str, Any]], min_ratio: float) -> int:
    """The index of the chosen validation row: the lowest worst ASR among the rows whose ratio is
    at least ``min_ratio`` (ties: the higher ratio, then grid order); when none reaches it,
    the highest ratio (ties: the lower worst ASR, then grid order)."""
    if not rows:
        raise EUError("there is no grid point to choose from")
    # rates are counts over n computed in float32 (1/20 is 0.050000001): compare at 6 decimals
    keeping = [i for i, r in enumerate(rows) if r["ratio"] is not None and round(r["ratio"], 6) >= min_ratio]
    if keeping:
        return min(keeping, key=lambda i: (round(worst_asr(rows[i]), 6), -rows[i]["ratio"], i))
    return min(range(len(rows)), key=lambda i: (-(rows[i]["ratio"] or 0.0), round(worst_asr(rows[i]), 6), i))
