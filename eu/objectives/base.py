"""The objective interface, and the base of objectives that weigh forget against retain by λ."""

from __future__ import annotations

import math
from typing import Any

import torch

from eu.errors import EUError
from eu.objectives.terms import retain_loss, vocab_size


class Objective:
    """Turns a causal LM and a step batch ``{"retain": ..., "forget": ...}`` into named losses.

    Every objective is called the same way, ``objective(model, batch, reference=None)``: ``reference``
    is the frozen initial model when :attr:`needs_reference` is set, else ``None``. It returns a dict
    with at least ``"loss/total"`` (the value optimised); every other entry is logged as it is.
    Objectives reuse one another by holding them (:class:`~eu.objectives.WithRefusals` wraps any
    objective), not by inheriting from them.
    """

    needs_forget: bool = True
    """Whether training requires a forget stream."""

    needs_streams: tuple[str, ...] = ()
    """Further streams training requires (``eu fit`` checks them before any data is read)."""

    needs_reference: bool = False
    """Whether ``__call__`` takes a frozen copy of the initial model as ``reference``."""

    def __init__(self, chunk_size: int = 1024) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = chunk_size

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def prepare_model(self, model: Any) -> None:
        """Change the freshly loaded base model in place before training (by default: nothing).

        The module calls this once in ``configure_model``, before any adapter is added and before
        a checkpoint being resumed overwrites the weights. An objective that changes the weights
        here sets ``rewrites_weights = True``: LoRA, whose checkpoints hold only the adapter, is
        then refused, since ``eu export`` would rebuild the model without the change.
        """

    rewrites_weights: bool = False
    """Whether :meth:`prepare_model` changes the base weights."""

    updates_weights: bool = True
    """Whether training steps update the weights. ``False``: each step computes and logs the losses,
    but the module never steps the optimizer, so the model stays as :meth:`prepare_model` left it
    (SKU as published: the negated model is the result)."""

    def forget_stream(self, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """The step's forget batch, or a clear error naming the option to set."""
        if "forget" not in batch:
            raise EUError(f"{type(self).__name__} needs a forget stream: set data.forget.path")
        return batch["forget"]

    def forget_metrics(self, model: Any, forget: torch.Tensor) -> dict[str, torch.Tensor]:
        """Report the forget loss and the response entropy as a fraction of ``log V``."""
        log_v = math.log(vocab_size(model))
        return {"loss/forget": forget.detach(), "forget/entropy_frac": 1.0 - forget.detach() / log_v}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class AgainstReference(Objective):
    """Base of the objectives that score the forget stream against the frozen initial model
    (``needs_reference``) with inverse temperature β and add ``retain_weight·CE(retain)``: NPO, DPO."""

    needs_reference = True

    def __init__(self, beta: float = 0.1, retain_weight: float = 1.0, chunk_size: int = 1024) -> None:
        """
        Args:
            beta: inverse temperature β of the preference loss.
            retain_weight: weight of the retain cross-entropy.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        if beta <= 0:
            raise EUError(f"objective beta must be > 0, got {beta}")
        self.beta = beta
        self.retain_weight = retain_weight


class ForgetWeighted(Objective):
    """``L = λ·forget + (1 − λ)·CE(retain)``, the forget term given by :meth:`forget_term`.

    Subclasses set their default λ in their own signature and pass it on.

    Args:
        forget_weight: λ in [0, 1], the weight of the forget term.
        chunk_size: tokens whose logits are materialised at once in the token losses.
    """

    def __init__(self, forget_weight: float, chunk_size: int = 1024) -> None:
        super().__init__(chunk_size)
        if not 0.0 <= forget_weight <= 1.0:
            raise EUError(f"objective forget_weight (λ) must lie in [0, 1], got {forget_weight}")
        self.forget_weight = forget_weight

    def forget_term(self, model: Any, forget: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The forget term to minimise on the forget batch, and the entries it logs."""
        raise NotImplementedError

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        forget, logged = self.forget_term(model, self.forget_stream(batch))
        total = self.forget_weight * forget + (1.0 - self.forget_weight) * retain
        return {"loss/total": total, "loss/retain": retain.detach(), **logged}
