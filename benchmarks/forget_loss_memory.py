"""Peak memory of the chunked forget loss against the naive full-logits one.

    python benchmarks/forget_loss_memory.py [--vocab 49152] [--tokens 2048] [--hidden 576]

Each variant runs forward and backward in a fresh subprocess; the peak is the growth of the
process's maximum resident set size over what the inputs already occupy.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch


def measure(variant: str, vocab: int, tokens: int, hidden: int, chunk: int) -> dict[str, float]:
    """Run one variant in this process and report its peak extra memory in MiB."""
    import time

    from eu.objectives.losses import chunked_weighted_token_loss, forget_token_weights

    from naive_losses import naive_forget_loss

    torch.manual_seed(0)
    h = torch.randn(tokens, hidden, requires_grad=True)
    head = torch.nn.Linear(hidden, vocab, bias=False)
    seq = torch.arange(tokens) // 256  # sequences of 256 tokens, as in the reference recipe
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if variant == "naive":
        logits = head(h).view(tokens // 256, 256, vocab)
        loss = naive_forget_loss(logits, torch.ones(tokens // 256, 256, dtype=torch.bool))
    else:
        loss = chunked_weighted_token_loss(
            h, head, torch.zeros(tokens, dtype=torch.long), forget_token_weights(seq), "kl_uniform", chunk
        )
    loss.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mib": (peak - before) / 1024, "seconds": seconds, "loss": float(loss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=576)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--variant", choices=["naive", "chunked"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(args.variant, args.vocab, args.tokens, args.hidden, args.chunk)))
        return
    results = {}
    for variant in ("naive", "chunked"):
        cmd = [
            sys.executable,
            __file__,
            "--variant",
            variant,
            "--vocab",
            str(args.vocab),
            "--tokens",
            str(args.tokens),
            "--hidden",
            str(args.hidden),
            "--chunk",
            str(args.chunk),
        ]
        results[variant] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    logits_mib = args.tokens * args.vocab * 4 / 2**20
    print(f"forget loss, vocab {args.vocab}, {args.tokens} tokens, hidden {args.hidden}, chunk {args.chunk}")
    print(f"(one float32 [tokens x vocab] tensor is {logits_mib:.0f} MiB)")
    print(f"{'variant':<10}{'peak MiB':>10}{'seconds':>10}{'loss':>12}")
    for name, r in results.items():
        print(f"{name:<10}{r['peak_mib']:>10.0f}{r['seconds']:>10.2f}{r['loss']:>12.6f}")
    ratio = results["chunked"]["peak_mib"] / results["naive"]["peak_mib"]
    print(f"chunked / naive peak memory: {ratio:.3f}")


if __name__ == "__main__":
    main()
