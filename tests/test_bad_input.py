"""Each bad input stops before training with one clear message, exit code 2, and no output."""

import json

import pytest

from utils import DATA, ROOT, run_eu

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


def test_unknown_model_alias_lists_aliases_and_suggests_the_closest(workdir, capsys):
    code = _fit("--model.model=smollm2-135m-instruc")
    _assert_failed_cleanly(
        code,
        capsys,
        workdir,
        "unknown model 'smollm2-135m-instruc'",
        "Did you mean 'smollm2-135m-instruct'?",
        "tiny-llama",
    )


def test_model_names_that_are_no_alias_still_resolve(workdir, tiny_path):
    from eu.models import resolve_model

    (workdir / "mymodel").mkdir()
    assert resolve_model("mymodel") == "mymodel"  # a local folder needs no "/"
    assert resolve_model("org/some-model") == "org/some-model"  # a hub id, left to the hub
    assert resolve_model("random-llama-3.2-1b") == resolve_model("tiny-llama")


@pytest.mark.parametrize(
    ("stream", "name", "content", "needles"),
    [
        ("forget", "empty.jsonl", "", ("data.forget.path", "empty.jsonl", "add at least one example")),
        ("retain", "data.txt", "user: a\nassistant: b\n", ("data.txt", "unsupported file type '.txt'", ".jsonl, .csv")),
    ],
    ids=["empty-forget-corpus", "unsupported-file-type"],
)
def test_bad_data_file_names_the_file_and_what_to_do(workdir, capsys, stream, name, content, needles):
    path = workdir / "tests/data" / name
    path.write_text(content)
    _assert_failed_cleanly(_fit(f"--data.{stream}.path={path}"), capsys, workdir, *needles)


def test_sample_num_pairs_zero(workdir, capsys):
    code = _fit("--data.sample.num_pairs=0")
    _assert_failed_cleanly(code, capsys, workdir, "data.sample.num_pairs must be at least 1, got 0")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("num_pairs", 0),
        ("batch_size", 0),
        ("user_tokens", 0),
        ("answer_tokens", -1),
        ("temperature", 0.0),
        ("top_k", -1),
    ],
)
def test_sample_settings_out_of_range(key, value):
    from eu.data.datamodule import StreamConfig, UnlearningDataModule
    from eu.data.sampler import SampleSettings
    from eu.errors import EUError

    with pytest.raises(EUError, match=rf"data\.sample\.{key} must be"):
        UnlearningDataModule(StreamConfig(path="r.jsonl"), sample=SampleSettings(**{key: value}))


def test_the_top_k_draw_without_candidates_is_refused():
    from eu.data.datamodule import StreamConfig, UnlearningDataModule
    from eu.data.sampler import SampleSettings
    from eu.errors import EUError

    with pytest.raises(EUError, match=r"data\.sample\.draw_among_top_k needs data\.sample\.top_k >= 1"):
        UnlearningDataModule(StreamConfig(path="r.jsonl"), sample=SampleSettings(top_k=0, draw_among_top_k=True))


def test_empty_assistant_turn_names_file_and_line(workdir, capsys):
    bad = workdir / "tests/data/blank.jsonl"
    rows = [{"user_text": "a", "assistant_text": "b"}, {"user_text": "c", "assistant_text": "  \n"}]
    bad.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")  # line 2 is blank
    code = _fit(f"--data.forget.path={bad}")
    _assert_failed_cleanly(code, capsys, workdir, "data.forget.path", "blank.jsonl:3", "assistant turn", "is empty")


def test_empty_assistant_turn_in_csv_names_the_record(tmp_path):
    from eu.data.records import read_records
    from eu.errors import EUError

    bad = tmp_path / "data.csv"
    bad.write_text('question,answer\nq1,a1\nq2,""\n')
    with pytest.raises(EUError, match=r"data\.csv: record 2: the assistant turn \('answer'\) is empty"):
        read_records(str(bad))


def test_wrong_dtype_is_refused_before_any_model_is_loaded(workdir, capsys):
    code = _fit("--model.dtype=float33")
    _assert_failed_cleanly(code, capsys, workdir, "model.dtype", "float32, bfloat16, float16", "'float33'")


def _lora_strategies():
    import yaml
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

    from eu.strategies import AutoWrapFSDPStrategy

    shipped = yaml.safe_load((ROOT / "configs/strategy/fsdp.yaml").read_text())["trainer"]["strategy"]
    assert shipped["class_path"] == "eu.strategies.AutoWrapFSDPStrategy"
    deepspeed = type("DeepSpeedStrategy", (), {})()  # deepspeed is not installed; refused by name
    held = [None, DDPStrategy(), AutoWrapFSDPStrategy(**shipped["init_args"])]
    refused = [
        (deepspeed, "DeepSpeed"),
        (FSDPStrategy(use_orig_params=False), "use_orig_params"),
        (AutoWrapFSDPStrategy(state_dict_type="sharded"), "sharded"),
    ]
    return held, refused


def test_lora_strategy_check():
    from eu.errors import EUError
    from eu.models.lora import LoraOptions, check_lora_strategy

    held, refused = _lora_strategies()
    for strategy in held:
        check_lora_strategy(strategy, LoraOptions())
    for strategy, reason in refused:
        check_lora_strategy(strategy, None)  # without LoRA anything goes
        with pytest.raises(EUError, match=rf"model\.lora cannot be combined with trainer\.strategy .*{reason}"):
            check_lora_strategy(strategy, LoraOptions())


def test_lora_with_an_unfit_strategy_stops_before_the_model_is_loaded(monkeypatch):
    from types import SimpleNamespace

    import eu.module
    from eu.errors import EUError
    from eu.models.lora import LoraOptions
    from eu.module import UnlearningModule

    module = UnlearningModule("tiny-llama", lora=LoraOptions(rank=4))
    module._trainer = SimpleNamespace(strategy=_lora_strategies()[1][1][0])
    monkeypatch.setattr(eu.module, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(EUError, match="use_orig_params"):
        module.configure_model()


def test_sharded_checkpoint_folder_given_to_export(workdir, capsys):
    folder = workdir / "last.ckpt"  # what FSDP with state_dict_type=sharded writes
    folder.mkdir()
    (folder / ".metadata").write_bytes(b"")
    code = run_eu("export", str(folder), "out")
    _assert_failed_cleanly(code, capsys, workdir, "last.ckpt is a folder", "give a single .ckpt file")
    assert not (workdir / "out").exists()


def test_val_examples_not_below_dataset_size(workdir, capsys):
    code = _fit("--data.retain.val_examples=200")
    _assert_failed_cleanly(
        code, capsys, workdir, "data.retain.val_examples=200", "has 200 usable examples", "below 200"
    )


def test_missing_spreadsheet_is_a_missing_file_not_a_dataset_name(workdir, capsys):
    code = _fit("--data.retain.path=tests/data/table.xlsx")
    _assert_failed_cleanly(code, capsys, workdir, "data file not found", "table.xlsx")


def test_num_workers_refused(workdir, capsys):
    code = _fit("--data.num_workers=2")
    _assert_failed_cleanly(code, capsys, workdir, "data.num_workers=2", "replay every step", "data.num_workers=0")


def _fail_with_full_disk(*args, **kwargs):
    import errno
    import os

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("failing", ["write_text", "replace"])
def test_full_disk_during_a_file_write_leaves_nothing(tmp_path, monkeypatch, failing):
    import os
    import pathlib

    from eu.errors import EUError
    from eu.io import write_text_atomic

    target = (pathlib.Path, "write_text") if failing == "write_text" else (os, "replace")
    monkeypatch.setattr(*target, _fail_with_full_disk)
    with pytest.raises(EUError, match=r"could not write .*results\.json: No space left on device"):
        write_text_atomic(tmp_path / "results.json", "{}")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_full_disk_during_a_folder_write_leaves_nothing(tmp_path, monkeypatch):
    import pathlib

    from eu.errors import EUError
    from eu.io import atomic_dir

    with pytest.raises(EUError, match=r"could not write .*model: No space left on device"):
        with atomic_dir(tmp_path / "model", "export") as tmp:
            (tmp / "config.json").write_bytes(b"{}")
            monkeypatch.setattr(pathlib.Path, "write_text", _fail_with_full_disk)
            (tmp / "model.safetensors").write_text("weights")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_truncated_and_dropped_examples_are_reported_once(tiny_path, tiny_tokenizer, capsys):
    from eu.data.datamodule import StreamConfig, UnlearningDataModule
    from eu.data.records import read_records
    from eu.prompts import encode_record

    dm = UnlearningDataModule(
        StreamConfig(path=str(DATA / "retain.jsonl"), block_length=64, val_examples=4),
        StreamConfig(path=str(DATA / "forget.jsonl"), block_length=256, val_examples=4),
    )
    dm.connect(tiny_tokenizer)
    dm.prepare_data()
    dm.setup("fit")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("eu: data.")]
    expected = []
    for name, block in (("retain", 64), ("forget", 256)):
        encoded = [encode_record(tiny_tokenizer, r) for r in read_records(str(DATA / f"{name}.jsonl"))]
        truncated = sum(len(ids) > block for ids, _ in encoded)
        dropped = sum(prompt >= min(len(ids), block) for ids, prompt in encoded)
        expected.append(
            f"eu: data.{name}: {len(encoded)} examples, {truncated} truncated to block_length={block} "
            f"({dropped} of them dropped: no response token left)"
        )
    assert lines == expected
    assert "0 truncated" not in expected[0] and "(0 of them" not in expected[0]


def test_validation_without_held_out_forget_examples(workdir, capsys):
    code = _fit("--data.forget.val_examples=0")
    _assert_failed_cleanly(code, capsys, workdir, "data.forget.val_examples=0", "both streams")


def test_unknown_attention_implementation(workdir, capsys):
    code = _fit("--model.attn_implementation=flash")
    _assert_failed_cleanly(code, capsys, workdir, "model.attn_implementation", "flash_attention_2")


def test_evaluate_with_a_wrong_dtype_stops_before_writing(workdir, capsys):
    code = run_eu("evaluate", "--model", "tiny-llama", "--suites", "domain:math-basic", "--dtype", "float33")
    assert code == 2
    err = capsys.readouterr().err
    assert "--dtype must be auto, float32 or bfloat16, got 'float33'" in err
    assert not (workdir / "eval").exists()
