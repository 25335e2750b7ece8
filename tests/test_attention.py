"""Packed examples stay apart under every attention implementation: per-token losses equal one at a time."""

import importlib.util

import pytest
import torch

from eu.data.packing import first_fit_decreasing, pack_rows
from eu.data.tokenized import tokenize_records
from eu.objectives.losses import IGNORE_INDEX, chunked_token_losses
from eu.objectives.terms import decoder_and_head, decoder_hidden
from eu.prompts import ChatRecord


def _examples(tokenizer):
    records = [ChatRecord(user=f"Question {i}: " + "word " * (i + 1), assistant="answer " * (3 + i)) for i in range(5)]
    return tokenize_records(tokenizer, records, 512)


def _per_token_losses(model, batch):
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    hidden = decoder_hidden(model, batch)
    mask = batch["targets"] != IGNORE_INDEX
    return chunked_token_losses(hidden[mask], decoder_and_head(model)[1], batch["targets"][mask], "cross_entropy", 8)


def _packed_and_alone(model, ex):
    lengths = ex.lengths.tolist()
    rows = first_fit_decreasing(lengths, max(lengths) * 2)
    assert any(len(r) > 1 for r in rows) and len(rows) > 1, "the test needs several rows holding several examples"
    packed_batch = pack_rows(ex, rows, max(lengths) * 2, pad_id=0)
    packed = _per_token_losses(model, packed_batch)
    # the same tokens in the same (row-major) order, each example run on its own
    order = [i for row in rows for i in row]
    alone = torch.cat([_per_token_losses(model, pack_rows(ex, [[i]], lengths[i], pad_id=0)) for i in order])
    return packed, alone


@pytest.mark.parametrize("implementation", ["sdpa", "eager", "flex_attention"])
def test_packed_per_token_losses_equal_one_example_at_a_time(tiny_model, tiny_tokenizer, implementation):
    tiny_model.set_attn_implementation(implementation)
    with torch.no_grad():  # flex attention has no backward on CPU
        packed, alone = _packed_and_alone(tiny_model, _examples(tiny_tokenizer))
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-6)


def test_without_isolation_examples_would_leak(tiny_model, tiny_tokenizer):
    # guards the test above: joining the rows' examples into one causal sequence changes the losses
    ex = _examples(tiny_tokenizer)
    with torch.no_grad():
        packed, alone = _packed_and_alone(tiny_model, ex)
        lengths = ex.lengths.tolist()
        batch = pack_rows(ex, first_fit_decreasing(lengths, max(lengths) * 2), max(lengths) * 2, pad_id=0)
        batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"]).contiguous()
        leaking = _per_token_losses(tiny_model, batch)
    assert not torch.allclose(leaking, alone, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is None, reason="needs the flash-attn package")
def test_flash_attention_2_packed_losses_equal_one_example_at_a_time(tiny_path, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        tiny_path, dtype=torch.bfloat16, attn_implementation="flash_attention_2"
    ).cuda()
    ex = _examples(tiny_tokenizer)
    with torch.no_grad():
        packed, alone = _packed_and_alone(model, ex)
    torch.testing.assert_close(packed.float(), alone.float(), rtol=2e-2, atol=2e-2)
