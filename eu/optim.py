"""AdamW that keeps float32 master weights for low-precision (bf16/fp16) parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.adamw import adamw

LOW_PRECISION = (torch.bfloat16, torch.float16)


class MasterWeightAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, as :class:`torch.optim.AdamW`) over float32 master copies.

    A bfloat16 weight has 8 significant bits: an update smaller than 1/256 of the weight rounds
    away, and at fine-tuning learning rates most updates are that small. This optimizer keeps a
    float32 copy of every low-precision parameter (and float32 moments) in its state, applies
    the update to the copy and writes the rounded copy back, so training in ``bf16-true``
    computes in bfloat16 but accumulates updates like float32 training. Float32 parameters are
    updated in place, exactly as AdamW would. Given the same gradients, the master weights equal
    :class:`torch.optim.AdamW`'s float32 weights.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: coefficients of the running averages of the gradient and its square.
        eps: added to the denominator.
        weight_decay: decoupled weight decay (AdamW's default 0.01).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid MasterWeightAdamW settings: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    def _state(self, p: torch.Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            if p.dtype in LOW_PRECISION:
                state["master"] = p.detach().float()
            state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # noqa: D102 - torch.optim.Optimizer.step
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state(p) for p in params]
            weights = [s.get("master", p) for s, p in zip(states, params, strict=True)]
            beta1, beta2 = group["betas"]
            # torch's own AdamW kernel (fused: one pass over each tensor) on the float32 weights
            adamw(
                weights,
                [p.grad.float() for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                [s["step"] for s in states],
                fused=all(w.device.type in ("cpu", "cuda") for w in weights),
                amsgrad=False,
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
            )
            for p, w in zip(params, weights, strict=True):
                if w is not p:
                    p.copy_(w)
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state; master weights and moments stay float32 (torch would cast them to the parameter's dtype)."""
        saved = {k: dict(v) for k, v in state_dict["state"].items()}
        super().load_state_dict(state_dict)
        params = [p for group in self.param_groups for p in group["params"]]
        for key, values in saved.items():
            p = params[int(key)]
            for name, value in values.items():
                if torch.is_tensor(value) and value.is_floating_point():
                    self.state[p][name] = value.to(device=p.device, dtype=torch.float32)


def loses_updates(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` updates low-precision parameters in their own precision (no master weights)."""
    if isinstance(optimizer, MasterWeightAdamW):
        return False
    return any(p.requires_grad and p.dtype in LOW_PRECISION for g in optimizer.param_groups for p in g["params"])


FUSABLE = (torch.optim.Adam, torch.optim.AdamW)


def use_fused_kernel(optimizer: torch.optim.Optimizer, grad_scaler: bool = False) -> bool:
    """Switch a torch Adam or AdamW left to pick its own implementation to torch's fused kernel.

    The fused kernel makes one pass over each parameter instead of the ``foreach`` path's several
    (``benchmarks/train_step.py`` measures the difference). Nothing is switched when
    the optimizer names ``fused`` or ``foreach`` itself, is differentiable or capturable, has already
    stepped, holds a parameter torch's fused kernel does not support (device, dtype, a sharded
    tensor), or when a gradient scaler (fp16 mixed precision) unscales gradients before clipping.
    Returns whether it switched.
    """
    if type(optimizer) not in FUSABLE or grad_scaler or optimizer.state:
        return False
    groups = optimizer.param_groups
    chosen = ("fused", "foreach")
    if any(g.get(k) is not None for g in groups for k in chosen) or any(
        g.get("differentiable") or g.get("capturable") for g in groups
    ):
        return False
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = _get_fused_kernels_supported_devices()
    params = [p for g in groups for p in g["params"]]
    if not params or any(
        type(p.data) is not torch.Tensor or p.device.type not in devices or not p.is_floating_point() for p in params
    ):
        return False
    # set on the groups, not passed to the constructor: the constructor would also mark the optimizer
    # as one that unscales gradients itself (for a GradScaler), and Lightning refuses to clip those
    for group in groups:
        group["fused"] = True
    return True
