"""One wording for what differs between two records of settings."""

from eu.settings import NOT_RECORDED, changed, flatten, setting_changes


def _value(record, key):
    top, _, sub = key.partition(".")
    return (record.get(top) or {}).get(sub, NOT_RECORDED) if sub else record.get(top, NOT_RECORDED)


def _naive_changes(then, now):
    """Every dotted path compared by hand, for records nested two levels deep."""
    keys = set()
    for record in (then, now):
        for k, v in record.items():
            keys |= {f"{k}.{kk}" for kk in v} if isinstance(v, dict) else {k}
    return [(k, _value(then, k), _value(now, k)) for k in sorted(keys) if _value(then, k) != _value(now, k)]


def test_changes_match_a_naive_walk_and_read_key_old_new():
    then = {"seed": 42, "retain": {"block_length": 256, "path": "a.jsonl"}, "gone": 1}
    now = {"seed": 7, "retain": {"block_length": 256, "path": "b.jsonl"}, "new": True}
    assert changed(then, now) == _naive_changes(then, now)
    assert setting_changes(then, now) == [
        "gone: 1 -> (not recorded)",
        "new: (not recorded) -> True",
        "retain.path: 'a.jsonl' -> 'b.jsonl'",
        "seed: 42 -> 7",
    ]
    assert setting_changes(then, now, ignore=("gone", "new", "retain")) == ["seed: 42 -> 7"]
    assert setting_changes(then, then) == []


def test_flatten_numbers_list_items():
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": {}}) == {"a.b.0": 1, "a.b.1.c": 2, "d": {}}
