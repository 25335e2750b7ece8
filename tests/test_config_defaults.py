"""The default a config comment states is the code's default.

Every key comment of a shipped fit config says ``TYPE, default VALUE; …`` (tests/test_configs.py
checks the form). This test reads VALUE and compares it with the default of the parameter the key
sets: ``trainer.*`` a ``lightning.Trainer`` argument, ``model.*`` an ``UnlearningModule`` argument,
``data.*`` an ``UnlearningDataModule`` argument or a field of its stream and sampling dataclasses,
and ``….init_args.*`` an argument of the class named by the sibling ``class_path``. Values that are
not scalars (a class name, a dict) and keys owned by nothing above are not compared.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from utils import ROOT

FIT_CONFIGS = [p for p in sorted((ROOT / "configs").rglob("*.yaml")) if p.parent.name not in ("compare", "sweep")]
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_][\w.]*):(?P<value>[^#]*)(?:#(?P<comment>.*))?$")
STATED = re.compile(r"\bdefault (?P<value>[^\s;()]+)")
MISSING = object()


def commented_keys(path: Path) -> list[tuple[int, tuple[str, ...], str, dict[tuple[str, ...], str]]]:
    """(line, key path, comment, class paths seen so far by mapping path) of every commented key line."""
    rows, stack, classes, items = [], [], {}, 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match["indent"]) + (len(match["dash"]) if match["dash"] else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = tuple(k for _, k in stack)
        if match["dash"]:
            items += 1
            parent = (*parent, f"[{items}]")
            stack.append((indent - 1, f"[{items}]"))
        key_path = (*parent, match["key"])
        if match["key"] == "class_path":
            classes[parent] = match["value"].strip()
        stack.append((indent, match["key"]))
        if match["comment"]:
            rows.append((number, key_path, match["comment"].strip(), dict(classes)))
    return rows


def _plain(annotation: Any) -> Any:
    """``X`` from ``X | None`` / ``Optional[X]``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _import(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _parameter_default(owner: Any, name: str) -> Any:
    if dataclasses.is_dataclass(owner):
        field = {f.name: f for f in dataclasses.fields(owner)}.get(name)
        if field is None or field.default is dataclasses.MISSING:
            return MISSING
        return field.default
    param = inspect.signature(owner).parameters.get(name)
    return MISSING if param is None or param.default is inspect.Parameter.empty else param.default


def code_default(key_path: tuple[str, ...], classes: dict[tuple[str, ...], str]) -> Any:
    """The code's default for the parameter ``key_path`` sets, or MISSING when no owner is known."""
    import lightning

    from eu.data.datamodule import UnlearningDataModule
    from eu.module import UnlearningModule

    roots = {"trainer": lightning.Trainer, "model": UnlearningModule, "data": UnlearningDataModule}
    if len(key_path) >= 2 and key_path[-2] == "init_args" and key_path[:-2] in classes:
        return _parameter_default(_import(classes[key_path[:-2]]), key_path[-1])
    if len(key_path) == 2 and key_path[0] in roots:
        return _parameter_default(roots[key_path[0]], key_path[1])
    if len(key_path) == 3 and key_path[0] == "data":
        hints = typing.get_type_hints(UnlearningDataModule.__init__)
        owner = _plain(hints.get(key_path[1]))
        if dataclasses.is_dataclass(owner):
            return _parameter_default(owner, key_path[2])
    return MISSING


def same(stated: Any, default: Any) -> bool:
    if isinstance(stated, bool) or isinstance(default, bool) or stated is None or default is None:
        return stated is default
    if isinstance(stated, int | float) and isinstance(default, int | float):
        return float(stated) == float(default)
    return stated == default


def stated_default(comment: str) -> Any:
    """The scalar a comment states as the default, or MISSING (no default, or not a scalar)."""
    match = STATED.search(comment)
    if not match or comment.startswith("no default"):
        return MISSING
    value = yaml.safe_load(match["value"].rstrip(",:"))
    return value if value is None or isinstance(value, bool | int | float | str) else MISSING


def wrong_defaults(path: Path) -> list[str]:
    """``file:line key: comment says X, code says Y`` for every stated scalar default that differs."""
    out = []
    for number, key_path, comment, classes in commented_keys(path):
        if key_path[-1] in ("class_path", "init_args"):
            continue
        stated = stated_default(comment)
        default = code_default(key_path, classes) if stated is not MISSING else MISSING
        if stated is MISSING or default is MISSING or dataclasses.is_dataclass(default):
            continue
        if isinstance(stated, str) and not isinstance(default, str):
            continue  # a word describing a non-scalar default ("default eu.objectives.ExclusiveUnlearning")
        if not same(stated, default):
            name = ".".join(k for k in key_path if not k.startswith("["))
            out.append(f"{path.relative_to(ROOT)}:{number} {name}: the comment says {stated!r}, the code {default!r}")
    return out


@pytest.mark.parametrize("path", FIT_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_stated_default_is_the_codes(path):
    assert wrong_defaults(path) == []


def test_a_wrong_stated_default_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(
        "data:  # dict, no default\n"
        "  seed: 1  # int, default 7; wrong: the code says 42\n"
        "  retain:  # dict, no default\n"
        "    block_length: 128  # int, default 512; right\n"
        "    examples_per_step: 2  # int, default 3; wrong\n"
        "trainer:  # dict, default {}\n"
        "  max_steps: 5  # int, default -1 (no limit)\n"
        "  callbacks:\n"
        "    - class_path: eu.callbacks.Evaluation  # class, no default\n"
        "      init_args:  # dict, default {}\n"
        "        every_n_steps: 50  # int, default 3; wrong\n",
        encoding="utf-8",
    )
    found = wrong_defaults(config)
    assert [line.split()[0] for line in found] == ["c.yaml:2", "c.yaml:5", "c.yaml:11"], found
    assert "the comment says 7, the code 42" in found[0]
