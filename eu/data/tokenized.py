"""Tokenize a stream of chat records once and cache the result on disk.

A preference pair (:class:`~eu.data.records.PreferenceRecord`) becomes *one* example: the chosen
conversation followed by the rejected one, both with the same prompt, and ``pair_split`` saying
where the rejected one starts. Mixing and packing see a pair as one example of the summed
length, so they keep it whole, in one row, with no change to their plans;
:func:`eu.data.packing.pack_rows` gives its two sequences their own positions and sequence ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eu.data.records import ChatRecord, PreferenceRecord, is_preference
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
    pair_split: torch.Tensor | None = None
    """Preference pairs only: the length of each example's chosen sequence, after which its
    rejected sequence (same prompt length) starts; ``None`` for plain examples."""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def example(self, i: int) -> tuple[torch.Tensor, int]:
        """Token ids of example ``i`` and its prompt length."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1]], int(self.prompt_lengths[i])

    def sequences(self, i: int) -> list[tuple[torch.Tensor, int]]:
        """The sequences of example ``i`` with their prompt lengths: itself, or chosen then rejected."""
        ids, n_prompt = self.example(i)
        if self.pair_split is None:
            return [(ids, n_prompt)]
        cut = int(self.pair_split[i])
        return [(ids[:cut], n_prompt), (ids[cut:], n_prompt)]

    def supervised(self, i: int) -> int:
        """Response tokens of example ``i``, the positions its loss is computed on."""
        return sum(len(ids) - n_prompt for ids, n_prompt in self.sequences(i))

    def subset(self, indices: list[int]) -> TokenizedExamples:
        """A new collection with the examples at ``indices``, in that order."""
        split = None if self.pair_split is None else self.pair_split[indices].clone()
        return _collect([self.example(i)[0] for i in indices], self.prompt_lengths[indices].clone(), pair_split=split)


def _collect(
    parts: list[torch.Tensor], prompt_lengths: torch.Tensor, truncated: int = 0, dropped: int = 0, **extra: Any
) -> TokenizedExamples:
    lengths = torch.tensor([len(p) for p in parts], dtype=torch.long)
    return TokenizedExamples(
        tokens=torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int32),
        offsets=torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
        prompt_lengths=prompt_lengths,
        truncated=truncated,
        dropped=dropped,
        **extra,
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
    return _collect(parts, torch.tensor(prompts, dtype=torch.long), truncated, dropped)


def pair_lengths(chosen: int, rejected: int, max_length: int) -> tuple[int, int]:
    """Lengths that fit a pair into ``max_length``: each keeps half unless the other needs less."""
    if chosen + rejected <= max_length:
        return chosen, rejected
    half = max_length // 2
    if chosen <= half:
        return chosen, max_length - chosen
    if rejected <= max_length - half:
        return max_length - rejected, rejected
    return half, max_length - half


def tokenize_pairs(tokenizer: Any, pairs: list[PreferenceRecord], max_length: int) -> TokenizedExamples:
    """Encode preference pairs as one example each (chosen then rejected), cut together to ``max_length``.

    A pair is dropped when either response loses all its tokens to the cut.
    """
    parts, prompts, splits = [], [], []
    truncated = dropped = 0
    for pair in pairs:
        (chosen, n_prompt), (rejected, _) = (encode_record(tokenizer, r) for r in pair.records())
        keep = pair_lengths(len(chosen), len(rejected), max_length)
        truncated += int(keep != (len(chosen), len(rejected)))
        if n_prompt >= min(keep):
            dropped += 1
            continue
        parts.append(torch.tensor(chosen[: keep[0]] + rejected[: keep[1]], dtype=torch.int32))
        prompts.append(n_prompt)
        splits.append(keep[0])
    split = torch.tensor(splits, dtype=torch.long)
    return _collect(parts, torch.tensor(prompts, dtype=torch.long), truncated, dropped, pair_split=split)


def _content(record: ChatRecord | PreferenceRecord) -> list[str | None]:
    if isinstance(record, PreferenceRecord):
        return ["pair", record.system, record.user, record.chosen, record.rejected]
    return [record.system, record.user, record.assistant]


def cache_key(records: list[ChatRecord] | list[PreferenceRecord], tokenizer: Any, max_length: int) -> str:
    """Key of a tokenized stream: the records' content, the tokenizer and template, the length."""
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    h.update(str(max_length).encode())
    for r in records:
        h.update(json.dumps(_content(r)).encode())
    return h.hexdigest()[:32]


def tokenize_cached(
    tokenizer: Any, records: list[ChatRecord] | list[PreferenceRecord], max_length: int, directory: Path | None = None
) -> TokenizedExamples:
    """``tokenize_records`` (``tokenize_pairs`` for preference pairs) with an on-disk cache keyed by
    data, tokenizer, template and length."""
    directory = directory or cache_dir() / "tokenized"
    path = directory / f"{cache_key(records, tokenizer, max_length)}.pt"
    if path.is_file():
        return TokenizedExamples(**torch.load(path, weights_only=True))
    examples = (tokenize_pairs if is_preference(records) else tokenize_records)(tokenizer, records, max_length)
    with atomic_path(path) as tmp:
        torch.save(examples.__dict__, tmp)
    return examples
