"""Batched, left-padded, KV-cached generation through a model's chat template."""

from __future__ import annotations

from typing import Any

import torch


def end_token_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: EOS and the template's end-of-turn marker."""
    ids = {tokenizer.eos_token_id}
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return sorted(i for i in ids if i is not None)


@torch.no_grad()
def generate_from_ids(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> list[list[int]]:
    """New token ids for each prompt (left-padded into one batch), cut at the first end token."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(p) for p in prompts)
    device = next(model.parameters()).device
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        input_ids[i, width - len(p) :] = torch.tensor(p)
        attention[i, width - len(p) :] = 1
    ends = end_token_ids(tokenizer)
    kwargs: dict[str, Any] = {"do_sample": do_sample}
    if do_sample:
        # at temperature 2 in bfloat16 a logit can overflow; the reference drops inf/nan before sampling too
        kwargs.update(temperature=temperature, top_k=top_k, remove_invalid_values=True)
    else:
        kwargs.update(temperature=None, top_k=None, top_p=None)
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
