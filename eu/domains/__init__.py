"""Built-in retained domains, written as JSONL so users can read them.

A data path ``eu:DOMAIN/SPLIT`` (e.g. ``eu:math/train``) names them in configs; they are
generated on first use into the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eu.errors import EUError
from eu.io import cache_dir, cache_lock, write_jsonl_atomic

DOMAIN_VERSION = "1"
SIZES = {"math": {"train": 5000, "test": 400}, "medicine": {"train": None, "test": None}}


def domain_items(domain: str, split: str) -> list[dict[str, Any]]:
    """Items of a built-in domain split, with reference answers."""
    if domain not in SIZES:
        raise EUError(f"unknown domain {domain!r}; built-in domains: {', '.join(SIZES)}")
    if split not in ("train", "test"):
        raise EUError(f"unknown split {split!r} of domain {domain}; use train or test")
    if domain == "math":
        from eu.domains import math

        return math.generate(split, SIZES["math"][split])
    from eu.domains import medicine

    return medicine.generate(split, SIZES["medicine"][split])


def prepare(domain: str, split: str, out_dir: Path | None = None) -> Path:
    """Write ``DOMAIN-SPLIT.jsonl`` (into the cache unless ``out_dir``) and return its path."""
    out_dir = Path(out_dir) if out_dir else cache_dir() / "domains" / f"v{DOMAIN_VERSION}"
    path = out_dir / f"{domain}-{split}.jsonl"
    if not path.is_file():
        with cache_lock(path):
            if not path.is_file():  # another process may have written it meanwhile
                write_jsonl_atomic(path, domain_items(domain, split))
    return path


def is_correct(domain: str, response: str, item: dict[str, Any]) -> bool:
    """Score one response against a domain item."""
    if domain == "math":
        from eu.domains import math

        return math.is_correct(response, item["answer"])
    from eu.domains import medicine

    return medicine.is_correct(response, item.get("accepted") or [item["answer"]])
