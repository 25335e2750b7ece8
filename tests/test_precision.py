"""The default precision follows the hardware: bf16 mixed precision only where bf16 is native."""

import logging

import pytest

from eu.models import precision

from utils import ROOT, run_eu

CPU_WITH_BF16 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n"
CPU_WITHOUT = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n"


def test_cpu_flags_are_read_from_cpuinfo():
    assert precision.cpu_bf16_flags(CPU_WITH_BF16) == ["avx512_bf16"]
    assert precision.cpu_bf16_flags(CPU_WITHOUT) == []
    assert precision.cpu_bf16_flags("flags : amx_bf16 avx512_bf16") == ["avx512_bf16", "amx_bf16"]


@pytest.mark.parametrize(("cpuinfo", "expected"), [(CPU_WITH_BF16, "bf16-mixed"), (CPU_WITHOUT, "32-true")])
def test_cpu_default_follows_the_flags(monkeypatch, cpuinfo, expected):
    real = precision.cpu_bf16_flags
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: real(cpuinfo))
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    chosen, reason = precision.default_precision("auto")
    assert chosen == expected
    assert (reason == "the CPU has avx512_bf16") == (expected == "bf16-mixed")


def test_fit_without_a_precision_picks_and_reports_one(workdir, monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ["avx512_bf16"])
    caplog.set_level(logging.INFO)
    args = ["--trainer.precision=null", "--trainer.max_steps=1", "--trainer.val_check_interval=100"]
    code = run_eu("fit", "-c", str(ROOT / "configs" / "tiny.yaml"), *args, "--trainer.enable_progress_bar=false")
    assert code == 0
    assert "eu: precision bf16-mixed (the CPU has avx512_bf16)" in caplog.text
