"""Refusals trained beside any objective: ``L = objective + ρ·CE(refuse)``.

The ``refuse`` stream (``data.refuse``) holds harmful requests with the refusal the model should
give, e.g. ``eu:medicine-harmful/train``: harmful requests inside the retained domain, which
Exclusive Unlearning would otherwise keep with the domain. :class:`WithRefusals` wraps another
objective (composition, so it works with any of them) and adds the refusal stream's token
cross-entropy with its own weight; the stream's ``examples_per_step`` sets how many refusals each
step sees. :class:`ForgetToRefusal` is the variant that trains the forget stream's prompts towards
a response (one fixed refusal) instead of towards uniform.
"""

from __future__ import annotations

from typing import Any

import torch

from eu.errors import EUError
from eu.objectives.base import ForgetWeighted, Objective
from eu.objectives.terms import forget_cross_entropy, retain_loss

REFUSE = "refuse"
"""The stream this objective reads."""


def refusal_loss(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Cross-entropy on the refusal tokens, summed and divided by the step's supervised-token count."""
    return retain_loss(model, batch, chunk_size)


class WithRefusals(Objective):
    """``L = objective(retain, forget, …) + refusal_weight · CE(refuse)``.

    Args:
        objective: the objective to extend (``eu.objectives.ExclusiveUnlearning`` in the recipes).
        refusal_weight: ρ ≥ 0, the weight of the refusal cross-entropy.
        chunk_size: tokens whose logits are materialised at once in the refusal loss.
    """

    def __init__(self, objective: Objective, refusal_weight: float = 0.5, chunk_size: int = 1024) -> None:
        super().__init__(chunk_size)
        if not isinstance(objective, Objective):
            raise EUError(
                f"WithRefusals' objective must be an eu objective (e.g. eu.objectives.ExclusiveUnlearning), "
                f"got {type(objective).__name__}"
            )
        if isinstance(objective, WithRefusals):
            raise EUError("WithRefusals' objective is itself WithRefusals; wrap the inner objective once")
        if not refusal_weight >= 0.0:
            raise EUError(f"objective refusal_weight (ρ) must be >= 0, got {refusal_weight}")
        self.objective = objective
        self.refusal_weight = refusal_weight

    @property
    def needs_forget(self) -> bool:  # type: ignore[override]
        """The wrapped objective's: whether training requires a forget stream."""
        return self.objective.needs_forget

    @property
    def needs_streams(self) -> tuple[str, ...]:  # type: ignore[override]
        """The refuse stream and the wrapped objective's further streams."""
        return (REFUSE, *self.objective.needs_streams)

    @property
    def needs_reference(self) -> bool:  # type: ignore[override]
        """The wrapped objective's: whether it takes a frozen reference model."""
        return self.objective.needs_reference

    @property
    def rewrites_weights(self) -> bool:  # type: ignore[override]
        """The wrapped objective's: whether :meth:`prepare_model` changes the base weights."""
        return self.objective.rewrites_weights

    @property
    def updates_weights(self) -> bool:  # type: ignore[override]
        """The wrapped objective's: whether training steps update the weights."""
        return self.objective.updates_weights

    def prepare_model(self, model: Any) -> None:
        """The wrapped objective's preparation of the base model."""
        self.objective.prepare_model(model)

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        """The wrapped objective's losses, with the refusal term added to ``loss/total`` and logged
        as ``loss/refusal``. A held-out step without refusal examples gets the wrapped losses only."""
        rest = {name: b for name, b in batch.items() if name != REFUSE}
        out = self.objective(model, rest, reference=reference) if self.needs_reference else self.objective(model, rest)
        if REFUSE not in batch:
            if model.training:
                raise EUError(
                    "WithRefusals needs a refusal stream: set data.refuse.path (e.g. eu:medicine-harmful/train)"
                )
            return out
        refusal = refusal_loss(model, batch[REFUSE], self.chunk_size)
        return {
            **out,
            "loss/total": out["loss/total"] + self.refusal_weight * refusal,
            "loss/refusal": refusal.detach(),
        }


class ForgetToRefusal(ForgetWeighted):
    """``L = λ·CE(forget responses) + (1 − λ)·CE(retain)``: the forget prompts trained towards their
    responses instead of towards uniform.

    Meant with ``data.forget.fixed_response`` (one short refusal, e.g. "I can only help with
    medical questions."), so every out-of-domain prompt is answered with that refusal: the
    variant of issue 24 item 3. Without it the forget stream's own answers would be learnt.

    Args:
        forget_weight: λ in [0, 1], the weight of the forget (refusal) cross-entropy.
        chunk_size: tokens whose logits are materialised at once in the token losses.
    """

    def __init__(self, forget_weight: float = 0.4, chunk_size: int = 1024) -> None:
        super().__init__(forget_weight, chunk_size)

    def forget_term(self, model: Any, forget: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean over forget sequences of their mean token cross-entropy; logged as ``loss/forget``."""
        ce = forget_cross_entropy(model, forget, self.chunk_size)
        return ce, {"loss/forget": ce.detach()}
