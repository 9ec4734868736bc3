"""Test configuration shared by the whole suite.

Puts ``tests/`` on ``sys.path`` (pytest's default import mode does so for a rootdir conftest),
so test modules can ``import helpers``, and parametrizes ``OpTestCase`` subclasses over their
``cases`` table.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# Tests never download, and never write into the user's cache: downloads are switched off and the
# cache is a fresh folder (tests that exercise downloads serve files from a local HTTP server).
os.environ["DLIA_OFFLINE"] = "1"
os.environ["DLIA_CACHE_DIR"] = tempfile.mkdtemp(prefix="dlia-test-cache-")
atexit.register(shutil.rmtree, os.environ["DLIA_CACHE_DIR"], True)

from helpers import OpTestCase  # noqa: E402 - after the environment above


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cls = metafunc.cls
    if cls is not None and issubclass(cls, OpTestCase) and "case" in metafunc.fixturenames:
        metafunc.parametrize("case", cls.cases, ids=[c.id for c in cls.cases])


@pytest.fixture
def no_shipped_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation without the data files shipped inside the package (a build that dropped the
    package data): the loaders fall back to the data folders and downloads, as before they shipped."""
    from dlia.data import paths

    monkeypatch.setattr(paths, "SHIPPED", ())
