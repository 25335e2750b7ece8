"""Helpers the tests import: repository paths, the eu command, TensorBoard scalars, stand-in word problems."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
BENCHMARKS = ROOT / "benchmarks"


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


def run_eu(*args: str) -> int:
    from eu.cli import main

    return main(list(args))


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars of a run folder: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
