"""Builds the optional C kernels (src/dlia/backend/_native.c); everything else is in pyproject.toml.

``optional=True``: without a working C compiler the install still succeeds and dlia uses its
NumPy code paths, which give the same results, more slowly.
"""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O3", "-std=gnu11", "-ffp-contract=fast", "-fno-math-errno"]
setup(ext_modules=[Extension("dlia.backend._native", sources=["src/dlia/backend/_native.c"],
                             extra_compile_args=flags, optional=True)])
