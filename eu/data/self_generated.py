"""The forget stream's default source: a corpus the model being unlearned writes itself.

The corpus is sampled once per model and settings into the cache. The model comes from
whoever owns it (the LightningModule, through ``UnlearningDataModule.connect``): the data side
never loads a model of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eu.data.sampler import SampleSettings, corpus_summary, sample_corpus, settings_record
from eu.io import build_once, cache_dir
from eu.models.precision import pick_device

CORPUS_FORMAT = 2
"""Bumped when rows change meaning (2: rows record the system turn they were sampled with)."""
ModelLoader = Callable[[], Any]
"""Returns the causal LM to sample from (a fresh copy in its original weights)."""


def model_output_path(folder: str, prefix: str, model_name: str, spec: list[Any], dtype: str | None) -> Path:
    """Where text that ``model_name``, loaded in ``dtype`` (``None``: float32), wrote under ``spec`` is cached:
    ``CACHE/folder/PREFIX{model slug}-{hash of spec and dtype}.jsonl``."""
    if dtype not in (None, "float32"):  # float32 outputs keep the keys they were cached under
        spec = [*spec, dtype]
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name).strip("_")[-60:]
    return cache_dir() / folder / f"{prefix}{slug}-{key}.jsonl"


def corpus_path(model_name: str, settings: SampleSettings, dtype: str | None = None) -> Path:
    """Where the corpus of ``model_name`` sampled with ``settings`` in ``dtype`` (``None``: float32) is cached."""
    return model_output_path("forget", "", model_name, [model_name, settings_record(settings), CORPUS_FORMAT], dtype)


def ensure_corpus(
    model_name: str, settings: SampleSettings, tokenizer: Any, load_model: ModelLoader, dtype: str | None = None
) -> Path:
    """Sample the corpus on first use (resuming an interrupted run) and return its path.

    ``load_model`` is called only when the corpus must be sampled and returns the model in ``dtype``
    (``None``: float32), which keys the cache. Processes that need the same corpus at once wait for
    the one sampling it.
    """
    path = corpus_path(model_name, settings, dtype)
    return build_once(path, path.is_file, lambda: _sample_into(path, model_name, settings, tokenizer, load_model))


def _sample_into(
    path: Path, model_name: str, settings: SampleSettings, tokenizer: Any, load_model: ModelLoader
) -> None:
    print(f"eu: sampling a forget corpus of {settings.num_pairs} pairs from {model_name} into {path}", file=sys.stderr)
    model = load_model()
    model.to(pick_device()).eval()
    sample_corpus(model, tokenizer, path, settings)
    print(f"eu: forget corpus {json.dumps(corpus_summary(path, tokenizer))}", file=sys.stderr)
    del model
