import os
import sys

import pytest
import torch

from utils import BENCHMARKS, DATA, stand_in_word_problems

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
    # an end-to-end run needs a working folder, so the workdir fixture is what marks one
    for item in items:
        if "workdir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
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
