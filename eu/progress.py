"""Progress of long work, in a terminal and as plain lines when the output goes to a file.

In a terminal a tqdm bar; otherwise one line to stderr at the start, whenever ``every_s``
seconds or a tenth of the work have passed since the last line, and at the end:

    eu: evaluate harmful: 40/100 prompts (40%), 12 s elapsed, about 18 s left
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass
class Progress:
    """Counts ``total`` units of work named ``desc``; use as a context manager, call :meth:`update`."""

    total: int
    desc: str
    unit: str = "it"
    every_s: float = 30.0
    """Seconds between plain lines (a line also comes after every tenth of the work)."""
    stream: TextIO | None = None
    """Where progress goes; standard error by default."""
    enabled: bool = True
    initial: int = 0
    """Units already done (a resumed run)."""

    def __post_init__(self) -> None:
        self.total = max(int(self.total), 0)
        self.stream = self.stream if self.stream is not None else sys.stderr
        self.done = self._last_done = self.initial
        self._start = self._last_time = time.monotonic()
        self.postfix = ""
        self._bar: Any = None
        if not self.enabled:
            return
        if self.stream.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=self.stream, initial=self.initial)
        else:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1, postfix: str = "") -> None:
        """Count ``n`` more units done; ``postfix`` (e.g. the loss) is shown after the count."""
        self.done += n
        self.postfix = postfix or self.postfix
        if not self.enabled:
            return
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last_time >= self.every_s or (self.done - self._last_done) * 10 >= max(self.total, 1):
            self._line()

    def close(self) -> None:
        """Finish the bar, or print the last line."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._last_done != self.done or self.done == 0:
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self._start
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        text = f"eu: {self.desc}: {self.done}/{self.total} {self.unit}{share}, {_duration(elapsed)} elapsed"
        if self.initial < self.done < self.total:
            rate = elapsed / (self.done - self.initial)
            text += f", about {_duration(rate * (self.total - self.done))} left"
        if self.postfix:
            text += f"; {self.postfix}"
        print(text, file=self.stream, flush=True)
        self._last_time, self._last_done = time.monotonic(), self.done
