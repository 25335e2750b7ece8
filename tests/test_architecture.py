"""The package map on docs/architecture.md matches the code, and imports flow one way."""

import ast
import re
from pathlib import Path

from utils import ROOT

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


def _defines_callback(path: Path) -> list[str]:
    """Classes in ``path`` that subclass a Lightning callback (or a class of eu's that does)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bases = {"Callback", "ProgressBar", "TQDMProgressBar", "Schedule", "Evaluation"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            names = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
            if names & bases:
                found.append(node.name)
    return found


def test_each_role_has_one_folder():
    """Callbacks live in eu/callbacks/, model loading and what a loaded model needs in eu/models/."""
    stray = {
        str(p.relative_to(ROOT)): _defines_callback(p)
        for p in PACKAGE.rglob("*.py")
        if "callbacks" not in p.parts and _defines_callback(p)
    }
    assert stray == {}, "Lightning callbacks outside eu/callbacks/"
    loaders = {
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*.py")
        if "models" not in p.parts
        and re.search(r"^[^\"'#]*\b(?:AutoModelForCausalLM|LlamaForCausalLM)\.from_", p.read_text(), flags=re.M)
    }
    assert loaders == set(), "causal LMs are loaded in eu/models/ only"
    top_level = {p.stem for p in PACKAGE.glob("*.py")}
    assert not top_level & {
        "callbacks",
        "baseline_callback",
        "throughput",
        "training_progress",
        "tiny",
        "lora",
        "checkpoint",
        "logits",
        "precision",
        "gguf_models",
        "models",
        "losses",
    }


def test_the_callback_rule_catches_a_stray_callback(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("import lightning as L\n\nclass Mine(L.Callback):\n    pass\n")
    assert _defines_callback(stray) == ["Mine"]


def test_tests_import_helpers_from_utils_not_conftest():
    old = "from " + "conftest import"  # split so that this file does not match itself
    offenders = [p.name for p in Path(__file__).parent.glob("*.py") if old in p.read_text()]
    assert offenders == [], f"import shared helpers from tests/utils.py: {offenders}"


def test_objectives_share_one_call_signature_and_reuse_by_holding():
    import inspect

    import eu.objectives as objectives
    from eu.objectives.base import AgainstReference, ForgetWeighted, Objective

    public = [getattr(objectives, name) for name in objectives.__all__]
    classes = [c for c in public if isinstance(c, type) and issubclass(c, Objective) and c is not Objective]
    assert len(classes) >= 10
    for cls in classes:
        assert set(cls.__bases__) <= {Objective, ForgetWeighted, AgainstReference}, (
            f"{cls.__name__} inherits {cls.__bases__}"
        )
        params = list(inspect.signature(cls.__call__).parameters)
        assert params == ["self", "model", "batch", "reference"], f"{cls.__name__}.__call__{params}"
