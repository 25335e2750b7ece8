"""``eu evaluate`` and ``eu chat``: score models on the suites, or talk to one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from eu.errors import EUError


def load_any(model: str) -> tuple[Any, Any]:
    """A model and tokenizer from an alias, Hugging Face id, folder, or an eu ``.ckpt``."""
    if model.endswith(".ckpt"):
        from eu.export import model_from_checkpoint

        return model_from_checkpoint(model)
    from eu.data.chat import require_chat_template
    from eu.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(model)
    require_chat_template(tokenizer, model)
    return load_model(model), tokenizer


def evaluate(
    model: list[str],
    out: str = "eval",
    suites: str = "harmful,jailbreak,domain",
    judge: str = "default",
    harmful_size: int = 100,
    jailbreak_size: int = 200,
    domain: str = "math",
    domain_size: int = 100,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    guard: bool = False,
    guard_threshold: float | None = None,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Evaluate one or more models; writes OUT/results.json, results.md and results.png.

    Args:
        model: aliases, Hugging Face ids, folders or eu checkpoints (repeat --model for several).
        out: output folder.
        suites: comma-separated: harmful, jailbreak, domain[:math|medicine], prompts:FILE,
            templates:FILE, qa:FILE.
        judge: ``default`` (offline likelihood judge), ``classifier:ID`` or ``guard:ID``.
        harmful_size: harmful behaviours sampled (HarmBench standard + AdvBench).
        jailbreak_size: (template, behaviour) pairs sampled.
        domain: built-in domain of the ``domain`` suite.
        domain_size: held-out domain items.
        max_new_tokens: generation budget per response (greedy).
        batch_size: prompts generated together.
        guard: apply the KL guard (refuse when the model does not know the input).
        guard_threshold: guard threshold in nats; calibrated on the domain when omitted.
        seed: seed of the suite samples.
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    from eu.eval.guard import KLGuard
    from eu.eval.judge import build_judge
    from eu.eval.report import markdown_table, write_results
    from eu.eval.runner import build_suites, run_suites

    if isinstance(model, str):
        model = [model]
    if not model:
        raise EUError("give at least one --model")
    names = [s.strip() for s in suites.split(",") if s.strip()]
    items = build_suites(names, harmful_size, jailbreak_size, domain, domain_size, seed)
    needs_judge = any(its and its[0]["harmful_request"] for its in items.values())
    scorer = build_judge(judge) if needs_judge else None
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    results = {}
    for name in model:
        lm, tokenizer = load_any(name)
        lm.to(dev).eval()
        kl_guard = None
        if guard:
            kl_guard = (
                KLGuard(guard_threshold) if guard_threshold is not None else KLGuard.calibrate(lm, tokenizer, domain)
            )
            print(f"eu: guard threshold for {name}: {kl_guard.threshold:.3f} nats", file=sys.stderr)
        results[name] = run_suites(lm, tokenizer, items, scorer, max_new_tokens, batch_size, kl_guard)
        del lm
    write_results(out, results)
    print(markdown_table(results))
    print(f"eu: wrote {Path(out) / 'results.json'}, results.md, results.png", file=sys.stderr)
    return results


def chat(
    model: str,
    guard: bool = False,
    guard_threshold: float | None = None,
    max_new_tokens: int = 128,
    domain: str = "math",
) -> None:
    """Talk to a model or checkpoint on the terminal (an empty line or Ctrl-D ends).

    Args:
        model: alias, Hugging Face id, folder or eu checkpoint.
        guard: refuse inputs the model does not know (KL guard).
        guard_threshold: guard threshold in nats; calibrated on ``domain`` when omitted.
        max_new_tokens: response length limit.
        domain: domain used to calibrate the guard.
    """
    from eu.eval.generate import chat_prompt_ids, generate_from_ids
    from eu.eval.guard import KLGuard

    lm, tokenizer = load_any(model)
    lm.eval()
    kl_guard = None
    if guard:
        kl_guard = KLGuard(guard_threshold) if guard_threshold is not None else KLGuard.calibrate(lm, tokenizer, domain)
    for line in sys.stdin:
        text = line.strip()
        if not text:
            break
        prompt = chat_prompt_ids(tokenizer, text)
        response = generate_from_ids(lm, tokenizer, [prompt], max_new_tokens)[0]
        reply = tokenizer.decode(response, skip_special_tokens=True).strip()
        if kl_guard is not None:
            verdict = kl_guard.check(lm, prompt, response)
            if verdict["guard_refused"]:
                reply = f"{kl_guard.refusal}  [guard: Δ={verdict['guard_delta']:.2f} < {kl_guard.threshold:.2f}]"
        print(reply, flush=True)
