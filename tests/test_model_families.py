"""eu's chunked losses equal naive losses on ``model(...).logits`` for every common model family."""

import pytest
import torch

from eu.errors import EUError
from eu.models.logits import check_logit_path
from eu.objectives.losses import IGNORE_INDEX
from eu.objectives.terms import forget_loss, retain_loss

from naive_losses import naive_forget_loss, naive_retain_loss

SIZES = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
SIZES |= dict(num_key_value_heads=2, max_position_embeddings=64)


def _model(family):
    import transformers as tf

    configs = {
        "llama": lambda: tf.LlamaConfig(**SIZES),
        "qwen2": lambda: tf.Qwen2Config(**SIZES),
        # soft-capping at a small value so that it changes the logits a lot
        "gemma2": lambda: tf.Gemma2Config(**SIZES, head_dim=8, final_logit_softcapping=0.5),
        "granite": lambda: tf.GraniteConfig(**SIZES, logits_scaling=4.0),
        "cohere": lambda: tf.CohereConfig(**SIZES, logit_scale=0.25),
    }
    torch.manual_seed(0)
    return tf.AutoModelForCausalLM.from_config(configs[family]()).float()


def _batch(vocab):
    """One packed row: a 5-token sequence then a 7-token one; the last 3 and 4 positions supervised."""
    torch.manual_seed(1)
    ids = torch.randint(3, vocab, (1, 12))
    targets = torch.full((1, 12), IGNORE_INDEX)
    targets[0, 1:4], targets[0, 8:11] = ids[0, 2:5], ids[0, 9:12]
    sequence = torch.tensor([[0] * 5 + [1] * 7])
    position = torch.tensor([list(range(5)) + list(range(7))])
    norm = dict(num_targets_norm=torch.tensor(6.0), num_sequences_norm=torch.tensor(2.0))
    return dict(input_ids=ids, position_ids=position, targets=targets, sequence_index=sequence, **norm)


def _naive(model, batch, kind):
    """The same loss from the model's own logits, each sequence run on its own."""
    values = []
    for start, stop in ((0, 5), (5, 12)):
        logits = model(input_ids=batch["input_ids"][:, start:stop], use_cache=False).logits
        targets = batch["targets"][:, start:stop]
        if kind == "retain":
            values.append(naive_retain_loss(logits, targets) * int((targets != IGNORE_INDEX).sum()))
        else:
            values.append(naive_forget_loss(logits, targets != IGNORE_INDEX))
    return sum(values) / (6.0 if kind == "retain" else 2.0)


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2", "granite", "cohere"])
@pytest.mark.parametrize("kind", ["retain", "forget"])
def test_chunked_loss_and_gradient_equal_the_models_own_logits(family, kind):
    model = _model(family).eval()
    batch = _batch(model.config.vocab_size)
    ours = (retain_loss if kind == "retain" else forget_loss)(model, batch, chunk_size=4)
    ours_grad = torch.autograd.grad(ours, model.get_input_embeddings().weight)[0]
    naive = _naive(model, batch, kind)
    naive_grad = torch.autograd.grad(naive, model.get_input_embeddings().weight)[0]
    torch.testing.assert_close(ours, naive, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_grad, naive_grad, rtol=1e-4, atol=1e-6)
    check_logit_path(model)


def test_a_final_logit_transform_eu_does_not_know_is_refused():
    model = _model("llama")
    original = type(model).forward

    def scaled(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        out.logits = out.logits * 3.0
        return out

    model.forward = scaled.__get__(model)
    with pytest.raises(EUError, match="final-logit transform"):
        check_logit_path(model)
