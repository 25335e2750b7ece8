import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the naive reference losses (benchmarks/naive_losses.py)


@pytest.fixture(scope="session", autouse=True)
def eu_cache(tmp_path_factory):
    """Keep every cache write of the suite inside a temporary folder."""
    path = tmp_path_factory.mktemp("eu-cache")
    old = os.environ.get("EU_CACHE")
    os.environ["EU_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("EU_CACHE", None)
    else:
        os.environ["EU_CACHE"] = old


def stand_in_word_problems() -> dict:
    """100 small word-problem generators shaped like reasoning-gym's gsm_symbolic ones."""

    def make(k):
        def generate(rng, difficulty=1.0):
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            question = f"Shelf {k} holds {a} jars and {b} more arrive. How many jars are on shelf {k} now?"
            return {
                "question": question,
                "answer": str(a + b),
                "metadata": {"answer_cot": f"{a} + {b} = {a + b}\n#### {a + b}"},
            }

        return generate

    return {k: make(k) for k in range(100)}


@pytest.fixture(autouse=True)
def offline_word_problems(request, monkeypatch):
    """eu:math's word problems come from reasoning-gym's wheel; tests not marked slow get stand-ins
    instead of fetching it."""
    if request.node.get_closest_marker("slow") is None:
        from eu.domains import gsm

        monkeypatch.setattr(gsm, "load_generators", lambda root=None: stand_in_word_problems())


@pytest.fixture(scope="session")
def tiny_path(eu_cache):
    from eu.models.tiny import build_tiny_model

    return build_tiny_model()


@pytest.fixture()
def tiny_model(tiny_path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_path)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """A working folder holding a copy of tests/data, as the tiny config expects."""
    import shutil

    shutil.copytree(DATA, tmp_path / "tests" / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_eu(*args: str) -> int:
    from eu.cli import main

    return main(list(args))


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars of a run folder: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
