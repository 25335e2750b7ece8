"""A TensorBoard logger whose folder defaults to the run folder (``trainer.default_root_dir``)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger


class RunTensorBoardLogger(TensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` with ``save_dir`` optional.

    ``eu fit`` sets an unset ``save_dir`` to ``trainer.default_root_dir`` before building the
    logger, so a config names its run folder once; outside the CLI it falls back to ``.``.
    """

    def __init__(self, save_dir: str | None = None, name: str | None = "tensorboard", **kwargs: Any) -> None:
        """
        Args:
            save_dir: folder of the logs; the run folder when unset.
            name: sub-folder of ``save_dir`` holding one ``version_N`` folder per run.
            **kwargs: passed to ``TensorBoardLogger`` (version, sub_dir, ...).
        """
        super().__init__(save_dir if save_dir is not None else ".", name=name, **kwargs)
