"""Run evaluation suites on a model: generate, judge, score, and gather across processes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from eu.domains import SCORERS, is_correct
from eu.errors import EUError
from eu.eval.entropy import entropy_fraction, response_kl_to_uniform
from eu.eval.items import EvalItem, SuiteResult
from eu.eval.metrics import AttackSuccessRate, DomainAccuracy, EntropyFraction, Rate, RefusalRate
from eu.eval.multiple_choice import score_choices
from eu.eval.report import (
    holdout_key,
    path_suffix,
    read_model_result,
    save_model_result,
    unique_names,
)
from eu.eval.splits import check_split
from eu.eval.suites import (
    domain_suite,
    harmful_suite,
    jailbreak_suite,
    medical_harmful_suite,
    mmlu_suite,
    offdomain_suite,
    user_domain_suite,
    user_prompts_suite,
    user_templates_suite,
)
from eu.generation import generate_from_ids
from eu.progress import Progress
from eu.prompts import chat_prompt_ids
from eu.refusal import is_refusal
from eu.settings import change_line, changed

FILE_SUITES = ("prompts", "templates", "qa")
"""Suite kinds that read a user's file."""


def build_suites(
    names: list[str],
    harmful_size: int | None = 100,
    jailbreak_size: int = 200,
    domain: str = "math",
    domain_size: int | None = 100,
    seed: int = 0,
    max_template_chars: int | None = 3000,
    offdomain_size: int | None = None,
    mmlu_size: int | None = 100,
    split: str = "test",
) -> dict[str, list[EvalItem]]:
    """Items per suite. Names: ``harmful``, ``jailbreak``, ``domain`` (or ``domain:NAME``),
    ``offdomain``, ``mmlu`` (held-out general capability), ``medical-harmful`` (harmful requests
    inside the medical domain, all of the split), ``prompts:FILE.jsonl``,
    ``templates:FILE``, ``qa:FILE.jsonl`` (``qa:FILE.jsonl@SCORER`` to score every row one way);
    a file's suite is named by its kind and stem (:func:`file_suite_names`). The built-in suites
    draw from ``split`` (``validation`` to choose settings, ``test`` to report); a user's file is
    used whole."""
    check_split(split)
    suites: dict[str, list[EvalItem]] = {}
    named = file_suite_names(names)
    for name in names:
        kind, _, arg = name.partition(":")
        if kind == "harmful":
            suites["harmful"] = harmful_suite(harmful_size, seed, split)
        elif kind == "jailbreak":
            suites["jailbreak"] = jailbreak_suite(jailbreak_size, seed, max_template_chars, split=split)
        elif kind == "domain":
            suites["domain"] = domain_suite(arg or domain, domain_size, split)
        elif kind == "offdomain":
            suites["offdomain"] = offdomain_suite(offdomain_size)
        elif kind == "mmlu":
            suites["mmlu"] = mmlu_suite(mmlu_size, seed, split)
        elif kind == "medical-harmful":
            suites["medical-harmful"] = medical_harmful_suite(None, split)
        elif kind == "prompts":
            suites[named[name]] = user_prompts_suite(arg)
        elif kind == "templates":
            behaviours = [it["behaviour"] for it in harmful_suite(None, seed, split)]
            suites[named[name]] = user_templates_suite(arg, behaviours, jailbreak_size, seed)
        elif kind == "qa":
            suites[named[name]] = user_domain_suite(*qa_file_and_scorer(arg))
        else:
            raise EUError(
                f"unknown suite {name!r}; use harmful, jailbreak, domain[:NAME], offdomain, mmlu, medical-harmful, "
                "prompts:F, templates:F, qa:F"
            )
    return suites


def qa_file_and_scorer(arg: str) -> tuple[str, str]:
    """``FILE.jsonl@number`` → (``FILE.jsonl``, ``number``); a path without a scorer suffix scores ``auto``."""
    path, at, scorer = arg.rpartition("@")
    return (path, scorer) if at and scorer in SCORERS else (arg, "auto")


def file_suite_names(names: list[str]) -> dict[str, str]:
    """Table names of the file suites among ``names``: ``prompts:data/harm1.jsonl`` → ``prompts:harm1``,
    with more of the path (``prompts:a/harm1``) where two files of one kind share a stem."""
    candidates = {}
    for name in names:
        kind, _, arg = name.partition(":")
        if kind in FILE_SUITES:
            arg = qa_file_and_scorer(arg)[0] if kind == "qa" else arg
            depth = len(Path(arg).parts)
            candidates[name] = [f"{kind}:{path_suffix(arg, n, stem=True)}" for n in range(1, depth + 1)]
    return unique_names(candidates)


def scoring(items: list[dict[str, Any]]) -> str:
    """How a suite is scored: ``judge`` (harmful requests), ``answer`` (domain items),
    ``entropy`` (off-domain requests: mean response entropy as a fraction of ``log V``) or
    ``choice`` (multiple choice: the most likely of the item's ``choices``, nothing generated)."""
    if not items:
        return "judge"
    return items[0].get("score") or ("judge" if items[0]["harmful_request"] else "answer")


def needs_judge(suites: dict[str, list[dict[str, Any]]]) -> bool:
    """Whether any (non-empty) suite is scored by a judge."""
    return any(items and scoring(items) == "judge" for items in suites.values())


def generate_responses(
    model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int, batch_size: int, desc: str = "generate"
) -> list[tuple[list[int], list[int]]]:
    """Greedy ``(prompt_ids, response_ids)`` per prompt; batches are formed by length to save padding."""
    encoded = [chat_prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out: list[Any] = [None] * len(prompts)
    with Progress(len(prompts), desc, "prompts") as progress:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            for i, resp in zip(
                idx, generate_from_ids(model, tokenizer, [encoded[i] for i in idx], max_new_tokens), strict=True
            ):
                out[i] = (encoded[i], resp)
            progress.update(len(idx))
    return out


def _gather(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return records
    parts: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, records)
    return sorted((r for p in parts for r in p), key=lambda r: r["index"])


def _score_answers(
    model: Any, tokenizer: Any, records: list[dict[str, Any]], batch_size: int, device: torch.device
) -> dict[str, float]:
    """Multiple-choice items (with ``choices``) by option likelihood, the others by their domain's answer
    check; a generated answer also counts as ``answered`` unless it refuses (``answer_rate``: a model
    that refuses harmful requests inside its domain must still answer the benign ones)."""
    acc, answered = DomainAccuracy().to(device), Rate().to(device)
    score_choices(model, tokenizer, records, batch_size)
    for r in records:
        if not r.get("choices"):
            r["correct"] = is_correct(r.get("domain", "math"), r["response"], r)
            r["answered"] = not is_refusal(r["response"])
    acc.update(sum(r["correct"] for r in records), len(records))
    summary = {"accuracy": float(acc.compute())}
    generated = [r for r in records if "answered" in r]
    if generated:
        answered.update(sum(r["answered"] for r in generated), len(generated))
        summary["answer_rate"] = float(answered.compute())
    return summary


def accuracy_by(records: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Accuracy per value of ``key`` (e.g. ``holdout``: item, phrasing, operands, family), over gathered records."""
    groups: dict[str, list[bool]] = {}
    for r in records:
        groups.setdefault(str(r.get(key)), []).append(bool(r["correct"]))
    return {group: sum(hits) / len(hits) for group, hits in groups.items()}


def _score_entropy(
    model: Any, records: list[dict[str, Any]], pairs: list[Any], device: torch.device
) -> dict[str, float]:
    mean = EntropyFraction().to(device)
    for r, (prompt_ids, resp_ids) in zip(records, pairs, strict=True):
        r["kl_to_uniform"] = response_kl_to_uniform(model, prompt_ids, resp_ids)
        r["entropy_frac"] = entropy_fraction(model, r["kl_to_uniform"])
    mean.update(sum(r["entropy_frac"] for r in records), len(records))
    return {"entropy_frac": float(mean.compute())}


def _score_judged(judge: Any, records: list[dict[str, Any]], device: torch.device) -> dict[str, float]:
    """Label every response (``asr``: the share judged ``unsafe``, i.e. complied with) and flag the
    compliant ones that give specific steps, quantities, materials or targets (``actionable_rate``)."""
    from eu.eval.judges import JudgeItem
    from eu.eval.judges.actionable import actionable_flags

    items = [JudgeItem(r["prompt"], r["response"], True) for r in records]
    labels = judge.judge(items) if records else []
    flags = actionable_flags(items) if records else []
    asr, refusal, actionable = AttackSuccessRate().to(device), RefusalRate().to(device), Rate().to(device)
    for r, label, flag in zip(records, labels, flags, strict=True):
        r["label"], r["actionable"] = label, bool(flag) and label == "unsafe"
    asr.update(sum(label == "unsafe" for label in labels), len(labels))
    refusal.update(sum(label == "refusal" for label in labels), len(labels))
    actionable.update(sum(r["actionable"] for r in records), len(records))
    summary = {"asr": float(asr.compute()), "refusal_rate": float(refusal.compute())}
    return {**summary, "actionable_rate": float(actionable.compute())}


def rejudge(results: dict[str, dict[str, Any]], judge: Any) -> dict[str, dict[str, Any]]:
    """``results`` (``{suite: result}`` of :func:`run_suites`) with every judged suite's saved
    responses labelled again by ``judge``; nothing is generated."""
    out = dict(results)
    for name, result in results.items():
        records = [dict(r) for r in result.get("records", [])]
        if records and scoring(records) == "judge":
            out[name] = {**result, **_score_judged(judge, records, torch.device("cpu")), "records": records}
    return out


def saved_result(
    folder: str | Path, key: str, arguments: dict[str, Any], judge: Callable[[], Any], suites_field: str | None = None
) -> dict[str, Any] | None:
    """The result saved in ``folder`` under ``key`` for ``arguments``, else ``None``.

    A result saved under the same arguments but another ``judge_version`` keeps its generations:
    its judged suites are labelled again by ``judge()`` and it is saved anew. ``suites_field``
    names the key that holds ``{suite: result}`` when the saved result is not that mapping itself.
    """
    record = read_model_result(folder, key)
    if record is None:
        return None
    changes = changed(record.get("arguments") or {}, json.loads(json.dumps(arguments)))
    if not changes:
        return record["results"]
    if any(name != "judge_version" for name, _, _ in changes):
        lines = "; ".join(change_line(*change) for change in changes)
        print(f"eu: {key}: evaluated before with other settings ({lines}); evaluating again", file=sys.stderr)
        return None
    stale = record["results"]
    print(f"eu: {key}: the judge changed since it was evaluated; judging its saved responses again", file=sys.stderr)
    if suites_field is None:
        fresh = rejudge(stale, judge())
    else:
        fresh = {**stale, suites_field: rejudge(stale[suites_field], judge())}
    save_model_result(folder, key, arguments, fresh)
    return fresh


def run_suites(
    model: Any,
    tokenizer: Any,
    suites: dict[str, list[dict[str, Any]]],
    judge: Any = None,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    guard: Any = None,
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, SuiteResult]:
    """Evaluate every suite; each rank takes items ``rank::world_size``, metrics sum over ranks."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results = {}
    try:
        for name, items in suites.items():
            mine = [(i, it) for i, it in enumerate(items) if i % world_size == rank]
            if scoring(items) == "choice":  # option likelihood alone: nothing is generated
                records = [{**item, "index": index} for index, item in mine]
                summary = _score_answers(model, tokenizer, records, batch_size, device)
                all_records = _gather(records)
                results[name] = {"n": len(all_records), **summary, "records": all_records}
                continue
            prompts = [it["prompt"] for _, it in mine]
            pairs = generate_responses(model, tokenizer, prompts, max_new_tokens, batch_size, f"evaluate {name}")
            records = []
            for (index, item), (prompt_ids, resp_ids) in zip(mine, pairs, strict=True):
                record = {
                    **item,
                    "index": index,
                    "response": tokenizer.decode(resp_ids, skip_special_tokens=True).strip(),
                }
                if guard is not None:
                    record.update(guard.check(model, prompt_ids, resp_ids))
                    if record["guard_refused"]:
                        record["response"] = guard.refusal
                records.append(record)
            how = scoring(items)
            if how == "answer":
                summary = _score_answers(model, tokenizer, records, batch_size, device)
            elif how == "entropy":
                summary = _score_entropy(model, records, pairs, device)
            else:
                if judge is None:
                    raise EUError(f"suite {name} needs a judge")
                summary = _score_judged(judge, records, device)
            all_records = _gather(records)
            group = holdout_key(all_records) if how == "answer" else None
            if group:
                summary["by_holdout"] = accuracy_by(all_records, group)
            results[name] = {"n": len(all_records), **summary, "records": all_records}
    finally:
        model.train(was_training)
    return results
