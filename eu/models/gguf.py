"""Chat models that come as GGUF files inside PyPI packages, converted once to safetensors."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from eu.assets import asset_file
from eu.io import atomic_dir, build_once, cache_dir

GGUF_MODELS = {"smollm2-135m-instruct": "smollm2-135m-instruct-gguf"}


def build_gguf_model(alias: str) -> Path:
    """A cached Hugging Face folder (safetensors, tokenizer, chat template) for ``alias``."""
    target = cache_dir() / "models" / alias
    return build_once(target, (target / "config.json").is_file, lambda: _convert(alias, target))


def _convert(alias: str, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = asset_file(GGUF_MODELS[alias])
    print(f"eu: converting {gguf.name} to safetensors in {target} (once)", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the weights are de-quantized on load; drop the GGUF quantizer so they save as plain tensors
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    with atomic_dir(target, kind="model") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
