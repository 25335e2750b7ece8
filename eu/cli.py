"""The ``eu`` command: Lightning's ``fit``/``validate``/``test`` plus eu's own subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from eu.callbacks.progress import add_step_progress_bar
from eu.data.datamodule import UnlearningDataModule
from eu.errors import EUError
from eu.models.lora import check_lora_strategy
from eu.models.precision import default_precision
from eu.module import UnlearningModule
from eu.run_folder import check_new_or_resumed, fill_run_paths


class EUCLI(LightningCLI):
    """LightningCLI with the data's tokenizer linked to the model."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 - jsonargparse parser
        # the reference recipe clips at 1.0 (its trainer's default); --trainer.gradient_clip_val changes it
        parser.set_defaults({"trainer.gradient_clip_val": 1.0})

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        fill_run_paths(config["trainer"])
        add_step_progress_bar(config["trainer"])
        if config["trainer"].get("precision") is None:
            precision, reason = default_precision(config["trainer"].get("accelerator"))
            config["trainer"]["precision"] = precision
            rank_zero_info(f"eu: precision {precision} ({reason}); --trainer.precision chooses another")

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        # litgpt's pattern: the data receives the model's tokenizer instead of loading its own
        self.model.connect_data(self.datamodule)

    def before_fit(self) -> None:
        objective = self.model.objective
        if objective.needs_forget and "forget" not in self.datamodule.streams:
            raise EUError(f"{type(objective).__name__} needs forget data: set data.forget.path")
        for stream in objective.needs_streams:
            if stream not in self.datamodule.streams:
                raise EUError(f"{type(objective).__name__} trains on the {stream} stream: set data.{stream}.path")
        val = {name: self.datamodule.stream_configs[name].val_examples for name in self.datamodule.streams}
        validates = self.trainer.limit_val_batches != 0
        if validates and objective.needs_forget and val.get("retain", 0) > 0 and val.get("forget", 0) == 0:
            raise EUError(
                f"data.retain.val_examples={val['retain']} but data.forget.val_examples=0: validating "
                f"{type(objective).__name__} needs held-out examples of both streams; set both or neither"
            )
        check_lora_strategy(self.trainer.strategy, self.model.lora)  # before any run output exists
        check_new_or_resumed(
            [cb.dirpath for cb in self.trainer.checkpoint_callbacks], self.config["fit"].get("ckpt_path")
        )


def _export(argv: list[str]) -> int:
    from eu.commands.export import export_checkpoint

    parser = argparse.ArgumentParser(
        prog="eu export", description="Write a Hugging Face folder with a model card from a checkpoint."
    )
    parser.add_argument("checkpoint", help="a .ckpt written by eu fit")
    parser.add_argument("out_dir", help="output folder: new, empty, or an earlier export with --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if an earlier eu export wrote it")
    parser.add_argument(
        "--trust_remote_code", action="store_true", help="allow the base model repository's own Python code"
    )
    parser.add_argument(
        "--relearn", default=None, help="an `eu attack relearn` output folder (relearn.json) to report on the card"
    )
    parser.add_argument(
        "--log_dir", default=None, help="the run's log folder (config.yaml, evaluation.json); found when omitted"
    )
    args = parser.parse_args(argv)
    out = export_checkpoint(
        args.checkpoint, args.out_dir, args.overwrite, args.trust_remote_code, args.relearn, args.log_dir
    )
    print(f"exported {args.checkpoint} to {out} (model card: {out}/README.md)")
    return 0


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


def _function_command(module: str, name: str, argv: list[str], list_options: tuple[str, ...] = ()) -> int:
    """Run a documented function as ``eu NAME`` with jsonargparse (options from its signature).

    ``list_options`` may be repeated on the command line; their values are collected into a list.
    """
    import importlib

    from jsonargparse import CLI

    for option in list_options:
        argv = merge_repeated(argv, option)
    func = getattr(importlib.import_module(module), name)
    CLI(func, args=argv, prog=f"eu {name.replace('_', '-')}", as_positional=False)
    return 0


def _sample(argv: list[str]) -> int:
    return _function_command("eu.commands.sample", "sample", argv)


def _data(argv: list[str]) -> int:
    import contextlib

    from eu.data import medicine_harmful
    from eu.domains import SIZES, prepare
    from eu.io import output_dir

    harmful = "medicine-harmful"  # in-domain harmful requests with refusals: train, validation and test parts
    parser = argparse.ArgumentParser(prog="eu data", description="Built-in retained-domain data.")
    sub = parser.add_subparsers(dest="action", required=True)
    prep = sub.add_parser(
        "prepare", help="write DOMAIN-train.jsonl and DOMAIN-test.jsonl (medicine-harmful: also -validation)"
    )
    prep.add_argument("domain", choices=sorted([*SIZES, harmful]))
    prep.add_argument("--out", default=None, help="output folder: new, empty or an earlier 'eu data prepare' folder")
    args = parser.parse_args(argv)
    # a folder of the user's own is refused; an earlier 'eu data prepare' folder is reused
    with output_dir(args.out, "data", "--out") if args.out else contextlib.nullcontext():
        for split in medicine_harmful.SPLITS if args.domain == harmful else ("train", "test"):
            path = (
                medicine_harmful.prepare(split, args.out)
                if args.domain == harmful
                else prepare(args.domain, split, args.out)
            )
            n = sum(1 for _ in path.open(encoding="utf-8"))
            print(f"{path}\t{n} rows")
    return 0


def _evaluate(argv: list[str]) -> int:
    return _function_command("eu.commands.evaluate", "evaluate", argv, list_options=("model",))


def _chat(argv: list[str]) -> int:
    return _function_command("eu.commands.evaluate", "chat", argv)


def _attack(argv: list[str]) -> int:
    """``eu attack relearn``: the relearning attack (the only attack so far)."""
    from jsonargparse import CLI

    usage = "usage: eu attack relearn --model M --examples N[,N...] --steps S (see 'eu attack relearn --help')"
    if argv[:1] in (["-h"], ["--help"]):
        print(usage)
        return 0
    if argv[:1] != ["relearn"]:
        raise EUError(f"unknown attack {argv[0]!r}; {usage}" if argv else usage)
    from eu.commands.attack import relearn

    CLI(relearn, args=argv[1:], prog="eu attack relearn", as_positional=False)
    return 0


def _compare(argv: list[str]) -> int:
    """``eu compare -c CONFIG``: train, evaluate and attack every method of a comparison config."""
    return _function_command("eu.commands.compare", "compare", ["--config" if a == "-c" else a for a in argv])


def _sweep(argv: list[str]) -> int:
    """``eu sweep -c CONFIG``: train and evaluate a grid of one recipe's settings beside RetainOnlyFT."""
    return _function_command("eu.commands.sweep", "sweep", ["--config" if a == "-c" else a for a in argv])


def _judge_check(argv: list[str]) -> int:
    from eu.eval.judges.check import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "evaluate": _evaluate,
    "judge-check": _judge_check,
    "chat": _chat,
    "export": _export,
    "sample": _sample,
    "data": _data,
    "attack": _attack,
    "compare": _compare,
    "sweep": _sweep,
}
EXTRA_HELP = "eu's own subcommands: " + ", ".join(f"eu {c}" for c in COMMANDS) + " (run 'eu CMD --help')."


def run_lightning(argv: list[str] | None) -> None:
    EUCLI(
        UnlearningModule,
        UnlearningDataModule,
        args=argv,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": EXTRA_HELP},
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``eu`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in COMMANDS:
            return COMMANDS[args[0]](args[1:])
        run_lightning(argv)
    except EUError as err:
        print(f"eu: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
