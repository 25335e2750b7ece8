"""Logits exactly as the model computes them, from its final hidden states.

eu's token losses project hidden states to logits a chunk at a time, so they cannot call the
model's ``forward``. Some families post-process the projection there: Gemma-2/3 soft-cap the
final logits, Cohere multiplies them by ``logit_scale``, Granite divides them by
``logits_scaling``. :func:`output_head` applies the same transform; :func:`check_logit_path`
compares it with ``model(...).logits`` once, so a family with a transform eu does not know is
refused instead of trained on the wrong distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from eu.errors import EUError

Head = Callable[[torch.Tensor], torch.Tensor]


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def final_logit_transform(config: Any) -> Head | None:
    """The model family's transform of the output projection, or ``None`` when there is none."""
    config = _text_config(config)
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        return lambda logits: torch.tanh(logits / cap) * cap
    scale = getattr(config, "logit_scale", None)
    if scale is not None and scale != 1.0:
        return lambda logits: logits * scale
    divisor = getattr(config, "logits_scaling", None)
    if divisor is not None and divisor != 1.0:
        return lambda logits: logits / divisor
    return None


class OutputHead(torch.nn.Module):
    """The output projection followed by the family's final-logit transform."""

    def __init__(self, projection: torch.nn.Module, transform: Head | None) -> None:
        super().__init__()
        self.projection = projection
        self.transform = transform

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.projection(hidden)
        return logits if self.transform is None else self.transform(logits)


def output_head(model: Any) -> Head:
    """Hidden states to logits as ``model.forward`` computes them."""
    projection = model.get_output_embeddings()
    transform = final_logit_transform(model.config)
    return projection if transform is None else OutputHead(projection, transform)


@torch.no_grad()
def check_logit_path(model: Any, atol: float = 1e-3) -> None:
    """Refuse a model whose ``forward`` logits differ from decoder + :func:`output_head`.

    Runs one forward pass over a few tokens; skipped for weights that are not materialised yet.
    """
    if any(p.device.type == "meta" for p in model.parameters()):
        return
    device = next(model.parameters()).device
    ids = torch.arange(3, 11, device=device).unsqueeze(0) % _text_config(model.config).vocab_size
    was_training = model.training
    model.eval()
    try:
        expected = model(input_ids=ids, use_cache=False).logits.float()
        hidden = model.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
        ours = output_head(model)(hidden).float()
    finally:
        model.train(was_training)
    scale = expected.abs().max().clamp_min(1.0)
    if not torch.allclose(ours, expected, atol=atol * float(scale), rtol=0):
        gap = float((ours - expected).abs().max())
        raise EUError(
            f"eu cannot reproduce the logits of {type(model).__name__} from its hidden states (max gap {gap:.3g}): "
            "its forward applies a final-logit transform eu does not know, so the losses would be wrong. "
            "Please report the model family"
        )
