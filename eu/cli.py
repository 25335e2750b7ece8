"""The ``eu`` command: Lightning's ``fit``/``validate``/``test`` plus eu's own subcommands."""

from __future__ import annotations

import sys

from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from eu.callbacks.progress import add_step_progress_bar
from eu.commands import COMMANDS, run_command
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


EXTRA_HELP = (
    "eu's own subcommands (run 'eu CMD --help'): "
    + "; ".join(f"eu {name}: {command.summary}" for name, command in COMMANDS.items())
    + "."
)


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
            return run_command(args[0], args[1:])
        run_lightning(argv)
    except EUError as err:
        print(f"eu: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
