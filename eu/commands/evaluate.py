"""``eu evaluate`` and ``eu chat``: score models on the suites, or talk to one."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from eu.errors import EUError
from eu.models.checkpoint import load_model_and_tokenizer
from eu.models.precision import pick_device


def evaluate(
    model: list[str],
    out: str = "eval",
    suites: str = "harmful,jailbreak,domain",
    judge: str = "default",
    harmful_size: int = 100,
    jailbreak_size: int = 200,
    domain: str = "math",
    domain_size: int = 100,
    mmlu_size: int = 100,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    guard: bool = False,
    guard_threshold: float | None = None,
    seed: int = 0,
    split: str = "test",
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    lm_eval: str | None = None,
    lm_eval_limit: int | None = None,
    card: str | None = None,
) -> dict[str, Any]:
    """Evaluate one or more models; writes OUT/results.json, results.md (rates with 95% Wilson
    intervals), results.png and samples.md (responses per label, for a reader to check).

    Args:
        model: aliases, Hugging Face ids, folders or eu checkpoints (repeat --model for several).
        out: output folder.
        suites: comma-separated: harmful, jailbreak, domain[:math|medicine], mmlu (general
            capability: held-out MMLU questions, never in the relearning attack's benign set),
            prompts:FILE, templates:FILE, qa:FILE (scored by answer type: a number by the
            response's final answer, a term by its content words, ``choices`` by option
            likelihood; ``qa:FILE@number|text|choice|contains`` or a row's ``scorer`` to choose).
        judge: ``default`` (offline likelihood judge), ``classifier:ID`` or ``guard:ID``.
        harmful_size: harmful behaviours sampled (HarmBench standard + AdvBench).
        jailbreak_size: (template, behaviour) pairs sampled.
        domain: built-in domain of the ``domain`` suite.
        domain_size: held-out domain items.
        mmlu_size: held-out MMLU questions of the ``mmlu`` suite.
        max_new_tokens: generation budget per response (greedy).
        batch_size: prompts generated together (larger is faster while memory allows).
        guard: apply the KL guard (refuse when the model does not know the input).
        guard_threshold: guard threshold in nats; calibrated on the domain when omitted.
        seed: seed of the suite samples.
        split: the part of the built-in suites to draw from: ``test`` to report, ``validation``
            to choose settings (no item is in both).
        device: ``auto``, ``cpu`` or ``cuda``.
        dtype: weights of the evaluated models and the judge: ``auto`` (bfloat16 where the device
            computes it natively: a CUDA GPU with bf16, a CPU with avx512_bf16 or AMX; else
            float32), ``float32`` or ``bfloat16``.
        trust_remote_code: allow model repositories' own Python code (a checkpoint cannot allow it).
        lm_eval: lm-evaluation-harness tasks run on each loaded model, comma-separated: lm-eval's
            own (data from the Hub) or eu's offline ``mmlu_eu``; results as suites ``lm_eval:NAME``.
        lm_eval_limit: the first N documents of each lm-eval task (all when omitted).
        card: an ``eu export`` folder whose model card gets these results (``README.md``, or
            ``README.eu.md`` beside a README of your own).
    """
    from eu.eval.guard import KLGuard
    from eu.eval.judges import build_judge
    from eu.eval.judges.version import judge_version
    from eu.eval.report import markdown_table, model_result_path, save_model_result, write_results
    from eu.eval.runner import build_suites, run_suites, saved_result
    from eu.eval.splits import check_split
    from eu.io import output_dir
    from eu.models.precision import inference_dtype

    if isinstance(model, str):
        model = [model]
    if not model:
        raise EUError("give at least one --model")
    names = [s.strip() for s in suites.split(",") if s.strip()]
    dev = torch.device(pick_device(device))
    weights = inference_dtype(dev, dtype)  # a wrong --dtype stops here, before any output exists
    check_split(split, "--split")
    if lm_eval:
        from eu.eval.lm_eval_tasks import require_lm_eval

        require_lm_eval()  # a missing extra stops here, before any output exists
    if card:
        from eu.commands.card import check_card_folder

        check_card_folder(card)
    with output_dir(out, "evaluate", "--out") as folder:
        items = build_suites(
            names, harmful_size, jailbreak_size, domain, domain_size, seed, mmlu_size=mmlu_size, split=split
        )
        needs_judge = any(its and its[0]["harmful_request"] for its in items.values())
        scorer = None

        def judge_once() -> Any:
            nonlocal scorer
            scorer = scorer or build_judge(judge, dtype)
            return scorer

        print(f"eu: evaluating in {str(weights).removeprefix('torch.')} on {dev} (--dtype {dtype})", file=sys.stderr)
        # what a saved result depends on: the exact items (suites, sizes, seed, user files) and the scoring
        arguments = {
            "suites": names,
            "harmful_size": harmful_size,
            "jailbreak_size": jailbreak_size,
            "domain": domain,
            "domain_size": domain_size,
            "seed": seed,
            "split": split,
            "items_sha256": hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest(),
            "judge": judge,
            "judge_version": judge_version(judge) if needs_judge else None,
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "guard": guard,
            "guard_threshold": guard_threshold,
            "dtype": str(weights),
            "lm_eval": lm_eval,
            "lm_eval_limit": lm_eval_limit,
        }
        results = {}
        for name in model:
            model_args = {**arguments, "model": name, "model_files": model_files(name)}
            saved = saved_result(folder, name, model_args, judge_once)
            if saved is not None:
                print(
                    f"eu: {name}: finished earlier with the same arguments; reusing {model_result_path(folder, name)}",
                    file=sys.stderr,
                )
                results[name] = saved
                continue
            if needs_judge:
                judge_once()
            lm, tokenizer = load_model_and_tokenizer(name, trust_remote_code)
            lm.to(dev, weights).eval()
            kl_guard = None
            if guard:
                kl_guard = (
                    KLGuard(guard_threshold)
                    if guard_threshold is not None
                    else KLGuard.calibrate(lm, tokenizer, domain)
                )
                print(f"eu: guard threshold for {name}: {kl_guard.threshold:.3f} nats", file=sys.stderr)
            results[name] = run_suites(lm, tokenizer, items, scorer, max_new_tokens, batch_size, kl_guard)
            if lm_eval:
                from eu.eval.lm_eval_tasks import run_lm_eval

                results[name] |= run_lm_eval(lm, tokenizer, lm_eval, lm_eval_limit, batch_size)
            del lm
            save_model_result(folder, name, model_args, results[name])
        write_results(folder, results)
    print(markdown_table(results))
    print(f"eu: wrote {Path(out) / 'results.json'}, results.md, results.png, samples.md", file=sys.stderr)
    if card:
        from eu.commands.card import refresh_from_evaluate

        refresh_from_evaluate(card, model, results, arguments)
    return results


def model_files(model: str) -> list[list[Any]] | None:
    """Size and modification time of a local model file or of every file in a model folder
    (``None`` for aliases and hub ids), so that a retrained checkpoint is not taken for the old one."""
    path = Path(model)
    if path.is_file():
        return [[path.name, path.stat().st_size, path.stat().st_mtime_ns]]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    return None


def chat(
    model: str,
    guard: bool = False,
    guard_threshold: float | None = None,
    max_new_tokens: int = 128,
    domain: str = "math",
    trust_remote_code: bool = False,
) -> None:
    """Talk to a model or checkpoint on the terminal (an empty line or Ctrl-D ends).

    Args:
        model: alias, Hugging Face id, folder or eu checkpoint.
        guard: refuse inputs the model does not know (KL guard).
        guard_threshold: guard threshold in nats; calibrated on ``domain`` when omitted.
        max_new_tokens: response length limit.
        domain: domain used to calibrate the guard.
        trust_remote_code: allow the model repository's own Python code (a checkpoint cannot allow it).
    """
    from eu.eval.guard import KLGuard
    from eu.generation import generate_from_ids
    from eu.prompts import chat_prompt_ids

    lm, tokenizer = load_model_and_tokenizer(model, trust_remote_code)
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
