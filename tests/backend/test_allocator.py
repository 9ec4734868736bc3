"""Process tuning (malloc's thresholds, the OpenMP spin): applied when dlia's kernels are first used, never at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: what `import dlia` changed, and what the first convolution (or the first
# backward pass, or the first graph run) changed. "mmapped" says whether glibc's malloc served a
# 16 MiB array with mmap (its default above 128 KiB) or from the heap (after dlia's mallopt);
# "loaded" lists the libraries among dlia's kernels and GNU OpenMP that were not loaded before.
PROBE = """
import ctypes, json, os, sys
import numpy as np

class Mallinfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Mallinfo2

def mmapped():
    before = libc.mallinfo2().hblks
    a = np.empty(16 << 20, np.uint8)
    return libc.mallinfo2().hblks > before

def state():
    maps = open("/proc/self/maps").read()
    from dlia.backend import allocator
    return {"env": dict(os.environ) == env, "tuned": allocator.ENABLED, "mmapped": mmapped(),
            "loaded": [lib for lib in ("_native", "libgomp") if lib in maps and lib not in before]}

env = dict(os.environ)
before = open("/proc/self/maps").read()
import dlia
out = {"import": state()}
x = dlia.randn(2, 3, 20, 20, requires_grad=True)
if sys.argv[1] == "conv":
    dlia.conv2d(x, dlia.randn(4, 3, 3, 3), padding=1)
elif sys.argv[1] == "backward":
    (x * x).sum().backward()
else:
    from dlia import graph as G
    p = G.placeholder((None, 3), name="p")
    with G.Session() as sess:
        sess.run(dlia.relu(p) * 2, {p: np.ones((2, 3), np.float32)})
out["use"] = state()
print(json.dumps(out))
"""


def probe(first_use: str) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE, first_use], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.exists("/proc/self/maps"),
                    reason="glibc's malloc and /proc/self/maps: Linux only")
@pytest.mark.parametrize("first_use", ["conv", "backward", "session"])
def test_import_changes_nothing_and_the_first_use_tunes(first_use):
    from dlia.backend import native
    out = probe(first_use)
    at_import = out["import"]
    assert at_import == {"env": True, "tuned": None, "mmapped": True, "loaded": []}
    used = out["use"]
    assert used["env"] and used["tuned"] is True and not used["mmapped"]  # blocks up to 32 MiB stay in the heap
    if first_use == "conv" and native.available:  # the compiled kernels load at the first convolution
        assert "_native" in used["loaded"]
    else:
        assert "_native" not in used["loaded"]
