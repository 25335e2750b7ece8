"""RetainOnlyBaseline trains RetainOnlyFT exactly as a separate RetainOnly run would, and compares."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from eu import StreamConfig, UnlearningDataModule, UnlearningModule
from eu.callbacks import Evaluation
from eu.callbacks.retain_only import BASELINE_FILE, RetainOnlyBaseline, comparison_table
from eu.errors import EUError
from eu.objectives import RetainOnly

from utils import ROOT

STEPS = 4


def _adamw(params):
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)


def _fit(workdir, objective, callbacks):
    L.seed_everything(7)
    dm = UnlearningDataModule(
        StreamConfig(path=str(ROOT / "tests/data/retain.jsonl"), block_length=256),
        StreamConfig(path=str(ROOT / "tests/data/forget.jsonl"), block_length=256),
    )
    module = UnlearningModule(model="tiny-llama", objective=objective, optimizer=_adamw)
    module.connect_data(dm)
    trainer = L.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        callbacks=callbacks,
        logger=L.pytorch.loggers.CSVLogger(workdir / "logs"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        default_root_dir=workdir,
    )
    trainer.fit(module, datamodule=dm)
    return trainer, module


def _evaluation():
    return Evaluation(suites="domain", domain="math-basic", sizes={"domain": 3}, max_new_tokens=4, examples=0)


def test_baseline_equals_a_separate_retain_only_run(workdir, capsys, caplog):
    from eu.objectives import ExclusiveUnlearning

    caplog.set_level("INFO")
    baseline = RetainOnlyBaseline("domain")
    trainer, module = _fit(workdir, ExclusiveUnlearning(), [_evaluation(), baseline])
    _, separate = _fit(workdir / "separate", RetainOnly(monitor_forget=False), [])
    ours = baseline.module.model.state_dict()
    theirs = separate.model.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-6)
    # and it is not simply the EU run's weights
    eu_weights = module.model.state_dict()
    assert any(not torch.allclose(ours[k], eu_weights[k]) for k in ours)
    saved = json.loads((workdir / "logs" / "lightning_logs" / "version_0" / BASELINE_FILE).read_text())
    assert saved["steps"] == STEPS
    assert set(saved["retain_only"]) == {"eval/domain_acc", "eval/domain_answer_rate"}
    assert "against RetainOnlyFT trained the same way" in caplog.text


def test_baseline_needs_the_evaluation_first(workdir):
    from eu.objectives import ExclusiveUnlearning

    with pytest.raises(EUError, match="list eu.callbacks.Evaluation before it"):
        _fit(workdir, ExclusiveUnlearning(), [RetainOnlyBaseline("domain"), _evaluation()])


def test_comparison_table_prints_the_ratio():
    table = comparison_table(
        {
            "steps": 60,
            "before": {"eval/domain_acc": 0.1},
            "run": {"eval/domain_acc": 0.45},
            "retain_only": {"eval/domain_acc": 0.5},
        },
        "ExclusiveUnlearning",
    )
    row = table.splitlines()[-1].split()
    assert row == ["eu:", "eval/domain_acc", "0.100", "0.450", "0.500", "0.90"]


def baseline_overlay(folder) -> Path:
    """An overlay with an Evaluation on two maths items and the RetainOnlyFT baseline after it."""
    extra = folder / "baseline.yaml"
    extra.write_text(
        """
trainer:
  callbacks:
    - class_path: eu.callbacks.Evaluation
      init_args: {suites: domain, domain: math-basic, sizes: {domain: 2}, max_new_tokens: 2, examples: 0}
    - class_path: eu.callbacks.RetainOnlyBaseline
      init_args: {suites: domain}
"""
    )
    return extra


def test_quickstart_style_config_runs_the_baseline_from_the_command_line(workdir, caplog):
    from utils import run_eu

    caplog.set_level("INFO")
    extra = baseline_overlay(workdir)
    args = ["--trainer.max_steps=2", "--trainer.val_check_interval=100", "--trainer.enable_progress_bar=false"]
    assert run_eu("fit", "-c", str(ROOT / "configs" / "tiny.yaml"), "-c", str(extra), *args) == 0
    assert "against RetainOnlyFT trained the same way (2 steps" in caplog.text
    assert list((workdir / "runs").rglob(BASELINE_FILE))


def test_ratio_intervals_resample_the_shared_items_of_both_evaluations():
    from eu.callbacks.retain_only import ratio_intervals

    def suite(outcomes):
        records = [
            {"index": i, "correct": c, "phrasing": "seen" if i % 2 else "held_out"} for i, c in enumerate(outcomes)
        ]
        return {"domain": {"n": len(records), "records": records}}

    run = suite([True] * 30 + [False] * 30)
    retain_only = suite([True] * 40 + [False] * 20)
    got = ratio_intervals(run, retain_only)
    assert set(got) == {"eval/domain_acc", "eval/domain_acc_seen", "eval/domain_acc_held_out"}
    lo, hi = got["eval/domain_acc"]
    assert lo < 30 / 40 < hi <= 1.0, "the run answers a subset of RetainOnlyFT's items: its ratio stays below 1"
    table = comparison_table(
        {
            "steps": 60,
            "before": {"eval/domain_acc": 0.1},
            "run": {"eval/domain_acc": 0.5},
            "retain_only": {"eval/domain_acc": 40 / 60},
            "ratio_intervals": got,
            "split": "test",
        },
        "ExclusiveUnlearning",
    )
    assert "on the test split" in table and table.splitlines()[-1].endswith(f"0.75  [{lo:.2f}, {hi:.2f}]")


def test_the_old_class_path_still_resolves_with_a_warning_that_says_what_to_change(monkeypatch):
    import sys

    from eu.callbacks import RetainOnlyBaseline
    from eu.classpath import resolve_class

    monkeypatch.delitem(sys.modules, "eu.baseline", raising=False)
    with pytest.warns(FutureWarning, match="eu.callbacks.RetainOnlyBaseline: change the class_path"):
        assert resolve_class("eu.baseline.RetainOnlyBaseline") is RetainOnlyBaseline
