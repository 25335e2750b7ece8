"""eu's own subcommands, in one table: each names the function whose signature and docstring
jsonargparse turns into the command's options (``eu NAME --help``). ``eu fit``/``validate``/``test``
are Lightning's own (:mod:`eu.cli`)."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Command:
    """One ``eu NAME``: ``function`` in ``module`` (or, for ``eu NAME ACTION``, one function per action).

    ``positional``: required arguments are given by position (``eu export CKPT OUT``).
    ``list_options``: options that may be repeated (``--model a --model b``), collected into one list.
    ``config_option``: ``-c FILE`` stands for ``--config FILE`` (a comparison or sweep config).
    ``renamed``: old option spellings that still work, with a message naming the new one.
    """

    module: str
    function: str | dict[str, str]
    summary: str
    positional: bool = False
    list_options: tuple[str, ...] = ()
    config_option: bool = False
    renamed: dict[str, str] = field(default_factory=dict)


COMMANDS: dict[str, Command] = {
    "evaluate": Command(
        "eu.commands.evaluate",
        "evaluate",
        "measure models on the suites (ASR, domain accuracy, entropy)",
        list_options=("model",),
    ),
    "chat": Command("eu.commands.evaluate", "chat", "talk to a model or checkpoint"),
    "export": Command(
        "eu.commands.export",
        "export",
        "write a Hugging Face folder with a model card from a checkpoint",
        positional=True,
    ),
    "sample": Command("eu.commands.sample", "sample", "sample the forget corpus from a model"),
    "data": Command(
        "eu.commands.data", {"prepare": "prepare"}, "write a built-in domain's data as JSONL", positional=True
    ),
    "attack": Command("eu.commands.attack", {"relearn": "relearn"}, "the relearning attack on a model"),
    "compare": Command(
        "eu.commands.compare",
        "compare",
        "train, evaluate and attack every method of a comparison config",
        config_option=True,
    ),
    "sweep": Command(
        "eu.commands.sweep",
        "sweep",
        "train and evaluate a grid of a recipe's settings beside RetainOnlyFT",
        config_option=True,
    ),
    "judge-check": Command(
        "eu.eval.judges.check",
        "judge_check",
        "score (or calibrate) the safety judge on a labelled set",
        renamed={"--batch-size": "--batch_size", "--max-response-tokens": "--max_response_tokens"},
    ),
}


def merge_repeated(argv: list[str], option: str) -> list[str]:
    """Turn ``--OPTION a --OPTION=b`` into one ``--OPTION=["a", "b"]`` (jsonargparse takes lists whole)."""
    flag, values, rest, i = f"--{option}", [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == flag and i + 1 < len(argv):
            values.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith(flag + "="):
            values.append(arg[len(flag) + 1 :])
        else:
            rest.append(arg)
        i += 1
    if not values:
        return argv
    if len(values) == 1 and values[0].lstrip().startswith("["):
        return [f"{flag}={values[0]}", *rest]  # already a list
    return [f"{flag}={json.dumps(values)}", *rest]


BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def bare_flags(argv: list[str], functions: list[Any]) -> list[str]:
    """``--overwrite`` alone (a ``bool`` option given without a value) as ``--overwrite=true``."""
    flags = {
        f"--{name}"
        for func in functions
        for name, param in inspect.signature(func).parameters.items()
        if param.annotation in (bool, "bool")
    }
    return [
        f"{arg}=true" if arg in flags and (i + 1 == len(argv) or argv[i + 1].lower() not in BOOLEAN_WORDS) else arg
        for i, arg in enumerate(argv)
    ]


def rename_options(argv: list[str], renamed: dict[str, str], prog: str) -> list[str]:
    """Old option spellings replaced by the new ones, each with a message on stderr."""
    out = []
    for arg in argv:
        old, eq, value = arg.partition("=")
        if old in renamed:
            print(
                f"{prog}: {old} is now {renamed[old]}; the old spelling goes away in the next release", file=sys.stderr
            )
            arg = renamed[old] + eq + value
        out.append(arg)
    return out


def run_command(name: str, argv: list[str]) -> int:
    """Parse ``argv`` for ``eu NAME`` with jsonargparse and run the command's function."""
    from jsonargparse import CLI

    command, prog = COMMANDS[name], f"eu {name}"
    module = importlib.import_module(command.module)
    if isinstance(command.function, dict):
        components: Any = {action: getattr(module, f) for action, f in command.function.items()}
        functions = list(components.values())
    else:
        components = getattr(module, command.function)
        functions = [components]
    argv = rename_options(argv, command.renamed, prog)
    if command.config_option:
        argv = ["--config" if a == "-c" else a for a in argv]
    for option in command.list_options:
        argv = merge_repeated(argv, option)
    CLI(components, args=bare_flags(argv, functions), prog=prog, as_positional=command.positional)
    return 0
