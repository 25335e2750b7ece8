import math

import pytest
import torch

from eu.objectives.losses import (
    IGNORE_INDEX,
    chunked_weighted_token_loss,
    forget_token_weights,
    kl_to_uniform_from_logits,
)

from naive_losses import naive_forget_loss, naive_retain_loss

V, H = 257, 16


def _setup(batch=3, length=11, seed=0):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, H, generator=gen, dtype=torch.float64)
    head = torch.nn.Linear(H, V, bias=False).double()
    with torch.no_grad():
        head.weight.copy_(torch.randn(V, H, generator=gen, dtype=torch.float64) * 0.7)
    return hidden, head


def _chunked_forget(hidden, head, mask, chunk):
    seq = torch.arange(hidden.shape[0]).unsqueeze(1).expand(mask.shape)[mask]
    weights = forget_token_weights(seq).double()
    dummy = torch.zeros(int(mask.sum()), dtype=torch.long)
    return chunked_weighted_token_loss(hidden[mask], head, dummy, weights, "kl_uniform", chunk)


def _grads(loss_fn, hidden, head):
    hidden = hidden.clone().requires_grad_(True)
    head.zero_grad()
    loss = loss_fn(hidden, head)
    loss.backward()
    w_grad = head.weight.grad if head.weight.grad is not None else torch.zeros_like(head.weight)
    return loss.detach(), hidden.grad.clone(), w_grad.clone()


def test_kl_to_uniform_is_log_v_minus_entropy():
    logits = torch.randn(5, V, dtype=torch.float64)
    p = logits.softmax(-1)
    expected = (p * (p.log() - math.log(1.0 / V))).sum(-1)
    torch.testing.assert_close(kl_to_uniform_from_logits(logits).double(), expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(kl_to_uniform_from_logits(torch.zeros(2, V)), torch.zeros(2), atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 4, 7, 1000])
def test_chunked_forget_matches_naive_value_and_gradient(chunk):
    hidden, head = _setup()
    mask = torch.zeros(3, 11, dtype=torch.bool)
    mask[0, 2:9] = True
    mask[1, 5:6] = True  # a single supervised position
    mask[2, 0:11] = True

    naive = _grads(lambda h, m: naive_forget_loss(m(h), mask), hidden, head)
    chunked = _grads(lambda h, m: _chunked_forget(h, m, mask, chunk), hidden, head)
    for a, b in zip(naive, chunked):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-9)


def test_empty_sequence_is_left_out_of_the_mean():
    hidden, head = _setup()
    mask = torch.zeros(3, 11, dtype=torch.bool)
    mask[0, 3:7] = True
    mask[2, 1:4] = True  # sequence 1 has no response position
    naive = _grads(lambda h, m: naive_forget_loss(m(h), mask), hidden, head)
    chunked = _grads(lambda h, m: _chunked_forget(h, m, mask, 2), hidden, head)
    for a, b in zip(naive, chunked):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-9)
    # the mean is over the two non-empty sequences, not three
    only = [naive_forget_loss(head(hidden[i : i + 1]), mask[i : i + 1]) for i in (0, 2)]
    torch.testing.assert_close(naive[0], (only[0] + only[1]) / 2)


def test_all_positions_masked_gives_zero_loss_and_gradient():
    hidden, head = _setup()
    mask = torch.zeros(3, 11, dtype=torch.bool)
    loss, g_hidden, _ = _grads(lambda h, m: _chunked_forget(h, m, mask, 4) + 0 * h.sum(), hidden, head)
    assert loss.item() == 0.0
    assert torch.count_nonzero(g_hidden) == 0


@pytest.mark.parametrize("chunk", [3, 64])
def test_chunked_cross_entropy_matches_naive(chunk):
    hidden, head = _setup(seed=1)
    targets = torch.randint(0, V, (3, 11))
    targets[0, :4] = IGNORE_INDEX
    targets[2, 7:] = IGNORE_INDEX
    mask = targets != IGNORE_INDEX

    def chunked(h, m):
        w = torch.full((int(mask.sum()),), 1.0 / int(mask.sum()), dtype=torch.float64)
        return chunked_weighted_token_loss(h[mask], m, targets[mask], w, "cross_entropy", chunk)

    naive = _grads(lambda h, m: naive_retain_loss(m(h), targets), hidden, head)
    ours = _grads(chunked, hidden, head)
    for a, b in zip(naive, ours):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-9)


def test_forget_token_weights_average_per_sequence():
    seq = torch.tensor([0, 0, 0, 3, 5, 5])
    w = forget_token_weights(seq)
    torch.testing.assert_close(w, torch.tensor([1 / 9, 1 / 9, 1 / 9, 1 / 3, 1 / 6, 1 / 6]))
    torch.testing.assert_close(forget_token_weights(seq, normaliser=6.0).sum(), torch.tensor(0.5))


def test_unknown_kind_and_bad_chunk_are_rejected():
    hidden, head = _setup()
    with pytest.raises(ValueError, match="kind"):
        chunked_weighted_token_loss(hidden[0], head, torch.zeros(11, dtype=torch.long), torch.ones(11), "mse")
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_weighted_token_loss(hidden[0], head, torch.zeros(11, dtype=torch.long), torch.ones(11), "kl_uniform", 0)
