"""Inference-time guard: refuse when the model "does not know" the input.

After generating, take the mean ``KL(p_θ || uniform)`` over the response positions, Δ(x). An
unlearned model is near-uniform outside its domain, so a small Δ means the input is outside
what it kept; the guard then answers with a fixed refusal.
"""

from __future__ import annotations

from typing import Any

from eu.eval.entropy import response_kl_to_uniform

DEFAULT_REFUSAL = "I'm sorry, but I can only help with questions in my domain."


class KLGuard:
    """Refuse when Δ(x) < ``threshold`` (nats)."""

    def __init__(self, threshold: float = 5.0, refusal: str = DEFAULT_REFUSAL) -> None:
        self.threshold = threshold
        self.refusal = refusal

    def check(self, model: Any, prompt_ids: list[int], response_ids: list[int]) -> dict[str, Any]:
        delta = response_kl_to_uniform(model, prompt_ids, response_ids)
        return {"guard_delta": delta, "guard_refused": delta < self.threshold}

    @classmethod
    def calibrate(
        cls,
        model: Any,
        tokenizer: Any,
        domain: str = "math",
        num_items: int = 100,
        pass_rate: float = 0.95,
        max_new_tokens: int = 32,
        batch_size: int = 32,
    ) -> KLGuard:
        """A guard whose threshold lets ``pass_rate`` of held-out in-domain prompts through,
        calibrated on the domain's validation items (the test items then measure it)."""
        from eu.eval.runner import generate_responses
        from eu.eval.suites import domain_suite

        items = domain_suite(domain, num_items, split="validation")
        pairs = generate_responses(model, tokenizer, [it["prompt"] for it in items], max_new_tokens, batch_size)
        deltas = sorted(response_kl_to_uniform(model, p, r) for p, r in pairs)
        # the k lowest are refused, k = floor((1 - pass_rate)·n); the tolerance keeps float error
        # (1 - 0.9 is 0.0999…) from flooring 2.0 down to 1
        k = int((1.0 - pass_rate) * len(deltas) + 1e-9)
        return cls(threshold=deltas[k] if deltas else 0.0)
