"""The training precision that fits the hardware: bf16 mixed precision where it is native."""

from __future__ import annotations

from pathlib import Path

import torch

NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The CPU feature flags among :data:`NATIVE_CPU_FLAGS` (Linux ``/proc/cpuinfo``; none elsewhere)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[-1].split())
    return [f for f in NATIVE_CPU_FLAGS if f in flags]


def default_precision(accelerator: str | None = "auto") -> tuple[str, str]:
    """``(precision, reason)``: ``bf16-mixed`` where the device computes bf16 natively, else ``32-true``."""
    wants_gpu = str(accelerator or "auto") in ("auto", "gpu", "cuda")
    if wants_gpu and torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", f"{name} computes bf16 natively"
        return "32-true", f"{name} has no native bf16"
    flags = cpu_bf16_flags()
    if flags:
        return "bf16-mixed", f"the CPU has {' and '.join(flags)}"
    return "32-true", "the CPU has no native bf16 instructions (avx512_bf16, amx_bf16)"
