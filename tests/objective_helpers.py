"""Tiny models of several families, packed batches and naive per-conversation losses for the Eraser and SKU tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from eu.data.packing import first_fit_decreasing, pack_rows
from eu.data.records import PreferenceRecord
from eu.data.tokenized import tokenize_pairs, tokenize_records
from eu.objectives.losses import IGNORE_INDEX
from eu.prompts import ChatRecord, encode_record

FAMILIES = ("llama", "qwen2", "gemma2")


def family_model(family: str, vocab_size: int, seed: int = 0) -> Any:
    """A randomly initialised float64 causal LM of ``family`` (Gemma-2 with strong logit soft-capping)."""
    import transformers as tf

    sizes = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2)
    sizes |= dict(num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    configs = {
        "llama": lambda: tf.LlamaConfig(**sizes),
        "qwen2": lambda: tf.Qwen2Config(**sizes),
        "gemma2": lambda: tf.Gemma2Config(**sizes, head_dim=8, final_logit_softcapping=2.0),
    }
    torch.manual_seed(seed)
    return tf.AutoModelForCausalLM.from_config(configs[family]()).double().eval()


def perturbed_copy(model: Any, scale: float = 0.02) -> Any:
    """A copy of ``model`` with every weight moved a little (a reference that differs from the policy)."""
    import copy

    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn_like(p))
    return other


def packed(tokenizer: Any, records: list[ChatRecord] | list[PreferenceRecord], width: int = 1024) -> dict[str, Any]:
    """``records`` tokenized and packed as a stream's step batch, with single-rank normalisers."""
    pairs = isinstance(records[0], PreferenceRecord)
    examples = (tokenize_pairs if pairs else tokenize_records)(tokenizer, records, width)
    rows = first_fit_decreasing(examples.lengths.tolist(), width)
    batch = pack_rows(examples, rows, width, pad_id=0)
    batch["num_sequences_norm"] = torch.tensor(float(len(examples) * (2 if pairs else 1)))
    batch["num_targets_norm"] = torch.tensor(float((batch["targets"] != IGNORE_INDEX).sum()))
    batch["num_tokens_norm"] = torch.tensor(float((batch["sequence_index"] >= 0).sum()))
    batch["order"] = [i for row in rows for i in row]  # example of each packed position, for the tests
    return batch


def alone(model: Any, tokenizer: Any, record: ChatRecord) -> tuple[torch.Tensor, torch.Tensor]:
    """Full logits ([1, T, V]) of one conversation run on its own and its response targets ([1, T])."""
    ids, n_prompt = encode_record(tokenizer, record)
    ids = torch.tensor(ids)
    targets = torch.full_like(ids, IGNORE_INDEX)
    targets[n_prompt - 1 : -1] = ids[n_prompt:]
    return model(input_ids=ids[None], use_cache=False).logits, targets[None]


def alone_all_positions(model: Any, tokenizer: Any, record: ChatRecord) -> torch.Tensor:
    """Full logits ([T, V]) at every position of one conversation run on its own."""
    ids, _ = encode_record(tokenizer, record)
    return model(input_ids=torch.tensor(ids)[None], use_cache=False).logits[0]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def assert_same_value_and_gradient(ours: torch.Tensor, naive: torch.Tensor, model: Any) -> None:
    """``ours`` equals ``naive`` in value and in gradient with respect to every trainable weight.

    The models run in float64, except that Gemma-2's RMSNorm computes in float32, so its packed and
    one-at-a-time passes agree to ~1e-7 only.
    """
    loose = getattr(model.config, "model_type", "") == "gemma2"
    torch.testing.assert_close(ours, naive, rtol=1e-7 if loose else 1e-9, atol=1e-9 if loose else 1e-11)
    params = [p for p in model.parameters() if p.requires_grad]
    for a, b in zip(torch.autograd.grad(ours, params), torch.autograd.grad(naive, params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5 if loose else 1e-7, atol=1e-8 if loose else 1e-10)
