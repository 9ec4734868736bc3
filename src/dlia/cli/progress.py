"""A dependency-free progress bar for training loops (redraws in place on a terminal, prints one
line per finished bar otherwise)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")


class Progress:
    """Wrap an iterable: ``for batch in Progress(loader, desc="epoch 1"): ...``.

    Call ``set(loss=...)`` to show running numbers after the bar.
    """

    def __init__(self, iterable: Iterable[T] = (), total: int | None = None, desc: str = "", stream: IO[str] | None = None,
                 width: int = 24, enabled: bool = True) -> None:
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.width, self.enabled = desc, width, enabled
        self.stream = stream or sys.stderr
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.fields: dict[str, Any] = {}
        self.n = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def set(self, **fields: Any) -> None:
        self.fields.update(fields)

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        if self.total:
            done = int(self.width * self.n / self.total)
            bar = "█" * done + "·" * (self.width - done)
            head = f"{self.desc} {bar} {self.n}/{self.total}"
        else:
            head = f"{self.desc} {self.n}"
        tail = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.fields.items())
        return f"{head} {elapsed:.2f}s {tail}".rstrip()

    def update(self, n: int = 1, **fields: Any) -> None:
        """Advance by ``n`` steps (for loops that are not driven by iterating this object)."""
        self.n += n
        self.fields.update(fields)
        if self.tty and time.perf_counter() - self._last > 0.1:
            self._last = time.perf_counter()
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def clear(self) -> None:
        """Erase the bar from a terminal without printing its final state (when the work failed)."""
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def close(self) -> None:
        """Print the final state of the bar on its own line."""
        if self.enabled:
            self.stream.write(("\r" if self.tty else "") + self._line() + "\n")
            self.stream.flush()

    def __iter__(self) -> Iterator[T]:
        for item in self.iterable:
            yield item
            self.update()
        self.close()
