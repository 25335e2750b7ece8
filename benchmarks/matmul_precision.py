"""Does this machine compute bfloat16 natively? Matrix-product throughput in float32 and bfloat16.

    python benchmarks/matmul_precision.py [--size 2048] [--repeats 9]

Prints the CPU's bf16 feature flags (or the GPU), the median GFLOP/s of an N x N matrix
product in each dtype (the two interleaved, so background load hits both alike) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from eu.models.precision import cpu_bf16_flags, default_precision


def _seconds(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    a @ b
    if a.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    """Measure and print both dtypes' throughput and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = args.size
    inputs = {dtype: (torch.randn(n, n, device=device, dtype=dtype),) * 2 for dtype in (torch.float32, torch.bfloat16)}
    times: dict[torch.dtype, list[float]] = {dtype: [] for dtype in inputs}
    for a, b in inputs.values():
        _seconds(a, b)  # warm-up
    for _ in range(args.repeats):
        for dtype, (a, b) in inputs.items():
            times[dtype].append(_seconds(a, b))
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU flags: {cpu_bf16_flags() or 'no bf16 flags'}"
    print(f"{where}; torch {torch.__version__}, {torch.get_num_threads()} threads, {n}x{n} matrix product")
    gflops = {dtype: 2 * n**3 / statistics.median(t) / 1e9 for dtype, t in times.items()}
    for dtype, value in gflops.items():
        print(f"  {str(dtype).removeprefix('torch.'):9s} {value:8.1f} GFLOP/s (median of {args.repeats})")
    print(f"  bfloat16 / float32: {gflops[torch.bfloat16] / gflops[torch.float32]:.2f}x")
    print(f"eu's default precision here: {' — '.join(default_precision())}")


if __name__ == "__main__":
    main()
