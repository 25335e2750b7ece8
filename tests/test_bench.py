"""The benchmark and the GPU check script run end to end where a CPU allows."""

import subprocess
import sys

import torch

from utils import BENCHMARKS, DATA, ROOT


def test_bench_prints_both_variants_and_ratios(eu_cache):
    cmd = [
        sys.executable,
        str(BENCHMARKS / "train_step.py"),
        "--model",
        "tiny-llama",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--forget",
        str(DATA / "forget.jsonl"),
        "--generation",
        "4",
        "--threads",
        "1",
        "--profile",
        "3",
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for needle in (
        "reference 32",
        "eu 32",
        "speed-up of eu 32 over reference 32",
        "eu as shipped",
        "supervised tokens / s",
        "loss peak memory",
        "packing efficiency",
        "generation",
        "speedup",
    ):
        assert needle in out, out
    profiles = [line for line in out.splitlines() if line.startswith("profile ")]
    assert [line.split(",")[0] for line in profiles][:2] == ["profile reference 32", "profile eu 32"]
    assert all(line.count("%") == 3 for line in profiles), profiles


def test_gpu_check_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")], check=True)


def test_random_llama_1b_has_the_size_of_llama_3_2_1b():
    from eu.models import RANDOM_MODELS
    from eu.models.tiny import random_llama

    with torch.device("meta"):
        model = random_llama(**RANDOM_MODELS["random-llama-3.2-1b"])
    n = sum(p.numel() for p in model.parameters())
    assert 1.20e9 < n < 1.27e9  # Llama-3.2-1B has 1.24B parameters (tied embeddings)


def test_every_variant_trains_on_the_one_corpus_the_bench_sampled(eu_cache):
    cmd = [sys.executable, str(BENCHMARKS / "train_step.py"), "--model", "tiny-llama", "--forget-pairs", "8"]
    cmd += ["--steps", "1", "--warmup", "1", "--generation", "0", "--threads", "1"]
    before = set((eu_cache / "forget").glob("*.jsonl"))
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "eu as shipped" in out, out
    sampled = sorted(p.name for p in set((eu_cache / "forget").glob("*.jsonl")) - before)
    assert len(sampled) <= 1, f"a variant sampled its own corpus: {sampled}"


def test_sampling_bench_times_both_draws_and_prints_their_ratio(eu_cache):
    cmd = [sys.executable, str(BENCHMARKS / "sampling.py"), "--model", "tiny-llama", "--rows", "4"]
    out = subprocess.run(cmd + ["--tokens", "3", "--repeats", "1"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("tiny-llama in ") and "4 rows x 3 new tokens" in lines[0]
    assert lines[1].startswith("transformers draw") and lines[2].startswith("top-k draw")
    assert "tokens/s" in lines[1] and lines[-1].startswith("top-k draw / transformers draw: ")


def test_bench_times_the_robust_options_beside_plain_eu(eu_cache):
    cmd = [sys.executable, str(BENCHMARKS / "train_step.py"), "--model", "tiny-llama", "--steps", "1"]
    cmd += ["--warmup", "0", "--forget", str(DATA / "forget.jsonl"), "--generation", "0", "--threads", "1"]
    cmd += ["--precision", "32", "--robust", "sam", "adversarial", "--robust-steps", "2"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for needle in ("eu 32 sam", "eu 32 adversarial", "robust sam: ", "robust adversarial: ", "x the step time of"):
        assert needle in out, out
