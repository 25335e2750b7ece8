"""Long work shows progress, also as plain lines when the output goes to a file."""

import io

import torch

from eu.progress import Progress

from utils import ROOT, run_eu


def test_plain_lines_at_start_every_tenth_and_end():
    out = io.StringIO()
    with Progress(20, "evaluate harmful", "prompts", every_s=3600, stream=out) as progress:
        for _ in range(20):
            progress.update(1)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("eu: evaluate harmful: 0/20 prompts (0%)")
    assert lines[1].startswith("eu: evaluate harmful: 2/20 prompts (10%)") and "left" in lines[1]
    assert lines[-1].startswith("eu: evaluate harmful: 20/20 prompts (100%)") and "left" not in lines[-1]
    assert len(lines) == 11


def test_a_resumed_count_starts_at_its_initial_value_and_shows_the_postfix():
    out = io.StringIO()
    progress = Progress(10, "fit", "steps", every_s=3600, stream=out, initial=5)
    progress.update(5, "loss 1.5")
    progress.close()
    first, last = out.getvalue().splitlines()
    assert first.startswith("eu: fit: 5/10 steps (50%)")
    assert last.startswith("eu: fit: 10/10 steps (100%)") and last.endswith("; loss 1.5")


def test_disabled_progress_prints_nothing():
    out = io.StringIO()
    with Progress(3, "x", stream=out, enabled=False) as progress:
        progress.update(3)
    assert out.getvalue() == ""


def test_fit_reports_steps_not_epochs_when_output_is_not_a_terminal(workdir, capsys):
    args = ["--trainer.max_steps=4", "--trainer.val_check_interval=100"]
    assert run_eu("fit", "-c", str(ROOT / "configs" / "tiny.yaml"), *args) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("eu: fit: ")]
    assert lines[0].startswith("eu: fit: 0/4 steps") and lines[-1].startswith("eu: fit: 4/4 steps (100%)")
    assert "loss" in lines[-1]
    assert "Epoch 0/-2" not in captured.out + captured.err


def test_judge_passes_report_progress_when_named(tiny_model, capsys):
    from eu.eval.judges.scoring import token_logprobs

    pairs = [([1, 2, 3], [4, 5]), ([1, 2], [6])]
    quiet = token_logprobs(tiny_model, 0, pairs, batch_size=1)
    assert capsys.readouterr().err == ""
    named = token_logprobs(tiny_model, 0, pairs, batch_size=1, desc="judge: fluency after the prompt")
    err = capsys.readouterr().err
    assert "judge: fluency after the prompt: 2/2 responses (100%)" in err
    assert all(torch.equal(a, b) for a, b in zip(quiet, named))
