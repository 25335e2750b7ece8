"""Benchmark: forget-corpus sampling with transformers' draw against eu's top-k draw.

    python benchmarks/sampling.py [--model smollm2-135m-instruct] [--rows 128] [--tokens 64] [--repeats 3]

Both sides generate the same rows from the same self-writing prompt (the conversation start and
an open user turn, as the forget corpus is sampled) at temperature 2.0 and top-k 100, in the
dtype eu samples in on this device, alternating, ``--repeats`` times each. (a) *transformers*:
``generate(do_sample=True, temperature, top_k, remove_invalid_values)``, a multinomial draw over
the whole vocabulary; (b) *top-k draw*: :class:`eu.generation.TopKDraw`, the same distribution
drawn among the 100 candidates (``data.sample.draw_among_top_k``). Prints each side's median
seconds, tokens per second and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from eu.data.sampler import user_turn_prefix
from eu.generation import generate_from_ids
from eu.models import load_model, load_tokenizer, sampling_dtype


def time_sampling(model: object, tokenizer: object, rows: int, tokens: int, fast: bool) -> tuple[float, int]:
    """Seconds to sample ``tokens`` new tokens for ``rows`` rows, and the tokens generated."""
    prompts = [user_turn_prefix(tokenizer, None)] * rows
    torch.manual_seed(0)
    start = time.perf_counter()
    out = generate_from_ids(model, tokenizer, prompts, tokens, True, 2.0, 100, draw_among_top_k=fast)
    return time.perf_counter() - start, sum(len(o) for o in out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rows", type=int, default=128, help="rows sampled together (the quickstart's batch)")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per row (the user turn's budget)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    dtype = sampling_dtype()
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, dtype).eval()
    time_sampling(model, tokenizer, args.rows, 4, True)  # warm-up
    seconds: dict[bool, list[float]] = {False: [], True: []}
    produced: dict[bool, list[int]] = {False: [], True: []}
    for _ in range(args.repeats):
        for fast in (False, True):
            s, n = time_sampling(model, tokenizer, args.rows, args.tokens, fast)
            seconds[fast].append(s)
            produced[fast].append(n)
    print(f"{args.model} in {dtype}, {args.rows} rows x {args.tokens} new tokens, {torch.get_num_threads()} threads")
    for fast, name in ((False, "transformers draw"), (True, "top-k draw")):
        median = statistics.median(seconds[fast])
        rate = statistics.median(n / s for n, s in zip(produced[fast], seconds[fast], strict=True))
        print(f"{name:18s} median {median:6.2f} s  {rate:7.1f} tokens/s  runs {[round(s, 2) for s in seconds[fast]]}")
    ratio = statistics.median(seconds[False]) / statistics.median(seconds[True])
    print(f"top-k draw / transformers draw: {ratio:.2f}x faster (medians)")


if __name__ == "__main__":
    main()
