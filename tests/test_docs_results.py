"""Docs numbers come from results files that scripts/docs_results.py writes and pages include."""

import importlib.util
import re
import sys

import pytest

from utils import ROOT

SPEC = importlib.util.spec_from_file_location("docs_results", ROOT / "scripts/docs_results.py")
docs_results = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(docs_results)
INCLUDE = re.compile(r'--8<-- "(docs/results/[\w.-]+\.md)"')


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(docs_results, "RESULTS", tmp_path)
    return tmp_path


def test_the_table_lands_under_a_header_with_machine_commit_and_commands(results, capsys):
    table = [sys.executable, "-c", "print('| a | b |')"]
    assert docs_results.main(["demo", "--ran", "eu fit -c x.yaml", "--", *table]) == 0
    text = (results / "demo.md").read_text()
    assert text.startswith("<!-- written by scripts/docs_results.py; regenerate with `nox -s numbers -- demo`")
    assert f"{docs_results.machine()}, commit `" in text and "    eu fit -c x.yaml\n" in text
    assert text.endswith("| a | b |\n")
    assert [p.name for p in results.iterdir()] == ["demo.md"]


def test_a_failing_table_command_writes_nothing(results):
    with pytest.raises(SystemExit, match="failed \\(exit 3\\); nothing written"):
        docs_results.main(["demo", "--", sys.executable, "-c", "import sys; sys.exit(3)"])
    assert list(results.iterdir()) == []


def test_every_results_file_is_included_by_a_page_and_named_in_the_nox_session():
    import ast

    included = {m for page in (ROOT / "docs").glob("*.md") for m in INCLUDE.findall(page.read_text())}
    files = {f"docs/results/{p.name}" for p in (ROOT / "docs" / "results").glob("*.md")}
    assert files == included, "each results file is included by a page, each include names a file"
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    assigned = [n for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)]
    numbers = next(n.value for n in assigned if n.targets[0].id == "NUMBERS")
    names = {k.value for k in numbers.keys}
    assert {f"docs/results/{name}.md" for name in names} == files
