"""eu sample on the tiny model: the recipe's prompts, determinism and resume."""

import json

import pytest

import eu.sample as sample_mod
from eu.sample import SampleSettings, distinct_2gram_ratio, sample_corpus, user_turn_prefix


def test_the_model_writes_the_user_turn_after_an_empty_system_turn(tiny_tokenizer):
    prefix = tiny_tokenizer.decode(user_turn_prefix(tiny_tokenizer))
    assert prefix == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n"


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_interrupted_sampling_resumes_without_duplicates_or_losses(tiny_model, tiny_tokenizer, tmp_path, monkeypatch):
    settings = SampleSettings(num_pairs=10, batch_size=4, user_tokens=8, answer_tokens=8)
    straight = sample_corpus(tiny_model, tiny_tokenizer, tmp_path / "a.jsonl", settings, progress=False)
    expected = _rows(straight)
    assert len(expected) == 10
    assert len({(r["user_text"], r["assistant_text"]) for r in expected}) == 10
    assert not (tmp_path / "a.jsonl.parts").exists()

    real_chunk = sample_mod.sample_chunk
    calls = []

    def dies_on_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(sample_mod, "sample_chunk", dies_on_third_chunk)
    out = tmp_path / "b.jsonl"
    with pytest.raises(KeyboardInterrupt):
        sample_corpus(tiny_model, tiny_tokenizer, out, settings, progress=False)
    assert not out.exists()
    assert len(list((tmp_path / "b.jsonl.parts").glob("chunk-*.jsonl"))) == 2

    calls.clear()
    monkeypatch.setattr(sample_mod, "sample_chunk", lambda *a, **k: calls.append(1) or real_chunk(*a, **k))
    sample_corpus(tiny_model, tiny_tokenizer, out, settings, progress=False)
    assert len(calls) == 1, "only the missing chunk is generated again"
    assert _rows(out) == expected


def test_distinct_bigram_ratio():
    assert distinct_2gram_ratio(["a b c", "a b d"]) == pytest.approx(3 / 4)
    assert distinct_2gram_ratio([]) == 0.0


def test_eu_sample_killed_midway_and_restarted_gives_the_uninterrupted_rows(tmp_path, tiny_path, eu_cache):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), "EU_CACHE": str(eu_cache), "OMP_NUM_THREADS": "1"}
    base = [
        sys.executable,
        "-m",
        "eu",
        "sample",
        "--model",
        "tiny-llama",
        "--num_pairs",
        "120",
        "--batch_size",
        "4",
        "--user_tokens",
        "16",
        "--answer_tokens",
        "16",
    ]
    subprocess.run(base + ["--out", str(tmp_path / "straight.jsonl")], env=env, check=True, capture_output=True)

    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen(base + ["--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "killed.jsonl.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("chunk-*.jsonl"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be killed; make it longer"
    assert len(list(parts.glob("chunk-*.jsonl"))) >= 3

    subprocess.run(base + ["--out", str(out)], env=env, check=True, capture_output=True)
    rows = _rows(out)
    assert len(rows) == 120
    assert len({(r["user_text"], r["assistant_text"]) for r in rows}) == 120
    assert rows == _rows(tmp_path / "straight.jsonl")
    assert not parts.exists()
