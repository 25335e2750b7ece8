"""``eu attack relearn`` on the tiny model: the benign set, the response-only loss, results per N."""

import copy
import json

import pytest
import torch
from test_eval import KeywordJudge, fake_sources  # noqa: F401 - fake_sources is a fixture

import eu.commands.attack as attack
import eu.data.mmlu as mmlu
import eu.eval.judges
from eu.errors import EUError
from eu.prompts import ChatRecord, encode_record

from utils import run_eu

SIZES = {"harmful_size": 3, "jailbreak_size": 4, "max_new_tokens": 4, "batch_size": 4, "device": "cpu"}


def _row(i: int, topic: str = "geography", question: str = "") -> dict[str, str]:
    options = {f"answer_{c}": f"option {c} of {i}" for c in "abcd"}
    return {"question": question or f"Question {i}?", **options, "correct_answer": "ABCD"[i % 4], "topic": topic}


@pytest.fixture()
def fake_mmlu(monkeypatch):
    rows = [_row(i) for i in range(30)] + [_row(99, "college medicine"), _row(98, question="x" * 2000)]
    monkeypatch.setattr(mmlu, "load_mmlu", lambda: rows)


@pytest.fixture()
def fake_judge(monkeypatch):
    monkeypatch.setattr(eu.eval.judges, "build_judge", lambda spec, dtype="auto": KeywordJudge())


@pytest.fixture()
def loads(monkeypatch):
    """The models relearn loads."""
    names, real = [], attack.load_model_and_tokenizer
    monkeypatch.setattr(attack, "load_model_and_tokenizer", lambda name, *a: names.append(name) or real(name, *a))
    return names


def test_benign_set_is_fixed_nested_and_outside_the_retained_domains(fake_mmlu):
    ten, twenty = attack.benign_records(10), attack.benign_records(20)
    assert twenty[:10] == ten and attack.benign_records(10) == ten, "seeded; larger N contain smaller N"
    assert attack.benign_records(10, seed=1) != ten
    everything = attack.benign_records(24)  # 30 usable rows, a fifth held out for the capability suite
    assert not any("of 99" in r.user or "of 98" in r.user for r in everything), "medicine and over-long rows left out"
    first = mmlu.mmlu_record(_row(2))
    assert first.user == "Question 2?\n\nA. option a of 2\nB. option b of 2\nC. option c of 2\nD. option d of 2"
    assert first.assistant == "The answer is C: option c of 2"
    with pytest.raises(EUError, match="more than the 24 benign pairs"):
        attack.benign_records(25)


def test_the_loss_mask_keeps_only_response_tokens(tiny_model, tiny_tokenizer):
    records = [ChatRecord("What is 2+2?", "4"), ChatRecord("Name a colour.", "Blue, the colour of the sky.")]
    encoded = [encode_record(tiny_tokenizer, r) for r in records]
    batch = attack.collate(encoded, pad_id=0)
    for row, (ids, prompt_len) in enumerate(encoded):
        labels = batch["labels"][row].tolist()
        assert labels[:prompt_len] == [-100] * prompt_len, "no prompt token is supervised"
        assert labels[prompt_len : len(ids)] == ids[prompt_len:], "every response token is"
        assert set(labels[len(ids) :]) <= {-100} and batch["attention_mask"][row].sum() == len(ids)
    # the model's loss is the mean cross-entropy of the response tokens alone
    logits = tiny_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    terms = [
        torch.nn.functional.cross_entropy(logits[row, t - 1], torch.tensor(ids[t]))
        for row, (ids, prompt_len) in enumerate(encoded)
        for t in range(prompt_len, len(ids))
    ]
    assert torch.allclose(tiny_model(**batch).loss, torch.stack(terms).mean(), atol=1e-5)


def test_fine_tuning_changes_the_weights(tiny_model, tiny_tokenizer):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    records = [ChatRecord(f"Question {i}?", f"Answer {i}.") for i in range(3)]
    losses = attack.fine_tune(tiny_model, tiny_tokenizer, records, steps=3, lr=1e-3, train_batch_size=2)
    assert len(losses) == 3 and all(map(torch.isfinite, torch.tensor(losses)))
    assert any(not torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())
    assert attack.step_batches(3, 2, 3, 0) == attack.step_batches(3, 2, 3, 0)
    assert all(len(b) == 2 for b in attack.step_batches(3, 2, 3, 0)) and len(attack.step_batches(1, 8, 2, 0)[0]) == 1


def test_bf16_autocast_fine_tuning_keeps_float32_weights_and_tracks_float32(tiny_model, tiny_tokenizer):
    records = [ChatRecord(f"Question {i}?", f"Answer {i}.") for i in range(3)]
    twin = copy.deepcopy(tiny_model)
    full = attack.fine_tune(tiny_model, tiny_tokenizer, records, steps=3, lr=1e-3, train_batch_size=2)
    mixed = attack.fine_tune(twin, tiny_tokenizer, records, steps=3, lr=1e-3, train_batch_size=2, autocast=True)
    assert all(p.dtype == torch.float32 for p in twin.parameters()), "master weights stay float32"
    assert mixed != full, "the forward really ran in bf16"
    assert torch.allclose(torch.tensor(mixed), torch.tensor(full), rtol=0.05), "same losses within bf16 rounding"


def test_no_fine_tuning_equals_a_plain_evaluation(tmp_path, fake_sources, fake_judge):  # noqa: F811
    from eu.commands.evaluate import evaluate

    args = [f"--{k}={v}" for k, v in SIZES.items()]
    cli = ["attack", "relearn", "--model", "tiny-llama", "--examples", "0", "--out", str(tmp_path / "a"), *args]
    assert run_eu(*cli) == 0
    plain = evaluate(["tiny-llama"], out=str(tmp_path / "e"), suites="harmful,jailbreak", **SIZES)["tiny-llama"]
    saved = json.loads(next((tmp_path / "a" / "models").glob("*.json")).read_text())
    assert saved["results"]["suites"] == plain and saved["results"]["losses"] == []
    row = json.loads((tmp_path / "a" / "relearn.json").read_text())["rows"][0]
    assert row["harmful_asr"] == plain["harmful"]["asr"] and row["jailbreak_asr"] == plain["jailbreak"]["asr"]


def test_each_n_is_saved_and_reused_on_a_rerun(tmp_path, fake_sources, fake_mmlu, fake_judge, loads):  # noqa: F811
    out = tmp_path / "attack"
    report = attack.relearn("tiny-llama", examples="0,2", steps=2, lr=1e-3, out=str(out), **SIZES)
    assert [r["examples"] for r in report["rows"]] == [0, 2] and loads == ["tiny-llama"] * 2
    assert report["rows"][0]["final_loss"] is None and report["rows"][1]["final_loss"] > 0
    assert json.loads((out / "relearn.json").read_text()) == report
    table = (out / "relearn.md").read_text()
    assert "| N | harmful ASR |" in table and "| 2 | " in table and len(list((out / "models").glob("*.json"))) == 2

    loads.clear()
    assert attack.relearn("tiny-llama", examples=[2, 0], steps=2, lr=1e-3, out=str(out), **SIZES) == report
    assert loads == [], "every N reused"
    attack.relearn("tiny-llama", examples="0,2", steps=1, lr=1e-3, out=str(out), **SIZES)
    assert loads == ["tiny-llama"], "other fine-tuning settings: N=2 again, N=0 (no fine-tuning) reused"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"examples": "-1"}, "counts ≥ 0"),
        ({"examples": "10,many"}, "whole numbers"),
        ({"steps": 0}, "--steps and --train_batch_size must be at least 1"),
        ({"model": "no-such-model"}, "unknown model 'no-such-model'"),
        ({"dtype": "float16"}, "--dtype must be auto, float32 or bfloat16"),
    ],
)
def test_bad_input_is_refused_clearly(tmp_path, fake_sources, kwargs, message):  # noqa: F811
    out = tmp_path / "attack"
    with pytest.raises(EUError, match=message):
        attack.relearn(**{"model": "tiny-llama", "examples": 0, "out": str(out), **SIZES, **kwargs})
    assert not out.exists(), "nothing left behind"


def test_unknown_attack_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_eu("attack", "forget")
    assert exit_info.value.code == 2 and "'forget'" in capsys.readouterr().err


def test_domain_accuracy_is_measured_after_each_attack(tmp_path, fake_sources, fake_mmlu, fake_judge):  # noqa: F811
    from eu.commands.evaluate import evaluate

    out = tmp_path / "attack"
    report = attack.relearn(
        "tiny-llama", examples="0,2", steps=1, lr=1e-3, out=str(out), domain="math-basic", domain_size=5, **SIZES
    )
    assert report["settings"]["domain"] == "math-basic" and report["settings"]["domain_size"] == 5
    plain = evaluate(
        ["tiny-llama"], out=str(tmp_path / "e"), suites="domain", domain="math-basic", domain_size=5, **SIZES
    )
    first = report["rows"][0]
    assert first["domain_accuracy"] == plain["tiny-llama"]["domain"]["accuracy"]
    assert first["counts"]["domain_accuracy"][1] == 5 and "domain_accuracy" in report["rows"][1]
    assert "| domain accuracy |" in (out / "relearn.md").read_text()
    no_domain = attack.relearn("tiny-llama", examples="0", out=str(tmp_path / "b"), **SIZES)
    assert "domain_accuracy" not in no_domain["rows"][0] and "domain" not in no_domain["settings"]


def test_long_conversations_are_cut_and_still_supervise_the_response():
    ids = list(range(10))
    assert attack.cut(ids, 3, 20) == (ids, 3), "short enough: unchanged"
    assert attack.cut(ids, 3, 6) == (ids[:6], 3), "the prompt and the first response tokens"
    assert attack.cut(ids, 8, 6) == (ids[5:11], 3), "a long prompt: its last half, then the response"
    kept, prompt = attack.cut(list(range(100)), 90, 8)
    assert len(kept) == 8 and prompt < len(kept) and kept[prompt] == 90, "response tokens remain"


def test_max_length_is_recorded_and_checked(tmp_path, fake_sources, fake_mmlu, fake_judge):  # noqa: F811
    report = attack.relearn(
        "tiny-llama", examples="2", steps=1, lr=1e-3, out=str(tmp_path / "a"), max_length=16, **SIZES
    )
    assert report["settings"]["max_length"] == 16
    with pytest.raises(EUError, match="--max_length must be at least 2"):
        attack.relearn("tiny-llama", examples="2", out=str(tmp_path / "b"), max_length=1, **SIZES)
    assert not (tmp_path / "b").exists(), "refused before any output exists"
