"""Peak memory growth of a block of code: CUDA allocator statistics, or polled RSS on CPU."""

from __future__ import annotations

import torch


class PeakMemory:
    """Peak memory growth inside the block: CUDA allocator statistics, or polled RSS on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            self._rss = PeakRSS().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.growth_mib = (torch.cuda.max_memory_allocated(self.device) - self._start) / 2**20
        else:
            self._rss.__exit__()
            self.growth_mib = self._rss.growth_mib


class PeakRSS:
    """Largest resident-set growth over the value on entry, polled every millisecond."""

    def __enter__(self) -> PeakRSS:
        import threading

        import psutil

        self._proc = psutil.Process()
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()

        def poll() -> None:
            while not self._stop.wait(0.001):
                self.peak = max(self.peak, self._proc.memory_info().rss)

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20
