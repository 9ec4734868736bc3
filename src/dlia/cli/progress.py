"""A dependency-free progress bar for training loops (redraws in place on a terminal, prints one
line per finished bar otherwise), and ``EvaluationBars``, the bars of the training commands that
evaluate every N iterations."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

from dlia.cli.common import duration
from dlia.cli.errors import UserError

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


class EvaluationBars:
    """The progress bars of a training run that evaluates every ``eval_every`` iterations: one bar
    per stretch up to the next evaluation (``epoch E/N``), with the loss, a throughput in ``unit`` and
    the ETA of the whole run on every step; at an evaluation the bar's final line, then the
    evaluation's line, then the next bar. What ``dlia char-rnn train``, ``seq2seq train``, ``caption
    train`` and ``caption align`` show.

    ``trainer`` needs ``iteration`` and ``epoch``; ``total`` is the iteration the run stops at.
    """

    def __init__(self, trainer: Any, total: int, eval_every: int, max_epochs: int, unit: str) -> None:
        self.trainer, self.total, self.eval_every, self.max_epochs, self.unit = trainer, total, eval_every, max_epochs, unit
        self.start_iteration, self.started, self.done = trainer.iteration, time.perf_counter(), 0
        self._new_bar()

    def _new_bar(self) -> None:
        it = self.trainer.iteration
        left = min(self.eval_every - it % self.eval_every, self.total - it)
        self.bar = Progress(total=left, desc=f"epoch {self.trainer.epoch:.2f}/{self.max_epochs}")

    def step(self, loss: float, amount: int) -> None:
        """One iteration done, with its ``loss`` and ``amount`` of the unit (characters, tokens, images)."""
        self.done += amount
        spent = max(time.perf_counter() - self.started, 1e-9)
        rate = (self.trainer.iteration - self.start_iteration) / spent
        self.bar.update(loss=loss, **{self.unit: int(self.done / spent),
                                      "ETA": duration((self.total - self.trainer.iteration) / rate)})

    def evaluated(self, line: str) -> None:
        """Close the bar, print the evaluation's ``line``, and start the next bar if the run goes on."""
        self.bar.close()
        print(line)
        if self.trainer.iteration < self.total:
            self._new_bar()

    @contextmanager
    def running(self, remedy: str) -> Iterator[None]:
        """Around the training loop: a diverged run (FloatingPointError; the last good checkpoint stays,
        no broken one is written) becomes one error line ending with ``remedy``; any other error (a full
        disk, Ctrl-C) passes on. Either way the half-drawn bar is erased first."""
        try:
            yield
        except FloatingPointError as e:
            self.bar.clear()
            raise UserError(f"{e}; {remedy}") from None
        except BaseException:
            self.bar.clear()
            raise
