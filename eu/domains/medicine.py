"""Medical instructions of several types over the 158-disease table (``eu:medicine``).

Built from ``faker-healthcare-provider``'s ``disease_correlations.py`` (the same table as
``medicine-basic``), in natural phrasings, as more than fact look-up:

- ``symptoms_to_condition``: a few symptoms → a condition that has all of them (every such
  condition is accepted);
- ``drug_to_indication``: a medication → the conditions it treats;
- ``specialist``: which specialist to see for a condition;
- ``patient_symptoms`` / ``patient_specialist``: the same asked as a patient would;
- ``explanation``: a short explanation of a condition (specialty, symptoms, treatments), scored by
  whether it names one of them;
- ``icd10``, ``medication``, ``symptoms``: fact look-up;
- ``multiple_choice``: which of four specialties treats a condition, scored by option likelihood.

Every type has training phrasings and phrasings used only in the test split (held out by
template); test items carry ``holdout: phrasing``.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

from eu.domains.matching import matches

LETTERS = "ABCD"
GENERIC_SHARE = 0.065
"""A symptom listed for more than this share of the conditions (fatigue, fever, cough…, 13 of
290 symptoms on the 158-disease table) is too generic to count as naming a condition's symptom."""
NOT_DRUGS = {
    "surgery", "exercise", "diet control", "iv fluids", "oxygen therapy", "antibiotics", "pain relievers", "rest",
    "physical therapy", "splenectomy", "chemotherapy", "radiation therapy", "hydration", "lifestyle changes",
}  # fmt: skip

TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "symptoms_to_condition": (
        (
            "Which condition could cause {symptoms}?",
            "A person has {symptoms}. What condition might they have?",
            "What disease is suggested by {symptoms}?",
            "Name a likely diagnosis for someone with {symptoms}.",
        ),
        ("What illness fits the symptoms {symptoms}?", "Someone presents with {symptoms}. What is a possible cause?"),
    ),
    "drug_to_indication": (
        (
            "What is {drug} used to treat?",
            "Which condition is {drug} prescribed for?",
            "What is the medication {drug} indicated for?",
        ),
        ("Why would a doctor prescribe {drug}?", "For which disease is {drug} a common treatment?"),
    ),
    "specialist": (
        (
            "Which specialist treats {d}?",
            "What kind of doctor should manage {d}?",
            "Which medical specialty is responsible for {d}?",
        ),
        ("Who is the right specialist for {d}?", "To which department would you refer a patient with {d}?"),
    ),
    "patient_symptoms": (
        (
            "I have had {symptoms} for a few days. What could it be?",
            "My husband has {symptoms}. What condition could explain this?",
            "For a week now I've noticed {symptoms}. Any idea what might be causing it?",
        ),
        ("Lately I keep getting {symptoms}. What might be wrong with me?",),
    ),
    "patient_specialist": (
        (
            "I was just diagnosed with {d}. What kind of doctor should I see?",
            "My mother has {d}. Which specialist will look after her?",
            "My doctor says I have {d}. Who should I be referred to?",
        ),
        ("My son was told he has {d}. Which type of specialist handles that?",),
    ),
    "explanation": (
        ("Briefly explain what {d} is.", "Give a short explanation of {d}.", "What should I know about {d}?"),
        ("In a few sentences, describe {d}.", "Can you summarise {d} for a patient?"),
    ),
    "icd10": (
        ("What is the ICD-10 code for {d}?", "Give the ICD-10 code of {d}."),
        ("{d} is classified under which ICD-10 code?",),
    ),
    "medication": (
        ("Name a medication used to treat {d}.", "Which drugs are used for {d}?"),
        ("What medicines are commonly prescribed for {d}?",),
    ),
    "symptoms": (
        ("What are common symptoms of {d}?", "List the typical symptoms of {d}."),
        ("How does {d} usually present?",),
    ),
    "multiple_choice": (
        ("Which specialty manages {d}?\n{options}", "{d} is treated by which specialty?\n{options}"),
        ("A patient has {d}. Which department should treat them?\n{options}",),
    ),
}


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class Table:
    """Indexes over the disease table: which conditions have given symptoms, which a drug treats."""

    def __init__(self, table: dict[str, dict[str, Any]]) -> None:
        self.table = table
        self.diseases = sorted(table)
        self.treats: dict[str, list[str]] = defaultdict(list)
        for disease in self.diseases:
            for med in table[disease]["medications"]:
                self.treats[med].append(disease)
        self.drugs = sorted(m for m, ds in self.treats.items() if m.lower() not in NOT_DRUGS and len(ds) <= 3)
        self.specialties = sorted({f["medical_specialty"] for f in table.values()})
        self.symptom_count = Counter(s for f in table.values() for s in f["symptoms"])

    def by_specificity(self, symptoms: list[str]) -> list[str]:
        """``symptoms``, the ones fewest conditions share first."""
        return sorted(symptoms, key=lambda s: self.symptom_count[s])

    def distinctive(self, symptoms: list[str]) -> list[str]:
        """The symptoms shared by few conditions (all of them when none is): naming "fatigue",
        which a third of the table lists, does not show knowledge of one condition."""
        return [s for s in symptoms if self.symptom_count[s] <= len(self.table) * GENERIC_SHARE] or list(symptoms)

    def with_symptoms(self, symptoms: list[str]) -> list[str]:
        """Every condition whose symptom list holds all ``symptoms``."""
        return [d for d in self.diseases if set(symptoms) <= set(self.table[d]["symptoms"])]


def _item(kind: str, table: Table, rng: random.Random, subject: str, template: str) -> dict[str, Any]:
    """One item of ``kind`` about ``subject`` (a disease, or a drug for ``drug_to_indication``)."""
    if kind == "drug_to_indication":
        conditions = table.treats[subject]
        text = f"{subject} is used to treat {_join(conditions)}."
        return {"user_text": template.format(drug=subject), "assistant_text": text, "accepted": conditions}
    facts = table.table[subject]
    specialty = facts["medical_specialty"]
    if kind in ("symptoms_to_condition", "patient_symptoms"):
        symptoms = rng.sample(facts["symptoms"], min(3, len(facts["symptoms"])))
        accepted = table.with_symptoms(symptoms)
        listed = _join([s.lower() for s in symptoms])
        text = f"{listed[0].upper()}{listed[1:]} can point to {subject}."
        if kind == "patient_symptoms":
            text += f" It is best to see a doctor; {subject} is managed in {specialty}."
        return {"user_text": template.format(symptoms=listed), "assistant_text": text, "accepted": accepted}
    if kind in ("specialist", "patient_specialist"):
        text = f"{subject} is managed in {specialty}."
        if kind == "patient_specialist":
            text = f"You should see a specialist in {specialty}, which manages {subject}."
        return {"user_text": template.format(d=subject), "assistant_text": text, "accepted": [specialty]}
    if kind == "explanation":
        meds, symptoms = facts["medications"], table.by_specificity(facts["symptoms"])
        text = (
            f"{subject} is a condition managed in {specialty}. It typically causes "
            f"{_join([s.lower() for s in symptoms[:3]])}, and it is commonly treated with {_join(meds[:2])}."
        )
        return {
            "user_text": template.format(d=subject),
            "assistant_text": text,
            "accepted": [specialty, *table.distinctive(symptoms), *meds],
        }
    if kind == "icd10":
        text = f"The ICD-10 code for {subject} is {facts['icd10']}."
        return {"user_text": template.format(d=subject), "assistant_text": text, "accepted": [facts["icd10"]]}
    if kind == "medication":
        text = f"Medications used for {subject} include {_join(facts['medications'][:3])}."
        return {"user_text": template.format(d=subject), "assistant_text": text, "accepted": list(facts["medications"])}
    if kind == "symptoms":
        symptoms = table.by_specificity(facts["symptoms"])
        text = f"Common symptoms of {subject} include {_join([s.lower() for s in symptoms[:3]])}."
        return {
            "user_text": template.format(d=subject),
            "assistant_text": text,
            "accepted": table.distinctive(symptoms),
        }
    # multiple_choice
    others = rng.sample([s for s in table.specialties if s != specialty], 3)
    options = [specialty, *others]
    rng.shuffle(options)
    index = options.index(specialty)
    listing = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    # scored by the letter alone: choices of one length compete fairly on summed log-likelihood
    choices = [f"The answer is {letter}" for letter in LETTERS[: len(options)]]
    return {
        "user_text": template.format(d=subject, options=listing),
        "assistant_text": f"The answer is {LETTERS[index]}: {specialty}.",
        "accepted": [specialty],
        "choices": choices,
        "answer": choices[index],
    }


def generate(
    split: str, size: int | None = None, seed: int = 0, table: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Items of ``split``: training phrasings for ``train`` (two per disease and type, one per
    drug; repeated questions dropped), held-out phrasings for ``test`` (one per disease and type),
    shuffled; the test split takes the types in turn, so any prefix holds them in equal shares;
    ``size`` caps the count."""
    if table is None:
        from eu.domains.medicine_basic import load_diseases

        table = load_diseases()
    index = Table(table)
    rng = random.Random(f"medicine-diverse:{split}:{seed}")
    repeats = 2 if split == "train" else 1
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for kind, (train_templates, test_templates) in TEMPLATES.items():
        templates = train_templates if split == "train" else test_templates
        subjects = index.drugs if kind == "drug_to_indication" else index.diseases
        for subject in subjects:
            for _ in range(1 if kind == "drug_to_indication" else repeats):
                template = rng.choice(templates)
                item = _item(kind, index, rng, subject, template)
                if item["user_text"] in seen:
                    continue
                seen.add(item["user_text"])
                items.append(
                    {
                        **item,
                        "answer": item.get("answer", item["accepted"][0]),
                        "kind": kind,
                        "template": template,
                        **({"holdout": "phrasing"} if split == "test" else {}),
                    }
                )
    rng.shuffle(items)
    if split == "test":  # round robin over the types, so any prefix holds them in equal shares
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            by_kind[item["kind"]].append(item)
        queues = [by_kind[kind] for kind in TEMPLATES]
        items = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    return items[:size] if size else items


def is_correct(response: str, accepted: list[str]) -> bool:
    """Whether the response names any accepted reference (see :mod:`eu.domains.matching`)."""
    return matches(response, accepted)
