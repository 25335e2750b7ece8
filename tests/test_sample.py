"""eu sample on the tiny model: the recipe's prompts, determinism and resume."""

import json

import pytest

import eu.data.sampler as sample_mod
from eu.data.sampler import SampleSettings, distinct_2gram_ratio, sample_corpus, user_turn_prefix
from eu.errors import EUError


def test_the_model_writes_the_user_turn_after_the_conversation_start(tiny_tokenizer):
    # the reference renders no system turn for its empty system prompt; "" asks for an empty one
    assert tiny_tokenizer.decode(user_turn_prefix(tiny_tokenizer, None)) == "<|im_start|>user\n"
    empty = tiny_tokenizer.decode(user_turn_prefix(tiny_tokenizer, ""))
    assert empty == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n"


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

    from utils import ROOT

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


@pytest.fixture()
def fake_chunks(monkeypatch):
    """sample_chunk without a model: rows depend on the chunk number and the settings; returns the calls."""
    calls = []

    def chunk_rows(model, tokenizer, settings, chunk, rows):
        calls.append(chunk)
        return [{"user_text": f"q{chunk}.{i} t{settings.temperature}", "assistant_text": "a"} for i in range(rows)]

    monkeypatch.setattr(sample_mod, "sample_chunk", chunk_rows)
    return calls


def _interrupted(out, settings, fake_chunks, monkeypatch, after=2):
    real = sample_mod.sample_chunk

    def dies(*args, **kwargs):
        if len(fake_chunks) == after:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(sample_mod, "sample_chunk", dies)
    with pytest.raises(KeyboardInterrupt):
        sample_corpus(None, None, out, settings, progress=False)
    monkeypatch.setattr(sample_mod, "sample_chunk", real)


def test_resuming_with_other_settings_is_refused_and_names_the_setting(tmp_path, fake_chunks, monkeypatch):
    settings = SampleSettings(num_pairs=12, batch_size=4)
    out = tmp_path / "forget.jsonl"
    _interrupted(out, settings, fake_chunks, monkeypatch)
    parts = tmp_path / "forget.jsonl.parts"
    before = {p.name: p.read_bytes() for p in parts.iterdir()}

    with pytest.raises(EUError, match=r"forget\.jsonl\.parts.*batch_size: 4 -> 8"):
        sample_corpus(None, None, out, SampleSettings(num_pairs=12, batch_size=8), progress=False)
    with pytest.raises(EUError, match=r"temperature: 2\.0 -> 1\.0"):
        sample_corpus(None, None, out, SampleSettings(num_pairs=12, batch_size=4, temperature=1.0), progress=False)
    assert {p.name: p.read_bytes() for p in parts.iterdir()} == before, "a refused resume changes nothing"
    assert not out.exists()

    fake_chunks.clear()
    sample_corpus(None, None, out, settings, progress=False)
    assert fake_chunks == [2], "the same settings resume where the run stopped"
    assert len(_rows(out)) == 12


def test_more_pairs_resume_the_same_chunks(tmp_path, fake_chunks, monkeypatch):
    out = tmp_path / "forget.jsonl"
    _interrupted(out, SampleSettings(num_pairs=12, batch_size=4), fake_chunks, monkeypatch)
    fake_chunks.clear()
    sample_corpus(None, None, out, SampleSettings(num_pairs=16, batch_size=4), progress=False)
    assert fake_chunks == [2, 3]
    assert len(_rows(out)) == 16


def test_a_finished_corpus_is_reused_only_with_its_settings(tmp_path, fake_chunks):
    settings = SampleSettings(num_pairs=8, batch_size=4)
    out = tmp_path / "forget.jsonl"
    sample_corpus(None, None, out, settings, progress=False, source={"model": "tiny-llama"})
    written = out.read_bytes()
    recorded = json.loads((tmp_path / "forget.jsonl.settings.json").read_text())
    assert recorded["settings"]["num_pairs"] == 8 and recorded["settings"]["model"] == "tiny-llama"

    fake_chunks.clear()
    assert sample_corpus(None, None, out, settings, progress=False, source={"model": "tiny-llama"}) == out
    assert fake_chunks == [] and out.read_bytes() == written
    with pytest.raises(EUError, match=r"forget\.jsonl was sampled with other settings \(num_pairs: 8 -> 9\)"):
        sample_corpus(None, None, out, SampleSettings(num_pairs=9, batch_size=4), source={"model": "tiny-llama"})
    with pytest.raises(EUError, match=r"model: 'tiny-llama' -> 'other'"):
        sample_corpus(None, None, out, settings, progress=False, source={"model": "other"})
    assert out.read_bytes() == written and fake_chunks == []


@pytest.mark.parametrize("sidecar", [False, True])
def test_an_output_file_eu_did_not_write_is_never_overwritten(tmp_path, fake_chunks, sidecar):
    settings = SampleSettings(num_pairs=8, batch_size=4)
    out = tmp_path / "forget.jsonl"
    if sidecar:  # eu wrote it once, then someone replaced the file
        sample_corpus(None, None, out, settings, progress=False)
    out.write_text('{"user_text": "mine", "assistant_text": "mine"}\n')
    with pytest.raises(EUError, match=r"forget\.jsonl exists and eu did not write it"):
        sample_corpus(None, None, out, settings, progress=False)
    assert out.read_text() == '{"user_text": "mine", "assistant_text": "mine"}\n'


def test_eu_sample_refuses_a_user_file_before_loading_the_model(tmp_path, monkeypatch):
    import eu.commands.sample  # patched where it is used; patching eu.models would leak into a first import

    from utils import run_eu

    monkeypatch.setattr(eu.commands.sample, "load_model", lambda *a, **k: pytest.fail("the model should not be loaded"))
    out = tmp_path / "notes.jsonl"
    out.write_text("my notes\n")
    assert run_eu("sample", "--model", "tiny-llama", "--out", str(out)) == 2
    assert out.read_text() == "my notes\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num_pairs", "0"], "--num_pairs must be at least 1, got 0"),
        (["--top_k", "0", "--draw_among_top_k", "true"], "--draw_among_top_k needs --top_k >= 1"),
    ],
)
def test_eu_sample_refuses_bad_settings_before_loading_the_model(tmp_path, monkeypatch, capsys, args, message):
    import eu.commands.sample

    from utils import run_eu

    monkeypatch.setattr(eu.commands.sample, "load_model", lambda *a, **k: pytest.fail("the model should not be loaded"))
    out = tmp_path / "forget.jsonl"
    assert run_eu("sample", "--model", "tiny-llama", "--out", str(out), *args) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], "nothing written: no corpus, no parts folder"
