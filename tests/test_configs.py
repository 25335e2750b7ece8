"""Every shipped config parses against the code (litgpt's config-hub pattern), opens with the
command that runs it, names its run folder at most once and documents every key.

Layout: ``configs/tiny.yaml`` and ``configs/quickstart.yaml`` are single files; the recipes under
``configs/recipes/`` are base recipes (one per model and domain); ``configs/methods/`` (objectives),
``configs/strategy/`` (distributed strategies) and ``configs/steps/`` (run lengths) hold overlays
that are added after a base: ``eu fit -c BASE.yaml -c OVERLAY.yaml``. ``configs/compare/`` holds
``eu compare`` configs (checked against the code in tests/test_compare.py), ``configs/sweep/``
``eu sweep`` configs (tests/test_sweep.py).
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from utils import ROOT, run_eu

CONFIG_DIR = ROOT / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))
FIT_CONFIGS = [p for p in CONFIGS if p.parent.name not in ("compare", "sweep")]  # the ones `eu fit -c` reads
BASES = [CONFIG_DIR / "tiny.yaml", CONFIG_DIR / "quickstart.yaml", *sorted((CONFIG_DIR / "recipes").rglob("*.yaml"))]
# overlays meant for any base: one per method and per strategy
OVERLAYS = sorted((CONFIG_DIR / "methods").glob("*.yaml")) + sorted((CONFIG_DIR / "strategy").glob("*.yaml"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The comment rule. A key line is a line whose first token is `key:` or `- key:` (list items,
# e.g. callbacks, count). Its comment is the text after " #" on the same line. The comment must
# start with the key's type, one of TYPES or several joined by " or " ("int or dict, ..."), and
# must contain the word "default" ("default 0.4", "default null (...)", or "no default" for a
# required key).
TYPES = ("str", "int", "float", "bool", "list", "dict", "class", "path", "null")
KEY_LINE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w.]*):(?:\s|$)")
TYPED = re.compile(rf"^(?:{'|'.join(TYPES)})\b")
DEFAULT = re.compile(r"\bdefault\b")
RUN_FOLDER_KEYS = ("save_dir", "dirpath")  # derived from trainer.default_root_dir by eu, never set


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def key_lines(path: Path) -> list[tuple[int, str, str]]:
    """(line number, key, comment) of every key line of a YAML file."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = KEY_LINE.match(line)
        if match:
            rows.append((number, match.group(1), line.partition(" #")[2].strip()))
    return rows


def opening_command(path: Path) -> list[str]:
    """The arguments after ``eu fit`` of the command on a config's first line."""
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# eu fit "), f"{rel(path)} should open with the command that runs it"
    return shlex.split(first_line[len("# eu fit ") :])


def from_root(args: list[str]) -> list[str]:
    """Config paths of a documented command, made absolute (the tests run in a temporary folder)."""
    return [str(ROOT / a) if a.startswith("configs/") else a for a in args]


def print_config(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        run_eu("fit", *args, "--print_config")
    assert exit_info.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def contains(resolved, wanted) -> bool:
    """Every value of ``wanted`` (a config file's content) is in ``resolved`` (the printed config)."""
    if isinstance(wanted, dict):
        return isinstance(resolved, dict) and all(k in resolved and contains(resolved[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(resolved, list) and len(resolved) == len(wanted) and all(map(contains, resolved, wanted))
    return resolved == wanted


def test_there_are_configs():
    names = {rel(p) for p in CONFIGS}
    assert {"configs/tiny.yaml", "configs/quickstart.yaml", "configs/recipes/smollm2_math.yaml"} <= names
    assert OVERLAYS


@pytest.mark.parametrize("path", FIT_CONFIGS, ids=rel)
def test_config_parses(path: Path, capsys, workdir):
    """Each config's opening command runs (here with --print_config), and every value of the
    file reaches the resolved config."""
    args = opening_command(path)
    named = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-c"]
    assert rel(path) in named, f"{rel(path)}'s opening command should name it with -c"
    printed = print_config(capsys, *from_root(args))
    assert printed["model"]["model"]
    assert contains(printed, yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("overlay", OVERLAYS, ids=rel)
@pytest.mark.parametrize("base", BASES, ids=rel)
def test_overlay_on_every_base(base: Path, overlay: Path, capsys, workdir):
    """Method and strategy overlays work with any base; the overlay's values win."""
    printed = print_config(capsys, "-c", str(base), "-c", str(overlay), "--trainer.default_root_dir", "runs/x")
    assert contains(printed, yaml.safe_load(overlay.read_text()))
    assert printed["trainer"]["default_root_dir"] == "runs/x"


@pytest.mark.parametrize("path", CONFIGS, ids=rel)
def test_every_key_is_commented_with_type_and_default(path: Path):
    bad = [
        f"{rel(path)}:{number}: {key}: # {comment}"
        for number, key, comment in key_lines(path)
        if not (TYPED.search(comment) and DEFAULT.search(comment))
    ]
    assert not bad, "each key's comment should start with its type and name its default:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", CONFIGS, ids=rel)
def test_run_folder_is_named_once(path: Path):
    keys = [key for _, key, _ in key_lines(path)]
    assert keys.count("default_root_dir") <= 1, f"{rel(path)} names trainer.default_root_dir more than once"
    for key in RUN_FOLDER_KEYS:
        assert key not in keys, f"{rel(path)} sets {key}; eu derives it from trainer.default_root_dir"
    if path.parent.name in ("methods", "strategy", "steps"):
        assert "default_root_dir" not in keys, f"{rel(path)} is an overlay; the run folder belongs to the command"


def test_comment_rule_rejects_what_it_should(tmp_path):
    sample = tmp_path / "c.yaml"
    sample.write_text(
        "a: 1  # int, default 0\n"
        "b: 1  # the number of steps\n"  # no type, no default
        "c: 1  # int; steps\n"  # no default
        "d: 1  # default 0 steps\n"  # no type first
        "e: x  # string, default y\n"  # not a type word
        "  - class_path: x.Y  # class, no default\n"
        "f: 1\n"
    )
    failing = [key for _, key, comment in key_lines(sample) if not (TYPED.search(comment) and DEFAULT.search(comment))]
    assert failing == ["b", "c", "d", "e", "f"]


def documented_combinations() -> list[str]:
    """The ``eu fit`` commands of the docs and the README that combine several configs."""
    found = []
    for doc in DOCS:
        text = doc.read_text().replace("\\\n", " ")  # shell line continuations
        for args in re.findall(r"\beu fit (-c configs/[^`#\n]*)", text):
            shipped = all(path.startswith("configs/") for path in re.findall(r"-c (\S+)", args))
            if args.count("-c ") > 1 and "…" not in args and shipped:  # a file the reader writes is not shipped
                found.append(" ".join(args.split()))
    return sorted(set(found))


def test_there_are_documented_combinations():
    assert any("configs/methods/" in c for c in documented_combinations())


@pytest.mark.parametrize("command", documented_combinations())
def test_documented_combination_parses(command: str, capsys, workdir):
    assert print_config(capsys, *from_root(shlex.split(command)))["model"]["model"]


def test_documented_config_paths_exist():
    """Every configs/....yaml the docs and the README mention is shipped."""
    missing = [
        f"{rel(doc)}: {name}"
        for doc in DOCS
        for name in re.findall(r"configs/[\w./-]+?\.yaml", doc.read_text())
        if not (ROOT / name).is_file()
    ]
    assert not missing, "\n".join(missing)


QUICKSTART_DIFFERS = {
    "trainer.default_root_dir": "its own run folder",
    "model.objective.init_args.forget_weight": "λ 0.3: more weight on maths in 60 steps (the recipe: 0.4)",
    "data.sample.batch_size": "the 128 pairs sampled at once",
    "data.sample.draw_among_top_k": "the top-k draw (docs/performance.md)",
}
"""Where the quickstart may differ from the maths recipe at its 60 steps, besides the callbacks
(the quickstart measures more suites and trains RetainOnlyFT beside itself)."""


def test_the_quickstart_is_the_maths_recipe_at_60_steps_but_for_stated_keys(capsys, workdir):
    from eu.settings import changed

    recipe = print_config(
        capsys,
        "-c",
        str(CONFIG_DIR / "recipes/smollm2_math.yaml"),
        "-c",
        str(CONFIG_DIR / "steps/smollm2_math_60.yaml"),
    )
    quickstart = print_config(capsys, "-c", str(CONFIG_DIR / "quickstart.yaml"))
    differ = {key for key, _, _ in changed(recipe, quickstart) if not key.startswith("trainer.callbacks.")}
    assert differ == set(QUICKSTART_DIFFERS), "state a new difference in QUICKSTART_DIFFERS and the configs' headers"
