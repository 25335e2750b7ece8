"""Benchmark: eu's packed, chunked training step against the authors' padded step.

    python benchmarks/train_step.py [--model smollm2-135m-instruct] [--steps 5] [--warmup 2] [--precision auto]

(a) *reference*: what the authors' script (``run_exclusive_unlearning.py`` in
    melatg0/ExclusiveUnlearning) does at every step, in float32 as they ship it: a right-padded
    retain batch through the model with ``labels`` (the model's own cross-entropy over full
    logits), the forget batch rendered and tokenized now, padded, run with ``use_cache=False``,
    and the masked KL to uniform over its full-vocabulary logits; AdamW.
(b) *eu*: pre-tokenized examples packed into rows (``position_ids`` restart per example) and
    the chunked losses that project only response positions, a chunk at a time; in float32, in
    eu's default precision for the device (``--precision auto``: bf16-mixed where bf16 is
    native), and with bfloat16 weights and float32 master weights (``bf16-true`` with
    :class:`eu.optim.MasterWeightAdamW`) where bf16 is native.

With ``--robust sam adversarial``, eu as shipped also runs with each relearning-resistant forget
gradient (``model.robust``, docs/tamper_resistance.md), so their cost per step shows beside plain EU.

Every variant sees the same examples at every step, in its own process on the same machine.
Printed: medians over the timed steps, each variant's speed-up over the reference (as shipped
against as shipped, and at equal precision), peak memory, packing efficiency, and generation
throughput batched against one at a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

from eu.data.datamodule import PackedSteps, StreamConfig, UnlearningDataModule
from eu.data.sampler import SampleSettings
from eu.data.sources import SELF_GENERATED
from eu.models import compile_decoder, load_model, sampling_dtype
from eu.models.precision import default_precision, native_bf16
from eu.objectives import ExclusiveUnlearning
from eu.objectives.losses import IGNORE_INDEX
from eu.objectives.robust import RobustOptions, robust_losses
from eu.objectives.terms import decoder_and_head, forget_term_from_hidden, retain_loss_from_hidden
from eu.optim import MasterWeightAdamW, use_fused_kernel
from eu.prompts import encode_record, load_chat_tokenizer

from naive_losses import naive_forget_loss, naive_retain_loss
from peak_memory import PeakMemory


def forget_sample_settings(args: argparse.Namespace) -> SampleSettings:
    """How the forget corpus is sampled: as the quickstart samples it (all pairs in one batch)."""
    return SampleSettings(num_pairs=args.forget_pairs, batch_size=args.forget_pairs)


def _datamodule(args: argparse.Namespace) -> UnlearningDataModule:
    dm = UnlearningDataModule(
        StreamConfig(path=args.retain, block_length=512, examples_per_step=args.examples),
        StreamConfig(path=args.forget, block_length=256, examples_per_step=args.examples),
        sample=forget_sample_settings(args),
    )
    dtype = sampling_dtype()  # the corpus the parent sampled, not a float32 one sampled here
    dm.connect(load_chat_tokenizer(args.model), args.model, lambda: load_model(args.model, dtype), dtype)
    dm.setup()
    return dm


def _reference_batch(tokenizer: Any, records: list[Any], max_length: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch with labels on response tokens, tokenized now (as the reference does)."""
    encoded = [encode_record(tokenizer, r) for r in records]
    width = min(max(len(ids) for ids, _ in encoded), max_length)
    input_ids = torch.full((len(records), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(records), width), dtype=torch.long)
    labels = torch.full((len(records), width), IGNORE_INDEX, dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(encoded):
        ids = ids[:width]
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def _reference_loss(
    model: Any, retain: dict[str, torch.Tensor], forget: dict[str, torch.Tensor], lam: float
) -> torch.Tensor:
    """The authors' step: the retain batch with ``labels`` (the model's own loss), the forget batch without a cache."""
    retain_loss = model(**retain).loss
    f_logits = model(input_ids=forget["input_ids"], attention_mask=forget["attention_mask"], use_cache=False).logits
    forget_loss = naive_forget_loss(f_logits[:, :-1], forget["labels"][:, 1:] != IGNORE_INDEX)
    return lam * forget_loss + (1 - lam) * retain_loss


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """Time ``args.variant`` for warm-up + timed steps in this process."""
    from eu.data.records import read_records
    from eu.models import load_model, load_tokenizer

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dm = _datamodule(args)
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model).to(device).train()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    if args.precision == "bf16-true":
        model = model.to(torch.bfloat16)
        optimizer: torch.optim.Optimizer = MasterWeightAdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
        if args.variant == "eu":  # as eu fit configures it; the reference keeps torch's foreach default
            use_fused_kernel(optimizer)
    if args.compile:
        compile_decoder(model)
    objective = ExclusiveUnlearning()
    steps = iter(PackedSteps(dm, 0, 1, 0))
    # the raw records behind each planned step, for the reference path
    forget_source = args.forget
    if forget_source == SELF_GENERATED:
        from eu.data.self_generated import corpus_path

        forget_source = str(corpus_path(args.model, forget_sample_settings(args), sampling_dtype()))
    records = {"retain": read_records(args.retain), "forget": read_records(forget_source)}
    planners = {n: dm.planner(n, 1).steps(0) for n in ("retain", "forget")}
    order = {n: _train_order(dm, n, records[n]) for n in ("retain", "forget")}
    times, supervised, real, positions = [], [], [], []
    profiler, top_ops = None, []
    timed = range(args.warmup, args.warmup + args.steps)
    memory_step = args.warmup + args.steps  # untimed: returning freed memory to the OS first slows it
    for step in range(memory_step + 1 + (1 if args.profile else 0)):
        packed = next(steps)
        plan = {n: next(planners[n]).examples(0) for n in ("retain", "forget")}
        meter = None
        if step == memory_step:
            _return_free_memory()
            meter = PeakMemory(device).__enter__()
        if step == memory_step + 1:  # one extra, untimed step under the profiler
            profiler = torch.profiler.profile().__enter__()
        _sync(device)
        start = time.perf_counter()
        if args.variant == "eu":
            packed = _to(packed, device)
            last_batches = packed
            with autocast:
                if args.robust:
                    options = RobustOptions(args.robust, args.robust_rho, args.robust_steps, args.robust_lr)
                    loss = robust_losses(objective, model, packed, options)["loss/total"]
                else:
                    loss = objective(model, packed)["loss/total"]
            n_sup = sum(int((b["targets"] != IGNORE_INDEX).sum()) for b in packed.values())
            n_real = sum(int((b["sequence_index"] >= 0).sum()) for b in packed.values())
            n_pos = sum(b["input_ids"].numel() for b in packed.values())
        else:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            batches = {
                n: _reference_batch(tokenizer, [order[n][i] for i in plan[n]], 512 if n == "retain" else 256, pad)
                for n in ("retain", "forget")
            }
            batches = _to(batches, device)
            last_batches = batches
            with autocast:
                loss = _reference_loss(model, batches["retain"], batches["forget"], objective.forget_weight)
            n_sup = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in batches.values())
            n_real = sum(int(b["attention_mask"].sum()) for b in batches.values())
            n_pos = sum(b["input_ids"].numel() for b in batches.values())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        elapsed = time.perf_counter() - start
        if meter is not None:
            meter.__exit__()
            step_peak = meter.growth_mib
        if profiler is not None:
            profiler.__exit__(None, None, None)
            top_ops = _top_ops(profiler, args.profile)
            break
        if step == 0:
            first_step = elapsed
        if step in timed:
            times.append(elapsed)
            supervised.append(n_sup)
            real.append(n_real)
            positions.append(n_pos)
    n_params = sum(p.numel() for p in model.parameters())
    tokens_per_s = statistics.median(r / t for r, t in zip(real, times, strict=True))
    peak = PEAK_FLOPS.get(torch.cuda.get_device_name(device) if device.type == "cuda" else "", None)
    return {
        "variant": args.variant,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "params": n_params,
        "tokens_per_s": tokens_per_s,
        "mfu": 6 * n_params * tokens_per_s / peak if peak else None,
        "median_step_s": statistics.median(times),
        "first_step_s": first_step,
        "supervised_tokens_per_s": statistics.median(s / t for s, t in zip(supervised, times, strict=True)),
        "packing_efficiency": sum(real) / sum(positions),
        "supervised_per_step": statistics.median(supervised),
        "step_peak_mib": step_peak,
        "top_ops": top_ops,
        "loss_peak_mib": _loss_peak(model, args.variant, last_batches, objective.forget_weight, device, autocast),
    }


def _return_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc), so the next step's resident-set growth is its peak."""
    import ctypes
    import ctypes.util

    if torch.cuda.is_available() or not ctypes.util.find_library("c"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _top_ops(profiler: Any, n: int) -> list[tuple[str, float]]:
    """The ``n`` operators with the largest share of self time (CPU, or CUDA when there is one)."""
    events = profiler.key_averages()
    attr = "self_device_time_total" if any(getattr(e, "self_device_time_total", 0) for e in events) else None
    attr = attr or "self_cpu_time_total"
    total = sum(getattr(e, attr) for e in events) or 1.0
    ranked = sorted(events, key=lambda e: getattr(e, attr), reverse=True)[:n]
    return [(e.key, getattr(e, attr) / total) for e in ranked]


def _train_order(dm: UnlearningDataModule, name: str, records: list[Any]) -> list[Any]:
    """Records in the order of the datamodule's training split (the planner's indices)."""
    from eu.data.datamodule import STREAMS
    from eu.data.mixing import epoch_permutation

    n_val = dm.stream_configs[name].val_examples
    perm = epoch_permutation(len(records), dm.seed, STREAMS.index(name), -1)
    return [records[i] for i in perm[n_val:]]


# dense bf16 tensor-core peaks, for model FLOPs utilisation
PEAK_FLOPS = {"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H200": 989e12, "NVIDIA A100-SXM4-80GB": 312e12}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to(batches: dict[str, dict[str, torch.Tensor]], device: torch.device) -> dict[str, dict[str, torch.Tensor]]:
    return {n: {k: v.to(device, non_blocking=True) for k, v in b.items()} for n, b in batches.items()}


def _loss_peak(
    model: Any,
    variant: str,
    batches: dict[str, dict[str, torch.Tensor]],
    lam: float,
    device: torch.device,
    autocast: Any,
) -> float:
    """Peak memory of the loss computation alone: from final hidden states to loss and back."""
    decoder, head = decoder_and_head(model)
    with torch.no_grad(), autocast:
        hidden = {
            n: decoder(
                **{k: v for k, v in b.items() if k in ("input_ids", "attention_mask", "position_ids")}, use_cache=False
            ).last_hidden_state
            for n, b in batches.items()
        }
    hidden = {n: h.detach().requires_grad_(True) for n, h in hidden.items()}
    with PeakMemory(device) as meter, autocast:
        if variant == "reference":
            r = naive_retain_loss(head(hidden["retain"])[:, :-1], batches["retain"]["labels"][:, 1:])
            f_mask = batches["forget"]["labels"][:, 1:] != IGNORE_INDEX
            f = naive_forget_loss(head(hidden["forget"])[:, :-1], f_mask)
        else:
            r = retain_loss_from_hidden(hidden["retain"], head, batches["retain"], 1024)
            f = forget_term_from_hidden(hidden["forget"], head, batches["forget"], 1024)
        (lam * f + (1 - lam) * r).backward()
    return meter.growth_mib


def generation_throughput(
    model_name: str, pairs: int, batch: int, max_new_tokens: int, dtype: torch.dtype = torch.float32
) -> dict[str, float]:
    """Seconds per generated answer in ``dtype``: batched against one at a time (greedy, same prompts)."""
    from eu.domains import domain_items
    from eu.generation import generate_from_ids
    from eu.models import load_model, load_tokenizer
    from eu.prompts import chat_prompt_ids

    tokenizer = load_tokenizer(model_name)
    model = load_model(model_name).to(dtype).eval()
    prompts = [chat_prompt_ids(tokenizer, it["user_text"]) for it in domain_items("math-basic", "test")[:pairs]]
    generate_from_ids(model, tokenizer, prompts[:batch], 2)  # warm-up
    start = time.perf_counter()
    for i in range(0, pairs, batch):
        generate_from_ids(model, tokenizer, prompts[i : i + batch], max_new_tokens)
    batched = (time.perf_counter() - start) / pairs
    start = time.perf_counter()
    for p in prompts:
        generate_from_ids(model, tokenizer, [p], max_new_tokens)
    single = (time.perf_counter() - start) / pairs
    return {"batched_s_per_item": batched, "single_s_per_item": single, "speedup": single / batched}


def _spawn(
    args: argparse.Namespace, variant: str, precision: str, compiled: bool = False, robust: str | None = None
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--variant", variant, "--precision", precision, "--model", args.model]
    cmd += ["--compile"] if compiled else []
    cmd += ["--robust", robust] if robust else []
    names = ("retain", "forget", "forget_pairs", "steps", "warmup", "examples", "threads", "device", "profile")
    for name in (*names, "robust_rho", "robust_steps", "robust_lr"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} ({precision}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def shipped_precision(args: argparse.Namespace) -> str:
    """eu's precision as shipped: ``--precision``, or eu's default for the device when ``auto``."""
    if args.precision != "auto":
        return args.precision
    return default_precision("gpu" if args.device.startswith("cuda") else "cpu")[0]


def variants(
    shipped: str, compiled: bool = False, robust: tuple[str, ...] = ()
) -> dict[str, tuple[str, str, bool, str | None]]:
    """Column label -> (variant, precision, compiled, robust): the reference as its authors ship it
    (float32), eu at equal precision, eu as shipped and, when that is bf16-mixed, eu with bf16 weights
    and float32 master weights; with ``compiled``, eu as shipped with its decoder ``torch.compile``d;
    for each of ``robust``, eu as shipped with that relearning-resistant forget gradient."""
    columns = {"reference 32": ("reference", "32", False, None), "eu 32": ("eu", "32", False, None)}
    if shipped != "32":
        columns[f"eu {shipped}"] = ("eu", shipped, False, None)
    if shipped == "bf16-mixed":
        columns["eu bf16-true"] = ("eu", "bf16-true", False, None)
    if compiled:
        columns[f"eu {shipped} compiled"] = ("eu", shipped, True, None)
    for method in robust:
        columns[f"eu {shipped} {method}"] = ("eu", shipped, False, method)
    return columns


ROBUST = ("sam", "adversarial")

ROWS = [
    ("supervised tokens / s", "supervised_tokens_per_s", "{:.1f}"),
    ("tokens / s (non-padding)", "tokens_per_s", "{:.1f}"),
    ("step time (s)", "median_step_s", "{:.2f}"),
    ("first step, warm-up (s)", "first_step_s", "{:.2f}"),
    ("step peak memory (MiB)", "step_peak_mib", "{:.0f}"),
    ("loss peak memory (MiB)", "loss_peak_mib", "{:.0f}"),
    ("packing efficiency", "packing_efficiency", "{:.3f}"),
    ("supervised tokens / step", "supervised_per_step", "{:.0f}"),
]


def print_table(results: dict[str, dict[str, Any]], shipped: str) -> None:
    """One column per variant, then each eu variant's speed-up over the float32 reference."""
    labels = list(results)
    print(f"{'':28}" + "".join(f"{label:>18}" for label in labels))
    for label, key, fmt in ROWS:
        print(f"{label:28}" + "".join(f"{fmt.format(results[c][key]):>18}" for c in labels))
    ref = results["reference 32"]
    for label in labels[1:]:
        speedup = ref["median_step_s"] / results[label]["median_step_s"]
        memory = results[label]["loss_peak_mib"] / ref["loss_peak_mib"] if ref["loss_peak_mib"] else float("nan")
        tags = (("equal precision", label == "eu 32"), ("eu as shipped", label == f"eu {shipped}"))
        notes = [tag for tag, hit in tags if hit]
        note = f" ({', '.join(notes)})" if notes else ""
        print(f"speed-up of {label} over reference 32: {speedup:.2f}x{note}; loss peak memory {memory:.2f}x")
    for method in ROBUST:
        plain, robust = results.get(f"eu {shipped}"), results.get(f"eu {shipped} {method}")
        if plain and robust:
            cost = robust["median_step_s"] / plain["median_step_s"]
            print(f"robust {method}: {cost:.2f}x the step time of eu {shipped}")
    compiled, eager = results.get(f"eu {shipped} compiled"), results.get(f"eu {shipped}")
    if compiled and eager:
        saved = eager["median_step_s"] - compiled["median_step_s"]
        cost = compiled["first_step_s"] - eager["first_step_s"]
        pays = f"pays after {cost / saved:.0f} steps" if saved > 0 else "never pays (no faster steps)"
        print(f"torch.compile: {cost:.1f} s more on the first step, {saved:.2f} s less per step: {pays}")
    for label, res in results.items():
        if res["mfu"] is not None:
            print(f"model FLOPs utilisation of {label} (6 x params x non-padding tokens/s / peak): {res['mfu']:.1%}")
        if res["top_ops"]:
            shares = ", ".join(f"{name} {share:.0%}" for name, share in res["top_ops"])
            print(f"profile {label}, share of self time: {shares}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--retain", default="eu:math-basic/train")
    parser.add_argument("--forget", default=SELF_GENERATED, help="forget data (default: the model's own corpus)")
    parser.add_argument(
        "--forget-pairs", type=int, default=128, help="self-generated forget pairs (the quickstart's corpus)"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps (medians over these)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--examples", type=int, default=4, help="examples per stream and step")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--generation", type=int, default=32, help="prompts for the generation benchmark (0: skip)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--precision",
        choices=["auto", "32", "bf16-mixed", "bf16-true"],
        default="auto",
        help="eu's precision as shipped (auto: eu's default for the device); the reference runs float32",
    )
    parser.add_argument("--profile", type=int, default=0, help="profile one extra step; print the top N operators")
    parser.add_argument(
        "--compile", action="store_true", help="also run eu as shipped with torch.compile (first step: compile time)"
    )
    parser.add_argument(
        "--robust", nargs="*", choices=ROBUST, default=[], help="also run eu as shipped with these model.robust options"
    )
    parser.add_argument("--robust-rho", type=float, default=0.01, help="SAM's radius for --robust sam")
    parser.add_argument("--robust-steps", type=int, default=1, help="inner steps k for --robust adversarial")
    parser.add_argument("--robust-lr", type=float, default=1e-3, help="inner learning rate for --robust adversarial")
    parser.add_argument("--variant", choices=["reference", "eu"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        args.robust = args.robust[0] if args.robust else None  # a timed process runs one of them
        print(json.dumps(run_variant(args)))
        return
    if args.forget == SELF_GENERATED:  # sample it once here, not inside the timed processes
        from eu.data.self_generated import ensure_corpus

        settings = forget_sample_settings(args)
        dtype = sampling_dtype()  # as eu fit samples it
        tokenizer = load_chat_tokenizer(args.model)
        ensure_corpus(args.model, settings, tokenizer, lambda: load_model(args.model, dtype), dtype)
    shipped = shipped_precision(args)
    results = {}
    for label, spec in variants(shipped, args.compile, tuple(args.robust)).items():
        results[label] = _spawn(args, *spec)
        print(f"{label}: median step {results[label]['median_step_s']:.2f} s", file=sys.stderr, flush=True)
    first = next(iter(results.values()))
    print(
        f"model {args.model}, {args.examples} retain + {args.examples} forget examples per step, "
        f"medians over {args.steps} steps after {args.warmup} warm-up, {args.threads} threads"
    )
    print(f"device {first['device']}, {first['params'] / 1e6:.0f}M parameters")
    print_table(results, shipped)
    if args.generation:
        dtypes = [torch.float32] + ([torch.bfloat16] if native_bf16(args.device) else [])
        batched = {}
        for dtype in dtypes:
            gen = generation_throughput(args.model, args.generation, args.generation, 32, dtype)
            batched[dtype] = gen["batched_s_per_item"]
            print(
                f"generation in {str(dtype).removeprefix('torch.')}, {args.generation} maths prompts, 32 new tokens: "
                f"batched {gen['batched_s_per_item']:.2f} s/item, one at a time {gen['single_s_per_item']:.2f} "
                f"s/item, speedup {gen['speedup']:.1f}x"
            )
        if len(batched) == 2:
            print(f"generation, batched: bfloat16 {batched[torch.float32] / batched[torch.bfloat16]:.2f}x float32")


if __name__ == "__main__":
    main()
