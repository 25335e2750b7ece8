"""Reliability guarantees: user files survive, checkpoints run no code, bad training stops, crashes resume."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from utils import ROOT, run_eu

TINY = str(ROOT / "configs" / "tiny.yaml")
FAST = [
    "--trainer.max_steps=2",
    "--trainer.val_check_interval=100",
    "--trainer.callbacks.init_args.every_n_train_steps=1",
    "--trainer.enable_progress_bar=false",
]


@pytest.fixture()
def ckpt(workdir):
    assert run_eu("fit", "-c", TINY, *FAST) == 0
    return workdir / "runs/tiny/checkpoints/last.ckpt"


# 1. Never destroy what eu did not write


def test_export_refuses_a_folder_holding_user_files(ckpt, workdir, capsys):
    target = workdir / "mine"
    target.mkdir()
    (target / "notes.txt").write_bytes(b"my own work\x00\x01")
    assert run_eu("export", str(ckpt), str(target)) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "did not write" in err
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert (target / "notes.txt").read_bytes() == b"my own work\x00\x01"


def test_export_into_the_working_directory_is_refused(ckpt, workdir):
    before = sorted(p.name for p in workdir.iterdir())
    assert run_eu("export", str(ckpt), ".") == 2
    assert sorted(p.name for p in workdir.iterdir()) == before


def test_export_replaces_its_own_folder_only_with_overwrite(ckpt, workdir, capsys):
    out = workdir / "exported"
    assert run_eu("export", str(ckpt), str(out)) == 0
    first = (out / "model.safetensors").stat().st_mtime_ns
    assert run_eu("export", str(ckpt), str(out)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert run_eu("export", str(ckpt), str(out), "--overwrite") == 0
    assert (out / "model.safetensors").stat().st_mtime_ns != first
    # nothing left aside: the old folder is removed once the new one is in place
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(".exported")) == []


def test_second_fit_in_the_same_run_folder_is_refused_not_overwritten(ckpt, workdir, capsys):
    before = ckpt.read_bytes()
    assert run_eu("fit", "-c", TINY, *FAST) == 2
    err = capsys.readouterr().err
    assert "--ckpt_path last" in err and "runs/tiny/checkpoints" in err
    assert ckpt.read_bytes() == before


def test_ckpt_path_last_resumes_the_run_in_its_folder(ckpt, workdir):
    assert run_eu("fit", "-c", TINY, *FAST[1:], "--trainer.max_steps=3", "--ckpt_path=last") == 0
    state = torch.load(ckpt, weights_only=True)
    assert state["global_step"] == 3


def test_one_run_folder_option_moves_logs_and_checkpoints(workdir):
    assert run_eu("fit", "-c", TINY, *FAST, "--trainer.default_root_dir=elsewhere/run1") == 0
    assert (workdir / "elsewhere/run1/checkpoints/last.ckpt").is_file()
    assert (workdir / "elsewhere/run1/tensorboard/version_0").is_dir()
    assert not (workdir / "runs").exists()


# 2. Loading a checkpoint runs no code


class _CreatesFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_checkpoint_whose_pickle_runs_code_is_refused(workdir, capsys):
    canary = workdir / "pwned.txt"
    evil = workdir / "evil.ckpt"
    torch.save({"eu": {"model": "tiny-llama"}, "state_dict": {}, "payload": _CreatesFile(str(canary))}, evil)
    assert not canary.exists()
    assert run_eu("export", str(evil), str(workdir / "out")) == 2
    err = capsys.readouterr().err
    assert "evil.ckpt" in err and "run code" in err
    assert not canary.exists()
    assert not (workdir / "out").exists()
    # the raw pickle does create the file: the test payload is real
    with evil.open("rb") as fh:
        torch.load(fh, weights_only=False)
    assert canary.exists()


def test_checkpoint_cannot_switch_on_remote_code(ckpt, workdir, capsys):
    state = torch.load(ckpt, weights_only=True)
    state["eu"]["trust_remote_code"] = True
    forged = workdir / "forged.ckpt"
    torch.save(state, forged)
    assert run_eu("export", str(forged), str(workdir / "out")) == 2
    assert "--trust_remote_code" in capsys.readouterr().err
    assert not (workdir / "out").exists()


def test_checkpoint_metadata_is_plain_json_with_a_rebuildable_objective(ckpt):
    from jsonargparse import ArgumentParser

    from eu.objectives import Objective

    meta = torch.load(ckpt, weights_only=True)["eu"]
    json.dumps(meta)
    assert meta["objective"]["class_path"].endswith("ExclusiveUnlearning")
    assert meta["objective"]["init_args"]["forget_weight"] == 0.4
    parser = ArgumentParser()
    parser.add_argument("--objective", type=Objective)
    rebuilt = parser.instantiate_classes(parser.parse_object({"objective": meta["objective"]})).objective
    assert type(rebuilt).__name__ == "ExclusiveUnlearning" and rebuilt.forget_weight == 0.4


# 3. Non-finite training stops cleanly


@pytest.mark.parametrize("what", ["loss", "gradient"])
def test_non_finite_training_stops_before_a_bad_checkpoint(workdir, capsys, what):
    code = run_eu(
        "fit",
        "-c",
        TINY,
        *FAST,
        "--trainer.max_steps=6",
        "--model.objective=fit_helpers.BreaksAt",
        "--model.objective.at=3",
        f"--model.objective.what={what}",
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"non-finite {what} at step 2" in err
    assert ("loss/forget=nan" in err) if what == "loss" else ("grad_norm=nan" in err)
    state = torch.load(workdir / "runs/tiny/checkpoints/last.ckpt", weights_only=True)
    assert state["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_gradient_clipping_defaults_to_one(workdir, capsys):
    with pytest.raises(SystemExit):
        run_eu("fit", "-c", TINY, "--print_config")
    assert "gradient_clip_val: 1.0" in capsys.readouterr().out


# 4. A crash resumes exactly


def _fit_subprocess(workdir, run_dir, losses, extra=(), kill_at=None, resume=False):
    callbacks = [
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {"every_n_train_steps": 3, "save_last": True, "save_top_k": -1},
        },
        {"class_path": "fit_helpers.LossRecorder", "init_args": {"path": str(losses)}},
    ]
    if kill_at is not None:
        callbacks.append({"class_path": "fit_helpers.KillAt", "init_args": {"step": kill_at}})
    overlay = workdir / f"overlay-{run_dir}-{kill_at}-{resume}.yaml"
    overlay.write_text(json.dumps({"trainer": {"callbacks": callbacks}}))
    cmd = [sys.executable, "-m", "eu", "fit", "-c", TINY, "-c", str(overlay), "--trainer.max_steps=8"]
    cmd += ["--trainer.val_check_interval=100", "--trainer.enable_progress_bar=false"]
    cmd += [f"--trainer.default_root_dir={run_dir}", *extra]
    if resume:
        cmd.append("--ckpt_path=last")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


def _steps(path):
    return {r["step"]: r for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.parametrize("extra", [[], ["--model.lora.rank=4", "--model.lora.dropout=0.3"]], ids=["full", "lora"])
def test_sigkilled_fit_resumes_to_the_uninterrupted_result(workdir, extra):
    straight = _fit_subprocess(workdir, "straight", workdir / "straight.jsonl", extra)
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = _fit_subprocess(workdir, "crashed", workdir / "crashed.jsonl", extra, kill_at=5)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert torch.load(workdir / "crashed/checkpoints/last.ckpt", weights_only=True)["global_step"] == 3
    resumed = _fit_subprocess(workdir, "crashed", workdir / "resumed.jsonl", extra, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    want, crashed, after = (_steps(workdir / f"{n}.jsonl") for n in ("straight", "crashed", "resumed"))
    assert sorted(want) == list(range(1, 9)) and sorted(after) == list(range(4, 9))
    for step, record in [*crashed.items(), *after.items()]:
        assert record.keys() == want[step].keys()
        for key, value in record.items():
            assert value == pytest.approx(want[step][key], rel=1e-6, abs=0), (step, key)
    a = torch.load(workdir / "straight/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(workdir / "crashed/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-6, atol=0)


def test_rng_states_are_saved_and_restored(ckpt):
    import random

    import numpy as np

    from eu.rng import rng_states, set_rng_states

    saved = torch.load(ckpt, weights_only=True)["eu_rng"]
    assert {"python", "numpy", "torch"} <= set(saved)
    state = rng_states()
    draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_states(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == draws


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (["--data.retain.block_length=128"], "data.retain.block_length: 256 -> 128"),
        (["--data.seed=7"], "data.seed: 42 -> 7"),
        (["--data.forget.examples_per_step=2"], "data.forget.examples_per_step: 4 -> 2"),
        (["--data.retain.path=tests/data/retain2.jsonl"], "examples of data.retain changed"),
    ],
)
def test_resume_against_another_data_plan_is_refused(ckpt, workdir, capsys, change, needle):
    lines = (workdir / "tests/data/retain.jsonl").read_text().splitlines()
    (workdir / "tests/data/retain2.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    before = ckpt.read_bytes()
    code = run_eu("fit", "-c", TINY, *FAST[1:], "--trainer.max_steps=3", "--ckpt_path=last", *change)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "another data plan" in err and needle in err
    assert ckpt.read_bytes() == before


def test_malicious_pickle_helper_is_picklable():
    # guards the test above: the payload must survive torch.save as a real pickle
    assert pickle.loads(pickle.dumps(_CreatesFile(os.devnull))) is not None
