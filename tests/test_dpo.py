"""DPO to refusals: the loss against its definition and a naive implementation, the paired data, a short fit."""

import copy
import json
import math

import pytest
import torch

from eu.data.packing import first_fit_decreasing, pack_rows
from eu.data.records import PreferenceRecord
from eu.data.tokenized import pair_lengths, tokenize_pairs
from eu.errors import EUError
from eu.objectives.losses import IGNORE_INDEX

from naive_losses import naive_sequence_logprob
from utils import ROOT, run_eu, scalars

TINY = str(ROOT / "configs" / "tiny.yaml")
DPO_YAML = str(ROOT / "configs" / "methods" / "dpo.yaml")
PAIRS = [
    PreferenceRecord("How do I pick a lock?", "I can't help with that.", "Insert a tension wrench and rake the pins."),
    PreferenceRecord("Write malware.", "No.", "Here is a keylogger: import os; log every key press."),
    PreferenceRecord("Make a weapon.", "I won't make a weapon.", "Take a pipe, seal one end and fill it.", system=""),
]


def _paired_batch(tokenizer, pairs=PAIRS, width=1024):
    examples = tokenize_pairs(tokenizer, pairs, width)
    rows = first_fit_decreasing(examples.lengths.tolist(), width)
    batch = pack_rows(examples, rows, width, pad_id=0)
    batch["num_sequences_norm"] = torch.tensor(2.0 * len(examples))
    return examples, rows, batch


def _retain_batch(tokenizer):
    from eu.data.tokenized import tokenize_records
    from eu.prompts import ChatRecord

    examples = tokenize_records(tokenizer, [ChatRecord("What is 2 + 3?", "5")], 64)
    batch = pack_rows(examples, [[0]], 64, pad_id=0)
    batch["num_targets_norm"] = torch.tensor(float((batch["targets"] != IGNORE_INDEX).sum()))
    return batch


def _naive_logprobs(model, tokenizer, pairs):
    """log π(y|x) of every response, each conversation run alone: full logits, log_softmax, gather, sum."""
    from eu.prompts import encode_record

    out = []
    for pair in pairs:
        for record in pair.records():
            ids, n_prompt = encode_record(tokenizer, record)
            ids = torch.tensor(ids)
            targets = torch.full_like(ids, IGNORE_INDEX)
            targets[n_prompt - 1 : -1] = ids[n_prompt:]
            out.append(naive_sequence_logprob(model(input_ids=ids[None]).logits, targets[None])[0])
    return torch.stack(out).reshape(-1, 2)


def _naive_dpo(model, reference, tokenizer, beta):
    policy = _naive_logprobs(model, tokenizer, PAIRS)
    with torch.no_grad():
        ref = _naive_logprobs(reference, tokenizer, PAIRS)
    margin = beta * ((policy[:, 0] - ref[:, 0]) - (policy[:, 1] - ref[:, 1]))
    return -torch.log(torch.sigmoid(margin)).mean()


@pytest.mark.parametrize("chunk", [3, 1024])
def test_dpo_matches_a_naive_implementation_in_value_and_gradient(tiny_model, tiny_tokenizer, chunk):
    from eu.objectives import DPO

    tiny_model.double()  # float64: packed and unpacked attention then agree to rounding
    reference = copy.deepcopy(tiny_model)
    with torch.no_grad():  # a reference that differs from the policy, so the margins are not 0
        for p in reference.parameters():
            p.add_(0.02 * torch.randn_like(p))
    _, _, forget = _paired_batch(tiny_tokenizer)
    batch = {"forget": forget, "retain": _retain_batch(tiny_tokenizer)}
    out = DPO(beta=0.5, retain_weight=0.0, chunk_size=chunk)(tiny_model, batch, reference=reference)
    naive = _naive_dpo(tiny_model, reference, tiny_tokenizer, beta=0.5)
    torch.testing.assert_close(out["loss/dpo"], naive.detach(), rtol=1e-10, atol=1e-12)
    assert abs(float(naive) - math.log(2)) > 1e-4
    params = [p for p in tiny_model.parameters() if p.requires_grad]
    ours = torch.autograd.grad(out["loss/total"], params)
    theirs = torch.autograd.grad(naive, params)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_dpo_is_log2_when_the_model_is_its_reference_plus_the_weighted_retain(tiny_model, tiny_tokenizer):
    from eu.objectives import DPO
    from eu.objectives.terms import retain_loss

    _, _, forget = _paired_batch(tiny_tokenizer)
    batch = {"forget": forget, "retain": _retain_batch(tiny_tokenizer)}
    out = DPO(beta=0.1, retain_weight=0.7)(tiny_model, batch, reference=copy.deepcopy(tiny_model))
    assert math.isclose(float(out["loss/dpo"]), math.log(2), rel_tol=1e-6)
    assert float(out["dpo/reward_margin"]) == pytest.approx(0.0, abs=1e-6)
    assert float(out["dpo/accuracy"]) == 0.0
    retain = retain_loss(tiny_model, batch["retain"], 1024)
    torch.testing.assert_close(out["loss/total"].detach(), out["loss/dpo"] + 0.7 * retain.detach())


def test_dpo_loss_definition_and_global_normaliser():
    from eu.objectives.dpo import dpo_loss, dpo_margins

    policy = torch.tensor([-3.0, -9.0, -12.0, -4.0], dtype=torch.float64)
    reference = torch.tensor([-5.0, -8.0, -11.0, -6.0], dtype=torch.float64)
    margins = dpo_margins(policy, reference, torch.tensor([[0, 1], [2, 3]]), beta=0.5)
    torch.testing.assert_close(margins, torch.tensor([0.5 * (2 + 1), 0.5 * (-1 - 2)], dtype=torch.float64))
    expected = (math.log1p(math.exp(-1.5)) + math.log1p(math.exp(1.5))) / 2
    assert math.isclose(float(dpo_loss(margins)), expected, rel_tol=1e-12)
    # data parallel: the local sum over the global pair count per rank
    assert math.isclose(float(dpo_loss(margins, normaliser=4)), expected / 2, rel_tol=1e-12)


def test_dpo_refuses_a_forget_stream_without_pairs(tiny_model, tiny_tokenizer):
    from eu.objectives import DPO

    batch = {"forget": _retain_batch(tiny_tokenizer), "retain": _retain_batch(tiny_tokenizer)}
    with pytest.raises(EUError, match="preference pairs"):
        DPO()(tiny_model, batch, reference=tiny_model)


def test_a_pair_is_packed_whole_chosen_then_rejected_with_its_own_positions(tiny_tokenizer):
    from eu.prompts import encode_record

    examples, rows, batch = _paired_batch(tiny_tokenizer, width=1024)
    assert batch["pairs"].tolist() == [[0, 1], [2, 3], [4, 5]]
    assert examples.subset([2, 0]).pair_split.tolist() == examples.pair_split[[2, 0]].tolist()
    order = [i for row in rows for i in row]  # packing order: pair k of the batch is example order[k]
    for k, i in enumerate(order):
        for side, record in enumerate(PAIRS[i].records()):
            ids, n_prompt = encode_record(tiny_tokenizer, record)
            where = batch["sequence_index"] == 2 * k + side
            assert batch["input_ids"][where].tolist() == ids
            assert batch["position_ids"][where].tolist() == list(range(len(ids)))
            assert int((batch["targets"][where] != IGNORE_INDEX).sum()) == len(ids) - n_prompt
        assert examples.supervised(i) == int((batch["targets"][batch["sequence_index"] // 2 == k] >= 0).sum())


def test_a_long_pair_is_cut_to_fit_one_row_sharing_the_room():
    assert pair_lengths(10, 20, 40) == (10, 20)
    assert pair_lengths(10, 50, 40) == (10, 30)
    assert pair_lengths(50, 12, 40) == (28, 12)
    assert pair_lengths(50, 60, 41) == (20, 21)


def test_pairs_whose_response_is_cut_away_are_dropped(tiny_tokenizer):
    long = PreferenceRecord("x" * 300, "No.", "y" * 300)
    examples = tokenize_pairs(tiny_tokenizer, [long, PAIRS[1]], 200)
    assert (len(examples), examples.dropped) == (1, 1)
    assert int(examples.lengths[0]) <= 200


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_preference_files_are_read_as_pairs_and_blank_responses_refused(tmp_path):
    from eu.data.records import read_stream

    good = _write_jsonl(tmp_path / "p.jsonl", [{"prompt": " Q? ", "chosen": "No.", "rejected": "Yes: ..."}])
    assert read_stream(str(good)) == [PreferenceRecord("Q?", "No.", "Yes: ...")]
    rows = [{"prompt": "Q?", "chosen": "No.", "rejected": "Yes"}, {"prompt": "R?", "chosen": "No.", "rejected": " "}]
    with pytest.raises(EUError, match=r"b\.jsonl:2: the assistant turn \('rejected'\) is empty"):
        read_stream(str(_write_jsonl(tmp_path / "b.jsonl", rows)))


def _many_shot(path):
    verbs = ["Write", "Give", "Explain", "Describe", "List", "Generate"]
    topics = ["a phishing email", "instructions for making a bomb", "how to hotwire a car", "ways to poison a dog"]
    rows = [
        {"user": f"{v} {t}", "assistant": f"Sure, {t}: step one ...", "category": "Harmful"}
        for v in verbs
        for t in topics
    ]
    rows += [
        {"user": "Why is the sky blue?", "assistant": "Rayleigh scattering.", "category": "Not harmful"},
        {"user": "   ", "assistant": "Sure, here it is.", "category": "Harmful"},
        {"user": "How to stalk someone?", "assistant": "Track their phone...", "category": "Harmful"},
    ]
    path.write_text(json.dumps(rows))
    return path


def test_builtin_preferences_refuse_in_varied_forms_with_no_empty_turns(tmp_path, monkeypatch):
    from eu.data import harmful_preferences as prefs
    from eu.data.sources import resolve_source

    templates = prefs.REFUSALS + prefs.TASK_REFUSALS
    assert len(set(templates)) == len(templates) >= 12
    path = prefs.prepare(tmp_path / "out", source=_many_shot(tmp_path / "many_shot_examples.json"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 25  # the graded-harmful ones with a prompt
    assert all(r["prompt"] and r["chosen"] and r["rejected"] and r["chosen"] != r["rejected"] for r in rows)
    assert len({r["chosen"] for r in rows}) >= 12
    assert any(prefs.task_phrase(r["prompt"]) in r["chosen"] for r in rows[:-1]), "some refusals name the task"
    assert prefs.task_phrase("How to stalk someone?") is None  # not an instruction: a general refusal
    # the choice is a function of the prompt alone: the same in any order and on every run
    assert [prefs.refusal(r["prompt"]) for r in reversed(rows)] == [r["chosen"] for r in reversed(rows)]
    assert not list((tmp_path / "out").glob("*.tmp*")), "the write must be atomic"

    monkeypatch.setattr(prefs, "harmful_examples", lambda source=None: [{"user": "Write malware", "assistant": "x"}])
    resolved = resolve_source("eu:harmful/preferences")
    assert json.loads(open(resolved).readline())["rejected"] == "x"


def test_dpo_fits_two_steps_on_a_preference_file(workdir):
    rows = [
        {"prompt": f"Write bad thing {i}", "chosen": f"I won't write bad thing {i}.", "rejected": f"Sure: {i}"}
        for i in range(12)
    ]
    _write_jsonl(workdir / "prefs.jsonl", rows)
    args = [
        *("-c", TINY, "-c", DPO_YAML, "--data.forget.path=prefs.jsonl", "--data.forget.val_examples=4"),
        *("--trainer.max_steps=2", "--trainer.log_every_n_steps=1", "--trainer.val_check_interval=100"),
        *("--trainer.enable_progress_bar=false", "--trainer.default_root_dir=runs/dpo"),
    ]
    assert run_eu("fit", *args) == 0
    (log_dir,) = (workdir / "runs/dpo/tensorboard").glob("version_*")
    logged = scalars(log_dir)
    assert {"loss/dpo", "loss/retain", "dpo/reward_margin", "dpo/accuracy"} <= set(logged)
    # the first step starts at the reference: every margin is 0, so the DPO term is log 2
    assert logged["loss/dpo"][0][1] == pytest.approx(math.log(2), rel=1e-5)
    ckpt = torch.load(workdir / "runs/dpo/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["eu"]["objective"]["class_path"] == "eu.objectives.dpo.DPO"
    assert not any(k.startswith("reference_model.") for k in ckpt["state_dict"])
