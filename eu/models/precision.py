"""The training precision that fits the hardware: bf16 mixed precision where it is native."""

from __future__ import annotations

from pathlib import Path

import torch

from eu.errors import EUError

NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def pick_device(device: str | None = "auto") -> str:
    """``device`` as given, or for ``auto`` (and None) the GPU when there is one, else the CPU."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


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


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU with bf16, or a CPU with avx512_bf16 or AMX."""
    if torch.device(device).type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(cpu_bf16_flags())


def inference_dtype(device: torch.device | str, dtype: str = "auto") -> torch.dtype:
    """Weights dtype for generation and scoring on ``device``: ``auto`` is bfloat16 where it is native, else
    float32; ``float32`` and ``bfloat16`` as named."""
    choices = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    if dtype == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    if dtype not in choices:
        raise EUError(f"--dtype must be auto, float32 or bfloat16, got {dtype!r}")
    return choices[dtype]


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
