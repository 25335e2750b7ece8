"""eu: Exclusive Unlearning of large language models with PyTorch Lightning."""

from eu.data.datamodule import StreamConfig, UnlearningDataModule
from eu.module import UnlearningModule
from eu.objectives import ExclusiveUnlearning, Objective, RetainOnly

__all__ = [
    "ExclusiveUnlearning",
    "Objective",
    "RetainOnly",
    "StreamConfig",
    "UnlearningDataModule",
    "UnlearningModule",
]
__version__ = "0.1.0"
