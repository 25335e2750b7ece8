"""Every shipped config parses against the code (litgpt's config-hub pattern)."""

from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_eu

CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
FRAGMENTS = {"strategy"}  # partial configs meant to be combined with a full one


def test_there_are_configs():
    assert any(p.name == "tiny.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_parses(path: Path, capsys, workdir):
    args = ["-c", str(ROOT / "configs" / "tiny.yaml")] if path.parent.name in FRAGMENTS else []
    with pytest.raises(SystemExit) as exit_info:
        run_eu("fit", *args, "-c", str(path), "--print_config")
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["model"]
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# eu "), f"{path} should open with the command that runs it"
