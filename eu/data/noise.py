"""Random tokens around the user's request, drawn anew every time a step's batch is built.

Eraser (Lu et al., 2024) unlearns harmful answers with each harmful request wrapped in random
vocabulary tokens (0 to 50 before it, 0 to 20 after it, drawn again at every access of the
example), so that the unlearning also holds behind jailbreak-like noise. A stream with
``prompt_noise`` set gets that here, at the token level: the stream is tokenized once with the
span of each user turn's text recorded, and every training step inserts fresh random tokens
before and after that span, from a generator seeded by the data seed, the stream and the step,
so a resumed run sees exactly the noise an uninterrupted one sees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch

from eu.data.tokenized import TokenizedExamples, examples_from_parts
from eu.errors import EUError


@dataclass
class PromptNoise:
    """Random vocabulary tokens before and after the user's request of every training example."""

    prefix_tokens: int = 50
    """At most this many tokens before the request; the count is uniform over 0..prefix_tokens (Eraser: 50)."""
    suffix_tokens: int = 20
    """At most this many tokens after the request; uniform over 0..suffix_tokens (Eraser: 20)."""

    @property
    def most(self) -> int:
        """The most tokens one example can gain."""
        return self.prefix_tokens + self.suffix_tokens


def check_prompt_noise(stream: str, noise: PromptNoise) -> None:
    """Refuse negative token counts, naming the option."""
    for name in ("prefix_tokens", "suffix_tokens"):
        value = getattr(noise, name)
        if value < 0:
            raise EUError(f"data.{stream}.prompt_noise.{name} must be >= 0, got {value}")


def noise_vocabulary(tokenizer: Any) -> torch.Tensor:
    """The token ids noise is drawn from: the tokenizer's vocabulary without special or added tokens
    (Eraser draws from the whole vocabulary except the begin and end tokens)."""
    added = set(getattr(tokenizer, "added_tokens_decoder", {}) or {}) | set(tokenizer.all_special_ids)
    ids = [i for i in range(int(tokenizer.vocab_size)) if i not in added]
    if not ids:
        raise EUError("the tokenizer has no ordinary tokens to draw prompt noise from; drop data.*.prompt_noise")
    return torch.tensor(ids, dtype=torch.long)


def step_generator(seed: int, stream: str, step: int) -> torch.Generator:
    """The generator of one step's noise in one stream: the same on every rank and every run."""
    digest = hashlib.sha256(f"prompt-noise\0{seed}\0{stream}\0{step}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 1)


def add_prompt_noise(
    examples: TokenizedExamples,
    indices: list[int],
    noise: PromptNoise,
    vocabulary: torch.Tensor,
    generator: torch.Generator,
    max_length: int,
) -> TokenizedExamples:
    """Copies of ``examples[indices]`` (in that order), each with fresh random tokens before and
    after its user text; only the prompt grows, the response and its supervision stay.

    A copy longer than ``max_length`` loses response tokens from its end (one always stays), then
    suffix and prefix noise. ``examples`` must carry ``user_spans``.
    """
    if examples.user_spans is None:
        raise ValueError("prompt noise needs the user spans of the examples (tokenize with user_spans=True)")
    parts, prompts = [], []
    for i in indices:
        ids, n_prompt = examples.example(i)
        start, end = examples.user_spans[i].tolist()
        n_pre = int(torch.randint(noise.prefix_tokens + 1, (1,), generator=generator))
        n_suf = int(torch.randint(noise.suffix_tokens + 1, (1,), generator=generator))
        drawn = vocabulary[torch.randint(len(vocabulary), (n_pre + n_suf,), generator=generator)].to(ids.dtype)
        excess = len(ids) + n_pre + n_suf - max_length
        cut = min(max(excess, 0), len(ids) - n_prompt - 1)
        ids, excess = ids[: len(ids) - cut], excess - cut
        if excess > 0:
            n_suf_kept = max(n_suf - excess, 0)
            n_pre_kept = max(n_pre - (excess - (n_suf - n_suf_kept)), 0)
        else:
            n_suf_kept, n_pre_kept = n_suf, n_pre
        prefix, suffix = drawn[:n_pre_kept], drawn[n_pre : n_pre + n_suf_kept]
        parts.append(torch.cat([ids[:start], prefix, ids[start:end], suffix, ids[end:]]))
        prompts.append(n_prompt + len(prefix) + len(suffix))
    return examples_from_parts(parts, prompts)
