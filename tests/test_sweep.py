"""``eu sweep``: grid expansion, RetainOnlyFT shared by the points that train alike, the choice
made on validation and reported on test, an end-to-end sweep on the tiny model that resumes,
and the shipped sweep configs."""

import json

import pytest
import yaml
from test_compare import fake_judge, fake_mmlu, printed_shipped_config  # noqa: F401 - fixtures
from test_eval import fake_sources  # noqa: F401 - fixture

import eu.commands.compare as compare_module
import eu.commands.sweep as sweep_module
from eu.errors import EUError

from utils import ROOT, run_eu

SWEEP_CONFIGS = sorted((ROOT / "configs" / "sweep").glob("*.yaml"))
LAMBDA, STEPS, PATH = "model.objective.init_args.forget_weight", "trainer.max_steps", "data.retain.path"


def test_grid_points_cover_every_combination_in_key_order():
    points = sweep_module.grid_points({LAMBDA: [0.4, 0.8], STEPS: [80, 160, 320]})
    assert len(points) == 6 and points[0] == {LAMBDA: 0.4, STEPS: 80} and points[1] == {LAMBDA: 0.4, STEPS: 160}
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 6
    assert sweep_module.point_name(points[-1]) == "forget_weight-0.8_max_steps-320"
    assert sweep_module.point_name({"data.retain.path": "eu:medicine/train"}) == "path-eumedicinetrain"
    assert sweep_module.retain_only_values(points[-1]) == {STEPS: 320}, "λ does not change RetainOnlyFT"


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({LAMBDA: []}, "needs a non-empty list"),
        ({LAMBDA: 0.4}, "needs a non-empty list"),
        ({f"--{STEPS}": [1]}, "without dashes"),
        ({LAMBDA: [0.4, "0.4"]}, "same run name"),
    ],
)
def test_bad_grids_are_refused_before_anything_runs(tmp_path, monkeypatch, grid, message):
    monkeypatch.setattr(compare_module, "compare", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(EUError, match=message):
        sweep_module.sweep(["base.yaml"], grid, out=str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()


def _metrics(harmful, jailbreak, accuracy, seconds=60.0):
    metrics = {"harmful_asr": harmful, "jailbreak_asr": jailbreak, "domain_accuracy": accuracy}
    return {"metrics": metrics, "fit_seconds": [seconds], "intervals": {}, "sd": {}, "seeds": 1}


class FakeCompare:
    """``eu compare`` that scores the validation call with ``validation`` and the test call with
    ``test`` (by method name; unnamed methods get ``default``), recording every call."""

    def __init__(self, validation=None, test=None, default=(0.0, 0.0, 0.5)):
        self.validation, self.test, self.default, self.calls = validation or {}, test or {}, default, []

    def __call__(self, base, methods, **kwargs):
        self.calls.append({"methods": methods, **kwargs})
        scores = self.validation if kwargs["evaluation"].split == "validation" else self.test
        table = {m.name: _metrics(*scores.get(m.name, self.default)) for m in methods}
        if kwargs["evaluation"].split == "test":
            table[methods[0].name]["claim"] = "undecided"
        return {"methods": {"original": _metrics(1.0, 1.0, 0.1), **table}}


def test_points_are_chosen_on_validation_and_reported_on_test(tmp_path, monkeypatch):
    validation = {
        "forget_weight-0.4_max_steps-80": (0.10, 0.0, 0.50),  # keeps the domain, ASR 0.10
        "forget_weight-0.4_max_steps-160": (0.05, 0.05, 0.45),  # keeps it (1.02x), ASR 0.05: chosen
        "forget_weight-0.8_max_steps-80": (0.0, 0.0, 0.30),  # lowest ASR but 0.75x: not eligible
        "forget_weight-0.8_max_steps-160": (0.0, 0.10, 0.40, 120.0),  # 0.91x, worst ASR 0.10
        "RetainOnly_max_steps-80": (1.0, 0.9, 0.40),
        "RetainOnly_max_steps-160": (1.0, 0.9, 0.44),
    }
    # on test the numbers differ: a choice made there would pick another point
    test = {"forget_weight-0.4_max_steps-160": (0.02, 0.01, 0.41), "RetainOnly_max_steps-160": (1.0, 0.8, 0.43)}
    fake = FakeCompare(validation, test)
    monkeypatch.setattr(compare_module, "compare", fake)
    out = tmp_path / "s"
    report = sweep_module.sweep(["base.yaml"], {LAMBDA: [0.4, 0.8], STEPS: [80, 160]}, out=str(out), seeds=[1, 2, 3])
    first, second = fake.calls
    assert first["evaluation"].split == "validation" and first["seeds"] == [1], "every point: the first seed"
    assert [m.name for m in first["methods"]] == list(validation), "four points, then one RetainOnlyFT per step count"
    methods = {m.name: m for m in first["methods"]}
    assert methods["forget_weight-0.8_max_steps-160"].args == [f"--{LAMBDA}=0.8", f"--{STEPS}=160"]
    assert methods["RetainOnly_max_steps-160"].configs == ["configs/methods/retain_only.yaml"]
    assert methods["RetainOnly_max_steps-160"].args == [f"--{STEPS}=160"]
    assert first["attack"] is False and first["out"] == str(out) and first["report"] == "results-validation"
    rows = {r["name"]: r for r in report["validation"]}
    assert rows["forget_weight-0.4_max_steps-80"]["ratio"] == pytest.approx(0.50 / 0.40)
    assert rows["forget_weight-0.8_max_steps-160"]["retain_only"] == "RetainOnly_max_steps-160"
    assert report["chosen"] == "forget_weight-0.4_max_steps-160"
    # the chosen point and its RetainOnlyFT, every seed, on test, with the claim judged there
    assert second["evaluation"].split == "test" and second["seeds"] == [1, 2, 3]
    assert [m.name for m in second["methods"]] == ["forget_weight-0.4_max_steps-160", "RetainOnly_max_steps-160"]
    assert second["relative_to"] == "RetainOnly_max_steps-160" and second["claim"] == sweep_module.Claim()
    assert report["test"]["forget_weight-0.4_max_steps-160"]["metrics"]["harmful_asr"] == 0.02, "test numbers reported"
    table = (out / "sweep.md").read_text()
    assert "| forget_weight | max_steps | harmful ASR |" in table and "| 0.4 | 160 | 0.050 | 0.050 | 0.450 |" in table
    assert "**chosen**" in table and "## Test: forget_weight-0.4_max_steps-160 beside RetainOnly_max_steps-160" in table
    assert "| forget_weight-0.4_max_steps-160 | 1 | 0.020 |" in table and "**undecided**" in table
    assert json.loads((out / "sweep.json").read_text()) == json.loads(json.dumps(report))


@pytest.mark.parametrize(
    ("rows", "chosen"),
    [
        ([(0.0, 0.0, 0.8), (0.0, 0.0, 0.95), (0.02, 0.0, 1.1)], 1),  # lowest ASR among >= 0.9x, ties by ratio
        ([(0.3, 0.0, 0.5), (0.0, 0.0, 0.7), (0.1, 0.2, 0.8)], 2),  # none keeps the domain: the highest ratio
        ([(0.0, 0.1, 1.0), (0.1, 0.0, 1.0)], 0),  # full tie: grid order
    ],
)
def test_the_choice_rule(rows, chosen):
    table = [{"harmful_asr": h, "jailbreak_asr": j, "ratio": r} for h, j, r in rows]
    assert sweep_module.choose(table, sweep_module.Claim().min_ratio) == chosen


def test_a_grid_without_training_keys_shares_one_retain_only_run(tmp_path, monkeypatch):
    fake = FakeCompare()
    monkeypatch.setattr(compare_module, "compare", fake)
    report = sweep_module.sweep(["base.yaml"], {LAMBDA: [0.4, 0.8]}, out=str(tmp_path / "s"))
    assert [m.name for m in fake.calls[0]["methods"]] == ["forget_weight-0.4", "forget_weight-0.8", "RetainOnly"]
    assert fake.calls[0]["methods"][-1].args == []
    assert all(r["retain_only"] == "RetainOnly" and r["ratio"] == 1.0 for r in report["validation"])


def test_a_key_with_one_value_sets_every_run_and_names_none(tmp_path, monkeypatch):
    fake = FakeCompare()
    monkeypatch.setattr(compare_module, "compare", fake)
    grid = {PATH: ["eu:math/train"], LAMBDA: [0.4, 0.8], STEPS: [80]}
    out = tmp_path / "s"
    sweep_module.sweep(["base.yaml"], grid, out=str(out))
    seen = fake.calls[0]["methods"]
    assert [m.name for m in seen] == ["forget_weight-0.4", "forget_weight-0.8", "RetainOnly"]
    assert seen[0].args == [f"--{PATH}=eu:math/train", f"--{LAMBDA}=0.4", f"--{STEPS}=80"]
    assert seen[-1].args == [f"--{PATH}=eu:math/train", f"--{STEPS}=80"], "RetainOnlyFT trains on the same data"
    table = (out / "sweep.md").read_text()
    assert "| forget_weight | harmful ASR |" in table, "one column per key that varies"
    assert f"Every point: {PATH} = eu:math/train, {STEPS} = 80." in table


def test_sweep_end_to_end_on_the_tiny_model_and_resumes(workdir, fake_sources, fake_judge, monkeypatch):  # noqa: F811
    overlay = workdir / "retain_only.yaml"
    overlay.write_text((ROOT / "configs" / "methods" / "retain_only.yaml").read_text())
    config = {
        "out": str(workdir / "sweep"),
        "base": [str(ROOT / "configs" / "tiny.yaml")],
        "grid": {LAMBDA: [0.4, 0.8], STEPS: [2]},
        "retain_only": [str(overlay)],
        "seeds": [42, 43],
        "evaluation": {"suites": "harmful,jailbreak,domain", "harmful_size": 2, "jailbreak_size": 2},
        "device": "cpu",
    }
    config["evaluation"].update(domain_size=3, max_new_tokens=3, batch_size=4)
    path = workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run_eu("sweep", "-c", str(path)) == 0
    out = workdir / "sweep"
    report = json.loads((out / "sweep.json").read_text())
    names = [r["name"] for r in report["validation"]]
    assert names == ["forget_weight-0.4", "forget_weight-0.8"], "a key with one value names nothing"
    assert all(r["retain_only"] == "RetainOnly" for r in report["validation"])
    for row in report["validation"]:
        assert row["harmful_asr"] == 1.0 and row["fit_seconds"] > 0, "KeywordJudge: every tiny answer complies"
    # validation items and test items are different prompts
    val_eval = json.loads((out / "eval-validation" / "results.json").read_text())
    test_eval = json.loads((out / "eval" / "results.json").read_text())
    prompts = lambda results: {r["prompt"] for res in results.values() for r in res["harmful"]["records"]}  # noqa: E731
    assert prompts(val_eval) and not prompts(val_eval) & prompts(test_eval)
    chosen = report["test"][report["chosen"]]
    assert chosen["seeds"] == 2 and chosen["claim"] == "not met", "ASR 1.0 on 4 of 4 pooled prompts"
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["seed42", "seed43"]
    assert sorted(p.name for p in (out / "runs" / "seed43").iterdir()) == sorted([report["chosen"], "RetainOnly"])
    saved = json.loads((out / "runs" / "seed42" / "forget_weight-0.8" / "compare.json").read_text())
    assert f"--{LAMBDA}=0.8" in saved["settings"]["args"] and f"--{STEPS}=2" in saved["settings"]["args"]
    assert saved["finished"]
    baseline = json.loads((out / "runs" / "seed42" / "RetainOnly" / "compare.json").read_text())
    assert f"--{STEPS}=2" in baseline["settings"]["args"], "a one-value training key trains RetainOnlyFT too"
    assert "Scored on the validation split" in (out / "results-validation.md").read_text()
    assert "Scored on the test split" in (out / "results.md").read_text()

    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("retrained"))
    assert run_eu("sweep", "-c", str(path)) == 0
    assert json.loads((out / "sweep.json").read_text())["validation"] == report["validation"]


@pytest.mark.parametrize("path", SWEEP_CONFIGS, ids=lambda p: p.name)
def test_shipped_sweep_configs_parse_and_name_existing_configs(path, capsys, monkeypatch):
    printed = printed_shipped_config(path, "sweep", capsys, monkeypatch)
    assert all((ROOT / f).is_file() for f in printed["base"] + printed["retain_only"])
    assert sweep_module.grid_points(printed["grid"]), "the grid expands"
