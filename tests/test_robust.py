"""Relearning-resistant EU (``model.robust``): SAM's perturbed gradient and the adversarial inner
loop's first-order gradient against naive implementations on tiny models of three families."""

import copy

import pytest
import torch

from eu.errors import EUError
from eu.objectives import NPO, ExclusiveUnlearning
from eu.objectives.losses import IGNORE_INDEX
from eu.objectives.robust import RobustOptions, check_robust_strategy, robust_losses, robust_options
from eu.prompts import ChatRecord

from naive_losses import naive_forget_loss
from objective_helpers import FAMILIES, alone, family_model, packed

RETAIN = [ChatRecord(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.") for i in range(1, 4)]
FORGET = [ChatRecord("Tell me a story.", "Once upon a time a dragon slept."), ChatRecord("Hi?", "Hello there, friend!")]
LAM = 0.4


def _params(model):
    return [p for p in model.parameters() if p.requires_grad]


def _naive_forget(model, tokenizer):
    """Mean over conversations of the mean KL(p || uniform) over response positions, each run alone."""
    terms = []
    for record in FORGET:
        logits, targets = alone(model, tokenizer, record)
        terms.append(naive_forget_loss(logits, targets != IGNORE_INDEX))
    return torch.stack(terms).mean()


def _naive_cross_entropy(model, tokenizer, records, per_sequence):
    """Cross-entropy of response tokens: over all tokens (retain) or a mean of per-conversation means."""
    sums, counts = [], []
    for record in records:
        logits, targets = alone(model, tokenizer, record)
        ce = torch.nn.functional.cross_entropy(logits[0], targets[0], ignore_index=IGNORE_INDEX, reduction="sum")
        sums.append(ce)
        counts.append((targets != IGNORE_INDEX).sum())
    if per_sequence:
        return torch.stack([s / c for s, c in zip(sums, counts, strict=True)]).mean()
    return torch.stack(sums).sum() / sum(counts)


def _moved_copy(model, grads, step):
    """A copy of ``model`` with every trainable weight moved by ``step`` times its gradient."""
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for p, g in zip(_params(moved), grads, strict=True):
            p.add_(step * g)
    return moved


def naive_sam(model, tokenizer, rho):
    """λ·∇F(θ + ρ·g/‖g‖) + (1 − λ)·∇CE_retain(θ), g = ∇F(θ), by hand on a copy."""
    params = _params(model)
    g = torch.autograd.grad(_naive_forget(model, tokenizer), params)
    norm = torch.sqrt(sum((x * x).sum() for x in g))
    moved = _moved_copy(model, g, rho / norm)
    forget = _naive_forget(moved, tokenizer)
    g_forget = torch.autograd.grad(forget, _params(moved))
    g_retain = torch.autograd.grad(_naive_cross_entropy(model, tokenizer, RETAIN, per_sequence=False), params)
    return forget, [LAM * a + (1 - LAM) * b for a, b in zip(g_forget, g_retain, strict=True)]


def naive_adversarial(model, tokenizer, steps, lr, inner_data):
    """λ·∇F(θ_k) + (1 − λ)·∇CE_retain(θ), θ_k after k SGD steps on a copy (first-order)."""
    adapted = copy.deepcopy(model)
    for _ in range(steps):
        if inner_data == "retain":
            inner = _naive_cross_entropy(adapted, tokenizer, RETAIN, per_sequence=False)
        else:
            inner = _naive_cross_entropy(adapted, tokenizer, FORGET, per_sequence=True)
        g = torch.autograd.grad(inner, _params(adapted))
        adapted = _moved_copy(adapted, g, -lr)
    forget = _naive_forget(adapted, tokenizer)
    g_forget = torch.autograd.grad(forget, _params(adapted))
    retain = _naive_cross_entropy(model, tokenizer, RETAIN, per_sequence=False)
    g_retain = torch.autograd.grad(retain, _params(model))
    return forget, [LAM * a + (1 - LAM) * b for a, b in zip(g_forget, g_retain, strict=True)]


def _batch(tokenizer):
    return {"retain": packed(tokenizer, RETAIN), "forget": packed(tokenizer, FORGET)}


def _ours(model, tokenizer, options):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = robust_losses(ExclusiveUnlearning(LAM), model, _batch(tokenizer), options)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the weights are restored bit for bit"
    return losses, torch.autograd.grad(losses["loss/total"], _params(model))


def _plain(model, tokenizer):
    total = ExclusiveUnlearning(LAM)(model, _batch(tokenizer))["loss/total"]
    return torch.autograd.grad(total, _params(model))


def _assert_close_grads(ours, naive, model):
    # float64 models, but eu's retain loss weighs tokens in float32 (~1e-8 off) and Gemma-2's RMSNorm
    # computes in float32; a sign flip or a missing restore moves gradients by far more (see _far)
    loose = model.config.model_type == "gemma2"
    for a, b in zip(ours, naive, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5 if loose else 1e-6, atol=1e-7)


def _far(a, b):
    """How far apart two gradients are, relative to the larger."""
    diff = torch.sqrt(sum(((x - y) ** 2).sum() for x, y in zip(a, b, strict=True)))
    return float(diff / torch.sqrt(sum((x * x).sum() for x in b)))


@pytest.mark.parametrize("family", FAMILIES)
def test_sam_gradient_matches_the_hand_computed_perturbed_gradient(family, tiny_tokenizer):
    model = family_model(family, len(tiny_tokenizer))
    losses, ours = _ours(model, tiny_tokenizer, RobustOptions("sam", rho=0.5))
    value, naive = naive_sam(model, tiny_tokenizer, rho=0.5)
    _assert_close_grads(ours, naive, model)
    torch.testing.assert_close(losses["loss/forget_robust"], value.detach(), rtol=1e-7, atol=1e-9)
    want = LAM * losses["loss/forget_robust"] + (1 - LAM) * losses["loss/retain"]
    torch.testing.assert_close(losses["loss/total"].detach(), want, rtol=1e-12, atol=1e-12)
    assert _far(ours, _plain(model, tiny_tokenizer)) > 1e-4, "the perturbation really moves the gradient"
    # the opposite perturbation (a sign flip) gives a gradient the check would reject
    _, flipped = naive_sam(model, tiny_tokenizer, rho=-0.5)
    assert _far(flipped, naive) > 1e-4


@pytest.mark.parametrize(
    ("family", "steps", "inner_data"), [*((f, 1, "retain") for f in FAMILIES), ("llama", 2, "forget")]
)
def test_adversarial_gradient_matches_the_hand_computed_first_order_gradient(family, steps, inner_data, tiny_tokenizer):
    model = family_model(family, len(tiny_tokenizer))
    options = RobustOptions("adversarial", steps=steps, lr=0.5, inner_data=inner_data)
    losses, ours = _ours(model, tiny_tokenizer, options)
    value, naive = naive_adversarial(model, tiny_tokenizer, steps, 0.5, inner_data)
    _assert_close_grads(ours, naive, model)
    torch.testing.assert_close(losses["loss/forget_robust"], value.detach(), rtol=1e-7, atol=1e-9)
    assert _far(ours, _plain(model, tiny_tokenizer)) > 1e-4, "the inner steps really move the gradient"
    _, other = naive_adversarial(model, tiny_tokenizer, steps, -0.5, inner_data)  # ascent instead of descent
    assert _far(other, naive) > 1e-4


def test_robust_gradients_reduce_to_the_plain_one_without_a_move(tiny_tokenizer):
    model = family_model("llama", len(tiny_tokenizer))
    plain = _plain(model, tiny_tokenizer)
    _, sam = _ours(model, tiny_tokenizer, RobustOptions("sam", rho=1e-30))
    _assert_close_grads(sam, plain, model)
    _, adversarial = _ours(model, tiny_tokenizer, RobustOptions("adversarial", steps=1, lr=1e-30))
    _assert_close_grads(adversarial, plain, model)


def test_module_without_robust_keeps_todays_gradient_and_with_it_uses_the_robust_one(tiny_path):
    from test_baselines import _step_batch

    from eu.module import UnlearningModule

    batch = _step_batch("tiny-llama")
    plain = UnlearningModule("tiny-llama")
    plain.configure_model()
    assert plain.robust is None
    ours = torch.autograd.grad(plain.step_losses(batch)["loss/total"], _params(plain.model))
    today = torch.autograd.grad(plain.objective(plain.model, batch)["loss/total"], _params(plain.model))
    for a, b in zip(ours, today, strict=True):
        assert torch.equal(a, b)

    sam = UnlearningModule("tiny-llama", robust="sam", robust_rho=0.05)
    sam.configure_model()
    losses = sam.step_losses(batch)
    assert {"loss/total", "loss/retain", "loss/forget", "loss/forget_robust"} <= losses.keys()
    grads = torch.autograd.grad(losses["loss/total"], _params(sam.model))
    direct = robust_losses(sam.objective, sam.model, batch, RobustOptions("sam", rho=0.05))["loss/total"]
    for a, b in zip(grads, torch.autograd.grad(direct, _params(sam.model)), strict=True):
        torch.testing.assert_close(a, b)
    assert _far(grads, ours) > 1e-6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "sharp"}, "model.robust must be one of sam, adversarial"),
        ({"method": "sam", "rho": 0.0}, "model.robust_rho must be > 0"),
        ({"method": "adversarial", "steps": 0}, "model.robust_steps must be at least 1"),
        ({"method": "adversarial", "lr": -1.0}, "model.robust_lr must be > 0"),
        ({"method": "adversarial", "inner_data": "harmful"}, "model.robust_data must be retain or forget"),
        ({"method": "sam", "objective": NPO()}, "needs an objective with a λ-weighted forget term"),
    ],
)
def test_bad_robust_options_name_the_option(kwargs, message):
    args = {"method": None, "rho": 0.01, "steps": 1, "lr": 1e-3, "inner_data": "retain", "objective": None}
    args |= {"objective": ExclusiveUnlearning()} | kwargs
    with pytest.raises(EUError, match=message):
        robust_options(**args)


def test_sharded_strategies_are_refused_and_ddp_is_not():
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

    options = RobustOptions("sam")
    check_robust_strategy(DDPStrategy(), options)
    check_robust_strategy(FSDPStrategy(), None)
    with pytest.raises(EUError, match="model.robust sam cannot run under trainer.strategy FSDPStrategy"):
        check_robust_strategy(FSDPStrategy(), options)


def test_fit_with_robust_accumulates_and_resumes(workdir):
    from utils import ROOT, run_eu

    tiny = str(ROOT / "configs" / "tiny.yaml")
    args = ["fit", "-c", tiny, "--model.robust=adversarial", "--model.robust_steps=2", "--model.robust_lr=1e-3"]
    args += ["--trainer.accumulate_grad_batches=2", "--trainer.val_check_interval=100"]
    args += ["--trainer.callbacks.init_args.every_n_train_steps=1", "--trainer.enable_progress_bar=false"]
    assert run_eu(*args, "--trainer.max_steps=2") == 0
    last = workdir / "runs/tiny/checkpoints/last.ckpt"
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 2
    assert state["hyper_parameters"]["robust"] == "adversarial" and state["hyper_parameters"]["robust_steps"] == 2
    assert run_eu(*args, "--trainer.max_steps=3", f"--ckpt_path={last}") == 0
    assert torch.load(last, weights_only=True)["global_step"] == 3


def test_the_retain_only_baseline_beside_a_robust_run_trains_plainly(workdir, caplog):
    from test_retain_only_comparison import baseline_overlay

    from utils import ROOT, run_eu

    caplog.set_level("INFO")
    extra = baseline_overlay(workdir)
    args = ["--trainer.max_steps=1", "--trainer.val_check_interval=100", "--trainer.enable_progress_bar=false"]
    assert run_eu("fit", "-c", str(ROOT / "configs" / "tiny.yaml"), "-c", str(extra), "--model.robust=sam", *args) == 0
    assert "against RetainOnlyFT trained the same way (1 steps" in caplog.text


@pytest.mark.parametrize("method", ["sam", "adversarial"])
def test_ddp_runs_robust_steps_on_two_processes(workdir, method):
    from test_distributed import _fit

    per_device = ["--data.retain.examples_per_step=2", "--data.forget.examples_per_step=2"]
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", f"--model.robust={method}"]
    logged = _fit(workdir, "ddp", *ddp, *per_device)
    values = [v for _, v in logged["loss/forget_robust"]]
    assert len(values) == 5 and all(map(torch.isfinite, torch.tensor(values)))
