import json

from eu.data.sources import resolve_source
from eu.domains import domain_items, medicine, prepare
from eu.domains import math as math_domain

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
    table = medicine.load_diseases(source)
    assert table == TABLE
    train = medicine.generate("train", table=table)
    test = medicine.generate("test", table=table)
    assert medicine.generate("train", table=table) == train
    assert not {x["user_text"] for x in train} & {x["user_text"] for x in test}
    icd = [x for x in test if x["kind"] == "icd10" and "Asthma" in x["user_text"]]
    assert icd and all(x["answer"] == "J45.909" for x in icd)
    assert medicine.is_correct("It is coded J45.909 in ICD-10.", icd[0]["accepted"])
    assert not medicine.is_correct("It is coded G43.909.", icd[0]["accepted"])


def test_builtin_sources_are_written_once_as_jsonl(tmp_path):
    path = prepare("math", "test", tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == domain_items("math", "test")
    assert resolve_source("eu:math/test").endswith("math-test.jsonl")
    assert resolve_source("my/file.jsonl") == "my/file.jsonl"


def test_data_prepare_refuses_a_folder_eu_did_not_write_and_reuses_its_own(tmp_path):
    from conftest import run_eu

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
