"""Tokenize a stream of chat records once and cache the result on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eu.data.records import ChatRecord
from eu.io import atomic_path, cache_dir
from eu.prompts import encode_record, tokenizer_fingerprint

CACHE_VERSION = "1"


@dataclass
class TokenizedExamples:
    """Token ids of many examples stored flat, with where each starts and its prompt length."""

    tokens: torch.Tensor
    """All token ids, concatenated (int32)."""
    offsets: torch.Tensor
    """Start of each example in ``tokens``; ``len(offsets) == len(self) + 1``."""
    prompt_lengths: torch.Tensor
    """Number of prompt tokens (not supervised) at the start of each example."""
    truncated: int = 0
    """Examples cut to the block length."""
    dropped: int = 0
    """Examples dropped because no response token survived truncation."""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def example(self, i: int) -> tuple[torch.Tensor, int]:
        """Token ids of example ``i`` and its prompt length."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1]], int(self.prompt_lengths[i])

    def subset(self, indices: list[int]) -> TokenizedExamples:
        """A new collection with the examples at ``indices``, in that order."""
        parts = [self.example(i)[0] for i in indices]
        lengths = torch.tensor([len(p) for p in parts], dtype=torch.long)
        return TokenizedExamples(
            tokens=torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int32),
            offsets=torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
            prompt_lengths=self.prompt_lengths[indices].clone(),
        )


def tokenize_records(tokenizer: Any, records: list[ChatRecord], max_length: int) -> TokenizedExamples:
    """Encode ``records``, truncating each to ``max_length`` tokens."""
    parts, prompts = [], []
    truncated = dropped = 0
    for record in records:
        ids, n_prompt = encode_record(tokenizer, record)
        if len(ids) > max_length:
            truncated += 1
            ids = ids[:max_length]
        if n_prompt >= len(ids):
            dropped += 1
            continue
        parts.append(torch.tensor(ids, dtype=torch.int32))
        prompts.append(n_prompt)
    lengths = torch.tensor([len(p) for p in parts], dtype=torch.long)
    return TokenizedExamples(
        tokens=torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int32),
        offsets=torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
        prompt_lengths=torch.tensor(prompts, dtype=torch.long),
        truncated=truncated,
        dropped=dropped,
    )


def cache_key(records: list[ChatRecord], tokenizer: Any, max_length: int) -> str:
    """Key of a tokenized stream: the records' content, the tokenizer and template, the length."""
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    h.update(str(max_length).encode())
    for r in records:
        h.update(json.dumps([r.system, r.user, r.assistant]).encode())
    return h.hexdigest()[:32]


def tokenize_cached(
    tokenizer: Any, records: list[ChatRecord], max_length: int, directory: Path | None = None
) -> TokenizedExamples:
    """``tokenize_records`` with an on-disk cache keyed by data, tokenizer, template and length."""
    directory = directory or cache_dir() / "tokenized"
    path = directory / f"{cache_key(records, tokenizer, max_length)}.pt"
    if path.is_file():
        return TokenizedExamples(**torch.load(path, weights_only=True))
    examples = tokenize_records(tokenizer, records, max_length)
    with atomic_path(path) as tmp:
        torch.save(examples.__dict__, tmp)
    return examples
