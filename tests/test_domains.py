import hashlib
import json
from pathlib import Path

import pytest

from eu.data.sources import resolve_source
from eu.domains import domain_items, is_correct, math, medicine, medicine_basic, prepare
from eu.domains import math_basic as math_domain
from eu.domains.matching import matches
from eu.errors import EUError

TABLE = {
    "Asthma": {
        "icd10": "J45.909",
        "symptoms": ["Wheezing", "Cough", "Chest Pain"],
        "medications": ["Albuterol", "Fluticasone"],
        "medical_specialty": "Pulmonology",
    },
    "Migraine": {
        "icd10": "G43.909",
        "symptoms": ["Headache", "Nausea"],
        "medications": ["Sumatriptan"],
        "medical_specialty": "Neurology",
    },
}


def test_math_is_deterministic_and_train_test_items_are_disjoint():
    assert math_domain.generate("train", 300) == math_domain.generate("train", 300)
    train = math_domain.generate("train", 3000)
    test = math_domain.generate("test", 300)
    assert not {x["key"] for x in train} & {x["key"] for x in test}
    for item in train + test:
        op, a, b = item["key"].split(":")
        assert math_domain.is_test_item(op, int(a), int(b)) == (item in test)


def test_math_test_uses_phrasings_never_seen_in_training():
    train = math_domain.generate("train", 3000)
    test = math_domain.generate("test", 300)
    held_out = [x for x in test if x["phrasing"] == "held_out"]
    assert len(held_out) == 150
    train_questions = {x["user_text"] for x in train}
    assert not {x["user_text"] for x in held_out} & train_questions
    train_templates = {t for ts in math_domain.TRAIN_PHRASINGS.values() for t in ts}
    assert not train_templates & {t for ts in math_domain.HELD_OUT_PHRASINGS.values() for t in ts}


def test_math_answers_are_right_and_parseable():
    for item in math_domain.generate("test", 200):
        a_sym_b = item["assistant_text"].split(" = ")[0]
        assert str(eval(a_sym_b)) == item["answer"]  # noqa: S307 - our own arithmetic strings
        assert math_domain.is_correct(item["assistant_text"], item["answer"])
    assert math_domain.parse_answer("so 3 + 4 = 7. The answer is 7.") == "7"
    assert math_domain.parse_answer("12 + 7 = 9\n\nThis is 3 things") == "9"
    assert math_domain.parse_answer("I think -5") == "-5"
    assert math_domain.parse_answer("no idea") is None


def test_medicine_items_come_from_the_table_with_held_out_phrasings(tmp_path):
    source = tmp_path / "disease_correlations.py"
    source.write_text("from .types import DiseaseData\n\nDISEASE_CORRELATIONS: dict = " + json.dumps(TABLE) + "\n")
    table = medicine_basic.load_diseases(source)
    assert table == TABLE
    train = medicine_basic.generate("train", table=table)
    test = medicine_basic.generate("test", table=table)
    assert medicine_basic.generate("train", table=table) == train
    assert not {x["user_text"] for x in train} & {x["user_text"] for x in test}
    icd = [x for x in test if x["kind"] == "icd10" and "Asthma" in x["user_text"]]
    assert icd and all(x["answer"] == "J45.909" for x in icd)
    assert medicine_basic.is_correct("It is coded J45.909 in ICD-10.", icd[0]["accepted"])
    assert not medicine_basic.is_correct("It is coded G43.909.", icd[0]["accepted"])


def test_builtin_sources_are_written_once_as_jsonl(tmp_path):
    path = prepare("math", "test", tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == domain_items("math", "test")
    assert resolve_source("eu:math/test").endswith("math-test.jsonl")
    assert resolve_source("my/file.jsonl") == "my/file.jsonl"


def test_data_prepare_refuses_a_folder_eu_did_not_write_and_reuses_its_own(tmp_path):
    from utils import run_eu

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert run_eu("data", "prepare", "math", "--out", str(mine)) == 2
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"

    fresh = tmp_path / "fresh"
    assert run_eu("data", "prepare", "math", "--out", str(fresh)) == 0
    written = {p.name: p.read_bytes() for p in fresh.glob("*.jsonl")}
    assert sorted(written) == ["math-test.jsonl", "math-train.jsonl"]
    assert run_eu("data", "prepare", "math", "--out", str(fresh)) == 0, "its own earlier output is reused"
    assert {p.name: p.read_bytes() for p in fresh.glob("*.jsonl")} == written


# --- the basic sets stay as they were -------------------------------------------------------

BASIC_HASHES = {
    ("math-basic", "train"): "db3a4cc0162cf58a535a54878c2447727c2c1fca62efc51d800d567bc12f3f79",
    ("math-basic", "test"): "79515f13bff5be9e0534f59dcd500afbe2a5098b0ed54833120ef95cce4aeda7",
    # the real 158-disease table (slow test below)
    ("medicine-basic", "train"): "7594a4501366f0656e914c4f0a949c78ed332718c4d719bb7666e1599b8384e0",
    ("medicine-basic", "test"): "4e633e6cc2f0e62cd5a4b70eb25aed52b80a292446d7418640b6782e8137b408",
}


def _digest(items):
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


def test_basic_sets_are_unchanged():
    """eu:math-basic is byte for byte what eu:math was before the diverse set (content hash)."""
    for split in ("train", "test"):
        assert _digest(domain_items("math-basic", split)) == BASIC_HASHES[("math-basic", split)]
    # medicine-basic: the generator's output on a fixed table, as before the split
    assert _digest(medicine_basic.generate("train", table=TABLE)) == (
        "c96d5d22af4c3f0c9d4d1f9fc4e165463cd16bacf4d274dd262884a4a9f6e78d"
    )
    assert _digest(medicine_basic.generate("test", table=TABLE)) == (
        "def34bd80754d2ded913d3059e2d83efbad1eac5454d46ef2e0b722f6e6de12e"
    )


@pytest.mark.slow
def test_medicine_basic_is_unchanged_on_the_real_table():
    for split in ("train", "test"):
        assert _digest(domain_items("medicine-basic", split)) == BASIC_HASHES[("medicine-basic", split)]


def test_domain_names_and_errors(tmp_path):
    assert resolve_source("eu:math-basic/test").endswith("math-basic-test.jsonl")
    with pytest.raises(EUError, match="math-basic"):
        domain_items("maths", "train")
    with pytest.raises(EUError, match="train or test"):
        prepare("math", "valid", tmp_path)


# --- diverse maths --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def maths():
    from utils import stand_in_word_problems

    generators = stand_in_word_problems()
    return math.generate("train", 6000, generators=generators), math.generate("test", 400, generators=generators)


def _trained_template(item):
    """Whether an item's phrasing is one training uses (a training phrasing, or a training word-problem generator)."""
    if item["family"] == math.WORD_PROBLEMS:
        return int(item["template"].split(":")[1]) not in math.HELD_OUT_GENERATORS
    return item["template"] in math.FAMILIES[item["family"]].templates


def test_math_diverse_is_seeded_and_deterministic(maths):
    train, test = maths
    assert math.generate("train", 6000) == train
    assert math.generate("test", 400) == test
    assert math.generate("test", 40, seed=1) != test[:40]
    assert domain_items("math", "test") == test


def test_math_diverse_covers_many_families_with_varied_phrasings(maths):
    train, test = maths
    families = {x["family"] for x in train}
    assert families == set(math.TRAIN_FAMILIES) and len(families) >= 12
    assert len({x["template"] for x in train}) >= 40 + 80  # the templated families' phrasings + 80 generators
    assert {x["holdout"] for x in test[:4]} == set(math.HOLDOUTS)


def test_math_diverse_splits_are_disjoint_as_claimed(maths):
    train, test = maths
    train_keys = {x["key"] for x in train}
    train_templates = {x["template"] for x in train}
    assert not train_keys & {x["key"] for x in test}
    assert not {x["user_text"] for x in train} & {x["user_text"] for x in test}
    assert all(x["operands"] == "small" for x in train)
    by = {h: [x for x in test if x["holdout"] == h] for h in math.HOLDOUTS}
    assert all(len(v) == 100 for v in by.values())
    # by family: test-only families, never in training
    assert {x["family"] for x in by["family"]} <= set(math.HELD_OUT_FAMILIES)
    assert not set(math.HELD_OUT_FAMILIES) & {x["family"] for x in train}
    # by phrasing: templates (word-problem generators) training never uses
    assert not {x["template"] for x in by["phrasing"]} & train_templates
    assert not any(_trained_template(x) for x in by["phrasing"])
    assert all(_trained_template(x) for x in train)
    assert any(x["family"] == math.WORD_PROBLEMS for x in by["phrasing"])
    # by operand range: the larger range, seen families and phrasings (templated families only)
    assert all(x["operands"] == "large" and _trained_template(x) for x in by["operands"])
    assert not any(x["family"] == math.WORD_PROBLEMS for x in by["operands"])
    # by item: seen family, phrasing and range, an item the hash puts in the test split
    for x in by["item"]:
        assert _trained_template(x) and x["operands"] == "small"
        assert math.is_test_item(x["family"], x["key"].split(":", 1)[1])


def test_every_math_item_has_an_exact_answer_the_scorer_accepts(maths):
    train, test = maths
    for item in train + test:
        assert item["assistant_text"].endswith(f"The answer is {item['answer']}.")
        assert is_correct("math", item["assistant_text"], item), item
        wrong = item["assistant_text"].rsplit("The answer is", 1)[0] + "The answer is 100003."
        assert not is_correct("math", wrong, item), item


# --- diverse medicine -----------------------------------------------------------------------

BIG_TABLE = {
    **TABLE,
    "Type 2 Diabetes": {
        "icd10": "E11.9",
        "symptoms": ["Frequent Urination", "Fatigue", "Blurred Vision", "Increased Thirst"],
        "medications": ["Metformin", "Insulin Glargine"],
        "medical_specialty": "Endocrinology",
    },
    "Gestational Diabetes": {
        "icd10": "O24.419",
        "symptoms": ["Increased Thirst", "Frequent Urination", "Fatigue", "Blurred Vision"],
        "medications": ["Insulin", "Metformin"],
        "medical_specialty": "Obstetrics",
    },
    "Angina Pectoris": {
        "icd10": "I20.9",
        "symptoms": ["Chest Pain", "Shortness of Breath", "Sweating"],
        "medications": ["Nitroglycerin", "Aspirin"],
        "medical_specialty": "Cardiology",
    },
}


def test_medicine_diverse_types_templates_and_answers():
    train = medicine.generate("train", table=BIG_TABLE)
    test = medicine.generate("test", table=BIG_TABLE)
    assert medicine.generate("train", table=BIG_TABLE) == train
    kinds = set(medicine.TEMPLATES)
    assert {x["kind"] for x in train} == kinds and {x["kind"] for x in test} == kinds
    for kind, (seen, held_out) in medicine.TEMPLATES.items():
        assert not set(seen) & set(held_out)
        assert {x["template"] for x in train if x["kind"] == kind} <= set(seen)
        assert {x["template"] for x in test if x["kind"] == kind} <= set(held_out)
    assert not {x["user_text"] for x in train} & {x["user_text"] for x in test}
    assert all(x["holdout"] == "phrasing" for x in test)
    for item in train + test:
        assert is_correct("medicine", item["assistant_text"], item), item
        if item["kind"] in ("specialist", "patient_specialist"):  # another specialty is wrong
            other = "Neurology" if item["answer"] != "Neurology" else "Cardiology"
            assert not is_correct("medicine", f"It is managed in {other}.", item), item
        if item["kind"] == "icd10":
            assert not is_correct("medicine", "The ICD-10 code is Z99.9.", item), item
    # symptoms -> condition accepts every condition that has all the symptoms given
    shared = [x for x in train if x["kind"] == "symptoms_to_condition" and len(x["accepted"]) > 1]
    assert shared and all(set(x["accepted"]) <= set(BIG_TABLE) for x in shared)
    # drug -> indication: Metformin treats both diabetes entries
    metformin = [x for x in train if x["kind"] == "drug_to_indication" and "Metformin" in x["user_text"]]
    assert metformin and set(metformin[0]["accepted"]) == {"Type 2 Diabetes", "Gestational Diabetes"}
    mc = [x for x in test if x["kind"] == "multiple_choice"]
    assert mc and all(len(x["choices"]) == 4 and x["answer"] in x["choices"] for x in mc)


# --- reference matching against hand labels ------------------------------------------------

LABELS = Path(__file__).resolve().parent / "data" / "answer_matching.jsonl"
AGREEMENT = 0.95
"""The reference matcher agrees with the hand labels on at least this share (measured: 91/92)."""


def test_reference_matching_agrees_with_hand_labels():
    rows = [json.loads(line) for line in LABELS.read_text().splitlines()]
    assert len(rows) >= 40 and 0.3 < sum(r["correct"] for r in rows) / len(rows) < 0.7
    agree = [matches(r["response"], r["reference"]) == r["correct"] for r in rows]
    assert sum(agree) / len(rows) >= AGREEMENT, [r for r, a in zip(rows, agree) if not a]
    # exact match alone would miss the paraphrases
    exact = [any(ref.lower() == r["response"].strip().lower() for ref in r["reference"]) for r in rows if r["correct"]]
    assert sum(exact) / len(exact) < 0.1


def test_numeric_references_and_terms_that_hold_numbers():
    from eu.domains.matching import is_numeric, parse_number

    assert is_numeric("180 minutes") and is_numeric("$4") and is_numeric("3/4") and is_numeric("forty-two")
    assert not is_numeric("Type 2 Diabetes") and not is_numeric("E11.9") and not is_numeric("Hemophilia A")
    assert parse_number("one hundred and five") == 105 and parse_number("4 1/4") == parse_number("4.25")
    assert matches("It is 3 hours.", ["180 minutes"]) and not matches("It is 3 kg.", ["180 minutes"])


def _write_fake_reasoning_gym(root):
    folder = root / "reasoning_gym" / "arithmetic" / "gsm_symbolic"
    folder.mkdir(parents=True)
    (root / "reasoning_gym" / "utils.py").write_text("def format_number(x):\n    return str(x)\n")
    body = "from reasoning_gym.utils import format_number\n\n"
    for k in (0, 1):
        body += (
            f"def generate_{k}(rng, difficulty=1.0):\n"
            f"    n = rng.randint(1, 9) + {k}\n"
            "    return {'question': f'What is {n} doubled?', 'answer': format_number(2 * n),\n"
            "            'metadata': {'answer_cot': f'{n} * 2 = {2 * n}\\n#### {2 * n}'}}\n\n"
        )
    (folder / "generators_00_49.py").write_text(body)
    (folder / "generators_50_99.py").write_text("def generate_50(rng, difficulty=1.0):\n    raise ValueError('bad')\n")


def test_word_problem_generators_load_from_the_wheel_files_without_installing(tmp_path, monkeypatch):
    import random
    import sys

    from eu.domains import gsm

    monkeypatch.undo()  # the real loader, not the fast tests' stand-in
    _write_fake_reasoning_gym(tmp_path)
    before = sys.modules.get("reasoning_gym")
    generators = gsm.load_generators(tmp_path)
    assert sorted(generators) == [0, 1, 50]
    assert sys.modules.get("reasoning_gym") is before, "the stand-in package is gone after loading"
    question, working, answer = gsm.problem(generators[1], random.Random(0))
    assert question.startswith("What is") and working.endswith(".") and str(int(answer) // 2) in question
    assert gsm.problem(generators[50], random.Random(0)) is None, "a failing generator gives no item"


@pytest.mark.slow
def test_math_word_problems_from_the_real_wheel():
    """reasoning-gym's 100 generators, fetched and loaded: every item answerable, held out by generator."""
    from eu.domains import gsm

    generators = gsm.load_generators()
    assert sorted(generators) == list(range(100))
    train = math.generate("train", 6000, generators=generators)
    test = math.generate("test", 400, generators=generators)
    words = [x for x in train if x["family"] == math.WORD_PROBLEMS]
    assert len(words) > 300 and len({x["template"] for x in words}) == 80
    for item in train + test:
        assert is_correct("math", item["assistant_text"], item), item
