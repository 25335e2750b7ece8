"""Each bad input stops before training with one clear message, exit code 2, and no output."""

import json

import pytest

from conftest import ROOT, run_eu

TINY = str(ROOT / "configs" / "tiny.yaml")


def _fit(*overrides):
    return run_eu("fit", "-c", TINY, "--trainer.max_steps=2", *overrides)


def _assert_failed_cleanly(code, capsys, workdir, *needles):
    err = capsys.readouterr().err
    assert code == 2, err
    for needle in needles:
        assert needle in err, err
    assert err.count("eu: error:") == 1
    assert not (workdir / "runs").exists(), "a failed run left output behind"


def test_missing_file(workdir, capsys):
    code = _fit("--data.retain.path=tests/data/nope.jsonl")
    _assert_failed_cleanly(code, capsys, workdir, "data file not found", "nope.jsonl")


def test_malformed_jsonl_names_file_and_line(workdir, capsys):
    bad = workdir / "tests/data/bad.jsonl"
    bad.write_text('{"user_text": "a", "assistant_text": "b"}\n{"user_text": "a", oops}\n')
    code = _fit(f"--data.forget.path={bad}")
    _assert_failed_cleanly(code, capsys, workdir, "bad.jsonl:2", "invalid JSON")


def test_malformed_json_names_file_and_line(workdir, capsys):
    bad = workdir / "tests/data/bad.json"
    bad.write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": }\n]\n')
    code = _fit(f"--data.retain.path={bad}")
    _assert_failed_cleanly(code, capsys, workdir, "bad.json:3", "invalid JSON")


def test_records_missing_configured_fields(workdir, capsys):
    code = _fit("--data.retain.fields.user=question", "--data.retain.fields.assistant=answer")
    _assert_failed_cleanly(code, capsys, workdir, "has no field 'question'", "retain.jsonl")


def test_records_with_unknown_layout(workdir, capsys):
    odd = workdir / "tests/data/odd.jsonl"
    odd.write_text(json.dumps({"foo": "a", "bar": "b"}) + "\n")
    code = _fit(f"--data.retain.path={odd}")
    _assert_failed_cleanly(code, capsys, workdir, "fields.user", "odd.jsonl")


def test_empty_dataset(workdir, capsys):
    empty = workdir / "tests/data/empty.jsonl"
    empty.write_text("")
    code = _fit(f"--data.retain.path={empty}")
    _assert_failed_cleanly(code, capsys, workdir, "empty")


def test_tokenizer_without_chat_template(workdir, capsys, tiny_path):
    import shutil

    bare = workdir / "bare-model"
    shutil.copytree(tiny_path, bare)
    cfg = json.loads((bare / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(cfg))
    for extra in bare.glob("chat_template.*"):
        extra.unlink()
    code = _fit(f"--model.model={bare}")
    _assert_failed_cleanly(code, capsys, workdir, "no chat template", "--model.chat_template")


@pytest.mark.parametrize("value", ["-0.1", "1.5"])
def test_lambda_outside_unit_interval(workdir, capsys, value):
    code = _fit(f"--model.objective.init_args.forget_weight={value}")
    _assert_failed_cleanly(code, capsys, workdir, "forget_weight", "[0, 1]")


def test_block_length_too_small_for_any_example(workdir, capsys):
    code = _fit("--data.retain.block_length=8")
    _assert_failed_cleanly(code, capsys, workdir, "block_length=8", "too small")
