"""A fingerprint of what a judge's labels depend on, so that saved labels are redone when it changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

JUDGE_CODE = tuple(
    f"eval/judges/{name}" for name in ("base.py", "actionable.py", "rule.py", "scoring.py", "likelihood.py", "hf.py")
) + ("refusal.py",)
"""The modules whose code decides a label (paths under the ``eu`` package): a change to any of them
may change labels."""


def judge_version(spec: str) -> str:
    """A hash of the judge ``spec``, the judges' code and the likelihood judge's calibration file.

    Saved evaluation results carry it; a result saved under another version keeps its generations
    but is judged again (``eu.eval.runner.saved_result``), so a fixed judge never reuses old labels.
    """
    from eu.eval.judges.likelihood import CALIBRATION_FILE

    digest = hashlib.sha256(spec.encode("utf-8"))
    package = Path(__file__).parents[2]
    for name in JUDGE_CODE:
        digest.update((package / name).read_bytes())
    kind, _, arg = spec.partition(":")
    if kind in ("default", "likelihood"):
        custom = arg.rpartition("@")[2] if arg.endswith(".json") else ""
        calibration = Path(custom) if custom else CALIBRATION_FILE
        digest.update(calibration.read_bytes() if calibration.is_file() else b"missing")
    return digest.hexdigest()[:16]
