"""eu's checkpoints: safe loading (no code runs), eu's metadata, and rebuilding the trained model.

A checkpoint is data, never a program: it is read with ``torch.load(weights_only=True)``, and
remote model code runs only when the command line asks for it, never because a checkpoint says so.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch

from eu.errors import EUError


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint written by eu, loaded without running code, or a clear ``EUError``."""
    path = Path(path)
    if path.is_dir():
        raise EUError(
            f"{path} is a folder (a sharded checkpoint?); give a single .ckpt file. Consolidate a sharded "
            "FSDP checkpoint first with `python -m lightning.pytorch.utilities.consolidate_checkpoint PATH`"
        )
    if not path.is_file():
        raise EUError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError or others for foreign pickles
        raise EUError(
            f"{path} is not a plain-data checkpoint: loading it would run code it carries, and eu refuses "
            f"that ({type(err).__name__}: {str(err).splitlines()[0][:200]}). Use checkpoints written by eu fit"
        ) from None
    if not isinstance(ckpt, dict) or "eu" not in ckpt or "state_dict" not in ckpt:
        raise EUError(f"{path} is not an eu training checkpoint (no 'eu' metadata)")
    return ckpt


def objective_spec(objective: Any) -> dict[str, Any]:
    """``{class_path, init_args}`` of an objective, as a config would write it (plain JSON)."""
    cls = type(objective)
    init_args = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = getattr(objective, name, param.default)
        if value is inspect.Parameter.empty:
            continue
        if type(value).__module__.startswith("eu.objectives."):  # a wrapped objective (WithRefusals)
            value = objective_spec(value)
        try:
            json.dumps(value)
        except TypeError:
            value = repr(value)
        init_args[name] = value
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def eu_version() -> str:
    """The installed eu's version (``unknown`` when it runs from a source tree without metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eu")
    except PackageNotFoundError:
        return "unknown"


def checkpoint_metadata(
    model: str,
    dtype: str | None,
    trust_remote_code: bool,
    chat_template: str | None,
    objective: Any,
    lora: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``eu`` entry of a checkpoint: plain JSON types only, so it loads with ``weights_only``."""
    return {
        "model": model,
        "dtype": dtype,
        "trust_remote_code": trust_remote_code,
        "chat_template": chat_template,
        "objective": objective_spec(objective),
        "lora": lora,
        "eu_version": eu_version(),
    }


def _remote_code_allowed(path: Path, meta: dict[str, Any], trust_remote_code: bool) -> bool:
    if meta.get("trust_remote_code") and not trust_remote_code:
        raise EUError(
            f"{path} was trained with remote model code for {meta['model']!r}; eu runs such code only when "
            "you ask: pass --trust_remote_code if you trust that model repository"
        )
    return trust_remote_code


def load_model_and_tokenizer(model: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """A model and its chat tokenizer from any reference: alias, Hugging Face id, folder or eu ``.ckpt``."""
    if model.endswith(".ckpt"):
        return model_from_checkpoint(model, trust_remote_code)
    from eu.models import load_model
    from eu.prompts import load_chat_tokenizer

    return load_model(model, None, trust_remote_code), load_chat_tokenizer(model, trust_remote_code)


def model_from_checkpoint(path: str | Path, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """The trained causal LM and its tokenizer (with the run's chat template).

    Args:
        path: a ``.ckpt`` written by ``eu fit``.
        trust_remote_code: allow the base model's repository code (the checkpoint cannot allow it).
    """
    from eu.models import load_model
    from eu.models.lora import LoraOptions, adapter_state, apply_lora
    from eu.prompts import load_chat_tokenizer

    path = Path(path)
    ckpt = read_checkpoint(path)
    meta = ckpt["eu"]
    remote = _remote_code_allowed(path, meta, trust_remote_code)
    model = load_model(meta["model"], meta.get("dtype"), remote)
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
    return model, load_chat_tokenizer(meta["model"], remote, meta.get("chat_template"))
