"""``eu compare`` on the tiny model: every method trained, evaluated and attacked, the results
files, resuming without retraining, refusing changed settings; the capability suite (held-out
MMLU) disjoint from the relearning attack's benign set; the shipped comparison configs."""

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from test_configs import contains
from test_eval import KeywordJudge, fake_sources  # noqa: F401 - fake_sources is a fixture

import eu.commands.attack as attack
import eu.commands.evaluate as evaluate_module
import eu.data.mmlu as mmlu
import eu.eval.judges
from eu.errors import EUError
from eu.eval.runner import run_suites
from eu.eval.stats import wilson

from utils import ROOT, run_eu

COMPARE_CONFIGS = sorted((ROOT / "configs" / "compare").glob("*.yaml"))


def _row(i: int, topic: str = "geography") -> dict[str, str]:
    options = {f"answer_{c}": f"option {c} of {i}" for c in "abcd"}
    return {"question": f"Question {i % 95}?", **options, "correct_answer": "ABCD"[i % 4], "topic": topic}


@pytest.fixture()
def fake_mmlu(monkeypatch):
    """100 usable rows; rows 95..99 repeat the text of rows 0..4 (MMLU repeats a few questions)."""
    rows = [_row(i) for i in range(100)] + [_row(7, "high school mathematics")]
    monkeypatch.setattr(mmlu, "load_mmlu", lambda: rows)
    return rows


@pytest.fixture()
def fake_judge(monkeypatch):
    monkeypatch.setattr(eu.eval.judges, "build_judge", lambda spec, dtype="auto": KeywordJudge())


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_capability_suite_is_disjoint_from_every_benign_set(fake_mmlu, seed):
    benign_total = 100 - int(100 * mmlu.HELD_OUT_SHARE)
    benign = {r.user for r in mmlu.benign_records(benign_total, seed)}
    capability = mmlu.capability_suite(None, seed=seed)
    prompts = [it["prompt"] for it in capability]
    assert prompts and not benign & set(prompts), "no capability question is ever a relearning pair"
    assert len(set(prompts)) == len(prompts), "each question once"
    assert not any("mathematics" in it["topic"] for it in capability), "retained-domain topics left out"
    assert mmlu.capability_suite(5, seed) == capability[:5] == mmlu.capability_suite(5, seed)
    item = capability[0]
    assert item["choices"] == [f"The answer is {c}" for c in "ABCD"] and item["answer"] in item["choices"]
    with pytest.raises(EUError, match=f"more than the {benign_total} benign pairs"):
        mmlu.benign_records(benign_total + 1, seed)


@pytest.mark.slow
def test_capability_suite_is_disjoint_from_the_real_benign_set():
    """On the real MMLU asset (a download on first use): the shipped configs' sizes and every seed tried."""
    for seed in (0, 1):
        benign = {r.user for r in mmlu.benign_records(7000, seed)}
        capability = mmlu.capability_suite(1000, seed)
        assert len(capability) == 1000 and not benign & {it["prompt"] for it in capability}


def test_choice_suite_picks_the_most_likely_answer(tiny_model, tiny_tokenizer, fake_mmlu):
    from eu.prompts import ChatRecord, encode_record

    items = mmlu.capability_suite(3)
    result = run_suites(tiny_model, tiny_tokenizer, {"mmlu": items}, batch_size=2)["mmlu"]
    assert result["n"] == 3 and result["accuracy"] == pytest.approx(sum(r["correct"] for r in result["records"]) / 3)
    record = result["records"][0]
    naive = []
    for choice in record["choices"]:  # the full sequence at once, log-softmax, gather, sum over the response
        ids, prompt_len = encode_record(tiny_tokenizer, ChatRecord(record["prompt"], choice))
        logp = tiny_model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
        naive.append(sum(float(logp[t - 1, ids[t]]) for t in range(prompt_len, len(ids))))
    assert record["choice_logprobs"] == pytest.approx(naive, abs=1e-4)
    assert record["choice"] == record["choices"][naive.index(max(naive))] and "response" not in record


def _config(workdir, **changes) -> str:
    overlay = workdir / "retain_only.yaml"
    if not overlay.exists():
        overlay.write_text((ROOT / "configs" / "methods" / "retain_only.yaml").read_text())
    config = {
        "out": str(workdir / "cmp"),
        "base": [str(ROOT / "configs" / "tiny.yaml")],
        "max_steps": 2,
        "seeds": [42, 43],
        "fit_args": ["--trainer.num_sanity_val_steps=0"],
        "relative_to": "RetainOnly",
        "methods": [{"name": "RetainOnly", "configs": [str(overlay)]}, {"name": "EU"}],
        "evaluation": {
            "harmful_size": 3,
            "jailbreak_size": 4,
            "domain_size": 4,
            "mmlu_size": 3,
            "max_new_tokens": 4,
            "batch_size": 4,
        },
        "relearning": {"examples": [0, 2], "steps": 1, "lr": 1e-3, "harmful_size": 2, "jailbreak_size": 2},
        "device": "cpu",
        **changes,
    }
    path = workdir / "compare.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_compare_end_to_end_resumes_and_refuses_changed_settings(
    workdir,
    fake_sources,  # noqa: F811
    fake_mmlu,
    fake_judge,
    monkeypatch,
    capsys,
):
    import matplotlib.axes

    labels, real_annotate = [], matplotlib.axes.Axes.annotate
    monkeypatch.setattr(
        matplotlib.axes.Axes, "annotate", lambda ax, t, *a, **k: labels.append(t) or real_annotate(ax, t, *a, **k)
    )
    assert run_eu("compare", "-c", _config(workdir)) == 0
    out = workdir / "cmp"
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["original", "RetainOnly", "EU"]
    assert results["items"] == {"harmful": 3, "jailbreak": 4, "domain": 4, "mmlu": 3}
    for name, method in results["methods"].items():
        assert set(method["metrics"]) >= {"harmful_asr", "jailbreak_asr", "domain_accuracy", "mmlu_accuracy"}
        if name == "original":
            assert method["model"] == "tiny-llama" and method["relearn"] is None and method["seeds"] == 1
        else:
            assert method["models"] == [
                str(out / "runs" / f"seed{s}" / name / "checkpoints" / "last.ckpt") for s in (42, 43)
            ]
            assert method["seeds"] == 2 and len(method["fit_seconds"]) == 2
            assert [r["examples"] for r in method["relearn"]] == [0, 2]
            assert method["relearn"][0]["harmful_asr"] == method["metrics"]["harmful_asr"] == 1.0
            # 2 harmful prompts after each attack, pooled over 2 seeds: 4 of 4
            assert method["relearn"][0]["intervals"]["harmful_asr"] == pytest.approx(list(wilson(4, 4)))
        # pooled over seeds: 3 harmful prompts x seeds, all unsafe under the keyword judge
        assert method["counts"]["harmful_asr"] == [3 * method["seeds"], 3 * method["seeds"]]
        assert method["sd"]["harmful_asr"] == 0.0
    eu_row = results["methods"]["EU"]
    assert eu_row["claim"] == "not met", "ASR 1.0 on every prompt lies wholly above 0.05"
    assert (
        eu_row["ratio"]["value"] is None or eu_row["ratio"]["interval"] is None or len(eu_row["ratio"]["interval"]) == 2
    )
    assert results["settings"]["methods"][1] == {"name": "EU", "configs": [], "args": [], "evaluate": True, "grid": {}}
    assert results["tuning"] == {}, "no method has a grid: nothing is tuned"
    assert results["settings"]["seeds"] == [42, 43]
    table = (out / "results.md").read_text()
    for text in ("| RetainOnly |", "| EU |", "| original |", "general (MMLU) accuracy", "× RetainOnly", "N = 2"):
        assert text in table, text
    assert "| claim |" in table and "not met" in table and "training seeds 42, 43" in table
    assert "1.000 ± 0.000" not in table and "1.000 [0.610, 1.000]" in table, "sd shown only when it is not 0"
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "eval" / "samples.md").is_file()
    assert labels[-3:] == ["original", "RetainOnly", "EU"], "one labelled point per method"
    saved = json.loads((out / "runs" / "seed43" / "EU" / "compare.json").read_text())
    assert saved["finished"] and saved["settings"]["args"] == ["--seed_everything=43", "--trainer.max_steps=2"] + [
        "--trainer.num_sanity_val_steps=0"
    ]

    # a second run trains, evaluates and attacks nothing
    checkpoints = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/checkpoints/*.ckpt")}
    loads = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("retrained"))
    for module in (evaluate_module, attack):
        monkeypatch.setattr(module, "load_model_and_tokenizer", lambda *a: loads.append(a) or pytest.fail("loaded"))
    capsys.readouterr()
    assert run_eu("compare", "-c", _config(workdir)) == 0
    assert "RetainOnly: trained earlier with the same settings" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/checkpoints/*.ckpt")} == checkpoints
    assert len(checkpoints) == 4
    assert json.loads((out / "results.json").read_text())["methods"] == results["methods"] and loads == []

    # other training settings are refused, naming the setting, before anything runs
    assert run_eu("compare", "-c", _config(workdir, max_steps=3)) == 2
    err = capsys.readouterr().err
    assert "RetainOnly" in err and "--trainer.max_steps=2" in err and "--trainer.max_steps=3" in err
    (workdir / "retain_only.yaml").write_text(
        (workdir / "retain_only.yaml").read_text().replace("monitor_forget: true", "monitor_forget: false")
    )
    assert run_eu("compare", "-c", _config(workdir)) == 2
    err = capsys.readouterr().err
    assert "model.objective.init_args.monitor_forget in" in err and ": True -> False" in err


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": []}, "at least one method"),
        ({"methods": [{"name": "a"}, {"name": "a"}]}, "must differ"),
        ({"methods": [{"name": "original"}]}, "method name 'original'"),
        (
            {"methods": [{"name": "a", "configs": ["nowhere.yaml"]}], "relative_to": None},
            "config file not found: nowhere",
        ),
        ({"relative_to": "Nope"}, "'Nope' is not one of the evaluated methods"),
    ],
)
def test_bad_comparisons_are_refused_before_anything_runs(workdir, changes, message, capsys):
    assert run_eu("compare", "-c", _config(workdir, **changes)) == 2
    assert message in capsys.readouterr().err
    assert not (workdir / "cmp").exists()


def printed_shipped_config(path, command, capsys, monkeypatch):
    """The config ``eu COMMAND -c PATH --print_config`` prints, after checking that the file opens
    with the command that runs it and that every value of the file reaches the command."""
    first = path.read_text().splitlines()[0]
    assert first == f"# eu {command} -c {path.relative_to(ROOT)}", "opens with the command that runs it"
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exit_info:
        run_eu(*shlex.split(first[2:])[1:], "--print_config")
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert contains(printed, yaml.safe_load(path.read_text())), "every value of the file reaches the command"
    return printed


@pytest.mark.parametrize("path", COMPARE_CONFIGS, ids=lambda p: p.name)
def test_shipped_comparison_configs_parse_and_name_existing_configs(path, capsys, monkeypatch):
    printed = printed_shipped_config(path, "compare", capsys, monkeypatch)
    files = printed["base"] + [c for m in printed["methods"] for c in m["configs"]]
    assert all((ROOT / f).is_file() for f in files), files
    names = [m["name"] for m in printed["methods"]]
    assert {"RetainOnly", "GradientAscent", "NPO", "DPO", "ExclusiveUnlearning"} <= set(names)
    assert printed["relative_to"] in names and 0 in printed["relearning"]["examples"]
    assert "mmlu" in printed["evaluation"]["suites"].split(",")


@pytest.fixture()
def fake_fit(monkeypatch):
    """``eu fit`` replaced by writing the run's last.ckpt; returns the commands it was given."""
    commands = []

    def run(command, check=False):
        commands.append(command)
        root = next(a.split("=", 1)[1] for a in command if a.startswith("--trainer.default_root_dir="))
        (Path(root) / "checkpoints").mkdir(parents=True, exist_ok=True)
        (Path(root) / "checkpoints" / "last.ckpt").write_text(f"{len(commands)}")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", run)
    return commands


def test_a_later_stage_names_an_earlier_one_and_is_refused_when_it_was_retrained(
    workdir, fake_fit, monkeypatch, capsys
):
    """SKU's shape: stage 1 (not evaluated) then stage 2 naming stage 1's checkpoint through {runs}."""
    scores = {"harmful": {"n": 1, "asr": 0.5, "refusal_rate": 0.0}, "domain": {"n": 1, "accuracy": 1.0}}
    monkeypatch.setattr(evaluate_module, "evaluate", lambda models, **kwargs: dict.fromkeys(models, scores))
    stage2 = {"name": "Stage2", "args": ["--model.objective.init_args.expert={runs}/Stage1/checkpoints/last.ckpt"]}
    methods = [{"name": "Stage1", "evaluate": False}, stage2]
    config = _config(workdir, methods=methods, relative_to=None, attack=False)
    assert run_eu("compare", "-c", config) == 0
    runs = workdir / "cmp" / "runs" / "seed42"  # each seed's stage 2 names that seed's stage 1
    assert f"--model.objective.init_args.expert={runs}/Stage1/checkpoints/last.ckpt" in fake_fit[1]
    assert f"--model.objective.init_args.expert={runs.parent}/seed43/Stage1/checkpoints/last.ckpt" in fake_fit[3]
    results = json.loads((workdir / "cmp" / "results.json").read_text())
    assert list(results["methods"]) == ["original", "Stage2"], "stage 1 is trained, not evaluated"
    assert run_eu("compare", "-c", config) == 0 and len(fake_fit) == 4, "all reused"

    import shutil

    shutil.rmtree(runs / "Stage1")  # stage 1 trained again: stage 2 no longer matches it
    capsys.readouterr()
    assert run_eu("compare", "-c", config) == 2
    err = capsys.readouterr().err
    assert "Stage2 in" in err and "a file its arguments name changed" in err
    assert len(fake_fit) == 5, "stage 1 retrained, stage 2 refused before training"


def _point(harmful, jailbreak, domain):
    return {"harmful_asr": harmful, "jailbreak_asr": jailbreak, "domain_accuracy": domain}


def test_tuning_rule_keeps_the_domain_then_lowers_the_asr():
    from eu.commands.tuning import choose_points

    scores = {
        "RetainOnly": [_point(0.9, 0.9, 0.50), _point(0.9, 0.9, 0.60)],
        "EU": [_point(0.00, 0.00, 0.40), _point(0.10, 0.05, 0.58), _point(0.02, 0.30, 0.59)],
        "NPO": [_point(0.0, 0.0, 0.10), _point(0.5, 0.5, 0.30)],
    }
    chosen, reference = choose_points(scores, "RetainOnly", 0.9)
    assert reference == 0.60 and chosen["RetainOnly"] == 1
    assert chosen["EU"] == 1, "0.40 is below 0.9 x 0.60; of the two that keep it, worst ASR 0.10 beats 0.30"
    assert chosen["NPO"] == 1, "none keeps 0.54: the best domain accuracy"
    assert choose_points({"EU": scores["EU"]}, None, 0.9)[0] == {"EU": 0}, "no reference: the lowest worst ASR"


def test_tuning_chooses_on_validation_and_the_comparison_trains_the_choice(tmp_path, monkeypatch):
    import eu.commands.compare as compare_module
    from eu.commands.compare import Method, Suites
    from eu.commands.tuning import tune, tuning_markdown

    fits, splits = [], []

    def fake_fit(runs, name, configs, args):
        fits.append((str(runs.relative_to(tmp_path)), name, args))
        return {"checkpoint": runs / name / "last.ckpt", "fit_seconds": 1.0}

    # validation prefers lr 1e-4 (lower ASR at a kept domain); a test split would prefer 1e-5
    validation = {
        "1e-05": _point(0.5, 0.5, 0.55),
        "0.0001": _point(0.1, 0.0, 0.56),
        "RetainOnly": _point(0.9, 0.9, 0.6),
    }

    def fake_evaluate(folder, models, evaluation, device):
        splits.append(evaluation.split)
        return {m: {"_": validation[Path(m).parent.name.split("-", 1)[-1]]} for m in models}

    monkeypatch.setattr(compare_module, "_fit", fake_fit)
    monkeypatch.setattr(compare_module, "evaluate_models", fake_evaluate)
    monkeypatch.setattr("eu.commands.tuning.point_metrics", lambda result: dict(result["_"]))
    methods = [
        Method("RetainOnly", ["ro.yaml"]),
        Method("EU", [], ["--x={runs}/RetainOnly"], grid={"model.optimizer.init_args.lr": [1e-5, 1e-4]}),
    ]
    tuned, report = tune(
        tmp_path, ["base.yaml"], methods, 42, ["--trainer.max_steps=2"], Suites(), "cpu", "RetainOnly", 0.9
    )
    assert splits == ["validation"], "tuning never looks at the test split"
    assert fits[0] == ("runs/seed42", "RetainOnly", ["--seed_everything=42", "--trainer.max_steps=2"])
    assert [f[:2] for f in fits[1:]] == [("tune/seed42/EU", "lr-1e-05"), ("tune/seed42/EU", "lr-0.0001")]
    assert fits[1][2][2] == f"--x={tmp_path}/runs/seed42/RetainOnly", "{runs} names the seed's final folder"
    assert report["methods"]["EU"]["chosen"] == {"model.optimizer.init_args.lr": 0.0001}
    assert tuned[0] is methods[0] and tuned[1].args == [
        "--x={runs}/RetainOnly",
        "--model.optimizer.init_args.lr=0.0001",
    ]
    text = tuning_markdown(report, 0.9, "RetainOnly")
    assert "| EU | **lr=0.0001** | **0.100** |" in text and "| EU | lr=1e-05 | 0.500 |" in text


def test_a_grid_on_a_stage_that_is_not_evaluated_is_refused():
    from eu.commands.compare import Method
    from eu.commands.tuning import check_grids

    with pytest.raises(EUError, match="SKUExpert has a grid but evaluate: false"):
        check_grids([Method("SKUExpert", evaluate=False, grid={"trainer.max_steps": [1, 2]})])
    with pytest.raises(EUError, match="non-empty list"):
        check_grids([Method("EU", grid={"trainer.max_steps": []})])
