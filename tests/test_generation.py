"""Helpers of batched generation shared by every caller."""

from types import SimpleNamespace

from eu.generation import pad_id


def test_pad_id_falls_back_to_eos_then_zero():
    assert pad_id(SimpleNamespace(pad_token_id=3, eos_token_id=7)) == 3
    assert pad_id(SimpleNamespace(pad_token_id=0, eos_token_id=7)) == 0, "0 is a pad id, not a missing one"
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=7)) == 7
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=None)) == 0
