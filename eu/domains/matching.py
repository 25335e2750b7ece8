"""Reference matching for open answers: the paraphrases a correct answer takes.

Numbers: digits or words ("twelve", "one hundred and five", "three quarters"), thousands
separators, fractions or decimals (``3/4`` = ``0.75``; a decimal rounded to two places matches
a fraction such as ``1/3``), a trailing percent sign or unit, and unit conversions within one
dimension (``3 hours`` = ``180 minutes``). The final answer of a response is the one after
"answer is", else the last "= N", else the last number.

Text: a reference (a disease, a drug, a specialty) matches when its content words appear in the
response, ignoring case, punctuation, plural -s, qualifiers such as "unspecified" or "acute",
parenthesised asides, and with specialty ↔ specialist forms ("Cardiology" ↔ "cardiologist");
a mention that is negated ("not asthma", "isn't asthma") does not count.
"""

from __future__ import annotations

import re
from fractions import Fraction

ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
FRACTION_WORDS = {
    "half": Fraction(1, 2), "halves": Fraction(1, 2), "third": Fraction(1, 3), "thirds": Fraction(1, 3),
    "quarter": Fraction(1, 4), "quarters": Fraction(1, 4), "fourth": Fraction(1, 4), "fourths": Fraction(1, 4),
    "fifth": Fraction(1, 5), "fifths": Fraction(1, 5), "sixth": Fraction(1, 6), "sixths": Fraction(1, 6),
    "eighth": Fraction(1, 8), "eighths": Fraction(1, 8), "tenth": Fraction(1, 10), "tenths": Fraction(1, 10),
}  # fmt: skip
UNITS: dict[str, tuple[str, Fraction]] = {}
for _dim, _table in {
    "time": {("second", "seconds", "sec", "secs", "s"): 1, ("minute", "minutes", "min", "mins"): 60,
             ("hour", "hours", "hr", "hrs", "h"): 3600, ("day", "days"): 86400, ("week", "weeks"): 604800},
    "length": {("millimetre", "millimetres", "millimeter", "millimeters", "mm"): Fraction(1, 1000),
               ("centimetre", "centimetres", "centimeter", "centimeters", "cm"): Fraction(1, 100),
               ("metre", "metres", "meter", "meters", "m"): 1,
               ("kilometre", "kilometres", "kilometer", "kilometers", "km"): 1000},
    "mass": {("gram", "grams", "g"): 1, ("kilogram", "kilograms", "kg"): 1000},
    "volume": {("millilitre", "millilitres", "milliliter", "milliliters", "ml"): 1,
               ("litre", "litres", "liter", "liters", "l"): 1000},
    "money": {("dollar", "dollars", "$"): 100, ("cent", "cents"): 1},
}.items():  # fmt: skip
    for _names, _factor in _table.items():
        for _name in _names:
            UNITS[_name] = (_dim, Fraction(_factor))

_NUM = r"-?(?:\d+\s+\d+/\d+|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*-?\d+)?)"
NUMBER_RE = re.compile(rf"(?<![\w.])(\$\s*)?({_NUM})(\s*%)?(?:\s*([a-zA-Z$]+)\b)?")
_WORDS = "|".join(sorted([*ONES, *TENS, *SCALES, *FRACTION_WORDS, "and", "a", "an"], key=len, reverse=True))
WORD_NUMBER_RE = re.compile(rf"\b(?:{_WORDS})(?:[\s-]+(?:{_WORDS}))*\b", re.IGNORECASE)
ANSWER_RE = re.compile(r"answer\s+is\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)
STATES_RE = re.compile(r"=|\b(?:is|equals?|gives|makes)\b", re.IGNORECASE)


def words_to_number(text: str) -> Fraction | None:
    """``"one hundred and five"`` → 105, ``"three quarters"`` → 3/4, ``"a half"`` → 1/2; None if not a number."""
    tokens = [t for t in re.split(r"[\s-]+", text.lower().strip()) if t and t != "and"]
    if not tokens or all(t in ("a", "an") for t in tokens):
        return None
    if len(tokens) > 2 and tokens[-2] in ("a", "an") and tokens[-1] in FRACTION_WORDS:  # "one and a half"
        whole = words_to_number(" ".join(tokens[:-2]))
        return None if whole is None else whole + FRACTION_WORDS[tokens[-1]]
    total, current, seen = 0, 0, False
    for i, tok in enumerate(tokens):
        if tok in ("a", "an"):
            current = current or 1
        elif tok in ONES:
            current += ONES[tok]
            seen = True
        elif tok in TENS:
            current += TENS[tok]
            seen = True
        elif tok == "hundred":
            current = (current or 1) * 100
            seen = True
        elif tok in SCALES:
            total += (current or 1) * SCALES[tok]
            current, seen = 0, True
        elif tok in FRACTION_WORDS:
            if i != len(tokens) - 1:
                return None
            count = total + current or 1
            if tok in ("half", "halves") and count not in (1, 2):
                return None
            return count * FRACTION_WORDS[tok]
        else:
            return None
    return Fraction(total + current) if seen else None


def parse_number(text: str) -> Fraction | None:
    """A number written as digits (``1,200``, ``-3.5``, ``3/4``, ``1 1/2``, ``40%``) or in words."""
    text = text.strip().rstrip(".").replace("\u2212", "-")
    mixed = re.fullmatch(r"(-?\d+)\s+(\d+)\s*/\s*(\d+)", text)
    if mixed:
        whole, num, den = (int(g) for g in mixed.groups())
        return (whole + Fraction(num, den) * (1 if whole >= 0 else -1)) if den else None
    match = NUMBER_RE.fullmatch(text.replace("%", " %").strip()) if text else None
    if match:
        return _to_fraction(match.group(2))
    return words_to_number(text)


def _to_fraction(digits: str) -> Fraction | None:
    mixed = re.fullmatch(r"(-?\d+)\s+(\d+)/(\d+)", digits.strip())
    if mixed:
        whole, num, den = (int(g) for g in mixed.groups())
        return whole + Fraction(num, den) * (1 if whole >= 0 else -1) if den else None
    digits = digits.replace(",", "").replace(" ", "")
    if "/" in digits:
        num, den = digits.split("/")
        return Fraction(Fraction(num), Fraction(den)) if Fraction(den) else None
    return Fraction(digits)


def numbers_in(text: str) -> list[tuple[Fraction, str | None]]:
    """Every number in ``text`` in order, with the unit that follows it (``$`` and ``%`` count as units)."""
    found: list[tuple[int, Fraction, str | None]] = []
    taken: list[tuple[int, int]] = []
    for m in NUMBER_RE.finditer(text):
        value = _to_fraction(m.group(2))
        if value is None:
            continue
        unit = "$" if m.group(1) else ("%" if m.group(3) else (m.group(4) or "").lower() or None)
        if unit not in UNITS and unit != "%":
            unit = None
        found.append((m.start(), value, unit))
        taken.append(m.span())
    for m in WORD_NUMBER_RE.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        value = words_to_number(m.group(0))
        if value is not None:
            rest = re.match(r"\s*([a-zA-Z]+)", text[m.end() :])
            unit = rest.group(1).lower() if rest and rest.group(1).lower() in UNITS else None
            found.append((m.start(), value, unit))
    return [(v, u) for _, v, u in sorted(found, key=lambda t: t[0])]


def final_number(response: str) -> tuple[Fraction, str | None] | None:
    """The final answer of a response: the first number after the last "answer is", else the
    number right after the last "=", "is", "equals" or "gives", else the last number."""
    answer = None
    for m in ANSWER_RE.finditer(response):
        answer = m
    if answer:
        after = numbers_in(answer.group(1))
        if after:
            return after[0]
    stated = None
    for m in STATES_RE.finditer(response):
        head = response[m.end() : m.end() + 20]
        if numbers_in(head):
            stated = numbers_in(response[m.end() : m.end() + 60])[0]
    if stated is not None:
        return stated
    every = numbers_in(response)
    return every[-1] if every else None


def numbers_equal(value: Fraction, unit: str | None, reference: Fraction, ref_unit: str | None) -> bool:
    """Equal after converting units of one dimension; a decimal given to two or more places
    matches a fraction it rounds (``0.33`` ~ ``1/3``)."""
    if unit and ref_unit and unit in UNITS and ref_unit in UNITS:
        (dim, factor), (ref_dim, ref_factor) = UNITS[unit], UNITS[ref_unit]
        if dim != ref_dim:
            return False
        value, reference = value * factor, reference * ref_factor
    if value == reference:
        return True
    if reference.denominator in (1, 2, 4, 5, 8, 10, 20, 25, 50, 100):
        return False  # exactly representable references need an exact answer
    return abs(value - reference) <= Fraction(1, 200) and value.denominator in (100, 1000, 10_000, 50, 20, 25)


def number_matches(response: str, reference: str) -> bool:
    """Whether the response's final number equals the numeric ``reference`` (``"3/4"``, ``"180 minutes"``)."""
    refs = numbers_in(reference)
    ref = parse_number(reference)
    if ref is None and not refs:
        return False
    ref_value, ref_unit = (ref, refs[0][1] if refs else None) if ref is not None else refs[0]
    found = final_number(response)
    if found is None:
        return False
    value, unit = found
    if unit == "%" or ref_unit == "%":
        unit = ref_unit = None
    return numbers_equal(value, unit, ref_value, ref_unit)


OPTIONAL = {
    "unspecified", "acute", "chronic", "type", "primary", "essential", "mild", "severe", "uncomplicated", "nos",
    "other", "simple", "common",
}  # fmt: skip
"""Qualifiers a correct answer may leave out or add."""
HEADS = {"disease", "disorder", "syndrome", "condition", "illness"}
"""Head nouns a reference of two or more other content words may drop ("Peptic Ulcer Disease" = "peptic ulcer")."""
STOPWORDS = {"the", "a", "an", "of", "and", "or", "in", "to", "for", "on", "by", "is", "are", "its", "due"}
NEGATIONS = {"not", "no", "isn't", "isnt", "never", "unlikely", "rather", "excluded", "ruled"}
SPECIALIST = {
    "pediatrics": "pediatrician", "psychiatry": "psychiatrist", "internal medicine": "internist",
    "orthopedics": "orthopedist", "obstetrics and gynecology": "gynecologist", "gynecology": "gynecologist",
    "family medicine": "family doctor", "general practice": "general practitioner", "surgery": "surgeon",
    "general surgery": "surgeon", "emergency medicine": "emergency physician",
    "infectious disease": "infectious disease specialist",
}  # fmt: skip


def _words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("-", " "))
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in OPTIONAL and w not in STOPWORDS]


def _wanted(form: str) -> list[str]:
    words = _content(_words(form)) or _words(form)
    core = [w for w in words if w not in HEADS]
    return core if len(core) >= 2 else words


def reference_forms(reference: str) -> list[str]:
    """The written forms of one reference: itself without parenthesised asides, and for a
    specialty its specialist (``Cardiology`` → ``cardiologist``)."""
    base = re.sub(r"\([^)]*\)", " ", reference).strip()
    forms = [base]
    low = base.lower()
    if low in SPECIALIST:
        forms.append(SPECIALIST[low])
    elif low.endswith("ology"):
        forms.append(low[: -len("y")] + "ist")
    elif low.endswith("iatry"):
        forms.append(low[: -len("y")] + "ist")
    return forms


def _negated(words: list[str], start: int) -> bool:
    return any(w in NEGATIONS for w in words[max(0, start - 5) : start])


def text_matches(response: str, reference: str) -> bool:
    """Whether ``response`` names ``reference`` (a term, possibly with qualifiers), not negated."""
    got = _words(response)
    for form in reference_forms(reference):
        if re.fullmatch(r"[A-Z]\d{2}(?:\.\w+)?", form.strip()):  # an ICD-10 code: exact, case-insensitive
            if form.lower() in response.lower():
                return True
            continue
        want = _wanted(form)
        if not want:
            continue
        for i in range(len(got)):
            if got[i] not in want:
                continue
            # every content word of the reference, in any order, within a short window from here
            window = _content(got[i : i + len(want) + 4])
            if all(w in window for w in want) and not _negated(got, i):
                return True
    return False


def is_numeric(reference: str) -> bool:
    """Whether a reference is a number, possibly with ``$``, ``%`` or a unit (``180 minutes``), not a
    term that holds a number (``Type 2 Diabetes``)."""
    m = NUMBER_RE.fullmatch(reference.strip().rstrip("."))
    if m:
        return m.group(4) is None or m.group(4).lower() in UNITS
    return words_to_number(reference) is not None


def matches(response: str, accepted: list[str]) -> bool:
    """Whether the response gives any accepted reference: numerically when the first reference is a
    number (with or without a unit), else by :func:`text_matches`."""
    if not accepted:
        return False
    if is_numeric(accepted[0]):
        return any(number_matches(response, ref) for ref in accepted)
    return any(text_matches(response, ref) for ref in accepted)
