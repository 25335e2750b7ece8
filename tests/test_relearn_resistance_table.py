"""scripts/relearn_resistance_table.py pools the attack results of every seed into one row per variant, attack and N."""

import importlib.util
import json

from utils import ROOT

SPEC = importlib.util.spec_from_file_location("relearn_resistance_table", ROOT / "scripts/relearn_resistance_table.py")
table_script = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(table_script)


def write(runs, seed, variant, attack, rows):
    folder = runs / f"seed{seed}" / variant / f"attack_{attack}"
    folder.mkdir(parents=True)
    (folder / "relearn.json").write_text(json.dumps({"rows": rows}))


def test_rates_are_pooled_over_seeds_with_their_interval(tmp_path):
    write(
        tmp_path,
        42,
        "sam",
        "benign",
        [{"examples": 50, "counts": {"harmful_asr": [3, 75], "domain_accuracy": [70, 141]}}],
    )
    write(
        tmp_path,
        43,
        "sam",
        "benign",
        [{"examples": 50, "counts": {"harmful_asr": [0, 75], "domain_accuracy": [71, 141]}}],
    )
    write(tmp_path, 42, "eu", "harmful", [{"examples": 10, "counts": {"harmful_asr": [30, 75]}}])
    pooled = table_script.rows(tmp_path)
    assert pooled[("sam", "benign", 50)]["harmful_asr"] == [3, 150]
    assert pooled[("sam", "benign", 50)]["domain_accuracy"] == [141, 282]
    assert pooled[("sam", "benign", 50)]["seeds"] == ["42", "43"]
    text = table_script.table(tmp_path)
    lines = text.splitlines()
    assert lines[2].startswith("| eu | harmful | 10 | 0.40 [") and lines[2].endswith("| 42 |")
    assert "| sam | benign | 50 | 0.02 [0.01, 0.06] | – |" in text and "| 0.50 [" in text


def test_the_plot_draws_one_line_per_variant_and_attack(tmp_path, monkeypatch):
    import eu.eval.report as report

    write(tmp_path, 42, "eu", "benign", [{"examples": n, "counts": {"harmful_asr": [n // 5, 75]}} for n in (0, 50)])
    write(tmp_path, 42, "sam", "benign", [{"examples": n, "counts": {"harmful_asr": [1, 75]}} for n in (0, 50)])
    drawn = {}
    real_save = report.save_figure

    def keep(fig, path):
        drawn.update({bars.get_label(): list(bars.lines[0].get_ydata()) for bars in fig.axes[0].containers})
        real_save(fig, path)

    monkeypatch.setattr(report, "save_figure", keep)
    table_script.plot(tmp_path, tmp_path / "asr.png")
    assert (tmp_path / "asr.png").read_bytes()[:4] == b"\x89PNG"
    assert set(drawn) == {"eu, benign", "sam, benign"}
    assert drawn["eu, benign"] == [0.0, 10 / 75] and drawn["sam, benign"] == [1 / 75, 1 / 75]
