"""Helpers of the recurrent layer ops (dlia/core/ops/rnn.py); the ops themselves are tested through
their layers in tests/nn/test_rnn.py, and the step kernels in tests/backend/test_rnn_kernels.py."""

from __future__ import annotations

import numpy as np
import pytest

from dlia.core.ops import rnn as ops


@pytest.mark.parametrize("shape", [(4 * 5, 5), (3 * 70, 70), (4 * 128, 128), (64, 3), (1, 1), (130, 0)])
def test_transposed_is_a_c_contiguous_copy_of_the_transpose(shape):
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t = ops.transposed(np, w)
    assert t.flags.c_contiguous and t.dtype == w.dtype and t.shape == shape[::-1]
    np.testing.assert_array_equal(t, w.T)
    assert not np.shares_memory(t, w)
