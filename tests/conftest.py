"""Test configuration shared by the whole suite.

Puts ``tests/`` on ``sys.path`` (pytest's default import mode does so for a rootdir conftest),
so test modules can ``import helpers``, and parametrizes ``OpTestCase`` subclasses over their
``cases`` table.
"""

from __future__ import annotations

import pytest

from helpers import OpTestCase


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cls = metafunc.cls
    if cls is not None and issubclass(cls, OpTestCase) and "case" in metafunc.fixturenames:
        metafunc.parametrize("case", cls.cases, ids=[c.id for c in cls.cases])
