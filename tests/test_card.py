"""The model card of `eu export` and its refresh by `eu evaluate --card`: every number on it is the run's."""

import inspect
import json
import re
import shutil

import pytest

from eu.errors import EUError

from utils import DATA, ROOT, run_eu

EXTRA = """
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {filename: "step{step}", auto_insert_metric_name: false, save_last: true}
    - class_path: eu.callbacks.Evaluation
      init_args:
        suites: domain,offdomain
        domain: math-basic
        sizes: {domain: 6, offdomain: 2}
        max_new_tokens: 4
        examples: 0
    - class_path: eu.callbacks.RetainOnlyBaseline
      init_args: {suites: domain}
"""
FIT = ["--trainer.max_steps=2", "--trainer.val_check_interval=100", "--trainer.enable_progress_bar=false"]
CELL = r"(\d\.\d{3}) \[(\d\.\d{3}), (\d\.\d{3})\]"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny EU run with an Evaluation and the RetainOnlyFT baseline: its folder, run folder and log folder."""
    root = tmp_path_factory.mktemp("card")
    shutil.copytree(DATA, root / "tests" / "data")
    (root / "extra.yaml").write_text(EXTRA)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert run_eu("fit", "-c", str(ROOT / "configs" / "tiny.yaml"), "-c", "extra.yaml", *FIT) == 0
    logs = root / "runs" / "tiny" / "tensorboard" / "version_0"
    assert (logs / "evaluation.json").is_file() and (logs / "baseline.json").is_file()
    return root, root / "runs" / "tiny", logs


@pytest.fixture()
def exported(run, tmp_path):
    _, run_dir, _ = run
    out = tmp_path / "exported"
    assert run_eu("export", str(run_dir / "checkpoints" / "last.ckpt"), str(out)) == 0
    return out


def _card(path):
    from huggingface_hub import ModelCard

    return ModelCard.load(path)


def _table_rows(text, title):
    """The data rows of the Markdown table that follows the heading ``title``, as lists of cells."""
    section = text.split(title, 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    end = next((i for i, r in enumerate(body) if r.startswith("| N ") or r.startswith("| suite ")), len(body))
    return [c.strip() for c in header.strip("|").split("|")], [
        [c.strip() for c in r.strip("|").split("|")] for r in body[:end]
    ]


METRIC_KEYS = {
    "accuracy": "eval/domain_acc",
    "accuracy, seen items": "eval/domain_acc_seen",
    "accuracy, held out items": "eval/domain_acc_held_out",
    "answer rate (no refusal)": "eval/domain_answer_rate",
    "response entropy / log V (1 = uniform: forgotten)": "eval/offdomain_entropy_frac",
}


def _records(entry, metric):
    """The records behind a logged metric of one evaluation."""
    if metric == "eval/offdomain_entropy_frac":
        return None
    records = entry["suites"]["domain"]["records"]
    if metric == "eval/domain_answer_rate":
        return [{"correct": r["answered"]} for r in records]
    group = metric.removeprefix("eval/domain_acc").removeprefix("_")
    return [r for r in records if not group or r["phrasing"] == group]


def test_export_writes_a_card_whose_numbers_are_the_runs(run, exported):
    from eu.eval.stats import wilson
    from eu.models.checkpoint import eu_version

    _, run_dir, logs = run
    history = json.loads((logs / "evaluation.json").read_text())
    before, after = history[0], history[-1]
    baseline = json.loads((logs / "baseline.json").read_text())
    card = _card(exported / "README.md")
    data = card.data

    assert data.library_name == "transformers"
    assert "exclusive-unlearning" in data.tags
    assert data.base_model is None and data.license is None  # the random test model has neither
    # model-index: exactly the metrics the run logged at its last evaluation, with their values
    indexed = sorted((r.metric_type, r.metric_value) for r in data.eval_results)
    kinds = {"entropy_frac": "entropy_fraction", "answer_rate": "answer_rate"}
    logged = sorted(
        (next((t for end, t in kinds.items() if k.endswith(end)), "accuracy"), v) for k, v in after["metrics"].items()
    )
    assert indexed == logged
    assert all(r.dataset_split == "test" and r.task_name == "eu fit (Evaluation callback)" for r in data.eval_results)

    header, rows = _table_rows(card.text, "## Evaluation during training")
    assert header[2:4] == ["before (step 0)", f"after (step {after['step']})"]
    assert len(rows) == len(after["metrics"])
    for row in rows:
        metric = METRIC_KEYS[row[1]]
        for cell, entry in zip(row[2:4], (before, after)):
            value = float(cell.split()[0])
            assert value == pytest.approx(entry["metrics"][metric], abs=5e-4)
            records = _records(entry, metric)
            if records is None:
                assert "[" not in cell  # an entropy fraction has no Wilson interval
                continue
            lo, hi = wilson(sum(r["correct"] for r in records), len(records))
            assert re.fullmatch(CELL, cell).groups()[1:] == (f"{lo:.3f}", f"{hi:.3f}")
            assert int(row[-1]) == len(records)
        if metric in baseline["retain_only"]:
            assert float(row[4].split()[0]) == pytest.approx(baseline["retain_only"][metric], abs=5e-4)
    assert any(metric in baseline["retain_only"] for metric in map(METRIC_KEYS.get, (r[1] for r in rows)))

    text = card.text
    assert f"optimizer steps: {after['step']} of max_steps 2" in text
    assert "precision: 32-true" in text and "seed: 42" in text and "λ = 0.4" in text
    assert f"trained with {eu_version()}, exported with {eu_version()}" in text
    assert "**Kept:** `tests/data/retain.jsonl`" in text
    assert "## Limitations" in text and "compliance" in text and "relearning" in text
    assert (exported / "training_config.yaml").read_bytes() == (logs / "config.yaml").read_bytes()
    assert "## Relearning attack" not in text


def test_refresh_replaces_only_the_evaluate_section_and_its_model_index(run, exported):
    from eu.commands.card import SOURCE_EVALUATE, SOURCE_FIT, refresh_card

    _, _, logs = run
    after = json.loads((logs / "evaluation.json").read_text())[-1]
    suites = after["suites"]
    readme = exported / "README.md"
    readme.write_text(readme.read_text() + "\nA note of my own.\n")
    for _ in range(2):  # refreshing twice leaves one set of entries
        assert refresh_card(exported, {"domain": suites["domain"]}, {"split": "test", "seed": 3}, "m") == readme
    card = _card(readme)
    assert "A note of my own." in card.text
    fit = [r for r in card.data.eval_results if r.task_name == SOURCE_FIT]
    evaluate = [r for r in card.data.eval_results if r.task_name == SOURCE_EVALUATE]
    # the metrics eu evaluate measured replace the run's; the others stay
    measured = [k for k in after["metrics"] if k.startswith("eval/domain")]
    assert len(evaluate) == len(measured) and len(fit) == len(after["metrics"]) - len(measured) == 1
    section = card.text.split("<!-- eu:evaluate:start -->")[1].split("<!-- eu:evaluate:end -->")[0]
    assert "Not measured yet" not in section and "seed 3" in section and "`eu evaluate --model m`" in section
    accuracy = sum(r["correct"] for r in suites["domain"]["records"]) / len(suites["domain"]["records"])
    assert [r.metric_value for r in evaluate if r.metric_name == "accuracy"] == [accuracy]


def test_a_users_readme_is_never_overwritten(run, exported):
    from eu.commands.card import refresh_card

    _, run_dir, logs = run
    suites = json.loads((logs / "evaluation.json").read_text())[-1]["suites"]
    mine = "# My model\n\nWritten by hand.\n"
    (exported / "README.md").write_text(mine)
    assert refresh_card(exported, suites) == exported / "README.eu.md"
    assert (exported / "README.md").read_text() == mine
    assert "eu:evaluate:start" in (exported / "README.eu.md").read_text()
    # a new export over it keeps the user's README and puts its card beside it
    assert run_eu("export", str(run_dir / "checkpoints" / "last.ckpt"), str(exported), "--overwrite") == 0
    assert (exported / "README.md").read_text() == mine
    assert "## Evaluation during training" in (exported / "README.eu.md").read_text()


def test_card_refuses_a_folder_eu_export_did_not_write(tmp_path):
    from eu.commands.card import refresh_card

    (tmp_path / "model").mkdir()
    with pytest.raises(EUError, match="--card .*not a folder written by `eu export`"):
        refresh_card(tmp_path / "model", {})


def test_relearning_results_come_from_the_attack_of_this_checkpoint(run, tmp_path):
    from eu.commands.evaluate import model_files

    _, run_dir, _ = run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    attack = tmp_path / "attack"
    (attack / "models").mkdir(parents=True)
    rows = [
        {
            "examples": 0,
            "harmful_asr": 0.0,
            "jailbreak_asr": 0.0,
            "harmful_refusal_rate": 0.0,
            "jailbreak_refusal_rate": 0.0,
            "final_loss": None,
            "intervals": {"harmful_asr": [0.0, 0.161], "jailbreak_asr": [0.0, 0.161]},
        },
        {
            "examples": 50,
            "harmful_asr": 0.4,
            "jailbreak_asr": 0.45,
            "harmful_refusal_rate": 0.0,
            "jailbreak_refusal_rate": 0.0,
            "final_loss": 0.507,
            "intervals": {"harmful_asr": [0.219, 0.613], "jailbreak_asr": [0.258, 0.658]},
        },
    ]
    settings = {"steps": 20, "lr": 1e-5, "benign": "MMLU pairs"}
    (attack / "relearn.json").write_text(json.dumps({"model": str(ckpt), "settings": settings, "rows": rows}))
    saved = {"arguments": {"model_files": model_files(str(ckpt))}}
    (attack / "models" / "examples=0-x.json").write_text(json.dumps(saved))
    out = tmp_path / "exported"
    assert run_eu("export", str(ckpt), str(out), "--relearn", str(attack)) == 0
    text = (out / "README.md").read_text()
    header, table = _table_rows(text, "## Relearning attack")
    assert [r[0] for r in table] == ["0", "50"]
    assert table[1][1:3] == ["0.400 [0.219, 0.613]", "0.450 [0.258, 0.658]"] and table[1][-1] == "0.507"
    # an attack on another model is refused, before anything is written
    saved["arguments"]["model_files"] = [["other.ckpt", 1, 1]]
    (attack / "models" / "examples=0-x.json").write_text(json.dumps(saved))
    assert run_eu("export", str(ckpt), str(tmp_path / "other"), "--relearn", str(attack)) == 2
    assert not (tmp_path / "other").exists()


def test_a_checkpoint_without_its_run_gets_a_card_that_says_so(run, tmp_path, capsys):
    _, run_dir, _ = run
    lone = tmp_path / "lone.ckpt"
    shutil.copy(run_dir / "checkpoints" / "last.ckpt", lone)
    assert run_eu("export", str(lone), str(tmp_path / "out")) == 0
    card = _card(tmp_path / "out" / "README.md")
    assert not card.data.eval_results
    assert "no run logs were found" in card.text and "precision: not recorded" in card.text
    assert run_eu("export", str(lone), str(tmp_path / "out2"), "--log_dir", str(tmp_path / "nope")) == 2
    assert "--log_dir" in capsys.readouterr().err


def test_base_model_license_and_datasets_are_carried(tmp_path):
    from eu.commands.card import base_model_info, hub_datasets

    smol = base_model_info("smollm2-135m-instruct")
    assert smol["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and smol["license"] == "apache-2.0"
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: mit\nbase_model: org/original\n---\n# a model\n")
    assert base_model_info(str(folder)) | {"description": ""} == {
        "base_model": "org/original",
        "license": "mit",
        "description": "",
    }
    config = {"data": {"retain": {"path": "meta-math/MetaMathQA"}, "forget": {"path": "self-generated"}}}
    assert hub_datasets(config) == ["meta-math/MetaMathQA"]
    assert hub_datasets({"data": {"retain": {"path": "eu:math/train"}, "forget": {"path": "data/x.jsonl"}}}) == []


def _evaluate_has_card():
    from eu.commands.evaluate import evaluate

    return "card" in inspect.signature(evaluate).parameters


@pytest.mark.skipif(not _evaluate_has_card(), reason="eu/commands/evaluate.py has no --card option yet")
def test_evaluate_card_refreshes_the_exported_folder(run, exported, monkeypatch):
    root, _, _ = run
    monkeypatch.chdir(root)
    common = ["--suites", "domain:math-basic", "--domain_size", "3", "--max_new_tokens", "4", "--dtype", "float32"]
    assert (
        run_eu(
            "evaluate", "--model", str(exported), *common, "--out", str(exported.parent / "ev"), "--card", str(exported)
        )
        == 0
    )
    results = json.loads((exported.parent / "ev" / "results.json").read_text())[str(exported)]
    card = _card(exported / "README.md")
    evaluate = [r for r in card.data.eval_results if r.task_name == "eu evaluate"]
    assert [r.metric_value for r in evaluate if r.metric_name == "accuracy"] == [results["domain"]["accuracy"]]
