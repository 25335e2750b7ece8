"""Sampling among the top-k candidates only draws from transformers' own distribution."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper

from eu.data.sampler import SampleSettings, sample_corpus, settings_record
from eu.data.self_generated import corpus_path
from eu.generation import TopKDraw, generate_from_ids

DRAWS = 40_000


def _transformers_draws(logits: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """The naive reference: transformers' warpers and a multinomial over the whole vocabulary."""
    scores = TopKLogitsWarper(top_k)(None, TemperatureLogitsWarper(temperature)(None, logits.clone()))
    return torch.multinomial(torch.softmax(scores, dim=-1), 1).squeeze(-1)


def _our_draws(logits: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    out = TopKDraw(temperature, top_k)(None, logits.clone())
    assert torch.isfinite(out).sum(-1).eq(1).all(), "exactly one token is left standing per row"
    return out.argmax(-1)


@pytest.mark.parametrize(("temperature", "top_k"), [(2.0, 5), (0.7, 3), (1.0, 12)])
def test_the_draw_follows_transformers_temperature_and_top_k_sampling(temperature, top_k):
    torch.manual_seed(0)
    logits = torch.randn(1, 12) * 2
    rows = logits.expand(DRAWS, -1)
    ours = torch.bincount(_our_draws(rows, temperature, top_k), minlength=12).float() / DRAWS
    theirs = torch.bincount(_transformers_draws(rows, temperature, top_k), minlength=12).float() / DRAWS
    kept = logits[0].topk(top_k).indices
    assert set(ours.nonzero().flatten().tolist()) <= set(kept.tolist()), "never a token outside the top k"
    exact = torch.zeros(12)
    exact[kept] = torch.softmax(logits[0, kept] / temperature, dim=-1)
    # 4 standard errors of a frequency over 40,000 draws
    tolerance = 4 * (exact * (1 - exact) / DRAWS).sqrt() + 1e-9
    assert ((ours - exact).abs() <= tolerance).all(), (ours, exact)
    assert ((theirs - exact).abs() <= tolerance).all(), "the reference itself agrees with the formula"


def test_nan_and_infinite_logits_are_cleaned_as_transformers_does():
    logits = torch.tensor([[float("nan"), float("inf"), 1.0, -float("inf")]])
    picked = _our_draws(logits.expand(200, -1), 2.0, 2)
    assert picked.eq(1).all(), "+inf becomes the largest finite logit and wins every draw against nan -> 0"


def test_generation_with_the_draw_is_seeded_and_differs_from_greedy(tiny_model, tiny_tokenizer):
    prompts = [[1, 5, 9], [1, 7]]

    def sample(seed: int) -> list[list[int]]:
        torch.manual_seed(seed)
        return generate_from_ids(tiny_model, tiny_tokenizer, prompts * 4, 6, True, 2.0, 20, draw_among_top_k=True)

    first, again, other = sample(0), sample(0), sample(1)
    assert first == again and first != other
    greedy = generate_from_ids(tiny_model, tiny_tokenizer, prompts * 4, 6)
    assert first != greedy
    with pytest.raises(ValueError, match="needs top_k"):
        generate_from_ids(tiny_model, tiny_tokenizer, prompts, 2, True, 2.0, None, draw_among_top_k=True)


def test_corpora_sampled_before_the_option_keep_their_key_and_sidecar(tmp_path, eu_cache, monkeypatch):
    default, fast = SampleSettings(num_pairs=4, batch_size=4), SampleSettings(4, 4, draw_among_top_k=True)
    assert "draw_among_top_k" not in settings_record(default) and settings_record(fast)["draw_among_top_k"]
    assert corpus_path("m", default) != corpus_path("m", fast), "another draw, another cached corpus"
    quickstart = corpus_path("smollm2-135m-instruct", SampleSettings(num_pairs=128, batch_size=128), "bfloat16")
    assert quickstart.name == "smollm2-135m-instruct-90b5c387f8e55970.jsonl", "the key corpora had before the option"
    # a corpus written before the option existed: its sidecar has no draw_among_top_k
    import eu.data.sampler as sampler

    rows = [{"user_text": f"q{i}", "assistant_text": "a"} for i in range(4)]
    monkeypatch.setattr(sampler, "sample_chunk", lambda *a: rows)
    out = tmp_path / "old.jsonl"
    sample_corpus(None, None, out, default, progress=False)
    recorded = json.loads((tmp_path / "old.jsonl.settings.json").read_text())["settings"]
    assert "draw_among_top_k" not in recorded
    monkeypatch.setattr(sampler, "sample_chunk", lambda *a: pytest.fail("sampled again"))
    assert sample_corpus(None, None, out, default, progress=False) == out
    with pytest.raises(Exception, match=r"draw_among_top_k: \(not recorded\) -> True"):
        sample_corpus(None, None, out, fast, progress=False)


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2"])
def test_every_token_generated_with_the_draw_is_among_the_models_top_k(family):
    from test_model_families import _model
    from transformers import LogitsProcessorList

    model = _model(family).eval()
    torch.manual_seed(0)
    prompts = torch.randint(3, 96, (6, 5))
    out = model.generate(
        input_ids=prompts,
        attention_mask=torch.ones_like(prompts),
        max_new_tokens=8,
        min_new_tokens=8,
        do_sample=False,
        logits_processor=LogitsProcessorList([TopKDraw(2.0, 4)]),
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=0,
        eos_token_id=None,
    )
    emitted = out.sequences[:, prompts.shape[1] :]
    for step, logits in enumerate(out.logits):
        top = logits.topk(4, dim=-1).indices
        assert (top == emitted[:, step : step + 1]).any(-1).all(), f"{family}: step {step} left the top 4"
    greedy = torch.stack([logits.argmax(-1) for logits in out.logits], dim=1)
    assert (emitted != greedy).any(), "48 draws at temperature 2 are not all the most likely token"
