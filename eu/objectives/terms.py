"""Loss terms objectives compute from a causal LM and one stream's packed batch.

A batch here is one stream (``batch["retain"]`` or ``batch["forget"]`` of a step). The token
losses project hidden states to logits a chunk at a time (see :mod:`eu.objectives.losses`).
"""

from __future__ import annotations

from typing import Any

import torch

from eu.errors import EUError
from eu.models.logits import output_head
from eu.objectives.losses import (
    IGNORE_INDEX,
    chunked_reference_kl,
    chunked_token_losses,
    chunked_weighted_token_loss,
    forget_token_weights,
    sequence_sums,
)


def decoder_and_head(model: Any) -> tuple[Any, Any]:
    """The decoder (token ids to hidden states) and the head (hidden states to the model's own logits)."""
    return model.get_decoder(), output_head(model)


def vocab_size(model: Any) -> int:
    """Rows of the model's output projection."""
    return int(model.get_output_embeddings().weight.shape[0])


def decoder_hidden(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Final hidden states ([rows, positions, H]) of a packed batch, each example attending only to itself.

    Positions restart at 0 for every example. SDPA, eager and flex attention turn such
    ``position_ids`` into a block-diagonal mask; flash attention finds the example boundaries
    (``cu_seqlens``) from them only in a single row, so its rows are joined into one first.
    """
    decoder, _ = decoder_and_head(model)
    ids, positions = batch["input_ids"], batch["position_ids"]
    if str(getattr(model.config, "_attn_implementation", "")).startswith("flash_attention"):
        rows, width = ids.shape
        hidden = decoder(input_ids=ids.reshape(1, -1), position_ids=positions.reshape(1, -1), use_cache=False)
        return hidden.last_hidden_state.reshape(rows, width, -1)
    return decoder(input_ids=ids, position_ids=positions, use_cache=False).last_hidden_state


def supervised_rows(
    hidden: torch.Tensor, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows of ``hidden`` that predict response tokens, their targets and sequence ids."""
    mask = batch["targets"] != IGNORE_INDEX
    return hidden[mask], batch["targets"][mask], batch["sequence_index"][mask]


def retain_loss_from_hidden(
    hidden: torch.Tensor, head: Any, batch: dict[str, torch.Tensor], chunk_size: int
) -> torch.Tensor:
    """:func:`retain_loss` from the decoder's final hidden states."""
    rows, targets, _ = supervised_rows(hidden, batch)
    weights = torch.full_like(targets, 1.0, dtype=torch.float32) / batch["num_targets_norm"].clamp_min(1)
    return chunked_weighted_token_loss(rows, head, targets, weights, "cross_entropy", chunk_size)


def forget_term_from_hidden(
    hidden: torch.Tensor, head: Any, batch: dict[str, torch.Tensor], chunk_size: int, kind: str = "kl_uniform"
) -> torch.Tensor:
    """Mean over sequences of the mean per-token ``kind`` loss, from the decoder's final hidden states."""
    rows, targets, seq = supervised_rows(hidden, batch)
    weights = forget_token_weights(seq, float(batch["num_sequences_norm"].clamp_min(1)))
    return chunked_weighted_token_loss(rows, head, targets, weights, kind, chunk_size)


def retain_loss(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Cross-entropy on response tokens, normalised by the step's supervised-token count."""
    return retain_loss_from_hidden(decoder_hidden(model, batch), decoder_and_head(model)[1], batch, chunk_size)


def _forget_term(model: Any, batch: dict[str, torch.Tensor], chunk_size: int, kind: str) -> torch.Tensor:
    head = decoder_and_head(model)[1]
    return forget_term_from_hidden(decoder_hidden(model, batch), head, batch, chunk_size, kind)


def forget_loss(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Mean over sequences of the mean KL(p || uniform) over their response positions."""
    return _forget_term(model, batch, chunk_size, "kl_uniform")


def forget_cross_entropy(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Mean over sequences of the mean cross-entropy of their response tokens."""
    return _forget_term(model, batch, chunk_size, "cross_entropy")


def sequence_logprobs(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """``log π(y|x)`` of every response in the batch, in ascending sequence order."""
    rows, targets, seq = supervised_rows(decoder_hidden(model, batch), batch)
    token_nll = chunked_token_losses(rows, decoder_and_head(model)[1], targets, "cross_entropy", chunk_size)
    return -sequence_sums(token_nll, seq)[0]


def reference_logprobs(model: Any, reference: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """:func:`sequence_logprobs` under the frozen reference, without gradient.

    ``reference=None`` means the model itself with its LoRA adapters switched off, so LoRA runs
    need no second copy of the weights.
    """
    with torch.no_grad():
        if reference is not None:
            return sequence_logprobs(reference, batch, chunk_size)
        if not hasattr(model, "disable_adapter"):
            raise EUError("this objective needs a reference model; the module builds one unless LoRA is used")
        with model.disable_adapter():
            return sequence_logprobs(model, batch, chunk_size)


def token_mean_cross_entropy(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Cross-entropy summed over the batch's response tokens, divided by the step's supervised-token
    count, in the losses' own precision (a model's batch loss over all its answer tokens)."""
    rows, targets, _ = supervised_rows(decoder_hidden(model, batch), batch)
    token_nll = chunked_token_losses(rows, decoder_and_head(model)[1], targets, "cross_entropy", chunk_size)
    return token_nll.sum() / batch["num_targets_norm"].clamp_min(1)


def sequence_mean_cross_entropy(model: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """The mean token cross-entropy of every response in the batch, in ascending sequence order."""
    rows, targets, seq = supervised_rows(decoder_hidden(model, batch), batch)
    token_nll = chunked_token_losses(rows, decoder_and_head(model)[1], targets, "cross_entropy", chunk_size)
    sums, _ = sequence_sums(token_nll, seq)
    counts, _ = sequence_sums(torch.ones_like(token_nll), seq)
    return sums / counts


def _reference_hidden_and_head(model: Any, reference: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
    """The reference's final hidden states of ``batch`` (no gradient) and its head.

    ``reference=None`` means ``model`` with its LoRA adapters switched off (see :func:`reference_logprobs`).
    """
    if reference is not None:
        with torch.no_grad():
            return decoder_hidden(reference, batch), decoder_and_head(reference)[1]
    if not hasattr(model, "disable_adapter"):
        raise EUError("this objective needs a reference model; the module builds one unless LoRA is used")
    head = decoder_and_head(model)[1]

    def adapter_free_head(hidden: torch.Tensor) -> torch.Tensor:
        with model.disable_adapter():
            return head(hidden)

    with torch.no_grad(), model.disable_adapter():
        return decoder_hidden(model, batch), adapter_free_head


def token_positions_reference_kl(
    model: Any, reference: Any, batch: dict[str, torch.Tensor], chunk_size: int
) -> torch.Tensor:
    """``KL(π_ref || π_θ)`` summed over *every* position of the batch's examples (prompt and response,
    padding excluded), divided by the step's token count (``num_tokens_norm``).

    This is how Eraser and SKU keep (or, for SKU's expert, leave) the original model's behaviour:
    the KL of the next-token distributions at all positions of the text, not only the answer's.
    """
    if "num_tokens_norm" not in batch:
        raise EUError("this batch has no token count (num_tokens_norm); build it with eu.data's datamodule")
    hidden = decoder_hidden(model, batch)
    ref_hidden, ref_head = _reference_hidden_and_head(model, reference, batch)
    mask = batch["sequence_index"] >= 0
    head = decoder_and_head(model)[1]
    kl = chunked_reference_kl(hidden[mask], head, ref_hidden[mask], ref_head, chunk_size)
    return kl.sum() / batch["num_tokens_norm"].clamp_min(1)


def reference_kl(model: Any, reference: Any, batch: dict[str, torch.Tensor], chunk_size: int) -> torch.Tensor:
    """``KL(π_ref || π_θ)`` summed over the response positions, divided by the step's supervised-token count."""
    hidden = decoder_hidden(model, batch)
    ref_hidden, ref_head = _reference_hidden_and_head(model, reference, batch)
    mask = batch["targets"] != IGNORE_INDEX
    head = decoder_and_head(model)[1]
    kl = chunked_reference_kl(hidden[mask], head, ref_hidden[mask], ref_head, chunk_size)
    return kl.sum() / batch["num_targets_norm"].clamp_min(1)
