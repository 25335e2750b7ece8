"""Arithmetic and short word problems with exact answers, generated from a seed.

Train and test items are disjoint (split by a hash of the item), and half the test items use
phrasings that never occur in training. Every answer ends with "The answer is N."
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

OPS: dict[str, tuple[str, Callable[[int, int], int]]] = {
    "add": ("+", lambda a, b: a + b),
    "sub": ("-", lambda a, b: a - b),
    "mul": ("*", lambda a, b: a * b),
}
NAMES = ["Tom", "Ana", "Li", "Sara", "Omar", "Mia", "Ravi", "Lena", "Kofi", "Yuki"]
OBJECTS = ["apple", "book", "coin", "marble", "pencil", "stamp", "shell", "card"]

TRAIN_PHRASINGS = {
    "arith": [
        "What is {a} {sym} {b}?",
        "Compute {a} {sym} {b}.",
        "Calculate {a} {sym} {b}.",
        "{a} {sym} {b} = ?",
        "Find the value of {a} {sym} {b}.",
    ],
    "word_add": [
        "{name} has {a} {obj}s and gets {b} more. How many {obj}s does {name} have now?",
        "There are {a} {obj}s in a box and {name} adds {b}. How many {obj}s are in the box?",
    ],
    "word_sub": [
        "{name} has {a} {obj}s and gives away {b}. How many {obj}s are left?",
        "A shelf holds {a} {obj}s. {name} takes {b} of them. How many remain?",
    ],
}
HELD_OUT_PHRASINGS = {
    "arith": ["Work out {a} {sym} {b}.", "What do you get when you evaluate {a} {sym} {b}?"],
    "word_add": ["{name} had {a} {obj}s, then found {b} more. What is the total number of {obj}s now?"],
    "word_sub": ["Out of {a} {obj}s, {name} lost {b}. How many {obj}s does {name} still have?"],
}
ANSWER_RE = re.compile(r"answer is\s*:?\s*(-?\d+)", re.IGNORECASE)
EQUALS_RE = re.compile(r"=\s*(-?\d+)")
NUMBER_RE = re.compile(r"-?\d+")


def _operands(rng: random.Random, op: str) -> tuple[int, int]:
    if op == "mul":
        return rng.randint(2, 12), rng.randint(2, 12)
    a, b = rng.randint(0, 50), rng.randint(0, 50)
    return (max(a, b), min(a, b)) if op == "sub" else (a, b)


def is_test_item(op: str, a: int, b: int) -> bool:
    """About one item in eight belongs to the test split, decided by a hash of the item.

    Commutative operations hash their operands sorted, so ``3 * 5`` and ``5 * 3`` share a split.
    """
    if op in ("add", "mul"):
        a, b = sorted((a, b))
    return hashlib.sha256(f"{op}:{a}:{b}".encode()).digest()[0] < 32


def _item(rng: random.Random, phrasings: dict[str, list[str]]) -> dict[str, str]:
    op = rng.choice(list(OPS))
    kind = "arith" if op == "mul" or rng.random() < 0.6 else f"word_{op}"
    a, b = _operands(rng, op)
    sym, fn = OPS[op]
    template = rng.choice(phrasings[kind])
    question = template.format(a=a, b=b, sym=sym, name=rng.choice(NAMES), obj=rng.choice(OBJECTS))
    result = fn(a, b)
    return {
        "user_text": question,
        "assistant_text": f"{a} {sym} {b} = {result}. The answer is {result}.",
        "answer": str(result),
        "key": f"{op}:{min(a, b)}:{max(a, b)}" if op in ("add", "mul") else f"{op}:{a}:{b}",
        "kind": kind,
    }


def generate(split: str, size: int, seed: int = 0) -> list[dict[str, str]]:
    """``size`` items of ``split`` (``train`` or ``test``); test mixes seen and held-out phrasings."""
    rng = random.Random(f"math:{split}:{seed}")
    items: list[dict[str, str]] = []
    while len(items) < size:
        held_out = split == "test" and len(items) % 2 == 1
        phrasings = HELD_OUT_PHRASINGS if held_out else TRAIN_PHRASINGS
        item = _item(rng, phrasings)
        op, a, b = item["key"].split(":")
        if is_test_item(op, int(a), int(b)) != (split == "test"):
            continue
        item["phrasing"] = "held_out" if held_out else "seen"
        items.append(item)
    return items


def parse_answer(response: str) -> str | None:
    """The final answer of a response: "answer is N", else the first "= N", else the last number."""
    for pattern in (ANSWER_RE, EQUALS_RE):
        found = pattern.findall(response)
        if found:
            return found[-1] if pattern is ANSWER_RE else found[0]
    numbers = NUMBER_RE.findall(response)
    return numbers[-1] if numbers else None


def is_correct(response: str, reference: str) -> bool:
    """Exact match of the parsed final answer."""
    return parse_answer(response) == reference
