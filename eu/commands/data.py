"""``eu data prepare``: a built-in domain's data (or the in-domain harmful requests) as JSONL files."""

from __future__ import annotations

import contextlib

from eu.errors import EUError

HARMFUL = "medicine-harmful"
"""The in-domain harmful requests with refusals: train, validation and test parts."""


def prepare(domain: str, out: str | None = None) -> None:
    """Write DOMAIN-train.jsonl and DOMAIN-test.jsonl (medicine-harmful: also -validation) and print each file's rows.

    Args:
        domain: a built-in domain (math, math-basic, medicine, medicine-basic) or medicine-harmful.
        out: output folder: new, empty or an earlier ``eu data prepare`` folder (default: eu's cache).
    """
    from eu.data import medicine_harmful
    from eu.domains import SIZES
    from eu.domains import prepare as prepare_domain
    from eu.io import output_dir

    names = sorted([*SIZES, HARMFUL])
    if domain not in names:
        raise EUError(f"eu data prepare: unknown domain {domain!r}; choose one of {', '.join(names)}")
    # a folder of the user's own is refused; an earlier 'eu data prepare' folder is reused
    with output_dir(out, "data", "--out") if out else contextlib.nullcontext():
        for split in medicine_harmful.SPLITS if domain == HARMFUL else ("train", "test"):
            path = medicine_harmful.prepare(split, out) if domain == HARMFUL else prepare_domain(domain, split, out)
            n = sum(1 for _ in path.open(encoding="utf-8"))
            print(f"{path}\t{n} rows")
