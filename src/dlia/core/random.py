"""Seeded random numbers: ``Generator`` wraps NumPy's PCG64 with a JSON-able state."""

from __future__ import annotations

from typing import Any

import numpy


class Generator:
    """A seeded source of random numbers for initializers, dropout and data shuffling.

    Args:
        seed: integer seed; the same seed gives the same stream on every run.

    Example:
        >>> g = Generator(0)
        >>> g.normal((2,)).shape
        (2,)
    """

    def __init__(self, seed: int | None = 0) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int | None) -> Generator:
        """Restart the stream from ``seed``."""
        self.seed = seed
        self._rng = numpy.random.Generator(numpy.random.PCG64(seed))
        return self

    @property
    def rng(self) -> numpy.random.Generator:
        """The underlying ``numpy.random.Generator`` (shares this generator's state)."""
        return self._rng

    def get_state(self) -> dict[str, Any]:
        """The full state as a JSON-serialisable dict (for checkpoints)."""
        return self._rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state returned by ``get_state``."""
        if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
            raise ValueError("Generator.set_state: expected a PCG64 state dict from get_state()")
        self._rng.bit_generator.state = state

    def normal(self, shape: tuple[int, ...], dtype: Any = numpy.float32, mean: float = 0.0, std: float = 1.0) -> numpy.ndarray:
        out = self._rng.standard_normal(shape, dtype=numpy.float64 if numpy.dtype(dtype) != numpy.float32 else numpy.float32)
        if std != 1.0 or mean != 0.0:
            out = out * std + mean
        return out.astype(dtype, copy=False)

    def random(self, shape: tuple[int, ...], dtype: Any = numpy.float32) -> numpy.ndarray:
        """Uniform on [0, 1)."""
        dt = numpy.float32 if numpy.dtype(dtype) == numpy.float32 else numpy.float64
        return self._rng.random(shape, dtype=dt).astype(dtype, copy=False)

    def uniform(self, low: float, high: float, shape: tuple[int, ...], dtype: Any = numpy.float32) -> numpy.ndarray:
        return self._rng.uniform(low, high, shape).astype(dtype)

    def integers(self, low: int, high: int, shape: Any = None) -> Any:
        return self._rng.integers(low, high, shape)

    def permutation(self, n: int) -> numpy.ndarray:
        return self._rng.permutation(n)


#: the generator used when a function is given none (reset with ``dlia.manual_seed``)
default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Reseed the default generator, like ``torch.manual_seed``."""
    return default_generator.manual_seed(seed)
