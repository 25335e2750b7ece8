"""Built-in retained domains, written as JSONL so users can read them.

A data path ``eu:DOMAIN/SPLIT`` (e.g. ``eu:math/train``) names them in configs; they are
generated on first use into the cache. ``math`` and ``medicine`` are the diverse sets (many
task families / instruction types, held out by family, phrasing and operand range);
``math-basic`` and ``medicine-basic`` are the earlier narrow sets, unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from eu.errors import EUError
from eu.io import build_once, cache_dir, write_jsonl_atomic

DOMAIN_VERSION = "2"
"""Cache folder of the domain files (v2: ``math``/``medicine`` became the diverse sets, the
earlier ones ``math-basic``/``medicine-basic``, whose content tests pin)."""
SIZES: dict[str, dict[str, int | None]] = {
    "math": {"train": 6000, "test": 400},
    "medicine": {"train": None, "test": 400},
    "math-basic": {"train": 5000, "test": 400},
    "medicine-basic": {"train": None, "test": None},
}
DOMAINS = tuple(SIZES)
"""Built-in domain names."""
RENAMED = {
    "math": "eu:math is the diverse maths set (many task families); the earlier arithmetic set is eu:math-basic",
    "medicine": "eu:medicine is the diverse medical set (many instruction types); the earlier one is eu:medicine-basic",
}
"""Said once, when a diverse set is first written: the names meant the narrow sets before."""
_TOLD: set[str] = set()


def domain_items(domain: str, split: str) -> list[dict[str, Any]]:
    """Items of a built-in domain split, with reference answers."""
    if domain not in SIZES:
        raise EUError(f"unknown domain {domain!r}; built-in domains: {', '.join(SIZES)}")
    if split not in ("train", "test"):
        raise EUError(f"unknown split {split!r} of domain {domain}; use train or test")
    size = SIZES[domain][split]
    if domain == "math":
        from eu.domains import math

        return math.generate(split, size or 0)
    if domain == "medicine":
        from eu.domains import medicine

        return medicine.generate(split, size)
    if domain == "math-basic":
        from eu.domains import math_basic

        return math_basic.generate(split, size or 0)
    from eu.domains import medicine_basic

    return medicine_basic.generate(split, size)


def prepare(domain: str, split: str, out_dir: Path | None = None) -> Path:
    """Write the split's JSONL (into the cache unless ``out_dir``) and return its path."""
    out_dir = Path(out_dir) if out_dir else cache_dir() / "domains" / f"v{DOMAIN_VERSION}"
    if domain not in SIZES:
        domain_items(domain, split)  # the clear error
    path = out_dir / f"{domain}-{split}.jsonl"

    def write() -> None:
        if domain in RENAMED and domain not in _TOLD:
            _TOLD.add(domain)
            print(f"eu: {RENAMED[domain]}", file=sys.stderr)
        write_jsonl_atomic(path, domain_items(domain, split))

    return build_once(path, path.is_file, write)


SCORERS = ("auto", "number", "text", "choice", "contains")
"""How a domain answer is scored: ``auto`` by the reference's type (a number by the response's
parsed final answer, a term by its content words), ``number``, ``text``, ``choice`` (the most
likely of the item's ``choices``, scored by the evaluation runner) or ``contains`` (the reference
anywhere in the response: counts wrong working that happens to contain it, so only on request)."""


def is_correct(domain: str, response: str, item: dict[str, Any]) -> bool:
    """Score one generated response against a domain item by its ``scorer`` (``auto`` when absent):
    ``math-basic`` by exact match of the parsed final answer, every other domain and user file
    by reference matching of the answer's type (:mod:`eu.domains.matching`)."""
    from eu.domains.matching import matches, number_matches, text_matches

    accepted = item.get("accepted") or [item["answer"]]
    scorer = item.get("scorer") or "auto"
    if scorer == "number":
        return any(number_matches(response, ref) for ref in accepted)
    if scorer == "text":
        return any(text_matches(response, ref) for ref in accepted)
    if scorer == "contains":
        from eu.domains import medicine_basic

        return medicine_basic.is_correct(response, accepted)
    if scorer != "auto":
        raise EUError(f"scorer {scorer!r} cannot score a generated response; use one of auto, number, text, contains")
    if domain == "math-basic":
        from eu.domains import math_basic

        return math_basic.is_correct(response, item["answer"])
    return matches(response, accepted)
