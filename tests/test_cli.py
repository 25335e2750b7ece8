"""End-to-end runs of the eu command on the tiny model."""

import pytest
import torch

from utils import ROOT, run_eu, scalars

TINY = str(ROOT / "configs" / "tiny.yaml")
FAST = [
    "--trainer.max_steps=4",
    "--trainer.val_check_interval=2",
    "--trainer.log_every_n_steps=1",
    "--trainer.callbacks.init_args.every_n_train_steps=2",
    "--trainer.enable_progress_bar=false",
]


@pytest.fixture()
def trained(workdir):
    assert run_eu("fit", "-c", TINY, *FAST) == 0
    return workdir


def test_fit_logs_the_documented_scalars_and_checkpoints(trained):
    tags = scalars(trained / "runs/tiny/tensorboard/version_0")
    for tag in [
        "loss/total",
        "loss/forget",
        "loss/retain",
        "forget/entropy_frac",
        "perf/tokens_per_sec",
        "perf/supervised_tokens_per_sec",
        "data/packing_efficiency",
        "lr",
        "val/loss/retain",
    ]:
        assert tag in tags, sorted(tags)
    assert [s for s, _ in tags["loss/total"]] == [0, 1, 2, 3]
    assert all(0 < v <= 1 for _, v in tags["data/packing_efficiency"])
    assert all(0 < v <= 1 for _, v in tags["forget/entropy_frac"])
    # linear decay without warm-up: the rate falls every step
    lrs = [v for _, v in tags["lr"]]
    assert lrs[0] == pytest.approx(1e-3) and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert (trained / "runs/tiny/checkpoints/last.ckpt").is_file()


def test_validate_reports_both_losses(trained, capsys):
    capsys.readouterr()
    ckpt = trained / "runs/tiny/checkpoints/last.ckpt"
    assert run_eu("validate", "-c", TINY, f"--ckpt_path={ckpt}", "--trainer.logger=false") == 0
    out = capsys.readouterr().out
    assert "val/loss/retain" in out and "val/loss/forget" in out


def test_export_reloads_and_generates_identically(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eu.models.checkpoint import model_from_checkpoint

    ckpt = trained / "runs/tiny/checkpoints/last.ckpt"
    out = trained / "exported"
    assert run_eu("export", str(ckpt), str(out)) == 0
    assert (out / "model.safetensors").is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template
    original, _ = model_from_checkpoint(ckpt)
    original.eval()

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 3 + 4?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    kwargs = dict(max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    a = original.generate(**prompt, **kwargs)
    b = reloaded.generate(**prompt, **kwargs)
    assert torch.equal(a, b)
    # and the weights really are the trained ones, not the initial tiny model
    from eu.models import load_model

    init = load_model("tiny-llama")
    assert not torch.equal(init.model.layers[0].mlp.up_proj.weight, reloaded.model.layers[0].mlp.up_proj.weight)


def test_retain_only_objective_by_class_path(workdir):
    code = run_eu("fit", "-c", TINY, *FAST, "--model.objective=eu.objectives.RetainOnly")
    assert code == 0
    tags = scalars(workdir / "runs/tiny/tensorboard/version_0")
    total = dict(tags["loss/total"])
    retain = dict(tags["loss/retain"])
    assert total == pytest.approx(retain)
    assert "loss/forget" in tags  # still measured, for comparison


def test_export_rejects_a_missing_checkpoint(workdir, capsys):
    assert run_eu("export", "nope.ckpt", "out") == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert not (workdir / "out").exists()


def test_merge_repeated_collects_a_list_option():
    from eu.commands import merge_repeated

    assert merge_repeated(["--model", "a", "--out", "x", "--model=b"], "model") == ['--model=["a", "b"]', "--out", "x"]
    assert merge_repeated(["--model", "[a, b]"], "model") == ["--model=[a, b]"]
    assert merge_repeated(["--out", "x"], "model") == ["--out", "x"]


def test_evaluate_command_takes_one_or_several_models(trained):
    import json

    ckpt = str(trained / "runs/tiny/checkpoints/last.ckpt")
    common = ["--suites", "domain", "--domain_size", "3", "--max_new_tokens", "4"]
    assert run_eu("evaluate", "--model", "tiny-llama", *common, "--out", "one") == 0
    assert list(json.loads((trained / "one/results.json").read_text())) == ["tiny-llama"]
    assert run_eu("evaluate", "--model", "tiny-llama", "--model", ckpt, *common, "--out", "two") == 0
    results = json.loads((trained / "two/results.json").read_text())
    assert list(results) == ["tiny-llama", ckpt]
    assert all(r["domain"]["n"] == 3 for r in results.values())


@pytest.mark.parametrize("name", sorted(__import__("eu.commands", fromlist=["COMMANDS"]).COMMANDS))
def test_every_command_of_the_table_has_help(name, capsys):
    from eu.commands import COMMANDS

    with pytest.raises(SystemExit) as exit_info:
        run_eu(name, "--help")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: eu {name}" in out
    actions = COMMANDS[name].function
    assert all(action in out for action in (actions if isinstance(actions, dict) else {}))


def test_a_bare_boolean_flag_means_true_and_an_old_spelling_still_works(capsys):
    from eu.commands import bare_flags, rename_options

    def export(checkpoint: str, out_dir: str, overwrite: bool = False) -> None: ...

    assert bare_flags(["a", "--overwrite", "b"], [export]) == ["a", "--overwrite=true", "b"]
    assert bare_flags(["a", "b", "--overwrite"], [export]) == ["a", "b", "--overwrite=true"]
    assert bare_flags(["--overwrite", "false", "a"], [export]) == ["--overwrite", "false", "a"]
    renamed = rename_options(["--batch-size=8", "--seed", "1"], {"--batch-size": "--batch_size"}, "eu judge-check")
    assert renamed == ["--batch_size=8", "--seed", "1"]
    assert "--batch-size is now --batch_size" in capsys.readouterr().err
