"""Turn a training checkpoint into a plain Hugging Face model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from eu.data.chat import require_chat_template
from eu.errors import EUError
from eu.io import atomic_dir
from eu.lora import LoraOptions, adapter_state, apply_lora
from eu.models import load_model, load_tokenizer


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint written by eu, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise EUError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if "eu" not in ckpt or "state_dict" not in ckpt:
        raise EUError(f"{path} is not an eu training checkpoint (no 'eu' metadata)")
    return ckpt


def model_from_checkpoint(path: str | Path) -> tuple[Any, Any]:
    """The trained causal LM and its tokenizer (with the run's chat template)."""
    ckpt = read_checkpoint(path)
    meta = ckpt["eu"]
    model = load_model(meta["model"], meta.get("dtype"), meta.get("trust_remote_code", False))
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    if meta.get("lora"):
        model = apply_lora(model, LoraOptions(**meta["lora"]))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in adapter_state(dict.fromkeys(missing)) if k]
        model = model.merge_and_unload()
    else:
        missing, unexpected = model.load_state_dict(state, strict=False)
    tied = getattr(model.config, "tie_word_embeddings", False)
    missing = [k for k in missing if not (tied and k.startswith("lm_head"))]
    if unexpected or missing:
        raise EUError(
            f"{path}: weights do not match {meta['model']!r} (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    tokenizer = load_tokenizer(meta["model"], meta.get("trust_remote_code", False))
    require_chat_template(tokenizer, meta["model"], meta.get("chat_template"))
    return model, tokenizer


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir`` with safetensors weights, config, tokenizer and chat template."""
    model, tokenizer = model_from_checkpoint(checkpoint)
    model.config.use_cache = True
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)
