"""Eraser baseline (Lu et al., 2024): unlearn harmful answers up to a threshold, keep knowledge and refusals.

Eraser has three goals, each a term of the loss:

- *unlearning*: gradient ascent on harmful answers, clamped: ``max(0, γ − CE(harmful))`` stops
  pushing once the answers' cross-entropy reaches the threshold γ, so the model is not driven
  to collapse;
- *retaining general knowledge*: on questions about the entities the harmful prompts mention,
  the model keeps its own answers (KL from the frozen original model, or cross-entropy);
- *keeping safety alignment*: refusals of the harmful prompts, some behind random prefixes and
  suffixes that imitate jailbreak noise, are kept likely.

In eu the forget stream holds preference pairs (``eu:harmful/eraser``: a refusal as ``chosen``,
the harmful answer as ``rejected``, prompts partly wrapped in random noise), so the ascent and the
refusal term share one pass; the entity knowledge comes from the ``keep`` stream
(``eu:harmful/entity-answers``); the domain data stays in ``retain`` with its cross-entropy, as for
every baseline of the comparison. See docs/baselines.md for what replaces the authors' data.
"""

from __future__ import annotations

from typing import Any

import torch

from eu.errors import EUError
from eu.losses import thresholded_ascent
from eu.objectives.base import Objective
from eu.objectives.terms import reference_kl, retain_loss, sequence_mean_cross_entropy

KNOWLEDGE_LOSSES = ("kl", "cross_entropy")


class Eraser(Objective):
    """``L = max(0, γ − CE(harmful)) + w_r·CE(refusal) + w_k·K(keep) + w·CE(retain)``.

    ``CE(harmful)`` and ``CE(refusal)`` are the means over the forget pairs of the mean token
    cross-entropy of the rejected (harmful) and the chosen (refusal) response. ``K(keep)`` is
    ``KL(π_ref ‖ π_θ)`` over the response positions of the keep stream (``knowledge_loss="kl"``,
    the authors' choice; needs the frozen reference) or their cross-entropy
    (``"cross_entropy"``, no reference), divided by the step's supervised tokens.
    """

    def __init__(
        self,
        threshold: float = 1.8,
        refusal_weight: float = 1.0,
        knowledge_weight: float = 1.0,
        knowledge_loss: str = "kl",
        retain_weight: float = 1.0,
        chunk_size: int = 1024,
    ) -> None:
        """
        Args:
            threshold: γ, the cross-entropy of the harmful answers beyond which ascent stops (the authors' 1.8).
            refusal_weight: weight of the refusal cross-entropy.
            knowledge_weight: weight of the entity-knowledge term on the keep stream (0: no keep stream needed).
            knowledge_loss: ``kl`` (from the frozen original model) or ``cross_entropy``.
            retain_weight: weight of the retain (domain) cross-entropy.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        if threshold <= 0:
            raise EUError(f"objective threshold must be > 0, got {threshold}")
        if knowledge_loss not in KNOWLEDGE_LOSSES:
            raise EUError(
                f"objective knowledge_loss must be one of {', '.join(KNOWLEDGE_LOSSES)}, got {knowledge_loss!r}"
            )
        self.threshold = threshold
        self.refusal_weight = refusal_weight
        self.knowledge_weight = knowledge_weight
        self.knowledge_loss = knowledge_loss
        self.retain_weight = retain_weight
        self.needs_reference = knowledge_loss == "kl" and knowledge_weight != 0

    def pair_cross_entropies(self, model: Any, forget: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean over pairs of the chosen (refusal) and of the rejected (harmful) responses' mean token CE."""
        if "pairs" not in forget:
            raise EUError(
                "Eraser needs pairs in data.forget: records with prompt, chosen (a refusal) and rejected "
                "(the harmful answer), e.g. data.forget.path=eu:harmful/eraser"
            )
        pairs = forget["pairs"]
        per_sequence = sequence_mean_cross_entropy(model, forget, self.chunk_size)
        if per_sequence.numel() != pairs.numel():
            raise EUError(f"Eraser got {per_sequence.numel()} supervised sequences for {len(pairs)} pairs")
        n_pairs = forget["num_sequences_norm"].clamp_min(2) / 2
        return per_sequence[pairs[:, 0]].sum() / n_pairs, per_sequence[pairs[:, 1]].sum() / n_pairs

    def knowledge_term(self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any) -> torch.Tensor:
        """The keep stream's KL from the reference, or its cross-entropy."""
        if "keep" not in batch:
            raise EUError(
                "Eraser keeps general knowledge from data.keep: set data.keep.path=eu:harmful/entity-answers "
                "(or your own file), or objective knowledge_weight=0"
            )
        if self.knowledge_loss == "kl":
            return reference_kl(model, reference, batch["keep"], self.chunk_size)
        return retain_loss(model, batch["keep"], self.chunk_size)

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        refusal, harmful = self.pair_cross_entropies(model, self.forget_stream(batch))
        unlearn = thresholded_ascent(harmful, self.threshold)
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        total = unlearn + self.refusal_weight * refusal + self.retain_weight * retain
        out = {
            "loss/unlearn": unlearn.detach(),
            "loss/refusal": refusal.detach(),
            "loss/retain": retain.detach(),
            "forget/harmful_ce": harmful.detach(),
        }
        # validation batches lack the keep stream when it holds no examples out: the term is left out there
        if self.knowledge_weight != 0 and ("keep" in batch or torch.is_grad_enabled()):
            knowledge = self.knowledge_term(model, batch, reference)
            total = total + self.knowledge_weight * knowledge
            out["loss/knowledge"] = knowledge.detach()
        return {"loss/total": total, **out}
