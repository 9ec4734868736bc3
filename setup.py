"""Builds the optional C kernels (one C source per kernel family under src/dlia/backend/); everything
else is in pyproject.toml.

Each family is optional: where it cannot be built the install still succeeds and dlia uses its
NumPy code paths, which compute the same values, more slowly. setuptools' ``optional=True`` alone
reduces such a failure to one line naming the command that failed; ``BuildKernels`` prints a
warning that names the compiler's error and its consequence (pip shows a build's messages with
``pip install -v``; ``dlia --version`` says whether the kernels are in use). A compiler that
rejects ``-fopenmp`` (Apple's clang) gets a second try without OpenMP: the kernels then run on one
thread.
"""

import os
import sys
import tempfile
from collections.abc import Callable

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError, CCompilerError

OPENMP = "-fopenmp"
# -Wno-psabi: notes that 64-byte vectors are passed differently with AVX-512 (only inside the library)
# -fno-trapping-math: lets gcc vectorise a select (x > a ? a : x) by computing both sides, which
#   it otherwise does only with AVX-512's masks (_rnn.c's σ and tanh); dlia reads no FP exception flags
FLAGS = ["-O3", "-std=gnu11", "-ffp-contract=fast", "-fno-math-errno", "-fno-trapping-math", "-Wno-psabi"]

# one (module, C source, what runs on NumPy without it) per kernel family
KERNELS = [
    ("dlia.backend._native", "src/dlia/backend/_native.c", "convolutions run on NumPy (im2col + BLAS), more slowly"),
    ("dlia.backend._rnn", "src/dlia/backend/_rnn.c", "the LSTM and GRU gate math runs on NumPy, more slowly"),
    ("dlia.backend._w2v", "src/dlia/backend/_w2v.c", "word2vec trains on NumPy, far more slowly"),
    ("dlia.backend._blas", "src/dlia/backend/_blas.c", "large products run on OpenBLAS's own threads"),
]


class BuildKernels(build_ext):
    """build_ext that says loudly when a kernel family could not be built, and why."""

    def build_extension(self, ext: Extension) -> None:
        try:
            _build_logged(super().build_extension, ext)
            return
        except (CCompilerError, BaseError) as e:
            error = e
        if OPENMP in ext.extra_compile_args:  # e.g. Apple's clang: the kernels can still run on one thread
            ext.extra_compile_args = [a for a in ext.extra_compile_args if a != OPENMP]
            ext.extra_link_args = [a for a in ext.extra_link_args if a != OPENMP]
            try:
                _build_logged(super().build_extension, ext)
            except (CCompilerError, BaseError):
                pass
            else:
                _warn(f"{ext.name} was built WITHOUT OpenMP, because the compiler failed with it:", error,
                      "The compiled kernels will run on one thread. A compiler with OpenMP (gcc, or clang with libomp) "
                      "makes them use every core.")
                return
        _warn(f"{ext.name} could NOT be built:", error,
              f"dlia works without it, but {_CONSEQUENCE[ext.name]}.\nInstall a C compiler (gcc or clang) and "
              "reinstall dlia to build it; `dlia --version` says whether the kernels are in use.")
        if not ext.optional:
            raise error


def _build_logged(build: Callable[[Extension], None], ext: Extension) -> None:
    """build(ext), its compiler's messages (written to file descriptor 2 by the compiler processes)
    passed on as they are; on failure the error lines among them are added to the exception."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as log:
        os.dup2(log.fileno(), 2)
        try:
            build(ext)
        except (CCompilerError, BaseError) as e:
            log.seek(0)
            lines = log.read().splitlines()
            errors = [line for line in lines if "error" in line.lower()] or lines
            e.args = (" ".join(map(str, e.args)) + "".join(f"\n    {line}" for line in errors[-6:]),)
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            sys.stderr.write(log.read())


_CONSEQUENCE = {name: consequence for name, _, consequence in KERNELS}


def _warn(headline: str, error: Exception, consequence: str) -> None:
    bar = "*" * 78
    print(f"\n{bar}\nWARNING: {headline}\n    {error}\n{consequence}\n{bar}\n", file=sys.stderr)


setup(
    ext_modules=[Extension(name, sources=[source], optional=True, extra_compile_args=FLAGS + [OPENMP],
                           extra_link_args=[OPENMP]) for name, source, _ in KERNELS],
    cmdclass={"build_ext": BuildKernels},
)
