"""Batched, left-padded, KV-cached generation through a model's chat template."""

from __future__ import annotations

from typing import Any

import torch


def pad_id(tokenizer: Any) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its end-of-sequence token, else 0.

    Padding is masked everywhere it is used, so any id in the vocabulary serves."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def end_token_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: EOS and the template's end-of-turn marker."""
    ids = {tokenizer.eos_token_id}
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return sorted(i for i in ids if i is not None)


class TopKDraw:
    """A logits processor that samples the next token itself, among the top-k logits at a temperature.

    It leaves only the drawn token's logit finite, so greedy decoding then emits it. The
    distribution is that of ``transformers``' temperature, top-k and multinomial sampling (with
    its inf/nan clean-up), but the random draw covers ``top_k`` candidates instead of the whole
    vocabulary (``torch.multinomial`` draws one exponential variate per vocabulary entry), so
    sampling is faster (``benchmarks/sampling.py`` measures by how much).
    The random stream differs from ``transformers``' for the same seed.
    """

    def __init__(self, temperature: float, top_k: int) -> None:
        if temperature <= 0 or top_k < 1:
            raise ValueError(f"TopKDraw needs temperature > 0 and top_k >= 1, got {temperature}, {top_k}")
        self.temperature, self.top_k = temperature, top_k

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        finite = torch.finfo(scores.dtype).max
        # as transformers' remove_invalid_values: nan -> 0, +inf -> the largest finite value
        clean = torch.nan_to_num(scores, nan=0.0, posinf=finite, neginf=-float("inf"))
        values, candidates = clean.topk(min(self.top_k, clean.shape[-1]), dim=-1)
        probs = torch.softmax(values.float() / self.temperature, dim=-1)
        drawn = candidates.gather(-1, torch.multinomial(probs, 1))
        return torch.full_like(scores, -float("inf")).scatter_(-1, drawn, 0.0)


@torch.no_grad()
def generate_from_ids(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    draw_among_top_k: bool = False,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
) -> list[list[int]]:
    """New token ids for each prompt (left-padded into one batch), cut at the first end token.

    ``draw_among_top_k``: sample with :class:`TopKDraw` (needs ``do_sample`` and ``top_k``).
    ``top_p`` (nucleus sampling, with ``do_sample``) and ``repetition_penalty`` are passed to
    ``generate`` when set.
    """
    pad = pad_id(tokenizer)
    width = max(len(p) for p in prompts)
    device = next(model.parameters()).device
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        input_ids[i, width - len(p) :] = torch.tensor(p)
        attention[i, width - len(p) :] = 1
    ends = end_token_ids(tokenizer)
    kwargs: dict[str, Any] = {"do_sample": do_sample}
    if do_sample and draw_among_top_k:
        if top_k is None:
            raise ValueError("draw_among_top_k needs top_k")
        from transformers import LogitsProcessorList

        kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
        kwargs["logits_processor"] = LogitsProcessorList([TopKDraw(temperature, top_k)])
    elif do_sample:
        # at temperature 2 in bfloat16 a logit can overflow; the reference drops inf/nan before sampling too
        kwargs.update(temperature=temperature, top_k=top_k, remove_invalid_values=True)
        if top_p is not None:
            kwargs["top_p"] = top_p
    else:
        kwargs.update(temperature=None, top_k=None, top_p=None)
    if repetition_penalty is not None:
        kwargs["repetition_penalty"] = repetition_penalty
    out = model.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        max_new_tokens=max_new_tokens,
        eos_token_id=ends,
        pad_token_id=pad,
        use_cache=True,
        **kwargs,
    )
    results = []
    for row in out[:, width:].tolist():
        cut = next((j for j, t in enumerate(row) if t in ends), len(row))
        results.append(row[:cut])
    return results
