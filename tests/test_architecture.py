"""The package map on docs/architecture.md matches the code, and imports flow one way."""

import ast
import re
from pathlib import Path

from conftest import ROOT

PAGE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "eu"


def _layers() -> dict[str, int]:
    rows = re.findall(r"^\| *(\d+) *\| *`([\w.]+)` *\|", PAGE, flags=re.M)
    return {room: int(layer) for layer, room in rows}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _room(module: str, layers: dict[str, int]) -> str:
    candidates = [r for r in layers if module == r or module.startswith(r + ".")]
    assert candidates, f"{module} belongs to no room on docs/architecture.md"
    return max(candidates, key=len)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):  # function-local imports count too
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "eu":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "eu"}
    return found


def test_every_module_is_on_the_page_and_every_entry_is_a_module():
    on_page = set(re.findall(r"^\| `(eu/[\w/]+\.py)` \|", PAGE, flags=re.M))
    in_code = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")}
    assert in_code - on_page == set(), "modules missing from the package map"
    assert on_page - in_code == set(), "package-map entries without a module"


def test_no_module_imports_a_room_of_its_own_layer_or_above():
    layers = _layers()
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        room = _room(module, layers)
        for imported in _imports(path):
            target = _room(imported, layers)
            if target != room and layers[target] >= layers[room]:
                upward.append(f"{module} (layer {layers[room]}) imports {imported} (layer {layers[target]})")
    assert upward == []


def test_the_rule_catches_an_upward_import(tmp_path):
    layers = _layers()
    assert layers["eu.data"] < layers["eu.eval"]
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from eu.eval.runner import run_suites\n")
    assert "eu.eval.runner" in _imports(bad)
    assert layers[_room("eu.eval.runner", layers)] > layers[_room("eu.data.records", layers)]
