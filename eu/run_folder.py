"""One run folder per ``eu fit``: logs, checkpoints and evaluation outputs all live below it.

``trainer.default_root_dir`` is the only place a config names it; loggers without a
``save_dir`` and ``ModelCheckpoint`` callbacks without a ``dirpath`` are pointed there before
they are built. A folder that already holds checkpoints belongs to an earlier run: a new fit is
refused unless it resumes that run explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eu.classpath import config_entries, names_subclass
from eu.errors import EUError

CHECKPOINTS = "checkpoints"


def fill_run_paths(trainer_config: Any) -> None:
    """Point unset logger ``save_dir`` and checkpoint ``dirpath`` at ``trainer.default_root_dir``."""
    root = trainer_config.get("default_root_dir") or os.getcwd()
    from lightning.pytorch.callbacks import ModelCheckpoint

    for logger in config_entries(trainer_config.get("logger")):
        init_args = logger.get("init_args") if hasattr(logger, "get") else None
        if init_args is not None and "save_dir" in init_args and init_args.get("save_dir") is None:
            init_args["save_dir"] = str(root)
    for callback in config_entries(trainer_config.get("callbacks")):
        init_args = callback.get("init_args") if hasattr(callback, "get") else None
        if init_args is not None and init_args.get("dirpath") is None and names_subclass(callback, ModelCheckpoint):
            init_args["dirpath"] = str(Path(root) / CHECKPOINTS)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def check_new_or_resumed(checkpoint_dirs: list[str | None], ckpt_path: str | None) -> None:
    """Refuse a fit that would write checkpoints where an earlier run left some, unless it resumes it."""
    for dirpath in checkpoint_dirs:
        if dirpath is None or not Path(dirpath).is_dir():
            continue
        folder = Path(dirpath)
        earlier = sorted(p.name for p in folder.glob("*.ckpt"))
        if not earlier:
            continue
        if ckpt_path == "last" or (ckpt_path not in (None, "best", "hpc") and _inside(Path(ckpt_path), folder)):
            continue
        raise EUError(
            f"the run folder's checkpoint folder {folder} already holds an earlier run ({', '.join(earlier[:3])}"
            f"{', ...' if len(earlier) > 3 else ''}); eu never overwrites it. Resume that run with "
            "--ckpt_path last, or start a new one with another --trainer.default_root_dir"
        )
