"""``eu sweep``: grid expansion, RetainOnlyFT shared by the points that train alike, the claim
column against hand-computed ratios, an end-to-end sweep on the tiny model that resumes, and the
shipped sweep configs."""

import json

import pytest
import yaml
from test_compare import fake_judge, fake_mmlu, printed_shipped_config  # noqa: F401 - fixtures
from test_eval import fake_sources  # noqa: F401 - fixture

import eu.commands.compare as compare_module
import eu.commands.sweep as sweep_module
from eu.errors import EUError

from conftest import ROOT, run_eu

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
    return {"metrics": metrics, "fit_seconds": seconds}


def test_each_point_is_divided_by_the_retain_only_run_that_trained_like_it(tmp_path, monkeypatch):
    seen = {}
    scores = {
        "forget_weight-0.4_max_steps-80": _metrics(0.10, 0.0, 0.50),
        "forget_weight-0.4_max_steps-160": _metrics(0.05000000074505806, 0.05, 0.45),  # 1/20 in float32
        "forget_weight-0.8_max_steps-80": _metrics(0.0, 0.0, 0.30),
        "forget_weight-0.8_max_steps-160": _metrics(0.0, 0.0, 0.40, 120.0),
        "RetainOnly_max_steps-80": _metrics(1.0, 0.9, 0.40),
        "RetainOnly_max_steps-160": _metrics(1.0, 0.9, 0.44),
    }

    def fake_compare(base, methods, **kwargs):
        seen.update(methods=methods, kwargs=kwargs)
        return {"methods": {"original": _metrics(1.0, 1.0, 0.1), **scores}}

    monkeypatch.setattr(compare_module, "compare", fake_compare)
    out = tmp_path / "s"
    report = sweep_module.sweep(["base.yaml"], {LAMBDA: [0.4, 0.8], STEPS: [80, 160]}, out=str(out))
    methods = {m.name: m for m in seen["methods"]}
    assert list(methods) == list(scores), "four points, then one RetainOnlyFT per step count"
    assert methods["forget_weight-0.8_max_steps-160"].args == [f"--{LAMBDA}=0.8", f"--{STEPS}=160"]
    assert methods["RetainOnly_max_steps-160"].configs == ["configs/methods/retain_only.yaml"]
    assert methods["RetainOnly_max_steps-160"].args == [f"--{STEPS}=160"]
    assert seen["kwargs"]["attack"] is False and seen["kwargs"]["out"] == str(out)
    rows = {r["name"]: r for r in report["rows"]}
    assert rows["forget_weight-0.4_max_steps-80"]["ratio"] == pytest.approx(0.50 / 0.40)
    assert rows["forget_weight-0.8_max_steps-160"]["ratio"] == pytest.approx(0.40 / 0.44)
    assert rows["forget_weight-0.8_max_steps-160"]["retain_only"] == "RetainOnly_max_steps-160"
    met = [name for name, row in rows.items() if row["claim_met"]]
    # 0.4/80: harmful 0.10 > 0.05; 0.4/160: at the bounds (0.05, 1.02x); 0.8/80: 0.75x; 0.8/160: 0.91x
    assert met == ["forget_weight-0.4_max_steps-160", "forget_weight-0.8_max_steps-160"]
    table = (out / "sweep.md").read_text()
    assert "| forget_weight | max_steps | harmful ASR |" in table and "| 0.8 | 160 | 0.000 | 0.000 | 0.400 |" in table
    assert "Met by: forget_weight-0.4_max_steps-160, forget_weight-0.8_max_steps-160." in table
    assert json.loads((out / "sweep.json").read_text()) == report


@pytest.fixture()
def flat_compare(monkeypatch):
    """``eu compare`` replaced by one that scores every method alike; returns the methods it was given."""
    seen = []
    monkeypatch.setattr(
        compare_module,
        "compare",
        lambda base, methods, **k: seen.extend(methods) or {"methods": {m.name: _metrics(0, 0, 0.5) for m in methods}},
    )
    return seen


def test_a_grid_without_training_keys_shares_one_retain_only_run(tmp_path, flat_compare):
    seen = flat_compare
    report = sweep_module.sweep(["base.yaml"], {LAMBDA: [0.4, 0.8]}, out=str(tmp_path / "s"))
    assert [m.name for m in seen] == ["forget_weight-0.4", "forget_weight-0.8", "RetainOnly"]
    assert seen[-1].args == [] and all(r["retain_only"] == "RetainOnly" and r["ratio"] == 1.0 for r in report["rows"])


def test_a_key_with_one_value_sets_every_run_and_names_none(tmp_path, flat_compare):
    seen = flat_compare
    grid = {PATH: ["eu:math/train"], LAMBDA: [0.4, 0.8], STEPS: [80]}
    out = tmp_path / "s"
    sweep_module.sweep(["base.yaml"], grid, out=str(out))
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
        "evaluation": {"suites": "harmful,jailbreak,domain", "harmful_size": 2, "jailbreak_size": 2},
        "device": "cpu",
    }
    config["evaluation"].update(domain_size=3, max_new_tokens=3, batch_size=4)
    path = workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run_eu("sweep", "-c", str(path)) == 0
    out = workdir / "sweep"
    report = json.loads((out / "sweep.json").read_text())
    names = [r["name"] for r in report["rows"]]
    assert names == ["forget_weight-0.4", "forget_weight-0.8"], "a key with one value names nothing"
    assert all(r["retain_only"] == "RetainOnly" for r in report["rows"])
    for row in report["rows"]:
        assert row["harmful_asr"] == 1.0 and row["fit_seconds"] > 0, "KeywordJudge: every tiny answer complies"
        assert not row["claim_met"]
    saved = json.loads((out / "runs" / "forget_weight-0.8" / "compare.json").read_text())
    assert f"--{LAMBDA}=0.8" in saved["settings"]["args"] and f"--{STEPS}=2" in saved["settings"]["args"]
    assert saved["finished"]
    baseline = json.loads((out / "runs" / "RetainOnly" / "compare.json").read_text())
    assert f"--{STEPS}=2" in baseline["settings"]["args"], "a one-value training key trains RetainOnlyFT too"
    assert "the base’s steps unless its arguments set trainer.max_steps" in (out / "results.md").read_text()

    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("retrained"))
    assert run_eu("sweep", "-c", str(path)) == 0
    assert json.loads((out / "sweep.json").read_text())["rows"] == report["rows"]


@pytest.mark.parametrize("path", SWEEP_CONFIGS, ids=lambda p: p.name)
def test_shipped_sweep_configs_parse_and_name_existing_configs(path, capsys, monkeypatch):
    printed = printed_shipped_config(path, "sweep", capsys, monkeypatch)
    assert all((ROOT / f).is_file() for f in printed["base"] + printed["retain_only"])
    assert sweep_module.grid_points(printed["grid"]), "the grid expands"
