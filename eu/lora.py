"""Low-rank adapters through ``peft``: train a few parameters, export a merged model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class LoraOptions:
    """LoRA settings; checkpoints then hold only the adapter weights."""

    rank: int = 16
    """Rank r of the update matrices."""
    alpha: float = 32.0
    """Scaling numerator: the update is multiplied by alpha / rank."""
    dropout: float = 0.0
    """Dropout on the adapter input."""
    target_modules: list[str] | str = "all-linear"
    """Module names to adapt, or ``all-linear`` (every linear layer but the output head)."""


def apply_lora(model: Any, options: LoraOptions) -> Any:
    """Wrap ``model`` with trainable adapters; the base weights are frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def adapter_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Only the adapter entries of a module state dict."""
    return {k: v for k, v in state_dict.items() if "lora_" in k}
