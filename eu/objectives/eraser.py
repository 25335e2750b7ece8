"""Eraser baseline (Lu et al., 2024): unlearn harmful answers up to a threshold, keep knowledge and alignment.

:class:`Eraser` follows the authors' code (ZeroNLP/Eraser, ``train_Eraser/utils/Llama_trainer.py``
and ``utils/Datasets.py``), three terms of equal weight:

- *unlearning*: ``max(0, γ − CE(harmful))``, gradient ascent on the harmful answers that stops once
  their token cross-entropy reaches γ; each harmful prompt is wrapped in fresh random tokens at
  every access (``data.forget.prompt_noise``, drawn when the step's batch is built);
- *general knowledge*: ``KL(π_ref ‖ π_θ)`` on the original model's own answers to questions about
  the entities the harmful prompts name (``data.keep``, ``eu:harmful/entity-answers``);
- *safety alignment*: ``KL(π_ref ‖ π_θ)`` on the original model's own answers to the harmful
  prompts as they are, without noise (``data.align``, ``eu:harmful/model-answers``).

Both KL terms run over every position of the text (prompt and answer) and are divided by the
number of positions, as the authors' ``batchmean`` over flattened positions is. eu adds the
retain cross-entropy that every method of the comparison trains on.

:class:`EraserRefusalSFT` is eu's earlier version, kept as a named variant: refusal fine-tuning
by cross-entropy on written refusals, with the noise (drawn once into a file) on both sides of
each pair. See docs/baselines.md.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from eu.errors import EUError
from eu.objectives.base import Objective
from eu.objectives.losses import thresholded_ascent
from eu.objectives.terms import (
    reference_kl,
    retain_loss,
    sequence_mean_cross_entropy,
    token_mean_cross_entropy,
    token_positions_reference_kl,
)

KNOWLEDGE_LOSSES = ("kl", "cross_entropy")


def _check_threshold(threshold: float) -> None:
    if threshold <= 0:
        raise EUError(f"objective threshold must be > 0, got {threshold}")


class Eraser(Objective):
    """``L = max(0, γ − CE(harmful)) + w_k·KL(keep) + w_a·KL(align) + w·CE(retain)``, as the authors compute it.

    ``CE(harmful)`` is the mean cross-entropy over all the step's harmful answer tokens (the
    authors' batch loss), clamped per device batch as they clamp per micro-batch. ``KL(keep)`` and
    ``KL(align)`` are ``KL(π_ref ‖ π_θ)`` summed over every position of the stream's examples and
    divided by the step's positions; the reference is the frozen original model (the adapter-free
    model under LoRA). The first training step reports the harmful cross-entropy and warns when it
    is already at or above γ, where the ascent term is 0 and gives no gradient.
    """

    needs_reference = True

    def __init__(
        self,
        threshold: float = 1.8,
        knowledge_weight: float = 1.0,
        alignment_weight: float = 1.0,
        retain_weight: float = 1.0,
        chunk_size: int = 1024,
    ) -> None:
        """
        Args:
            threshold: γ, the harmful answers' cross-entropy beyond which ascent stops (the authors' 1.8,
                set for Llama-2-7B-chat).
            knowledge_weight: weight of the KL on the keep stream (the authors' 1; 0: no keep stream needed).
            alignment_weight: weight of the KL on the align stream (the authors' 1; 0: no align stream needed).
            retain_weight: weight of the retain (domain) cross-entropy, which the authors do not have.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        _check_threshold(threshold)
        self.threshold = threshold
        self.knowledge_weight = knowledge_weight
        self.alignment_weight = alignment_weight
        self.retain_weight = retain_weight
        self.needs_reference = knowledge_weight != 0 or alignment_weight != 0
        self._reported_start = False

    def harmful_cross_entropy(self, model: Any, forget: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over the step's harmful answer tokens."""
        if "pairs" in forget:
            raise EUError(
                "Eraser unlearns single harmful answers: set data.forget.path=eu:harmful/answers (or a file of "
                "prompts with harmful answers); refusal pairs belong to eu.objectives.EraserRefusalSFT"
            )
        return token_mean_cross_entropy(model, forget, self.chunk_size)

    def _kept(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any, stream: str, weight_name: str
    ) -> torch.Tensor | None:
        """The KL term on ``stream``, or ``None`` where a validation batch holds none of it."""
        if getattr(self, weight_name) == 0:
            return None
        if stream not in batch:
            # validation batches lack a stream that holds no examples out: the term is left out there
            if not torch.is_grad_enabled():
                return None
            source = "eu:harmful/entity-answers" if stream == "keep" else "eu:harmful/model-answers"
            raise EUError(
                f"Eraser keeps the original model's answers from data.{stream}: set data.{stream}.path={source} "
                f"(or your own file), or objective {weight_name}=0"
            )
        return token_positions_reference_kl(model, reference, batch[stream], self.chunk_size)

    def _report_start(self, harmful: torch.Tensor) -> None:
        """At the first training step: the harmful CE, and a warning when γ leaves no ascent."""
        if self._reported_start or not torch.is_grad_enabled():
            return
        self._reported_start = True
        value = float(harmful.detach())
        rank_zero_info(f"eu: Eraser: harmful answers' cross-entropy at the first step {value:.4g} (γ {self.threshold})")
        if value >= self.threshold:
            rank_zero_warn(
                f"eu: Eraser: the harmful answers' cross-entropy at the first step is {value:.4g}, already at or "
                f"above the threshold γ={self.threshold}, so the unlearning term is 0 and gives no gradient; raise "
                "model.objective.init_args.threshold above it for the ascent to act"
            )

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        harmful = self.harmful_cross_entropy(model, self.forget_stream(batch))
        self._report_start(harmful)
        unlearn = thresholded_ascent(harmful, self.threshold)
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        total = unlearn + self.retain_weight * retain
        out = {
            "loss/unlearn": unlearn.detach(),
            "loss/retain": retain.detach(),
            "forget/harmful_ce": harmful.detach(),
        }
        for stream, weight_name, tag in (
            ("keep", "knowledge_weight", "loss/knowledge"),
            ("align", "alignment_weight", "loss/alignment"),
        ):
            kl = self._kept(model, batch, reference, stream, weight_name)
            if kl is not None:
                total = total + getattr(self, weight_name) * kl
                out[tag] = kl.detach()
        return {"loss/total": total, **out}


class EraserRefusalSFT(Objective):
    """eu's earlier Eraser, a variant: ``L = max(0, γ − CE(harmful)) + w_r·CE(refusal) + w_k·K(keep) + w·CE(retain)``.

    The forget stream holds preference pairs (``eu:harmful/eraser``: a written refusal as
    ``chosen``, the harmful answer as ``rejected``, the prompts partly wrapped in noise written
    once into the file, on both sides of the pair). ``CE(harmful)`` and ``CE(refusal)`` are the
    means over the pairs of the mean token cross-entropy of the rejected and the chosen response.
    ``K(keep)`` is ``KL(π_ref ‖ π_θ)`` over the response positions of the keep stream
    (``knowledge_loss="kl"``; needs the frozen reference) or their cross-entropy
    (``"cross_entropy"``, no reference), divided by the step's supervised tokens. It is refusal
    fine-tuning against jailbreak-shaped prefixes, not the authors' method (:class:`Eraser`).
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
            threshold: γ, the cross-entropy of the harmful answers beyond which ascent stops.
            refusal_weight: weight of the refusal cross-entropy.
            knowledge_weight: weight of the entity-knowledge term on the keep stream (0: no keep stream needed).
            knowledge_loss: ``kl`` (from the frozen original model) or ``cross_entropy``.
            retain_weight: weight of the retain (domain) cross-entropy.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        _check_threshold(threshold)
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
                "EraserRefusalSFT needs pairs in data.forget: records with prompt, chosen (a refusal) and rejected "
                "(the harmful answer), e.g. data.forget.path=eu:harmful/eraser"
            )
        pairs = forget["pairs"]
        per_sequence = sequence_mean_cross_entropy(model, forget, self.chunk_size)
        if per_sequence.numel() != pairs.numel():
            raise EUError(f"EraserRefusalSFT got {per_sequence.numel()} supervised sequences for {len(pairs)} pairs")
        n_pairs = forget["num_sequences_norm"].clamp_min(2) / 2
        return per_sequence[pairs[:, 0]].sum() / n_pairs, per_sequence[pairs[:, 1]].sum() / n_pairs

    def knowledge_term(self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any) -> torch.Tensor:
        """The keep stream's KL from the reference, or its cross-entropy."""
        if "keep" not in batch:
            raise EUError(
                "EraserRefusalSFT keeps general knowledge from data.keep: set "
                "data.keep.path=eu:harmful/entity-answers (or your own file), or objective knowledge_weight=0"
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
