"""setup.py's build of the C kernels: loud when it fails, and portable to clang (macOS's compiler)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build(tmp_path: Path, cc: str) -> subprocess.CompletedProcess:
    """setup.py build_ext with the compiler cc, into tmp_path/lib."""
    env = {**os.environ, "CC": cc}
    return subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
                           "--build-temp", str(tmp_path / "tmp")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_build_that_fails_says_why_and_what_it_means(tmp_path):
    r = build(tmp_path, str(tmp_path / "no-such-cc"))
    assert r.returncode == 0, r.stderr  # optional: the install goes on
    assert "WARNING: dlia.backend._native could NOT be built" in r.stderr
    assert "no-such-cc" in r.stderr and "convolutions run on NumPy" in r.stderr
    assert "WARNING: dlia.backend._rnn could NOT be built" in r.stderr and "gate math runs on NumPy" in r.stderr
    assert "WARNING: dlia.backend._blas could NOT be built" in r.stderr and "OpenBLAS's own threads" in r.stderr
    assert not list((tmp_path).rglob("_native*.so")) and not list((tmp_path).rglob("_rnn*.so"))


# checks, in a fresh interpreter, that the library built in LIB is the one loaded and agrees with the NumPy path
CHECK = """
import sys, numpy as np, dlia, dlia.backend
dlia.backend.__path__.insert(0, sys.argv[1])
from dlia.backend import native
assert native.available, native.reason()
assert native._KERNELS.lib._name.startswith(sys.argv[1]), native._KERNELS.lib._name
native._SERIAL_BELOW = 0
rng = np.random.default_rng(0)
for shape, k, kernel, pad in [((4, 5, 17, 33), 10, (3, 3), 1), ((3, 16, 20, 32), 32, (3, 3), 1),
                              ((2, 3, 18, 21), 17, (5, 2), (2, 1)), ((2, 4, 16, 40), 7, (1, 1), 0)]:
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((k, shape[1], *kernel)).astype(np.float32)
    runs = []
    for compiled in (True, False):
        xt, wt = dlia.tensor(x, requires_grad=True), dlia.tensor(w, requires_grad=True)
        with native.use(compiled):
            y = dlia.conv2d(xt, wt, padding=pad)
            (y * y).sum().backward()
        runs.append((y.numpy(), xt.grad.numpy(), wt.grad.numpy()))
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
from dlia.backend import rnn
from dlia.core.ops.rnn import lstm_cell_forward
assert rnn.available, rnn.reason()
assert rnn._KERNELS.lib._name.startswith(sys.argv[1]), rnn._KERNELS.lib._name
gx, gh, c0 = (rng.standard_normal(s).astype(np.float32) for s in ((5, 4 * 33), (5, 4 * 33), (5, 33)))
runs = []
for compiled in (True, False):
    out = [np.empty((5, 4 * 33), np.float32)] + [np.empty((5, 33), np.float32) for _ in range(3)]
    (rnn.lstm_fwd if compiled else lambda *a: lstm_cell_forward(np, *a))(gx, gh, c0, *out)
    runs.append(out)
for a, b in zip(*runs):
    np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)
from dlia.backend import blas
assert blas.available, blas.reason()
assert blas._KERNELS.lib._name.startswith(sys.argv[1]), blas._KERNELS.lib._name
a, b = rng.standard_normal((700, 300)).astype(np.float32), rng.standard_normal((300, 500)).astype(np.float32)
with blas.own_threads():
    np.testing.assert_allclose(blas.matmul(a, b), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
from dlia.optim.algorithms import _adam_step
g, m, v = (rng.standard_normal(1001).astype(np.float32) for _ in range(3))
group = {"betas": (0.9, 0.999), "eps": 1e-8, "lr": 1e-3, "amsgrad": True}
runs = []
for compiled in (True, False):  # no fused multiply-adds under clang either: bit for bit
    state = [m.copy(), v * v, v * v * 2, np.empty_like(m)]
    with native.use(compiled):
        _adam_step(np, g, *state, group, 3)
    runs.append(state)
for a, b in zip(*runs):
    np.testing.assert_array_equal(a, b)
print("ok")
"""


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
@pytest.mark.parametrize("openmp", [True, False], ids=["clang", "clang-without-openmp"])
def test_clang_builds_kernels_that_agree_with_numpy(tmp_path, openmp):
    """gcc-only builtins have a clang spelling; a clang that rejects -fopenmp (Apple's) builds them single-threaded."""
    cc = "clang"
    if not openmp:
        cc = str(tmp_path / "apple-cc")
        Path(cc).write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = "-fopenmp" ] && '
                            '{ echo "clang: error: unsupported option \'-fopenmp\'" >&2; exit 1; }; done\nexec clang "$@"\n')
        os.chmod(cc, 0o755)
    r = build(tmp_path, cc)
    assert r.returncode == 0, r.stderr
    if openmp and "WITHOUT OpenMP" in r.stderr:
        pytest.skip("this clang has no OpenMP runtime (libomp)")
    assert ("was built WITHOUT OpenMP" in r.stderr) == (not openmp), r.stderr
    assert "unsupported option '-fopenmp'" in r.stderr or openmp
    lib = tmp_path / "lib" / "dlia" / "backend"
    check = subprocess.run([sys.executable, "-c", CHECK, str(lib)], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert check.returncode == 0 and check.stdout.strip() == "ok", check.stdout + check.stderr
