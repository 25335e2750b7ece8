"""Low-rank adapters through ``peft``: train a few parameters, export a merged model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eu.errors import EUError


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


def check_lora_strategy(strategy: Any, lora: LoraOptions | None) -> None:
    """Refuse a training strategy that cannot hold LoRA's frozen base and trainable adapters.

    DDP and eu's FSDP config (``configs/strategy/fsdp.yaml``) hold them. Refused: DeepSpeed (its
    checkpoints are engine folders that skip eu's adapter-only state dict and that ``eu export``
    cannot read), FSDP with ``use_orig_params=False`` (it flattens frozen and trainable
    parameters into one tensor, which must be all trainable or all frozen) and FSDP with
    ``state_dict_type="sharded"`` (the checkpoint holds only the adapter, but a sharded load
    needs every weight, so the run could not resume). ``strategy=None`` (no trainer) passes.
    """
    if lora is None or strategy is None:
        return
    names = [cls.__name__ for cls in type(strategy).__mro__]
    if any("DeepSpeed" in n for n in names):
        problem = "DeepSpeed saves engine folders that skip eu's adapter-only checkpoints and eu export cannot read"
    elif "FSDPStrategy" not in names:
        return
    elif not getattr(strategy, "kwargs", {}).get("use_orig_params", True):
        problem = "FSDP with use_orig_params=false cannot flatten frozen base weights and trainable adapters together"
    elif getattr(strategy, "_state_dict_type", "full") == "sharded":
        problem = "FSDP sharded checkpoints would hold only the adapter, which a sharded load cannot resume from"
    else:
        return
    raise EUError(
        f"model.lora cannot be combined with trainer.strategy {type(strategy).__name__}: {problem}. Use "
        "configs/strategy/ddp.yaml or configs/strategy/fsdp.yaml (use_orig_params true, state_dict_type full), "
        "or drop model.lora to train all weights"
    )
