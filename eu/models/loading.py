"""Resolve model names (aliases, Hugging Face ids, local paths) and load models and tokenizers."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import torch

from eu.errors import EUError
from eu.models.precision import native_bf16, pick_device

# Randomly initialised models of real sizes (no download), for benchmarks; byte-level tokenizer.
RANDOM_MODELS = {
    "random-llama-3.2-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16)
    | dict(num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, max_position_embeddings=8192),
}

ATTENTION = ("sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")
"""Attention implementations under which packed examples stay isolated (see eu.objectives.terms)."""
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _aliases() -> dict[str, Any]:
    from functools import partial

    from eu.models.gguf import GGUF_MODELS, build_gguf_model
    from eu.models.tiny import build_tiny_model

    return {"tiny-llama": build_tiny_model, **{a: partial(build_gguf_model, a) for a in GGUF_MODELS}}


def check_dtype(dtype: str | None) -> None:
    """Raise unless ``dtype`` is ``None`` or one of :data:`DTYPES`."""
    if dtype is not None and dtype not in DTYPES:
        raise EUError(f"model.dtype must be one of {', '.join(DTYPES)} (or null for float32), got {dtype!r}")


def _unknown_model(name: str, aliases: list[str]) -> EUError:
    close = difflib.get_close_matches(name, aliases, n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    return EUError(
        f"unknown model {name!r}: not a local folder, an alias, or a Hugging Face id (those read org/name). "
        f"{hint}Set model.model (or --model) to one of the aliases {', '.join(aliases)}, "
        "a local model folder, or an org/name id"
    )


def resolve_model(name: str) -> str:
    """A local folder or hub id for ``name``; aliases are built or fetched into the cache.

    A name that is no existing path, no alias and has no ``/`` cannot be a hub id, so it is
    refused (with the closest alias) instead of being sent to the hub.
    """
    if not name:
        raise EUError("no model given; set model.model to a Hugging Face id, a local folder or an alias")
    builders = _aliases()
    if name in RANDOM_MODELS:
        name = "tiny-llama"  # its tokenizer and chat template; weights come from load_model
    if name in builders:
        return str(builders[name]())
    if "/" not in name and not Path(name).exists():
        raise _unknown_model(name, sorted([*builders, *RANDOM_MODELS]))
    return name


def load_tokenizer(name: str, trust_remote_code: bool = False) -> Any:
    """The tokenizer of model ``name`` (alias, id or path)."""
    from transformers import AutoTokenizer

    path = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise EUError(f"cannot load the tokenizer of {name!r}: {err}") from None


def sampling_dtype() -> str | None:
    """The dtype to sample the forget corpus in: bfloat16 where the sampling device computes it natively (as the
    reference samples on its GPUs; CPUs with avx512_bf16 or AMX too), else ``None`` (float32)."""
    return "bfloat16" if native_bf16(pick_device()) else None


def compile_decoder(model: Any) -> None:
    """``torch.compile`` the model's decoder in place, with dynamic shapes (packed rows and prompts vary in length).

    Parameter names and the state dict stay as they are; the output head and the losses run eagerly.
    """
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    decoder.compile(dynamic=True)


def check_attn_implementation(value: str | None) -> None:
    """Raise a clear ``EUError`` for an attention implementation eu cannot keep packed examples apart with."""
    if value is not None and value not in ATTENTION:
        raise EUError(f"model.attn_implementation must be one of {', '.join(ATTENTION)}, got {value!r}")


def load_model(
    name: str, dtype: str | None = None, trust_remote_code: bool = False, attn_implementation: str | None = None
) -> Any:
    """An ``AutoModelForCausalLM`` for ``name`` in ``dtype`` (``None`` keeps float32) with ``attn_implementation``
    (``None``: the family's default, SDPA where it supports it and eager otherwise, e.g. Gemma-2)."""
    from transformers import AutoModelForCausalLM

    check_dtype(dtype)
    check_attn_implementation(attn_implementation)
    if name in RANDOM_MODELS:
        from eu.models.tiny import random_llama

        model = random_llama(seed=0, dtype=DTYPES[dtype or "float32"], **RANDOM_MODELS[name])
        if attn_implementation is not None:
            model.set_attn_implementation(attn_implementation)
        return model
    path = resolve_model(name)
    try:
        return AutoModelForCausalLM.from_pretrained(
            path,
            dtype=DTYPES[dtype or "float32"],
            trust_remote_code=trust_remote_code,
            **({"attn_implementation": attn_implementation} if attn_implementation else {}),
        )
    except OSError as err:
        hint = "" if Path(path).exists() else " (no such local folder; is the hub reachable?)"
        raise EUError(f"cannot load model {name!r}{hint}: {err}") from None
