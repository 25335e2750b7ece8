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
    user_spans: torch.Tensor | None = None
    """Where each example's user text sits in its prompt (``[N, 2]``: first token, end), when asked
    for (:func:`tokenize_records` with ``user_spans=True``); ``None`` otherwise."""

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
        spans = None if self.user_spans is None else self.user_spans[indices].clone()
        parts = [self.example(i)[0] for i in indices]
        return _collect(parts, self.prompt_lengths[indices].clone(), pair_split=split, user_spans=spans)


def examples_from_parts(parts: list[torch.Tensor], prompt_lengths: list[int]) -> TokenizedExamples:
    """A collection of plain examples from their token ids and prompt lengths."""
    return _collect(parts, torch.tensor(prompt_lengths, dtype=torch.long))


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


def user_span(tokenizer: Any, record: ChatRecord, ids: list[int], n_prompt: int) -> tuple[int, int]:
    """``(start, end)``: the tokens of ``record.user`` in its encoded prompt ``ids[:n_prompt]``.

    They are what differs from the same prompt with an empty user turn: the tokens before
    ``start`` and from ``end`` on are the template's own.
    """
    blank, n_blank = encode_record(tokenizer, ChatRecord("", record.assistant, record.system))
    prompt, template = ids[:n_prompt], blank[:n_blank]
    start = 0
    while start < min(len(prompt), len(template)) and prompt[start] == template[start]:
        start += 1
    tail = 0
    while tail < min(len(prompt), len(template)) - start and prompt[-1 - tail] == template[-1 - tail]:
        tail += 1
    return start, n_prompt - tail


def tokenize_records(
    tokenizer: Any, records: list[ChatRecord], max_length: int, user_spans: bool = False
) -> TokenizedExamples:
    """Encode ``records``, truncating each to ``max_length`` tokens; with ``user_spans``, also
    record where each user turn's text sits (:func:`user_span`)."""
    parts, prompts, spans = [], [], []
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
        if user_spans:
            spans.append(user_span(tokenizer, record, ids, n_prompt))
    extra = {"user_spans": torch.tensor(spans, dtype=torch.long).reshape(-1, 2)} if user_spans else {}
    return _collect(parts, torch.tensor(prompts, dtype=torch.long), truncated, dropped, **extra)


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


def cache_key(
    records: list[ChatRecord] | list[PreferenceRecord], tokenizer: Any, max_length: int, user_spans: bool = False
) -> str:
    """Key of a tokenized stream: the records' content, the tokenizer and template, the length
    (and whether the user turns' spans are recorded)."""
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    h.update(str(max_length).encode())
    if user_spans:
        h.update(b"user_spans")
    for r in records:
        h.update(json.dumps(_content(r)).encode())
    return h.hexdigest()[:32]


def tokenize_cached(
    tokenizer: Any,
    records: list[ChatRecord] | list[PreferenceRecord],
    max_length: int,
    directory: Path | None = None,
    user_spans: bool = False,
) -> TokenizedExamples:
    """``tokenize_records`` (``tokenize_pairs`` for preference pairs) with an on-disk cache keyed by
    data, tokenizer, template and length; ``user_spans`` as in :func:`tokenize_records` (plain
    records only)."""
    directory = directory or cache_dir() / "tokenized"
    path = directory / f"{cache_key(records, tokenizer, max_length, user_spans)}.pt"
    if path.is_file():
        return TokenizedExamples(**torch.load(path, weights_only=True))
    if is_preference(records):
        examples = tokenize_pairs(tokenizer, records, max_length)
    elif user_spans:
        examples = tokenize_records(tokenizer, records, max_length, True)
    else:
        examples = tokenize_records(tokenizer, records, max_length)
    with atomic_path(path) as tmp:
        torch.save(examples.__dict__, tmp)
    return examples
