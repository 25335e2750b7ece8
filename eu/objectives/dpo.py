"""Preference baseline: direct preference optimisation (Rafailov et al., 2023) towards refusals, plus retain loss.

The forget stream holds preference pairs (``prompt``, ``chosen``, ``rejected`` records, e.g.
``eu:harmful/preferences``: a refusal chosen over a harmful answer). Each pair is one example to
mixing and packing, so it is never split across rows, steps or ranks; in the packed batch its
chosen and rejected sequences are adjacent and ``batch["pairs"]`` gives their sequence numbers
(see :mod:`eu.data.tokenized` and :func:`eu.data.packing.pack_rows`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from eu.errors import EUError
from eu.objectives.base import AgainstReference
from eu.objectives.terms import reference_logprobs, retain_loss, sequence_logprobs


def dpo_margins(policy: torch.Tensor, reference: torch.Tensor, pairs: torch.Tensor, beta: float) -> torch.Tensor:
    """``β·[(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))]`` per pair.

    ``policy`` and ``reference`` are per-sequence log-probabilities; ``pairs`` ([P, 2]) the
    sequence numbers of each pair's chosen (y_w) and rejected (y_l) response.
    """
    log_ratio = policy - reference
    return beta * (log_ratio[pairs[:, 0]] - log_ratio[pairs[:, 1]])


def dpo_loss(margins: torch.Tensor, normaliser: float | None = None) -> torch.Tensor:
    """``mean −log σ(margin)`` over pairs; ``normaliser`` replaces the pair count (global across ranks)."""
    n = float(margins.numel()) if normaliser is None else float(normaliser)
    return -F.logsigmoid(margins).sum() / max(n, 1.0)


class DPO(AgainstReference):
    """``L = E[−log σ(β·(Δ_chosen − Δ_rejected))] + retain_weight·CE(retain)``, ``Δ = log π_θ(y|x) − log π_ref(y|x)``.

    ``π_ref`` is the frozen initial model: a sharded copy held by the module, or, with LoRA, the
    same weights with the adapters switched off. Logs the DPO term, the mean reward margin
    ``β·(Δ_chosen − Δ_rejected)``, each side's reward ``β·Δ`` and the share of pairs whose margin
    is positive (``dpo/accuracy``).
    """

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        forget = self.forget_stream(batch)
        if "pairs" not in forget:
            raise EUError(
                "DPO needs preference pairs in data.forget: records with prompt, chosen and rejected "
                "fields, e.g. data.forget.path=eu:harmful/preferences"
            )
        pairs = forget["pairs"]
        ref = reference_logprobs(model, reference, forget, self.chunk_size)
        policy = sequence_logprobs(model, forget, self.chunk_size)
        if policy.numel() != pairs.numel():
            raise EUError(f"DPO got {policy.numel()} supervised sequences for {len(pairs)} pairs; every pair needs two")
        margins = dpo_margins(policy, ref, pairs, self.beta)
        dpo = dpo_loss(margins, float(forget["num_sequences_norm"]) / 2)
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        rewards = self.beta * (policy - ref).detach()
        return {
            "loss/total": dpo + self.retain_weight * retain,
            "loss/retain": retain.detach(),
            "loss/dpo": dpo.detach(),
            "dpo/reward_margin": margins.detach().mean(),
            "dpo/reward_chosen": rewards[pairs[:, 0]].mean(),
            "dpo/reward_rejected": rewards[pairs[:, 1]].mean(),
            "dpo/accuracy": (margins.detach() > 0).float().mean(),
        }
