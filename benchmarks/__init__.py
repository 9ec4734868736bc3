"""Benchmarks: dlia against PyTorch eager (CPU), interleaved in one process run.

Not tests: nothing here asserts a time. ``python benchmarks/run.py`` prints a table of ratios and
writes a JSON record; see ``docs/benchmarks.md``.
"""
