"""Turn a training checkpoint into a plain Hugging Face model folder."""

from __future__ import annotations

from pathlib import Path

from eu.checkpoint import model_from_checkpoint
from eu.io import atomic_dir, check_output_dir


def export_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, overwrite: bool = False, trust_remote_code: bool = False
) -> Path:
    """Write ``out_dir`` with safetensors weights, config, tokenizer and chat template.

    ``out_dir`` must not exist, be empty, or (with ``overwrite``) be an earlier ``eu export``;
    a folder holding anything else is never touched.
    """
    check_output_dir(out_dir, "export", overwrite, "OUT_DIR")  # fail before loading the model
    model, tokenizer = model_from_checkpoint(checkpoint, trust_remote_code)
    model.config.use_cache = True
    with atomic_dir(out_dir, "export", overwrite, "OUT_DIR") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)
