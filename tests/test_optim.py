"""MasterWeightAdamW: float32 master weights for bf16 parameters, equal to float32 AdamW."""

import logging
import warnings

import pytest
import torch

from eu.optim import MasterWeightAdamW, loses_updates, use_fused_kernel

from utils import ROOT, run_eu

SETTINGS = {"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}


def _gradients(steps: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=gen) * 1e-3 for _ in range(steps)]


def test_float32_parameters_follow_torch_adamw_exactly():
    start = torch.randn(7, 5, generator=torch.Generator().manual_seed(1))
    ours, theirs = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt_ours, opt_theirs = MasterWeightAdamW([ours], **SETTINGS), torch.optim.AdamW([theirs], **SETTINGS)
    for grad in _gradients(20, start.shape):
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert "master" not in opt_ours.state[ours]


def test_bf16_parameters_keep_float32_masters_equal_to_float32_adamw():
    start = torch.randn(64, 32, generator=torch.Generator().manual_seed(2))
    bf16 = start.to(torch.bfloat16).requires_grad_()
    fp32 = bf16.detach().float().requires_grad_()  # the same starting values
    plain = start.to(torch.bfloat16).requires_grad_()
    opt, ref, naive = (
        MasterWeightAdamW([bf16], **{**SETTINGS, "lr": 1e-5}),
        torch.optim.AdamW([fp32], **{**SETTINGS, "lr": 1e-5}),
        torch.optim.AdamW([plain], **{**SETTINGS, "lr": 1e-5}),
    )
    for grad in _gradients(30, start.shape):
        low = grad.to(torch.bfloat16)
        bf16.grad, fp32.grad, plain.grad = low.clone(), low.float(), low.clone()
        for o in (opt, ref, naive):
            o.step()
    master = opt.state[bf16]["master"]
    assert master.dtype == torch.float32 and bf16.dtype == torch.bfloat16
    torch.testing.assert_close(master, fp32.detach(), rtol=1e-6, atol=1e-7)
    assert torch.equal(bf16.detach(), master.to(torch.bfloat16))
    # the point of it: 30 updates of ~1e-5 move float32 weights, but bf16 AdamW rounds most away
    moved = (fp32.detach() - start.to(torch.bfloat16).float()).abs()
    lost = (plain.detach().float() - start.to(torch.bfloat16).float()).abs()
    assert moved.mean() > 2e-5 and lost.mean() < moved.mean() / 2


def test_state_dict_round_trip_keeps_masters_in_float32():
    p = torch.randn(16, 8).to(torch.bfloat16).requires_grad_()
    opt = MasterWeightAdamW([p], lr=1e-4)
    p.grad = torch.randn_like(p)
    opt.step()
    saved = opt.state_dict()
    q = p.detach().clone().requires_grad_()
    fresh = MasterWeightAdamW([q], lr=1e-4)
    fresh.load_state_dict(saved)
    for name in ("master", "exp_avg", "exp_avg_sq"):
        assert fresh.state[q][name].dtype == torch.float32
        assert torch.equal(fresh.state[q][name], opt.state[p][name])
    assert float(fresh.state[q]["step"]) == 1


def test_loses_updates_flags_plain_adamw_on_bf16_only():
    bf16 = torch.zeros(3, dtype=torch.bfloat16, requires_grad=True)
    fp32 = torch.zeros(3, requires_grad=True)
    assert loses_updates(torch.optim.AdamW([bf16]))
    assert not loses_updates(torch.optim.AdamW([fp32]))
    assert not loses_updates(MasterWeightAdamW([bf16]))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="lr=-1"):
        MasterWeightAdamW([torch.zeros(1, requires_grad=True)], lr=-1)


@pytest.mark.parametrize("optimizer", ["eu.optim.MasterWeightAdamW", "torch.optim.AdamW"])
def test_bf16_true_fit_trains_bf16_weights(workdir, caplog, optimizer):
    caplog.set_level(logging.WARNING)
    args = [
        "--trainer.precision=bf16-true",
        "--trainer.max_steps=2",
        "--trainer.val_check_interval=100",
        "--trainer.enable_progress_bar=false",
        f"--model.optimizer={optimizer}",
        "--model.optimizer.lr=1e-3",
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_eu("fit", "-c", str(ROOT / "configs" / "tiny.yaml"), *args) == 0
    warned = any("round away" in str(w.message) for w in caught)
    assert warned == (optimizer == "torch.optim.AdamW")
    ckpt = torch.load(next((workdir / "runs").rglob("last.ckpt")), weights_only=True)
    weights = [v for k, v in ckpt["state_dict"].items() if k.startswith("model.") and v.is_floating_point()]
    assert weights and all(w.dtype == torch.bfloat16 for w in weights)
    states = ckpt["optimizer_states"][0]["state"].values()
    if optimizer == "eu.optim.MasterWeightAdamW":
        assert all(s["master"].dtype == torch.float32 for s in states)


def test_fused_kernel_switch_follows_adamw():
    torch.manual_seed(0)
    start = torch.randn(64, 32)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt_ours, opt_theirs = torch.optim.AdamW([ours], **SETTINGS), torch.optim.AdamW([theirs], **SETTINGS)
    assert use_fused_kernel(opt_ours) and opt_ours.param_groups[0]["fused"]
    assert not getattr(opt_ours, "_step_supports_amp_scaling", False)  # Lightning clips its gradients
    with torch.profiler.profile() as prof:
        for _ in range(5):
            grad = torch.randn_like(start)
            ours.grad, theirs.grad = grad.clone(), grad.clone()
            opt_ours.step(), opt_theirs.step()
    torch.testing.assert_close(ours, theirs)
    assert any("fused_adamw" in e.key for e in prof.key_averages())


@pytest.mark.parametrize(
    "settings, scaler",
    [({"foreach": True}, False), ({"fused": False}, False), ({}, True), ({"capturable": True}, False)],
    ids=["foreach named", "fused named", "grad scaler", "capturable"],
)
def test_fused_kernel_switch_leaves_a_chosen_implementation(settings, scaler):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.randn(4))], **settings)
    assert not use_fused_kernel(opt, grad_scaler=scaler)
    assert opt.param_groups[0]["fused"] in (None, False)


def test_fused_kernel_switch_leaves_other_optimizers_and_stepped_ones():
    p = torch.nn.Parameter(torch.randn(4))
    assert not use_fused_kernel(torch.optim.SGD([p], lr=0.1))
    assert not use_fused_kernel(MasterWeightAdamW([p]))
    stepped = torch.optim.AdamW([p])
    p.grad = torch.ones(4)
    stepped.step()
    assert not use_fused_kernel(stepped)


def test_fit_under_bf16_mixed_clips_with_the_fused_kernel(workdir):
    """eu's default precision here and its default clipping (1.0) with torch's fused AdamW kernel."""
    args = [
        "--trainer.precision=bf16-mixed",
        "--trainer.max_steps=2",
        "--trainer.val_check_interval=100",
        "--trainer.enable_progress_bar=false",
    ]
    assert run_eu("fit", "-c", str(ROOT / "configs" / "tiny.yaml"), *args) == 0
    ckpt = torch.load(next((workdir / "runs").rglob("last.ckpt")), weights_only=True)
    assert ckpt["optimizer_states"][0]["param_groups"][0]["fused"] is True
