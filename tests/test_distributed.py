"""Two CPU processes (gloo): DDP matches one process with twice the examples per step."""

import os
import subprocess
import sys

import pytest
import torch

from utils import ROOT, scalars

TINY = str(ROOT / "configs" / "tiny.yaml")


def _fit(workdir, name, *args):
    cmd = [
        sys.executable,
        "-m",
        "eu",
        "fit",
        "-c",
        TINY,
        "--trainer.max_steps=5",
        "--trainer.log_every_n_steps=1",
        "--trainer.val_check_interval=100",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.callbacks=[]",
        f"--trainer.logger.init_args.name={name}",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return scalars(workdir / "runs/tiny" / name / "version_0")


OBJECTIVES = {
    "eu": ([], ("loss/total", "loss/retain", "loss/forget")),
    # NPO holds a frozen reference copy: it must not break DDP or make ranks disagree
    "npo": (["--model.objective=eu.objectives.NPO"], ("loss/total", "loss/retain", "loss/npo")),
}


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_ddp_two_processes_match_one_process_with_twice_the_batch(workdir, objective):
    extra, tags = OBJECTIVES[objective]
    per_device = ["--data.retain.examples_per_step=2", "--data.forget.examples_per_step=2"]
    ddp = _fit(
        workdir,
        "ddp",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        *per_device,
        *extra,
    )
    single = _fit(
        workdir,
        "single",
        "--trainer.devices=1",
        "--data.retain.examples_per_step=4",
        "--data.forget.examples_per_step=4",
        *extra,
    )
    for tag in tags:
        a = torch.tensor([v for _, v in ddp[tag]])
        b = torch.tensor([v for _, v in single[tag]])
        assert len(a) == len(b) == 5, tag
        torch.testing.assert_close(a, b, rtol=1e-4, atol=0, msg=tag)


@pytest.mark.gpu
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_fsdp_on_gpu_matches_single_device(workdir, objective):
    if torch.cuda.device_count() < 1:
        pytest.skip("needs a GPU")
    extra = OBJECTIVES[objective][0]
    fsdp = _fit(
        workdir,
        "fsdp",
        "-c",
        str(ROOT / "configs/strategy/fsdp.yaml"),
        "--trainer.devices=1",
        "--trainer.precision=32-true",
        "--trainer.accelerator=gpu",
        *extra,
    )
    single = _fit(workdir, "single", "--trainer.devices=1", "--trainer.accelerator=gpu", *extra)
    a = torch.tensor([v for _, v in fsdp["loss/total"]])
    b = torch.tensor([v for _, v in single["loss/total"]])
    torch.testing.assert_close(a, b, rtol=1e-3, atol=0)
