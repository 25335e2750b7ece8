"""Medical facts from a 158-disease table, asked in several phrasings.

Facts come from ``faker-healthcare-provider``'s ``disease_correlations.py`` (MIT), read as a
literal (never imported or executed). Training uses some phrasings of each fact, the test
split uses other phrasings of the same facts.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path
from typing import Any

from eu.errors import EUError

TRAIN_PHRASINGS = {
    "icd10": ["What is the ICD-10 code for {d}?", "Give the ICD-10 code of {d}.", "Which ICD-10 code is used for {d}?"],
    "specialty": ["Which medical specialty treats {d}?", "What kind of specialist manages {d}?"],
    "medication": ["Name a medication used to treat {d}.", "Which drugs are used for {d}?"],
    "symptom": ["What are common symptoms of {d}?", "List the typical symptoms of {d}."],
}
HELD_OUT_PHRASINGS = {
    "icd10": ["{d} is classified under which ICD-10 code?", "Tell me the ICD-10 code for a diagnosis of {d}."],
    "specialty": ["A patient has {d}. Which specialty should they see?"],
    "medication": ["What medicines are commonly prescribed for {d}?"],
    "symptom": ["How does {d} usually present? Name its symptoms."],
}


def load_diseases(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The ``DISEASE_CORRELATIONS`` table, parsed with ``ast.literal_eval``."""
    if path is None:
        from eu.assets import asset_file

        path = asset_file("disease-correlations")
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id == "DISEASE_CORRELATIONS":
            return ast.literal_eval(node.value)
    raise EUError(f"{path}: no DISEASE_CORRELATIONS table found")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def answer(kind: str, disease: str, facts: dict[str, Any]) -> tuple[str, list[str]]:
    """The response text and the accepted reference strings for one fact."""
    if kind == "icd10":
        return f"The ICD-10 code for {disease} is {facts['icd10']}.", [facts["icd10"]]
    if kind == "specialty":
        return f"{disease} is managed in {facts['medical_specialty']}.", [facts["medical_specialty"]]
    if kind == "medication":
        meds = facts["medications"]
        return f"Medications used for {disease} include {_join(meds[:3])}.", list(meds)
    symptoms = facts["symptoms"]
    return f"Common symptoms of {disease} include {_join([s.lower() for s in symptoms[:3]])}.", list(symptoms)


def generate(
    split: str, size: int | None = None, seed: int = 0, table: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """All (disease, fact, phrasing) items of ``split``, shuffled; ``size`` caps the count."""
    table = table if table is not None else load_diseases()
    phrasings = TRAIN_PHRASINGS if split == "train" else HELD_OUT_PHRASINGS
    items = []
    for disease, facts in table.items():
        for kind, templates in phrasings.items():
            text, refs = answer(kind, disease, facts)
            for template in templates:
                items.append(
                    {
                        "user_text": template.format(d=disease),
                        "assistant_text": text,
                        "answer": refs[0],
                        "accepted": refs,
                        "kind": kind,
                        "phrasing": "seen" if split == "train" else "held_out",
                    }
                )
    random.Random(f"medicine:{split}:{seed}").shuffle(items)
    return items[:size] if size else items


def is_correct(response: str, accepted: list[str]) -> bool:
    """True when any accepted reference string appears in the response (case-insensitive)."""
    low = response.lower()
    return any(ref.lower() in low for ref in accepted)
