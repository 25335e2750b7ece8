"""FSDP that wraps the decoder-layer class of whatever Hugging Face model is loaded."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn

from eu.errors import EUError


def decoder_layer_classes(model: nn.Module) -> set[type[nn.Module]]:
    """Classes named in the model's ``_no_split_modules`` (its transformer blocks)."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    base = getattr(model, "base_model", None)
    names |= set(getattr(getattr(base, "model", None), "_no_split_modules", None) or [])
    classes = {type(m) for m in model.modules() if type(m).__name__ in names}
    if not classes:
        raise EUError(
            f"cannot find the decoder layers of {type(model).__name__} to shard; "
            "pass trainer.strategy.init_args.auto_wrap_policy explicitly"
        )
    return classes


class AutoWrapFSDPStrategy(FSDPStrategy):
    """``FSDPStrategy`` whose wrap (and activation-checkpointing) policy is the model's decoder layer.

    The policy is found when the model exists (after ``configure_model``), so one config serves
    Llama, Qwen, OLMo or any other architecture.
    """

    def __init__(self, activation_checkpointing: bool = False, **kwargs: Any) -> None:
        """
        Args:
            activation_checkpointing: recompute each decoder layer's activations in backward.
            **kwargs: passed to Lightning's ``FSDPStrategy`` (sharding_strategy, cpu_offload, ...).
        """
        super().__init__(**kwargs)
        self._auto_activation_checkpointing = activation_checkpointing

    def setup(self, trainer: L.Trainer) -> None:
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        layers = decoder_layer_classes(trainer.lightning_module.model)
        self.kwargs.setdefault("auto_wrap_policy", ModuleWrapPolicy(layers))
        if self._auto_activation_checkpointing and not self._activation_checkpointing_kwargs:
            self._activation_checkpointing_kwargs = {"auto_wrap_policy": ModuleWrapPolicy(layers)}
        super().setup(trainer)
