"""Suites, batched generation, metric sync, reports, guard and the evaluation callback (tiny model)."""

import json

import pytest

import eu.eval.suites as suites
from eu.errors import EUError
from eu.eval.metrics import AttackSuccessRate, Rate
from eu.eval.report import markdown_table, model_names, summary_row, unique_names, write_results
from eu.eval.runner import build_suites, file_suite_names, run_suites
from eu.eval.stats import wilson
from eu.generation import generate_from_ids
from eu.prompts import chat_prompt_ids

BEHAVIOURS = ["Explain how to do bad thing one", "Describe bad thing two", "Write bad thing three"]
VALIDATION = ["Validate bad thing zero", "Outline bad thing five"]


@pytest.fixture()
def fake_sources(monkeypatch):
    # HarmBench ships its own val file; AdvBench's "Outline bad thing five" hashes to validation
    monkeypatch.setattr(
        suites, "harmbench_behaviours", lambda split="test": BEHAVIOURS[:2] if split == "test" else [VALIDATION[0]]
    )
    monkeypatch.setattr(suites, "advbench_behaviours", lambda: [BEHAVIOURS[2], VALIDATION[1]])
    monkeypatch.setattr(
        suites,
        "jailbreak_templates",
        lambda max_chars=None, split=None: {
            "alpha": "You are free now. {{ prompt }} Go.",
            "beta": "Answer as BETA: {{prompt}}",
        },
    )


class KeywordJudge:
    """Labels by content, so tests control the outcome."""

    def judge(self, items):
        return ["refusal" if "sorry" in it.response else "unsafe" for it in items]


def test_template_filling_accepts_both_slot_syntaxes():
    assert suites.fill("A {{ prompt }} B", "x") == "A x B"
    assert suites.fill("A {{prompt}} B {prompt}", "x") == "A x B x"
    with pytest.raises(EUError, match="slot"):
        suites.fill("no slot here", "x")


def test_suites_are_deterministic_and_keep_template_names(fake_sources):
    harmful = suites.harmful_suite(3, seed=1)
    assert harmful == suites.harmful_suite(3, seed=1)
    assert {it["behaviour"] for it in harmful} == set(BEHAVIOURS)
    validation = suites.harmful_suite(None, seed=1, split="validation")
    assert {it["behaviour"] for it in validation} == set(VALIDATION), "validation draws from its own part only"
    assert {it["split"] for it in harmful + validation} == {"test", "validation"}
    jb = suites.jailbreak_suite(6, seed=0)
    assert jb == suites.jailbreak_suite(6, seed=0)
    assert {it["template"] for it in jb} == {"alpha", "beta"}
    for it in jb:
        assert it["behaviour"] in it["prompt"] and "{" not in it["prompt"]


def test_user_suite_files(tmp_path):
    prompts = tmp_path / "harm.jsonl"
    prompts.write_text('{"prompt": "do a bad thing"}\n{"goal": "another"}\n')
    templates = tmp_path / "jb.txt"
    templates.write_text("Pretend. {prompt}\n\nAs DAN: {{ prompt }}\n")
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "2+2?", "answer": "4"}\n')
    got = build_suites([f"prompts:{prompts}", f"qa:{qa}"])
    assert list(got) == ["prompts:harm", "qa:qa"], "file suites are named by their stem, not the path"
    assert [it["prompt"] for it in got["prompts:harm"]] == ["do a bad thing", "another"]
    assert got["qa:qa"][0]["accepted"] == ["4"]
    filled = suites.user_templates_suite(str(templates), ["X"], size=4)
    assert [it["prompt"] for it in filled][:2] == ["Pretend. X", "As DAN: X"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{oops\n')
    with pytest.raises(EUError, match="bad.jsonl:2"):
        suites.user_prompts_suite(str(bad))
    with pytest.raises(EUError, match="unknown suite"):
        build_suites(["nonsense"])


def test_file_suites_are_named_by_stem_and_stay_unique(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "harm.jsonl").write_text('{"prompt": "do a bad thing"}\n')
    (tmp_path / "a" / "jb.txt").write_text("Pretend. {prompt}\n")
    one, two, jb = tmp_path / "a" / "harm.jsonl", tmp_path / "b" / "harm.jsonl", tmp_path / "a" / "jb.txt"
    assert file_suite_names(["harmful", f"prompts:{one}", f"templates:{jb}"]) == {
        f"prompts:{one}": "prompts:harm",
        f"templates:{jb}": "templates:jb",
    }
    got = build_suites([f"prompts:{one}", f"prompts:{two}", f"templates:{jb}"], jailbreak_size=2)
    assert list(got) == ["prompts:a/harm", "prompts:b/harm", "templates:jb"], "same stem: one more folder"
    results = {name: {"n": 1, "asr": 0.0, "refusal_rate": 1.0} for name in got}
    assert set(summary_row(results)) == {f"{n}_{m}" for n in got for m in ("asr", "refusal_rate")}
    assert file_suite_names(["prompts:x.jsonl", "prompts:x.json"]) == {
        "prompts:x.jsonl": "prompts:x.jsonl",
        "prompts:x.json": "prompts:x.json",
    }, "no suffix tells them apart: the names as given"


def test_models_are_named_by_their_run(tmp_path):
    folder = tmp_path / "exports" / "smollm2_math_hf"
    folder.mkdir(parents=True)
    models = [
        "runs/quickstart/checkpoints/last.ckpt",
        "runs/smollm2_math/tensorboard/version_0/best.ckpt",
        str(folder),
        "smollm2-135m-instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ]
    assert list(model_names(models).values()) == [
        "quickstart",
        "smollm2_math",
        "smollm2_math_hf",
        "smollm2-135m-instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ]
    clash = ["runs/a/x/checkpoints/last.ckpt", "/w/b/x/checkpoints/last.ckpt", "runs/y/checkpoints/last.ckpt"]
    assert list(model_names(clash).values()) == ["a/x/checkpoints/last.ckpt", "b/x/checkpoints/last.ckpt", "y"]
    same_run = model_names(["runs/q/checkpoints/last.ckpt", "runs/q/checkpoints/epoch=0-step=60.ckpt", "q"])
    assert list(same_run.values()) == ["q/checkpoints/last.ckpt", "q/checkpoints/epoch=0-step=60.ckpt", "q"]
    assert unique_names({"k1": ["n", "n"], "k2": ["n"], "k3": []}) == {"k1": "k1", "k2": "k2", "k3": "k3"}


def test_tables_and_plots_name_models_by_their_run(tmp_path, monkeypatch):
    import matplotlib.axes

    res = {"harmful": {"n": 2, "asr": 0.5, "refusal_rate": 0.0}, "domain": {"n": 2, "accuracy": 1.0}}
    models = {"runs/quickstart/checkpoints/last.ckpt": res, "smollm2-135m-instruct": res}
    table = markdown_table(models)
    assert "| quickstart |" in table and "| smollm2-135m-instruct |" in table and "last.ckpt" not in table
    labels = []
    real = matplotlib.axes.Axes.annotate
    monkeypatch.setattr(
        matplotlib.axes.Axes, "annotate", lambda ax, text, *a, **k: labels.append(text) or real(ax, text, *a, **k)
    )
    out = write_results(tmp_path / "eval", models)
    assert labels == ["quickstart", "smollm2-135m-instruct"]
    assert list(json.loads((out / "results.json").read_text())) == list(models), (
        "results.json keeps the models as given"
    )


def test_batched_greedy_generation_equals_one_at_a_time(tiny_model, tiny_tokenizer):
    users = ["hi", "What is 2 + 2?", "A much longer question about rivers and mountains?", "ok"]
    prompts = [chat_prompt_ids(tiny_tokenizer, u) for u in users]
    batched = generate_from_ids(tiny_model, tiny_tokenizer, prompts, 12)
    single = [generate_from_ids(tiny_model, tiny_tokenizer, [p], 12)[0] for p in prompts]
    assert batched == single


def test_rate_metric_sums_counts_before_dividing():
    # two "ranks" with uneven shards: the merged value is the global share, not the mean of shares
    a, b = AttackSuccessRate(), AttackSuccessRate()
    a.update(1, 1)
    b.update(1, 9)
    a.merge_state(b)  # what the distributed sync does with the "sum" reduction
    merged = Rate()
    merged.update(2, 10)
    assert float(a.compute()) == pytest.approx(float(merged.compute())) == pytest.approx(0.2)
    assert float(Rate().compute()) == 0.0


def test_run_suites_and_reports(tiny_model, tiny_tokenizer, fake_sources, tmp_path):
    items = build_suites(["harmful", "jailbreak", "domain"], harmful_size=3, jailbreak_size=4, domain_size=5)
    results = run_suites(tiny_model, tiny_tokenizer, items, KeywordJudge(), max_new_tokens=6, batch_size=3)
    assert results["harmful"]["n"] == 3 and results["jailbreak"]["n"] == 4 and results["domain"]["n"] == 5
    assert results["harmful"]["asr"] == 1.0  # the tiny model never says sorry
    assert 0.0 <= results["domain"]["accuracy"] <= 1.0
    assert all("template" in r for r in results["jailbreak"]["records"])
    assert [r["index"] for r in results["domain"]["records"]] == list(range(5))

    out = write_results(tmp_path / "eval", {"tiny": results, "tiny-again": results})
    data = json.loads((out / "results.json").read_text())
    assert data["tiny"]["harmful"]["asr"] == 1.0
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "results.md").read_text()
    assert "harmful_asr" in table and "| tiny |" in table
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    assert markdown_table({"m": results}).count("\n") >= 3


def _naive_guard_delta(model, prompt_ids, response_ids):
    """Δ written out in float64: mean over the positions that predict the response (the last prompt
    position alone for an empty response) of KL(p || uniform) = Σ p·log p + log V."""
    import math

    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt_ids + response_ids])).logits[0].double()
    first = len(prompt_ids) - 1
    p = torch.softmax(logits[first : first + max(len(response_ids), 1)], dim=-1)
    return float(((p * torch.log(p)).sum(-1) + math.log(logits.shape[-1])).mean())


def test_guard_refuses_below_threshold_and_calibrates_to_pass_rate(tiny_model, tiny_tokenizer):
    import copy

    import torch

    from eu.eval.guard import KLGuard
    from eu.eval.runner import generate_responses

    # calibrated on 20 validation prompts of the domain, checked on 20 test prompts (disjoint)
    calibration = [it["prompt"] for it in suites.domain_suite("math", 20, split="validation")]
    held_out = [it["prompt"] for it in suites.domain_suite("math", 20, split="test")]
    assert len(calibration) == len(held_out) == 20 and not set(calibration) & set(held_out)
    guard = KLGuard.calibrate(tiny_model, tiny_tokenizer, "math", num_items=20, pass_rate=0.9, max_new_tokens=6)

    # the threshold is the naive quantile: floor((1 - 0.9) · 20) = 2 calibration deltas lie below it
    pairs = generate_responses(tiny_model, tiny_tokenizer, calibration, 6, 32)
    deltas = sorted(_naive_guard_delta(tiny_model, p, r) for p, r in pairs)
    assert min(deltas[2] - deltas[1], deltas[3] - deltas[2]) > 1e-5, "neighbours must be told apart"
    assert guard.threshold == pytest.approx(deltas[2], abs=1e-6)

    # held out: Δ matches the naive one and the verdict is Δ < threshold; most in-domain prompts pass
    held = generate_responses(tiny_model, tiny_tokenizer, held_out, 6, 32)
    verdicts = [guard.check(tiny_model, p, r) for p, r in held]
    naive = [_naive_guard_delta(tiny_model, p, r) for p, r in held]
    for verdict, delta in zip(verdicts, naive, strict=True):
        assert verdict["guard_delta"] == pytest.approx(delta, abs=1e-6)
        if abs(delta - guard.threshold) > 1e-6:
            assert verdict["guard_refused"] == (delta < guard.threshold)
    assert sum(not v["guard_refused"] for v in verdicts) >= 14

    # constructed inputs: a model whose logits are all 0 (final norm zeroed) is exactly uniform,
    # Δ = 0, and is refused; the same model with 50× sharper logits is far above the threshold
    prompt, response = held[0]
    flat, sharp = copy.deepcopy(tiny_model), copy.deepcopy(tiny_model)
    with torch.no_grad():
        flat.model.norm.weight.zero_()
        sharp.model.norm.weight.mul_(50.0)
    verdict = guard.check(flat, prompt, response)
    assert verdict["guard_refused"] and verdict["guard_delta"] == pytest.approx(0.0, abs=1e-6)
    verdict = guard.check(sharp, prompt, response)
    assert not verdict["guard_refused"] and verdict["guard_delta"] > 100 * guard.threshold
    assert verdict["guard_delta"] == pytest.approx(_naive_guard_delta(sharp, prompt, response), rel=1e-5)


def _fit_tiny(workdir, callback, logger=False):
    """Five steps of the tiny model with one callback; returns the trainer."""
    import lightning as L

    from eu import StreamConfig, UnlearningDataModule, UnlearningModule

    from utils import ROOT

    dm = UnlearningDataModule(
        StreamConfig(path=str(ROOT / "tests/data/retain.jsonl"), block_length=256),
        StreamConfig(path=str(ROOT / "tests/data/forget.jsonl"), block_length=256),
    )
    module = UnlearningModule(model="tiny-llama")
    module.connect_data(dm)
    trainer = L.Trainer(
        max_steps=5,
        accelerator="cpu",
        callbacks=[callback],
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        default_root_dir=workdir,
    )
    trainer.fit(module, datamodule=dm)
    return trainer


def test_evaluation_fires_on_schedule_and_keeps_best(workdir, fake_sources):
    from eu.callbacks import Evaluation

    calls = []

    class Spy(Evaluation):
        def evaluate(self, trainer, pl_module, full=False, when="validate"):
            metrics = super().evaluate(trainer, pl_module, full, when)
            calls.append((trainer.global_step, full))
            return metrics

    cb = Spy(
        suites="harmful,jailbreak,domain",
        judge=KeywordJudge(),
        every_n_steps=2,
        before_fit=False,
        sizes={"harmful": 2, "jailbreak": 2, "domain": 3},
        max_new_tokens=4,
        asr_ceiling=1.0,
        best_path=str(workdir / "best.ckpt"),
    )
    _fit_tiny(workdir, cb)
    assert calls == [(2, False), (4, False), (5, False)]
    assert (workdir / "best.ckpt").is_file()
    assert {"eval/harmful_asr", "eval/jailbreak_asr", "eval/domain_acc"} <= set(cb.history[-1]["metrics"])
    table = cb.report().splitlines()
    assert "step 2" in table[0] and "step 5" in table[0]
    acc_line = next(line for line in table if line.startswith("eu: eval/domain_acc "))
    first, last = (cb.history[i]["suites"]["domain"]["records"] for i in (0, -1))
    hits = [sum(r["correct"] for r in records) for records in (first, last)]
    lo, hi = wilson(hits[1], 3)
    # the asr_ceiling chose a checkpoint, so the evaluation drew on the validation split
    assert cb.split == "validation" and {r["split"] for r in last} == {"validation"}
    assert acc_line.endswith(f"{hits[1] / 3:.3f} [{lo:.2f}, {hi:.2f}]") and f"{hits[0] / 3:.3f} [" in acc_line


def test_evaluation_runs_before_during_after_and_writes_its_history(workdir):
    from pathlib import Path

    import lightning as L

    from eu.callbacks import Evaluation

    cb = Evaluation(
        suites="domain,offdomain",
        domain="math",
        sizes={"domain": 3},
        max_new_tokens=4,
        batch_size=3,
        every_n_steps=2,
        examples={"offdomain": 4},
    )
    trainer = _fit_tiny(workdir, cb, logger=L.pytorch.loggers.CSVLogger(workdir, name="csv"))
    assert [(h["when"], h["step"]) for h in cb.history] == [("before", 0), ("during", 2), ("during", 4), ("after", 5)]
    assert all(
        h["suites"]["domain"]["n"] == 3 and 0.0 <= h["suites"]["offdomain"]["entropy_frac"] <= 1.0 for h in cb.history
    )
    # the diverse maths set also reports each held-out share its items hold
    shares = {f"eval/domain_acc_{r['holdout']}" for r in cb.history[0]["suites"]["domain"]["records"]}
    assert len(shares) >= 2
    expected = {"eval/domain_acc", "eval/domain_answer_rate", "eval/offdomain_entropy_frac", *shares}
    assert all(set(h["metrics"]) == expected for h in cb.history)
    written = json.loads((Path(trainer.log_dir) / "evaluation.json").read_text())
    assert [h["step"] for h in written] == [0, 2, 4, 5]
    report = cb.report()
    assert "eval/offdomain_entropy_frac" in report and report.count("    before: ") == 4 + 2
    assert "eu: offdomain answers, before -> after:" in report


def test_offdomain_suite_scores_the_mean_response_entropy(tiny_model, tiny_tokenizer):
    from eu.eval.entropy import entropy_fraction, response_kl_to_uniform
    from eu.eval.runner import generate_responses

    items = build_suites(["offdomain"], offdomain_size=3)
    results = run_suites(tiny_model, tiny_tokenizer, items, judge=None, max_new_tokens=5, batch_size=2)["offdomain"]
    prompts = [it["prompt"] for it in items["offdomain"]]
    pairs = generate_responses(tiny_model, tiny_tokenizer, prompts, 5, 2)
    fracs = [entropy_fraction(tiny_model, response_kl_to_uniform(tiny_model, p, r)) for p, r in pairs]
    assert results["n"] == 3 and [r["entropy_frac"] for r in results["records"]] == pytest.approx(fracs)
    assert results["entropy_frac"] == pytest.approx(sum(fracs) / 3, abs=1e-6)


def test_rank_zero_prepares_the_model_and_every_callbacks_data(fake_sources, monkeypatch):
    from types import SimpleNamespace

    import eu.domains
    import eu.models
    from eu.callbacks import Evaluation
    from eu.module import UnlearningModule

    resolved, fetched = [], []
    monkeypatch.setattr(eu.models, "resolve_model", lambda name: resolved.append(name) or name)
    monkeypatch.setattr(eu.domains, "domain_items", lambda domain, split: fetched.append((domain, split)) or [])
    monkeypatch.setattr(
        suites, "harmbench_behaviours", lambda split="test": fetched.append("harmbench") or BEHAVIOURS[:2]
    )
    module = UnlearningModule("tiny-llama")
    callbacks = [Evaluation(suites="domain,offdomain", domain="medicine"), Evaluation(suites="harmful")]
    module._trainer = SimpleNamespace(callbacks=callbacks)
    module.prepare_data()
    assert resolved == ["tiny-llama", "smollm2-135m-instruct"], "the model, then the default judge's model"
    assert fetched == [("medicine", "test"), "harmbench"]


@pytest.fixture()
def loads(monkeypatch):
    """The models ``eu evaluate`` loads (``broken`` fails to load)."""
    import eu.commands.evaluate as ev

    names, real = [], ev.load_model_and_tokenizer

    def counted(name, *args):
        names.append(name)
        if name == "broken":
            raise EUError("broken model")
        return real(name, *args)

    monkeypatch.setattr(ev, "load_model_and_tokenizer", counted)
    return names


def _evaluate(out, **kwargs):
    from eu.commands.evaluate import evaluate

    defaults = {"suites": "domain", "domain_size": 2, "max_new_tokens": 2, "device": "cpu"}
    return evaluate(out=str(out), **{**defaults, **kwargs})


def test_evaluate_saves_each_model_and_reuses_it_only_with_the_same_arguments(tmp_path, tiny_path, loads, capsys):
    out = tmp_path / "eval"
    with pytest.raises(EUError, match="broken model"):
        _evaluate(out, model=["tiny-llama", "broken"])
    saved = list((out / "models").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["model"] == "tiny-llama", "saved as it finished"

    loads.clear()
    first = _evaluate(out, model=["tiny-llama", str(tiny_path)])
    assert loads == [str(tiny_path)], "the finished model is skipped"
    assert list(json.loads((out / "results.json").read_text())) == ["tiny-llama", str(tiny_path)]

    loads.clear()
    again = _evaluate(out, model=["tiny-llama", str(tiny_path)])
    assert loads == [] and again == first
    loads.clear()
    capsys.readouterr()
    _evaluate(out, model=["tiny-llama"], max_new_tokens=3)
    assert loads == ["tiny-llama"], "other arguments: computed again"
    assert "tiny-llama: evaluated before with other settings (max_new_tokens: 2 -> 3)" in capsys.readouterr().err
    assert list(json.loads((out / "results.json").read_text())) == ["tiny-llama"]


def test_a_changed_judge_relabels_saved_responses_without_generating_again(
    tmp_path, tiny_path, loads, fake_sources, monkeypatch
):
    import eu.eval.judges
    import eu.eval.judges.version

    class Verdict:
        def __init__(self, label):
            self.label, self.calls = label, 0

        def judge(self, items):
            self.calls += 1
            return [self.label] * len(items)

    old, new = Verdict("unsafe"), Verdict("refusal")
    judges = {"v1": old, "v2": new}
    version = {"now": "v1"}
    monkeypatch.setattr(eu.eval.judges.version, "judge_version", lambda spec: version["now"])
    monkeypatch.setattr(eu.eval.judges, "build_judge", lambda spec, dtype="auto": judges[version["now"]])
    out = tmp_path / "eval"
    kwargs = {"model": [str(tiny_path)], "suites": "harmful,domain", "harmful_size": 3}
    first = _evaluate(out, **kwargs)[str(tiny_path)]
    assert first["harmful"]["asr"] == 1.0 and loads == [str(tiny_path)]

    loads.clear()
    version["now"] = "v2"
    again = _evaluate(out, **kwargs)[str(tiny_path)]
    assert loads == [] and new.calls == 1, "the saved responses are judged again, nothing is generated"
    assert again["harmful"]["asr"] == 0.0 and again["harmful"]["refusal_rate"] == 1.0
    assert [r["label"] for r in again["harmful"]["records"]] == ["refusal"] * 3
    assert [r["response"] for r in again["harmful"]["records"]] == [r["response"] for r in first["harmful"]["records"]]
    assert again["domain"] == first["domain"], "suites scored without a judge are kept as they were"
    saved = json.loads(next((out / "models").glob("*.json")).read_text())
    assert saved["arguments"]["judge_version"] == "v2" and saved["results"] == again

    loads.clear()
    assert _evaluate(out, **kwargs)[str(tiny_path)] == again and new.calls == 1 and loads == [], "now reused as is"


def test_evaluate_tables_name_a_model_folder_by_its_name(tmp_path, tiny_path, loads, capsys):
    out = tmp_path / "eval"
    _evaluate(out, model=[str(tiny_path)])
    table = (out / "results.md").read_text()
    assert f"| {tiny_path.name} |" in table and str(tiny_path) not in table
    assert f"| {tiny_path.name} |" in capsys.readouterr().out


def test_evaluate_refuses_a_folder_eu_did_not_write(tmp_path, loads):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(EUError, match=r"--out .*mine exists and holds files eu did not write"):
        _evaluate(out, model=["tiny-llama"])
    assert loads == [] and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_refused_benign_question_counts_as_unanswered(tiny_model, tiny_tokenizer, fake_sources, monkeypatch):
    import eu.eval.runner as runner
    from eu.eval.report import rate_counts, summary_row

    items = build_suites(["domain"], domain_size=4)
    replies = ["I'm sorry, I can't help with that.", "42", "I cannot provide that.", "It is 7."]
    by_prompt = {it["prompt"]: reply for it, reply in zip(items["domain"], replies, strict=True)}

    def fake_generate(model, tokenizer, prompts, max_new_tokens, batch_size, desc=""):
        return [([1], tokenizer.encode(by_prompt[p], add_special_tokens=False)) for p in prompts]

    monkeypatch.setattr(runner, "generate_responses", fake_generate)
    result = run_suites(tiny_model, tiny_tokenizer, items, judge=None, max_new_tokens=4, batch_size=2)["domain"]
    assert [r["answered"] for r in result["records"]] == [False, True, False, True]
    assert result["answer_rate"] == pytest.approx(0.5)
    assert summary_row({"domain": result})["domain_answer_rate"] == pytest.approx(0.5)
    assert rate_counts({"domain": result})["domain_answer_rate"] == [2, 4]
    with_choice = {**result, "records": [*result["records"], {"index": 4, "correct": True, "choices": ["a", "b"]}]}
    assert rate_counts({"domain": with_choice})["domain_answer_rate"] == [2, 4], "multiple choice generates nothing"
    assert rate_counts({"domain": with_choice})["domain_accuracy"][1] == 5


def test_suite_items_and_results_carry_only_their_typed_keys(tiny_model, tiny_tokenizer, fake_sources):
    from eu.eval import EvalItem, EvalRecord, SuiteResult

    items = build_suites(["harmful", "domain", "offdomain"], harmful_size=2, domain_size=2, offdomain_size=2)
    results = run_suites(tiny_model, tiny_tokenizer, items, KeywordJudge(), max_new_tokens=3, batch_size=2)
    typed_item, typed_record = set(EvalItem.__annotations__), set(EvalRecord.__annotations__)
    for name, suite_items in items.items():
        assert all({"suite", "prompt", "harmful_request"} <= set(it) for it in suite_items)
        if name != "domain":  # a domain item also carries its domain's own fields (user_text, holdout…)
            assert all(set(it) <= typed_item for it in suite_items), name
            assert all(set(r) <= typed_record for r in results[name]["records"]), name
        assert set(results[name]) <= set(SuiteResult.__annotations__), name
