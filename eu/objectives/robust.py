"""Relearning-resistant forget terms: the forget gradient taken at perturbed or adapted weights.

Plain EU descends the forget term at the current weights θ. A few fine-tuning steps later the
weights sit somewhere else, where the forget term may be low again (relearning). Two options take
the forget gradient at such a nearby point instead; the retain term keeps its gradient at θ.

- ``sam`` (sharpness-aware minimisation on the forget term; Fan et al., ICML 2025): g = ∇F(θ),
  ε = ρ·g/‖g‖ (one norm over all trainable weights), gradient ∇F(θ + ε).
- ``adversarial`` (first-order meta-learning against simulated fine-tuning, as in TAR; Tamirisa
  et al. 2024): θ' = θ after k SGD steps of learning rate η on the cross-entropy of a relearning
  batch (the step's retain batch, or the forget batch's own responses), gradient ∇F(θ'), used
  first-order (the dependence of θ' on θ is dropped, as in first-order MAML).

In both, the weights are restored exactly (from a copy) before the retain term runs, and the
forget gradient enters the returned loss as the linear term ``λ·⟨θ, stop_grad(∇F)⟩``, so the
module's ordinary backward, gradient accumulation, clipping and DDP all-reduce see it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from eu.errors import EUError
from eu.objectives.base import ForgetWeighted, Objective
from eu.objectives.terms import forget_cross_entropy, retain_loss

METHODS = ("sam", "adversarial")
INNER_DATA = ("retain", "forget")


@dataclass(frozen=True)
class RobustOptions:
    """How the forget gradient is made robust to relearning (the module's ``robust_*`` options)."""

    method: str
    """``sam`` or ``adversarial``."""
    rho: float = 0.01
    """SAM's perturbation radius ρ (an L2 norm over all trainable weights)."""
    steps: int = 1
    """Simulated fine-tuning steps k of ``adversarial``."""
    lr: float = 1e-3
    """Learning rate η of the simulated SGD steps."""
    inner_data: str = "retain"
    """What ``adversarial`` fine-tunes on: the step's ``retain`` batch or the ``forget`` batch's responses."""


def robust_options(
    method: str | None, rho: float, steps: int, lr: float, inner_data: str, objective: Objective
) -> RobustOptions | None:
    """Checked options, or ``None`` when ``method`` is unset; errors name the module option to fix."""
    if method is None:
        return None
    if method not in METHODS:
        raise EUError(f"model.robust must be one of {', '.join(METHODS)} or null (plain EU), got {method!r}")
    if not isinstance(objective, ForgetWeighted):
        raise EUError(
            f"model.robust needs an objective with a λ-weighted forget term (e.g. eu.objectives.ExclusiveUnlearning), "
            f"not {type(objective).__name__}: drop model.robust or change model.objective"
        )
    if method == "sam" and not rho > 0:
        raise EUError(f"model.robust_rho must be > 0 (e.g. 0.01), got {rho}")
    if method == "adversarial":
        if steps < 1:
            raise EUError(f"model.robust_steps must be at least 1, got {steps}")
        if not lr > 0:
            raise EUError(f"model.robust_lr must be > 0 (e.g. 1e-3), got {lr}")
        if inner_data not in INNER_DATA:
            raise EUError(f"model.robust_data must be retain or forget, got {inner_data!r}")
    return RobustOptions(method, rho, steps, lr, inner_data)


def check_robust_strategy(strategy: Any, options: RobustOptions | None) -> None:
    """Refuse a strategy whose weights a rank cannot move and restore on its own.

    One device and DDP hold every weight whole on every rank (each rank moves its own copy, from
    its own batch, as distributed SAM does). FSDP and DeepSpeed shard the weights and hook their
    gradient communication into backward, which the extra gradients here would trigger out of turn.
    """
    if options is None or strategy is None:
        return
    names = [cls.__name__ for cls in type(strategy).__mro__]
    if any("FSDP" in n or "DeepSpeed" in n for n in names):
        raise EUError(
            f"model.robust {options.method} cannot run under trainer.strategy {type(strategy).__name__} yet (it "
            "moves and restores whole weights on each rank): use one device or configs/strategy/ddp.yaml, "
            "or drop model.robust"
        )


def trainable(model: Any) -> list[torch.nn.Parameter]:
    """The weights the optimizer updates."""
    return [p for p in model.parameters() if p.requires_grad]


def gradient(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    """``∂loss/∂p`` for every ``p`` (zeros where ``loss`` does not depend on it), without touching ``.grad``."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def at_moved_weights(
    params: list[torch.nn.Parameter], move: Callable[[], None], loss: Callable[[], torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``move()`` (which changes ``params`` in place), then return ``loss()`` and its gradient;
    the weights are restored bit for bit from a copy afterwards, also when something fails."""
    saved = [p.detach().clone() for p in params]
    try:
        move()
        value = loss()
        return value.detach(), gradient(value, params)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)


def sam_forget_gradient(
    objective: ForgetWeighted, model: Any, forget: dict[str, torch.Tensor], rho: float
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]]:
    """F(θ + ε), ∇F(θ + ε) with ε = ρ·∇F(θ)/‖∇F(θ)‖, and the entries the forget term logs at θ.

    Cost: two forward and two backward passes of the forget batch.
    """
    params = trainable(model)
    value, logged = objective.forget_term(model, forget)
    grads = gradient(value, params)
    # one L2 norm over all weights; 16-bit gradients are summed in float32
    norms = [torch.linalg.vector_norm(g, dtype=torch.promote_types(g.dtype, torch.float32)) for g in grads]
    norm = torch.linalg.vector_norm(torch.stack(norms))
    scale = rho / (norm + 1e-12)

    def perturb() -> None:
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.add_(g * scale.to(g.dtype))

    perturbed, robust = at_moved_weights(params, perturb, lambda: objective.forget_term(model, forget)[0])
    return perturbed, robust, logged


def adversarial_forget_gradient(
    objective: ForgetWeighted, model: Any, batch: dict[str, dict[str, torch.Tensor]], options: RobustOptions
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]]:
    """F(θ') and ∇F(θ') at θ' = θ after ``options.steps`` SGD steps on the relearning batch (nothing more to log).

    Cost: k forward and backward passes of the relearning batch, one of the forget batch.
    """
    params = trainable(model)
    forget = objective.forget_stream(batch)

    def relearn_loss() -> torch.Tensor:
        if options.inner_data == "retain":
            return retain_loss(model, batch["retain"], objective.chunk_size)
        return forget_cross_entropy(model, forget, objective.chunk_size)

    def adapt() -> None:
        for _ in range(options.steps):
            grads = gradient(relearn_loss(), params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(options.lr * g)

    value, grads = at_moved_weights(params, adapt, lambda: objective.forget_term(model, forget)[0])
    return value, grads, {}


def linear_term(params: list[torch.nn.Parameter], grads: list[torch.Tensor], value: torch.Tensor) -> torch.Tensor:
    """A scalar equal to ``value`` whose gradient with respect to each ``p`` is its entry of ``grads``."""
    inner = sum((p * g.detach().to(p.dtype)).sum() for p, g in zip(params, grads, strict=True))
    return value.detach() + (inner - inner.detach())  # exactly value: the bracket is 0


def robust_losses(
    objective: ForgetWeighted, model: Any, batch: dict[str, dict[str, torch.Tensor]], options: RobustOptions
) -> dict[str, torch.Tensor]:
    """The objective's losses with the forget gradient of ``options``: ``loss/total`` is
    ``λ·F(moved θ) + (1 − λ)·CE(retain)`` in value, and its gradient is λ·∇F at the moved weights
    plus (1 − λ)·∇CE(retain) at θ. ``loss/forget_robust`` logs F at the moved weights."""
    params = trainable(model)
    if options.method == "sam":
        value, grads, logged = sam_forget_gradient(objective, model, objective.forget_stream(batch), options.rho)
    else:
        value, grads, logged = adversarial_forget_gradient(objective, model, batch, options)
    forget = linear_term(params, grads, value)  # the weights are back at θ here
    retain = retain_loss(model, batch["retain"], objective.chunk_size)
    total = objective.forget_weight * forget + (1.0 - objective.forget_weight) * retain
    return {"loss/total": total, "loss/retain": retain.detach(), **logged, "loss/forget_robust": value}
