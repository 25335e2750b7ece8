"""Maths across many task families with exact answers, generated from a seed (``eu:math``).

Nineteen families follow reasoning-gym's arithmetic and algebra generators (basic arithmetic,
chain sums, fractions, gcd/lcm, simple equations, powers, short word problems…), written here
so every item keeps its operands and can be phrased in several ways: each item's user turn
comes from one of its family's phrasing templates, the answer is a short worked line. One more
family, ``word_problems``, is reasoning-gym's own: its 100 GSM8K-style generators, each a
problem template with its own wording and a worked solution (:mod:`eu.domains.gsm`). Every
answer ends in ``The answer is X.`` with an exact ``X`` (an integer, a reduced fraction ``p/q``
or a decimal).

The test split holds items out four ways, in equal shares, tagged ``holdout``:

- ``item``: seen family, seen phrasing, seen operand range, an unseen item (split by a hash of
  the family and operands, as ``math-basic`` does);
- ``phrasing``: seen family and range, a phrasing template never used in training (for the word
  problems: one of the 20 generators training never uses);
- ``operands``: seen family and phrasing, operands from a larger range than training ever uses
  (the templated families only);
- ``family``: a task family never trained on (:data:`HELD_OUT_FAMILIES`).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eu.domains import gsm
from eu.domains.matching import matches

NAMES = ["Tom", "Ana", "Li", "Sara", "Omar", "Mia", "Ravi", "Lena", "Kofi", "Yuki", "Noah", "Ines"]
ITEMS = ["apple", "book", "pencil", "ticket", "sticker", "cookie", "marble", "notebook"]
HOLDOUTS = ("item", "phrasing", "operands", "family")


@dataclass(frozen=True)
class Problem:
    """One generated problem: template slots, the exact answer and a worked line."""

    slots: dict[str, Any]
    answer: str
    working: str
    key: str


@dataclass(frozen=True)
class Family:
    """A task family: a generator by operand range and its phrasing templates."""

    name: str
    make: Callable[[random.Random, bool], Problem]
    """``make(rng, large)``: a problem with operands in the training range, or the larger test range."""
    templates: tuple[str, ...]
    """Training phrasings (all of them, for a held-out family)."""
    held_out: tuple[str, ...] = ()
    """Phrasings used only in the test split's ``phrasing`` share."""


def _frac(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _span(rng: random.Random, large: bool, small: tuple[int, int], big: tuple[int, int]) -> int:
    return rng.randint(*(big if large else small))


def _add(rng: random.Random, large: bool) -> Problem:
    a, b = (_span(rng, large, (2, 99), (1000, 9999)) for _ in range(2))
    return Problem({"a": a, "b": b}, str(a + b), f"{a} + {b} = {a + b}.", f"{min(a, b)}+{max(a, b)}")


def _sub(rng: random.Random, large: bool) -> Problem:
    a, b = sorted((_span(rng, large, (2, 99), (1000, 9999)) for _ in range(2)), reverse=True)
    return Problem({"a": a, "b": b}, str(a - b), f"{a} - {b} = {a - b}.", f"{a}-{b}")


def _mul(rng: random.Random, large: bool) -> Problem:
    a, b = _span(rng, large, (2, 12), (13, 99)), _span(rng, large, (2, 12), (13, 99))
    return Problem({"a": a, "b": b}, str(a * b), f"{a} × {b} = {a * b}.", f"{min(a, b)}*{max(a, b)}")


def _div(rng: random.Random, large: bool) -> Problem:
    b, q = _span(rng, large, (2, 12), (13, 60)), _span(rng, large, (2, 12), (13, 60))
    return Problem({"a": b * q, "b": b}, str(q), f"{b * q} ÷ {b} = {q}.", f"{b * q}/{b}")


def _chain(rng: random.Random, large: bool) -> Problem:
    terms = [_span(rng, large, (1, 50), (100, 999)) for _ in range(rng.randint(3, 5))]
    signs = [rng.choice("+-") for _ in terms[1:]]
    expr = str(terms[0]) + "".join(f" {s} {t}" for s, t in zip(signs, terms[1:]))
    value = terms[0] + sum(t if s == "+" else -t for s, t in zip(signs, terms[1:]))
    return Problem({"expr": expr}, str(value), f"{expr} = {value}.", expr)


def _order(rng: random.Random, large: bool) -> Problem:
    a, b, c = (_span(rng, large, (2, 12), (13, 60)) for _ in range(3))
    if rng.random() < 0.5:
        expr, value, work = f"{a} + {b} × {c}", a + b * c, f"{b} × {c} = {b * c}, then {a} + {b * c} = {a + b * c}."
    else:
        expr, value, work = (
            f"({a} + {b}) × {c}",
            (a + b) * c,
            f"{a} + {b} = {a + b}, then {a + b} × {c} = {(a + b) * c}.",
        )
    return Problem({"expr": expr}, str(value), work, expr)


def _fraction(rng: random.Random, large: bool) -> Problem:
    num, den = _span(rng, large, (1, 9), (10, 40)), _span(rng, large, (2, 10), (11, 50))
    factor = _span(rng, large, (2, 6), (7, 15))
    if num >= den:
        num, den = den - 1 if den > 1 else 1, den
    value = Fraction(num * factor, den * factor)
    g = math.gcd(num * factor, den * factor)
    work = f"Divide the numerator and the denominator by {g}: {num * factor}/{den * factor} = {_frac(value)}."
    return Problem({"n": num * factor, "d": den * factor}, _frac(value), work, f"{num * factor}/{den * factor}")


def _pair(a: int, b: int, value: int, what: str) -> Problem:
    """A problem about the pair ``a, b`` (order-free key)."""
    return Problem({"a": a, "b": b}, str(value), f"The {what} of {a} and {b} is {value}.", f"{min(a, b)},{max(a, b)}")


def _distinct(rng: random.Random, large: bool, small: tuple[int, int], big: tuple[int, int]) -> tuple[int, int]:
    """Two different numbers from one range."""
    low, high = big if large else small
    a, b = rng.sample(range(low, high + 1), 2)
    return a, b


def _gcd(rng: random.Random, large: bool) -> Problem:
    g = _span(rng, large, (2, 12), (13, 40))
    m, n = _distinct(rng, large, (1, 9), (10, 30))
    return _pair(g * m, g * n, math.gcd(g * m, g * n), "greatest common divisor")


def _lcm(rng: random.Random, large: bool) -> Problem:
    a, b = _distinct(rng, large, (2, 15), (16, 60))
    return _pair(a, b, a * b // math.gcd(a, b), "least common multiple")


def _equation(rng: random.Random, large: bool) -> Problem:
    a, x = _span(rng, large, (2, 9), (10, 30)), _span(rng, large, (1, 12), (13, 60)) * rng.choice((1, 1, -1))
    b = _span(rng, large, (1, 30), (31, 300)) * rng.choice((1, -1))
    c = a * x + b
    lhs = f"{a}x {'+' if b > 0 else '-'} {abs(b)}"
    work = f"{a}x = {c} {'-' if b > 0 else '+'} {abs(b)} = {c - b}, so x = {c - b} ÷ {a} = {x}."
    return Problem({"eq": f"{lhs} = {c}"}, str(x), work, f"{lhs}={c}")


def _percent(rng: random.Random, large: bool) -> Problem:
    p = rng.choice((10, 20, 25, 50, 75, 5, 30, 40, 60, 15))
    n = _span(rng, large, (1, 20), (21, 200)) * 20
    value = Fraction(p * n, 100)
    return Problem({"p": p, "n": n}, _frac(value), f"{p}% of {n} = {p}/100 × {n} = {_frac(value)}.", f"{p}%{n}")


def _power(rng: random.Random, large: bool) -> Problem:
    base, exp = _span(rng, large, (2, 12), (13, 30)), rng.choice((2, 2, 3))
    value = base**exp
    word = "squared" if exp == 2 else "cubed"
    return Problem(
        {"b": base, "e": exp, "word": word},
        str(value),
        f"{base}^{exp} = {' × '.join([str(base)] * exp)} = {value}.",
        f"{base}^{exp}",
    )


def _decimal(rng: random.Random, large: bool) -> Problem:
    a, b = (Fraction(_span(rng, large, (1, 99), (100, 999)) * 10 + rng.randint(1, 9), 100) for _ in range(2))
    value = a + b
    fmt = lambda x: f"{float(x):.2f}".rstrip("0").rstrip(".")  # noqa: E731
    return Problem({"a": fmt(a), "b": fmt(b)}, fmt(value), f"{fmt(a)} + {fmt(b)} = {fmt(value)}.", f"{a}+{b}")


def _shopping(rng: random.Random, large: bool) -> Problem:
    n, price = _span(rng, large, (2, 9), (10, 40)), _span(rng, large, (2, 9), (10, 50))
    paid = (n * price // 10 + 1) * 10 + rng.choice((0, 10))
    change = paid - n * price
    slots = {"name": rng.choice(NAMES), "obj": rng.choice(ITEMS), "n": n, "p": price, "paid": paid}
    work = f"{n} × ${price} = ${n * price}, and ${paid} - ${n * price} = ${change}."
    return Problem(slots, str(change), work, f"{n}*{price}<{paid}")


def _sharing(rng: random.Random, large: bool) -> Problem:
    k, each = _span(rng, large, (2, 9), (10, 30)), _span(rng, large, (2, 12), (13, 50))
    slots = {"name": rng.choice(NAMES), "obj": rng.choice(ITEMS), "total": k * each, "k": k}
    return Problem(slots, str(each), f"{k * each} ÷ {k} = {each}.", f"{k * each}/{k}")


def _speed(rng: random.Random, large: bool) -> Problem:
    speed, hours = _span(rng, large, (20, 90), (100, 900)), _span(rng, large, (2, 6), (7, 15))
    slots = {"name": rng.choice(NAMES), "v": speed, "t": hours}
    return Problem(slots, str(speed * hours), f"{speed} km/h × {hours} h = {speed * hours} km.", f"{speed}*{hours}")


def _remainder(rng: random.Random, large: bool) -> Problem:
    b = _span(rng, large, (3, 12), (13, 50))
    a = b * _span(rng, large, (2, 12), (13, 99)) + rng.randint(1, b - 1)
    return Problem({"a": a, "b": b}, str(a % b), f"{a} = {a // b} × {b} + {a % b}.", f"{a}%{b}")


def _average(rng: random.Random, large: bool) -> Problem:
    n = rng.randint(3, 5)
    mean = _span(rng, large, (20, 60), (100, 900))
    values = [mean + rng.randint(-4, 4) for _ in range(n - 1)]
    values.append(mean * n - sum(values))
    listing = ", ".join(map(str, values[:-1])) + f" and {values[-1]}"
    return Problem({"list": listing}, str(mean), f"The sum is {mean * n} and {mean * n} ÷ {n} = {mean}.", listing)


def _rounding(rng: random.Random, large: bool) -> Problem:
    n = _span(rng, large, (11, 999), (1000, 99999))
    place = rng.choice((10, 100)) if n >= 100 else 10
    value = (n + place // 2) // place * place
    word = "ten" if place == 10 else "hundred"
    return Problem(
        {"n": n, "place": word}, str(value), f"{n} rounded to the nearest {word} is {value}.", f"{n}~{place}"
    )


TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "addition": (
        (
            "What is {a} + {b}?",
            "Add {a} and {b}.",
            "Calculate {a} plus {b}.",
            "{a} + {b} = ?",
        ),
        (
            "What is the sum of {a} and {b}?",
            "If you add {b} to {a}, what do you get?",
        ),
    ),
    "subtraction": (
        (
            "What is {a} - {b}?",
            "Subtract {b} from {a}.",
            "Compute {a} minus {b}.",
            "{a} - {b} = ?",
        ),
        (
            "What is the difference between {a} and {b}?",
            "Take {b} away from {a}. What is left?",
        ),
    ),
    "multiplication": (
        (
            "What is {a} × {b}?",
            "Multiply {a} by {b}.",
            "Calculate {a} times {b}.",
            "{a} * {b} = ?",
        ),
        (
            "What is the product of {a} and {b}?",
            "How much is {a} multiplied by {b}?",
        ),
    ),
    "division": (
        (
            "What is {a} ÷ {b}?",
            "Divide {a} by {b}.",
            "Compute {a} / {b}.",
            "{a} ÷ {b} = ?",
        ),
        (
            "How many times does {b} go into {a}?",
            "What is the quotient of {a} and {b}?",
        ),
    ),
    "chain_sum": (
        (
            "Calculate {expr}.",
            "What is {expr}?",
            "Evaluate {expr}.",
            "{expr} = ?",
        ),
        (
            "Work out the value of {expr}.",
            "Find the result of {expr}.",
        ),
    ),
    "order_of_operations": (
        (
            "Evaluate {expr}.",
            "What is {expr}?",
            "Calculate {expr}, following the order of operations.",
        ),
        (
            "Using the usual order of operations, find {expr}.",
            "What number does {expr} equal?",
        ),
    ),
    "fraction_simplification": (
        (
            "Simplify the fraction {n}/{d}.",
            "Reduce {n}/{d} to lowest terms.",
            "Write {n}/{d} in simplest form.",
        ),
        (
            "What is {n}/{d} when fully simplified?",
            "Express the fraction {n}/{d} in its lowest terms.",
        ),
    ),
    "gcd": (
        (
            "What is the greatest common divisor of {a} and {b}?",
            "Find the GCD of {a} and {b}.",
            "gcd({a}, {b}) = ?",
        ),
        (
            "What is the highest common factor of {a} and {b}?",
            "Which is the largest number that divides both {a} and {b}?",
        ),
    ),
    "simple_equations": (
        (
            "Solve for x: {eq}.",
            "Find x if {eq}.",
            "What value of x satisfies {eq}?",
        ),
        (
            "If {eq}, what is x?",
            "Determine x in the equation {eq}.",
        ),
    ),
    "percentage": (
        (
            "What is {p}% of {n}?",
            "Calculate {p} percent of {n}.",
            "Find {p}% of {n}.",
        ),
        (
            "How much is {p}% of {n}?",
            "Take {p} percent of {n}. What do you get?",
        ),
    ),
    "power": (
        (
            "What is {b} to the power of {e}?",
            "Calculate {b}^{e}.",
            "Compute {b} raised to the power {e}.",
        ),
        (
            "What is {b} {word}?",
            "Find the value of {b}^{e}.",
        ),
    ),
    "decimal_addition": (
        (
            "What is {a} + {b}?",
            "Add the decimals {a} and {b}.",
            "Calculate {a} plus {b}.",
        ),
        (
            "Find the sum of {a} and {b}.",
            "What do {a} and {b} add up to?",
        ),
    ),
    "word_shopping": (
        (
            "{name} buys {n} {obj}s at ${p} each and pays with ${paid}. How much change does {name} get?",
            "Each {obj} costs ${p}. {name} buys {n} of them and hands over ${paid}. What is the change?",
        ),
        ("With ${paid}, {name} pays for {n} {obj}s priced at ${p} each. How many dollars are left over?",),
    ),
    "word_sharing": (
        (
            "{name} shares {total} {obj}s equally among {k} friends. How many does each friend get?",
            "{total} {obj}s are split evenly into {k} boxes. How many {obj}s go in each box?",
        ),
        ("If {k} children divide {total} {obj}s fairly, how many {obj}s does each child receive?",),
    ),
    "word_speed": (
        (
            "A car travels at {v} km/h for {t} hours. How far does it go in km?",
            "{name} drives for {t} hours at {v} km per hour. How many kilometres does {name} cover?",
        ),
        ("Moving at a steady {v} km/h, how many km does a train cover in {t} hours?",),
    ),
    # held-out families: in the test split only, every phrasing theirs
    "lcm": (
        (
            "What is the least common multiple of {a} and {b}?",
            "Find the LCM of {a} and {b}.",
            "lcm({a}, {b}) = ?",
        ),
        (),
    ),
    "remainder": (
        (
            "What is the remainder when {a} is divided by {b}?",
            "Find {a} mod {b}.",
            "{a} divided by {b} leaves what remainder?",
        ),
        (),
    ),
    "average": (
        (
            "What is the average of {list}?",
            "Find the mean of {list}.",
            "Compute the arithmetic mean of {list}.",
        ),
        (),
    ),
    "rounding": (
        (
            "Round {n} to the nearest {place}.",
            "What is {n} rounded to the nearest {place}?",
        ),
        (),
    ),
}
"""Per family: training phrasings, and phrasings used only in the test split"s ``phrasing`` share."""
MAKERS: dict[str, Callable[[random.Random, bool], Problem]] = {
    "addition": _add,
    "subtraction": _sub,
    "multiplication": _mul,
    "division": _div,
    "chain_sum": _chain,
    "order_of_operations": _order,
    "fraction_simplification": _fraction,
    "gcd": _gcd,
    "simple_equations": _equation,
    "percentage": _percent,
    "power": _power,
    "decimal_addition": _decimal,
    "word_shopping": _shopping,
    "word_sharing": _sharing,
    "word_speed": _speed,
    "lcm": _lcm,
    "remainder": _remainder,
    "average": _average,
    "rounding": _rounding,
}
FAMILIES: dict[str, Family] = {name: Family(name, MAKERS[name], *TEMPLATES[name]) for name in TEMPLATES}
HELD_OUT_FAMILIES = ("lcm", "remainder", "average", "rounding")
WORD_PROBLEMS = "word_problems"
"""The family of reasoning-gym's GSM8K-style problems (:mod:`eu.domains.gsm`): each of its 100
generators is one problem template with its own wording and a worked solution."""
HELD_OUT_GENERATORS = frozenset(range(4, 100, 5))
"""Word-problem generators used only in the test split's ``phrasing`` share (20 of 100)."""
TRAIN_FAMILIES = (*(name for name in FAMILIES if name not in HELD_OUT_FAMILIES), WORD_PROBLEMS)


def is_test_item(family: str, key: str) -> bool:
    """About one item in eight of the training range belongs to the test split, by a hash of the item."""
    return hashlib.sha256(f"{family}:{key}".encode()).digest()[0] < 32


def _record(
    family: str, problem: Problem, template: str, holdout: str | None, large: bool, template_id: str | None = None
) -> dict[str, Any]:
    return {
        "user_text": template.format(**problem.slots),
        "assistant_text": f"{problem.working} The answer is {problem.answer}.",
        "answer": problem.answer,
        "accepted": [problem.answer],
        "family": family,
        "template": template_id or template,
        "operands": "large" if large else "small",
        "key": f"{family}:{problem.key}",
        **({"holdout": holdout} if holdout else {}),
    }


def _word_problem(
    rng: random.Random, holdout: str | None, generators: dict[int, gsm.Generator]
) -> dict[str, Any] | None:
    """One of reasoning-gym's word problems: a training generator, or a held-out one for the ``phrasing`` share."""
    pool = sorted(k for k in generators if (k in HELD_OUT_GENERATORS) == (holdout == "phrasing"))
    index = rng.choice(pool)
    made = gsm.problem(generators[index], random.Random(rng.getrandbits(64)))
    if made is None:
        return None
    question, working, answer = made
    key = hashlib.sha256(question.encode()).hexdigest()[:16]
    if is_test_item(WORD_PROBLEMS, key) != (holdout is not None):
        return None
    problem = Problem({"question": question}, answer, working, key)
    return _record(WORD_PROBLEMS, problem, "{question}", holdout, False, f"gsm_symbolic:{index}")


def _draw(rng: random.Random, holdout: str | None, generators: dict[int, gsm.Generator]) -> dict[str, Any]:
    """One item of the training split (``holdout`` None) or of one test share."""
    while True:
        if holdout == "family":
            name = rng.choice(HELD_OUT_FAMILIES)
        elif holdout == "operands":  # the word problems have no operand range to step outside
            name = rng.choice([f for f in TRAIN_FAMILIES if f != WORD_PROBLEMS])
        else:
            name = rng.choice(TRAIN_FAMILIES)
        if name == WORD_PROBLEMS:
            item = _word_problem(rng, holdout, generators)
            if item is None:
                continue
            return item
        family = FAMILIES[name]
        large = holdout == "operands"
        problem = family.make(rng, large)
        if not large and holdout != "family" and is_test_item(name, problem.key) != (holdout is not None):
            continue
        templates = family.held_out if holdout == "phrasing" else family.templates
        return _record(name, problem, rng.choice(templates), holdout, large)


def generate(
    split: str, size: int, seed: int = 0, generators: dict[int, gsm.Generator] | None = None
) -> list[dict[str, Any]]:
    """``size`` items of ``split``; the test split cycles through the holdouts (item, phrasing,
    operands, family), so any prefix holds them in equal shares. Questions are not repeated.
    ``generators``: the word-problem generators (default: reasoning-gym's, fetched on first use)."""
    generators = generators if generators is not None else gsm.load_generators()
    rng = random.Random(f"math-diverse:{split}:{seed}")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(items) < size:
        holdout = HOLDOUTS[len(items) % len(HOLDOUTS)] if split == "test" else None
        item = _draw(rng, holdout, generators)
        if item["user_text"] in seen:
            continue
        seen.add(item["user_text"])
        items.append(item)
    return items


def is_correct(response: str, reference: str) -> bool:
    """The response's final answer equals ``reference`` (digits or words, fraction or decimal)."""
    return matches(response, [reference])
