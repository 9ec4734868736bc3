"""Builds the optional C kernels (src/dlia/backend/_native.c); everything else is in pyproject.toml.

``optional=True``: where the extension cannot be built (no C compiler, or MSVC, which lacks the GCC
vector extensions the kernels are written in) the install still succeeds and dlia uses its NumPy
code paths, which compute the same values, more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "dlia.backend._native", sources=["src/dlia/backend/_native.c"], optional=True,
    extra_compile_args=["-O3", "-std=gnu11", "-ffp-contract=fast", "-fno-math-errno", "-fopenmp"],
    extra_link_args=["-fopenmp"],
)])
