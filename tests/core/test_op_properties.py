"""Hypothesis properties: random expression trees of ops on random broadcastable shapes agree
with torch (values and every gradient) and, for smooth ops, with finite differences; random
reductions, basic indices, permutations and matmul shapes agree with torch or NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dlia
from helpers import check_vjp, compare_torch

FAST = settings(max_examples=40, deadline=None)


def _if_dims(f):
    """Apply an axis-taking op only to tensors that have an axis (0-d ones pass through)."""
    return lambda a: f(a) if a.ndim else a


# name -> (dlia version, torch version); every entry keeps its input broadcastable with the others
SMOOTH_UNARY: dict[str, tuple[Any, Any]] = {
    "neg": (lambda a: -a, lambda a: -a),
    "tanh": (dlia.tanh, torch.tanh),
    "sigmoid": (dlia.sigmoid, torch.sigmoid),
    "exp_tanh": (lambda a: dlia.exp(dlia.tanh(a)), lambda a: torch.exp(torch.tanh(a))),
    "square": (lambda a: a * a, lambda a: a * a),
    "log1p_square": (lambda a: dlia.log(1.0 + a * a), lambda a: torch.log(1.0 + a * a)),
    "sqrt1p_square": (lambda a: dlia.sqrt(1.0 + a * a), lambda a: torch.sqrt(1.0 + a * a)),
    "affine": (lambda a: a * 0.5 - 1.0, lambda a: a * 0.5 - 1.0),
    "softmax": (_if_dims(lambda a: dlia.softmax(a, -1)), _if_dims(lambda a: torch.softmax(a, -1))),
    "log_softmax": (_if_dims(lambda a: dlia.log_softmax(a, 0)), _if_dims(lambda a: torch.log_softmax(a, 0))),
    "mean_keep": (_if_dims(lambda a: a.mean(-1, keepdims=True)), _if_dims(lambda a: a.mean(-1, keepdim=True))),
    "sum_keep": (_if_dims(lambda a: a.sum(0, keepdims=True)), _if_dims(lambda a: a.sum(0, keepdim=True))),
    "lse_keep": (_if_dims(lambda a: a.logsumexp(-1, keepdims=True)),
                 _if_dims(lambda a: a.logsumexp(-1, keepdim=True))),
}
KINKED_UNARY: dict[str, tuple[Any, Any]] = {
    "relu": (dlia.relu, torch.relu),
    "abs": (dlia.abs, torch.abs),
    "leaky_relu": (dlia.leaky_relu, torch.nn.functional.leaky_relu),
    "clip": (lambda a: dlia.clip(a, -0.5, 0.5), lambda a: torch.clamp(a, -0.5, 0.5)),
    "max_keep": (_if_dims(lambda a: a.max(-1, keepdims=True)), _if_dims(lambda a: a.amax(-1, keepdim=True))),
}
SMOOTH_BINARY: dict[str, tuple[Any, Any]] = {
    "add": (dlia.add, torch.add),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (dlia.mul, torch.mul),
    "div_safe": (lambda a, b: a / (1.0 + b * b), lambda a, b: a / (1.0 + b * b)),
}
KINKED_BINARY: dict[str, tuple[Any, Any]] = {
    "maximum": (dlia.maximum, torch.maximum),
    "minimum": (dlia.minimum, torch.minimum),
    "where": (lambda a, b: dlia.where(a > b, a * b, a - b), lambda a, b: torch.where(a > b, a * b, a - b)),
}


def expressions(unary: dict, binary: dict) -> st.SearchStrategy:
    """Trees of op names over the leaves ("x", 0..2)."""
    leaves = st.tuples(st.just("x"), st.integers(0, 2))
    return st.recursive(
        leaves,
        lambda sub: st.one_of(
            st.tuples(st.sampled_from(sorted(unary)), sub),
            st.tuples(st.sampled_from(sorted(binary)), sub, sub),
        ),
        max_leaves=6,
    )


def evaluate(tree, inputs, ops: dict, side: int):
    if tree[0] == "x":
        return inputs[tree[1]]
    fn = ops[tree[0]][side]
    return fn(*[evaluate(t, inputs, ops, side) for t in tree[1:]])


@st.composite
def inputs_for(draw, tree_strategy):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3)).input_shapes
    arrays = [draw(hnp.arrays(np.float64, s, elements=st.floats(-2, 2, allow_subnormal=False))) for s in shapes]
    return draw(tree_strategy), arrays


ALL_OPS = {**SMOOTH_UNARY, **KINKED_UNARY, **SMOOTH_BINARY, **KINKED_BINARY}
SMOOTH_OPS = {**SMOOTH_UNARY, **SMOOTH_BINARY}


@FAST
@given(inputs_for(expressions({**SMOOTH_UNARY, **KINKED_UNARY}, {**SMOOTH_BINARY, **KINKED_BINARY})))
def test_random_expressions_match_torch(case):
    tree, arrays = case
    compare_torch(
        lambda *xs: evaluate(tree, xs, ALL_OPS, 0) * 1.0,  # * 1.0: the output is never a bare leaf
        lambda *ts: evaluate(tree, ts, ALL_OPS, 1) * 1.0,
        *arrays, atol=1e-9, rtol=1e-6,
    )


@FAST
@given(inputs_for(expressions(SMOOTH_UNARY, SMOOTH_BINARY)), st.integers(0, 2**32 - 1))
def test_random_smooth_expressions_match_finite_differences(case, seed):
    tree, arrays = case
    check_vjp(lambda *xs: evaluate(tree, xs, SMOOTH_OPS, 0) * 1.0, *arrays, rtol=1e-5, seed=seed)


REDUCTIONS = {
    "sum": (lambda a, ax, k: a.sum(ax, k), lambda t, d, k: t.sum(d, keepdim=k)),
    "mean": (lambda a, ax, k: a.mean(ax, k), lambda t, d, k: t.mean(d, keepdim=k)),
    "var": (lambda a, ax, k: a.var(ax, k), lambda t, d, k: t.var(d, keepdim=k, correction=0)),
    "max": (lambda a, ax, k: a.max(ax, k), lambda t, d, k: t.amax(d, keepdim=k)),
    "min": (lambda a, ax, k: a.min(ax, k), lambda t, d, k: t.amin(d, keepdim=k)),
    "logsumexp": (lambda a, ax, k: a.logsumexp(ax, k), lambda t, d, k: t.logsumexp(d, keepdim=k)),
}


@st.composite
def reduction_cases(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    nd = len(shape)
    axes = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    axes = tuple(a - nd if draw(st.booleans()) else a for a in axes)  # some counted from the end
    axis = axes[0] if len(axes) == 1 and draw(st.booleans()) else axes
    a = draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3, allow_subnormal=False)))
    return draw(st.sampled_from(sorted(REDUCTIONS))), a, axis, draw(st.booleans())


@FAST
@given(reduction_cases())
def test_random_reductions_match_torch(case):
    name, a, axis, keep = case
    ours, theirs = REDUCTIONS[name]
    compare_torch(lambda x: ours(x, axis, keep), lambda t: theirs(t, axis, keep), a, atol=1e-9, rtol=1e-7)


@st.composite
def indexed_arrays(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return np.random.default_rng(len(shape)).standard_normal(shape), index


@FAST
@given(indexed_arrays())
def test_random_basic_indexing_matches_numpy(case):
    """Slices with any step (negative included: torch has none), ints, None and Ellipsis."""
    a, index = case
    x = dlia.tensor(a, requires_grad=True)
    y = x[index]
    expected = a[index]
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.numpy(), expected)
    u = np.random.default_rng(0).standard_normal(y.shape)
    (y * dlia.tensor(u)).sum().backward()
    grad = np.zeros_like(a)
    grad[index] += u
    np.testing.assert_array_equal(x.grad.numpy(), grad)


@FAST
@given(st.data())
def test_random_permutations_match_torch(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    a = np.random.default_rng(1).standard_normal(shape)
    compare_torch(lambda x: dlia.permute(x, perm).exp(), lambda t: t.permute(perm).exp(), a)


@FAST
@given(hnp.mutually_broadcastable_shapes(signature="(m?,n),(n,p?)->(m?,p?)", max_dims=4, max_side=3))
def test_random_matmul_shapes_match_torch(shapes):
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal(s) for s in shapes.input_shapes)
    compare_torch(dlia.matmul, torch.matmul, a, b, atol=1e-12, rtol=1e-9)
