"""SKU baseline (selective knowledge negation unlearning, Liu et al., 2024): learn a harmful expert, then negate it.

Two runs of ``eu fit``, following the authors' code (franciscoliu/SKU,
``harmful_unlearn/unlearn_harm_new.py``, ``utils.py``, ``task_vector.py``):

1. :class:`SKUExpert` fine-tunes a copy of the model (all weights or LoRA) *towards* the harmful
   answers of the forget stream: guided distortion (cross-entropy on each harmful answer), random
   disassociation (cross-entropy on harmful answers given to other harmful prompts) and
   preservation divergence (the KL divergence from the original model on the retain data, over
   every position of the text and divided by their number, *maximised*, so that the expert's
   change stays specific to harmful content).
2. :class:`SKUNegation` loads the original weights θ and subtracts the expert's task vector
   τ = θ_expert − θ scaled by α (θ ← θ − α·τ); the negated model is the result, as in the
   authors' code: its steps only measure the retain loss and never update the weights.
   :class:`SKURepaired` is the variant that trains on the retain data after the negation.
   Their checkpoints hold all weights, so ``eu export`` writes the final model.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from eu.errors import EUError
from eu.objectives.base import Objective
from eu.objectives.losses import IGNORE_INDEX
from eu.objectives.retain_only import RetainOnly
from eu.objectives.terms import retain_loss, sequence_mean_cross_entropy, token_positions_reference_kl


def prompts_and_responses(batch: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(prompt ids, response ids)`` of every supervised sequence of a packed batch, in ascending sequence order.

    The prompt runs up to and including the position that predicts the first response token.
    """
    ids, seqs, supervised = batch["input_ids"], batch["sequence_index"], batch["targets"] != IGNORE_INDEX
    out = []
    for s in seqs.unique().tolist():
        where = seqs == s
        predicts = supervised[where].nonzero().flatten()
        if s < 0 or predicts.numel() == 0:
            continue
        tokens = ids[where]
        first, last = int(predicts[0]), int(predicts[-1])
        out.append((tokens[: first + 1], tokens[first + 1 : last + 2]))
    return out


def pack_one_per_row(sequences: list[tuple[torch.Tensor, torch.Tensor]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """A batch with one ``prompt + response`` sequence per row, the response supervised (as
    :func:`eu.data.packing.pack_rows` lays it out: padding is its own segment and carries no loss)."""
    width = max(len(p) + len(r) for p, r in sequences)
    like = sequences[0][0]
    input_ids = torch.full((len(sequences), width), pad_id, dtype=like.dtype, device=like.device)
    targets = torch.full_like(input_ids, IGNORE_INDEX)
    sequence_index = torch.full_like(input_ids, -1)
    position_ids = torch.zeros_like(input_ids)
    for row, (prompt, response) in enumerate(sequences):
        n_prompt, n = len(prompt), len(prompt) + len(response)
        input_ids[row, :n_prompt], input_ids[row, n_prompt:n] = prompt, response
        targets[row, n_prompt - 1 : n - 1] = response
        sequence_index[row, :n] = row
        position_ids[row, :n] = torch.arange(n, device=like.device)
        position_ids[row, n:] = torch.arange(width - n, device=like.device)
    return {"input_ids": input_ids, "position_ids": position_ids, "targets": targets, "sequence_index": sequence_index}


def mismatched_batch(batch: dict[str, torch.Tensor], random_answers: int) -> dict[str, torch.Tensor] | None:
    """Each prompt of ``batch`` with the responses of ``k`` other sequences of the step (``k`` =
    ``random_answers``, at most the number of other sequences); ``None`` with fewer than two sequences.

    Prompt ``i`` gets the responses of sequences ``i + 1, …, i + k`` (cyclically); the step's
    examples are drawn at random, so these are random harmful answers from the forget data.
    """
    pairs = prompts_and_responses(batch)
    k = min(random_answers, len(pairs) - 1)
    if k < 1:
        return None
    n = len(pairs)
    mixed = [(pairs[i][0], pairs[(i + s) % n][1]) for s in range(1, k + 1) for i in range(n)]
    out = pack_one_per_row(mixed)
    out["num_sequences_norm"] = batch["num_sequences_norm"] * k
    return out


class SKUExpert(Objective):
    """SKU stage 1: ``L = w_gd·CE(forget) + w_rd·CE(mismatched forget) − w_pd·KL(π_ref ‖ π_θ)(retain)``.

    Guided distortion (``CE(forget)``, mean over sequences of their mean token cross-entropy)
    teaches the harmful answers; random disassociation does the same with each harmful prompt
    given ``random_answers`` harmful answers of other prompts of the step; preservation
    divergence pushes the expert away from the original model (the frozen reference) on the
    retain data: ``KL(π_ref ‖ π_θ)`` summed over every position of the retain examples (prompt
    and response) and divided by the step's positions, the authors' mean over positions. It is
    not bounded: only the weights and the run's length limit how far it pushes. The authors'
    weights are the defaults.
    """

    needs_reference = True

    def __init__(
        self,
        distortion_weight: float = 0.5,
        disassociation_weight: float = 1.0,
        divergence_weight: float = 1.0,
        random_answers: int = 1,
        chunk_size: int = 1024,
    ) -> None:
        """
        Args:
            distortion_weight: weight of the guided-distortion term (the authors' 0.5).
            disassociation_weight: weight of the random-disassociation term (1.0).
            divergence_weight: weight of the preservation-divergence term (1.0).
            random_answers: other harmful answers paired with each harmful prompt per step.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        if random_answers < 1:
            raise EUError(f"objective random_answers must be >= 1, got {random_answers}")
        self.distortion_weight = distortion_weight
        self.disassociation_weight = disassociation_weight
        self.divergence_weight = divergence_weight
        self.random_answers = random_answers

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        forget = self.forget_stream(batch)
        distortion = mean_response_cross_entropy(model, forget, self.chunk_size)
        mismatched = mismatched_batch(forget, self.random_answers)
        if mismatched is None:  # a single forget sequence on this rank: no other answer to pair it with
            disassociation = distortion * 0.0
        else:
            disassociation = mean_response_cross_entropy(model, mismatched, self.chunk_size)
        kl = token_positions_reference_kl(model, reference, batch["retain"], self.chunk_size)
        total = (
            self.distortion_weight * distortion
            + self.disassociation_weight * disassociation
            - self.divergence_weight * kl
        )
        return {
            "loss/total": total,
            "loss/distortion": distortion.detach(),
            "loss/disassociation": disassociation.detach(),
            "loss/divergence": -kl.detach(),
            "sku/retain_kl": kl.detach(),
        }


def mean_response_cross_entropy(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Mean over the batch's sequences (the step's count, ``num_sequences_norm``) of their mean token cross-entropy."""
    per_sequence = sequence_mean_cross_entropy(model, batch, chunk_size)
    return per_sequence.sum() / batch["num_sequences_norm"].clamp_min(1)


def negate_task_vector(model: Any, expert_state: dict[str, torch.Tensor], alpha: float) -> float:
    """``θ ← θ − α·(θ_expert − θ)`` for every parameter of ``model``, in place; returns ``‖θ_expert − θ‖``.

    The update is computed in float32 (or float64) and cast back. Parameters the expert lacks or
    holds in another shape are refused: the expert must be a fine-tuned copy of this model.
    """
    squared = 0.0
    with torch.no_grad():
        for name, param in model.named_parameters():
            expert = expert_state.get(name)
            if expert is None or expert.shape != param.shape:
                found = "missing" if expert is None else f"shape {tuple(expert.shape)}"
                raise EUError(
                    f"the SKU expert does not match the model: {name} {tuple(param.shape)} is {found} in the "
                    "expert; train the expert (stage 1) from the same model.model"
                )
            theta = param.to(torch.promote_types(param.dtype, torch.float32))
            tau = expert.to(theta) - theta
            squared += float(tau.pow(2).sum())
            param.copy_(theta - alpha * tau)
    return squared**0.5


class SKUNegation(Objective):
    """SKU stage 2 as published: the model is ``θ − α·τ`` (the expert's task vector τ negated), and that is all.

    ``expert`` is the stage-1 run's checkpoint (``RUN/checkpoints/last.ckpt``, all weights or a
    LoRA adapter, which is merged) or a model folder. The authors negate and stop, with α = 1;
    here the run's steps only measure the retain cross-entropy (``loss/retain``, logged; the loss
    optimised is 0) and the module never steps the optimizer (``updates_weights = False``), so
    every checkpoint holds exactly the negated model; a small ``trainer.max_steps`` makes the run
    short. LoRA is refused for this stage: its checkpoints would not hold the negated base.
    """

    needs_forget = False
    rewrites_weights = True
    updates_weights = False

    def __init__(self, expert: str, alpha: float = 1.0, chunk_size: int = 1024) -> None:
        """
        Args:
            expert: the stage-1 checkpoint (``.ckpt`` written by ``eu fit``) or a model folder.
            alpha: α, how much of the task vector is subtracted (1.0 in the authors' code).
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        if alpha <= 0:
            raise EUError(f"objective alpha must be > 0, got {alpha}")
        self.expert = expert
        self.alpha = alpha

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        retain = retain_loss(model, batch["retain"], self.chunk_size)
        # zero, but through the model, so every strategy's backward runs as usual; no update follows
        return {"loss/total": retain * 0.0, "loss/retain": retain.detach()}

    def prepare_model(self, model: Any) -> None:
        """Subtract ``α·τ`` from the freshly loaded original weights."""
        negate_expert(model, self.expert, self.alpha)


def negate_expert(model: Any, expert_path: str, alpha: float) -> None:
    """Load the stage-1 expert at ``expert_path`` and subtract ``α·τ`` from ``model`` in place."""
    from eu.models.checkpoint import load_model_and_tokenizer

    if expert_path.endswith(".ckpt") and not Path(expert_path).is_file():
        raise EUError(
            f"the SKU expert {expert_path} does not exist: run stage 1 first (configs/methods/sku_expert.yaml, "
            "same model) or point model.objective.init_args.expert at its checkpoint"
        )
    expert, _ = load_model_and_tokenizer(expert_path)
    norm = negate_task_vector(model, expert.state_dict(), alpha)
    del expert
    if norm == 0.0:
        raise EUError(f"the SKU expert {expert_path} equals the model: stage 1 changed nothing")
    print(f"eu: SKU: subtracted {alpha} x the task vector of {expert_path} (norm {norm:.4g})", file=sys.stderr)


class SKURepaired(Objective):
    """SKU with repair, a named variant: start from ``θ − α·τ`` as :class:`SKUNegation`, then train on
    the retain data (cross-entropy) for the run's steps, as the comparison's other methods do. The
    authors do not train after the negation."""

    needs_forget = False
    rewrites_weights = True

    def __init__(self, expert: str, alpha: float = 1.0, monitor_forget: bool = False, chunk_size: int = 1024) -> None:
        """
        Args:
            expert: the stage-1 checkpoint (``.ckpt`` written by ``eu fit``) or a model folder.
            alpha: α, how much of the task vector is subtracted (1.0 in the authors' code).
            monitor_forget: also compute (without gradient) the forget loss, when a forget stream is set.
            chunk_size: tokens whose logits are materialised at once in the token losses.
        """
        super().__init__(chunk_size)
        self.negation = SKUNegation(expert, alpha, chunk_size)
        self.repair = RetainOnly(monitor_forget, chunk_size)

    def __call__(
        self, model: Any, batch: dict[str, dict[str, torch.Tensor]], reference: Any = None
    ) -> dict[str, torch.Tensor]:
        """The repair: RetainOnlyFT's cross-entropy on the retain data."""
        return self.repair(model, batch)

    def prepare_model(self, model: Any) -> None:
        """Subtract ``α·τ`` from the freshly loaded original weights, as :class:`SKUNegation` does."""
        self.negation.prepare_model(model)
