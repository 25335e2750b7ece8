import math

import torch

from eu.eval.multiple_choice import choice_logprobs, score_choices
from eu.eval.runner import run_suites
from eu.prompts import ChatRecord, encode_record


def _naive_logprob(model, tokenizer, prompt, response):
    ids, prompt_len = encode_record(tokenizer, ChatRecord(prompt, response))
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0].double().log_softmax(-1)
    return sum(float(logp[t - 1, ids[t]]) for t in range(prompt_len, len(ids)))


def test_option_likelihood_scores_each_choice_and_picks_the_best(tiny_model, tiny_tokenizer):
    items = [
        {
            "prompt": "Which specialty manages asthma?",
            "choices": ["The answer is A: Neurology.", "The answer is B: Pulmonology."],
        },
        {"prompt": "2 + 2?", "choices": ["4", "five", "The answer is 4."]},
    ]
    got = choice_logprobs(tiny_model, tiny_tokenizer, items, batch_size=2)
    for item, logps in zip(items, got):
        for choice, lp in zip(item["choices"], logps):
            assert math.isclose(lp, _naive_logprob(tiny_model, tiny_tokenizer, item["prompt"], choice), abs_tol=1e-3)
    records = [{**it, "answer": it["choices"][0]} for it in items]
    score_choices(tiny_model, tiny_tokenizer, records)
    for r, logps in zip(records, got):
        assert r["choice"] == r["choices"][logps.index(max(logps))]
        assert r["correct"] == (r["choice"] == r["answer"])


def test_domain_suite_mixes_generated_and_multiple_choice_items(tiny_model, tiny_tokenizer):
    choices = ["The answer is A: Neurology.", "The answer is B: Pulmonology."]
    items = [
        {"prompt": "What is 2 + 2?", "answer": "4", "accepted": ["4"], "domain": "math", "holdout": "item",
         "harmful_request": False},
        {"prompt": "What is 3 + 3?", "answer": "6", "accepted": ["6"], "domain": "math", "holdout": "family",
         "harmful_request": False},
        {"prompt": "Which specialty manages asthma?", "choices": choices, "answer": choices[1],
         "accepted": ["Pulmonology"], "domain": "medicine", "holdout": "family", "harmful_request": False},
    ]  # fmt: skip
    res = run_suites(tiny_model, tiny_tokenizer, {"domain": items}, max_new_tokens=4, batch_size=3)["domain"]
    mc = res["records"][2]
    assert "choice_logprobs" in mc and mc["correct"] == (mc["choice"] == choices[1])
    assert "choice" not in res["records"][0]
    assert set(res["by_holdout"]) == {"item", "family"}
    assert math.isclose(res["accuracy"], sum(r["correct"] for r in res["records"]) / 3)
