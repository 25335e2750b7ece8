import random

import pytest
import torch

from eu.data.packing import first_fit_decreasing, pack_rows
from eu.data.records import ChatRecord
from eu.data.tokenized import tokenize_records
from eu.objectives.losses import IGNORE_INDEX
from eu.objectives.terms import forget_loss, retain_loss

from naive_losses import naive_forget_loss, naive_retain_loss


def test_first_fit_decreasing_respects_capacity_and_keeps_every_item():
    rng = random.Random(0)
    for _ in range(50):
        lengths = [rng.randint(1, 100) for _ in range(rng.randint(1, 30))]
        bins = first_fit_decreasing(lengths, 100)
        assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
        assert all(sum(lengths[i] for i in b) <= 100 for b in bins)
        assert len(bins) <= len(lengths)
    with pytest.raises(ValueError):
        first_fit_decreasing([101], 100)


def _records(n, seed=0):
    rng = random.Random(seed)
    words = "alpha beta gamma delta river stone seven".split()
    return [
        ChatRecord(
            user=" ".join(rng.choices(words, k=rng.randint(1, 6))),
            assistant=" ".join(rng.choices(words, k=rng.randint(1, 12))),
        )
        for _ in range(n)
    ]


def test_packed_rows_restart_positions_and_pad_as_own_segment(tiny_tokenizer):
    ex = tokenize_records(tiny_tokenizer, _records(3), 512)
    lengths = ex.lengths.tolist()
    width = sum(lengths) + 7
    batch = pack_rows(ex, [[0, 1, 2]], width, pad_id=0)
    pos = batch["position_ids"][0].tolist()
    starts = [0, lengths[0], lengths[0] + lengths[1], sum(lengths)]
    for s, n in zip(starts, lengths + [7]):
        assert pos[s : s + n] == list(range(n))
    assert (batch["sequence_index"][0, sum(lengths) :] == -1).all()
    assert (batch["targets"][0, sum(lengths) :] == IGNORE_INDEX).all()


def test_packed_loss_equals_one_example_at_a_time(tiny_model, tiny_tokenizer):
    ex = tokenize_records(tiny_tokenizer, _records(5, seed=3), 512)
    lengths = ex.lengths.tolist()
    rows = first_fit_decreasing(lengths, max(lengths) * 2)
    assert any(len(r) > 1 for r in rows), "the test needs rows holding several examples"
    batch = pack_rows(ex, rows, max(lengths) * 2, pad_id=0)
    mask = batch["targets"] != IGNORE_INDEX
    n_seq = len(torch.unique(batch["sequence_index"][mask]))
    batch["num_sequences_norm"] = torch.tensor(float(n_seq))
    batch["num_targets_norm"] = torch.tensor(float(mask.sum()))

    with torch.no_grad():
        packed_forget = forget_loss(tiny_model, batch, chunk_size=16)
        packed_retain = retain_loss(tiny_model, batch, chunk_size=16)

        per_forget, ce_sum, n_tokens = [], 0.0, 0
        for i in range(len(ex)):
            one = pack_rows(ex, [[i]], lengths[i], pad_id=0)
            logits = tiny_model(input_ids=one["input_ids"]).logits
            m = one["targets"] != IGNORE_INDEX
            per_forget.append(naive_forget_loss(logits, m))
            k = int(m.sum())
            ce_sum += float(naive_retain_loss(logits, one["targets"])) * k
            n_tokens += k
    torch.testing.assert_close(packed_forget, torch.stack(per_forget).mean(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(packed_retain.item(), ce_sum / n_tokens, rtol=1e-5, atol=1e-7)
