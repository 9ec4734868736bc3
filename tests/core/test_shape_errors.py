"""Bad inputs: a ``dlia.ShapeError`` (a ValueError) naming the op and every input shape, where
torch rejects the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dlia
from dlia.core.axes import AxisError
from helpers import assert_both_raise


def _expect_message(err: BaseException, op: str, *shapes: tuple[int, ...]) -> None:
    assert isinstance(err, dlia.ShapeError) and isinstance(err, ValueError)
    text = str(err)
    assert text.startswith(op), f"message does not start with the op name {op!r}: {text}"
    for s in shapes:
        assert str(s) in text, f"message does not name shape {s}: {text}"


Z = np.zeros


@pytest.mark.parametrize("op, ours, theirs, shapes", [
    ("matmul", dlia.matmul, torch.matmul, [(3, 4), (5, 6)]),
    ("matmul", dlia.matmul, torch.matmul, [(2, 3, 4), (3, 5)]),
    ("matmul", dlia.matmul, torch.matmul, [(4,), (3,)]),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3), (2, 3)]),
    ("add", dlia.add, torch.add, [(2, 3), (4, 5)]),
    ("add", lambda a, b: a + b, lambda a, b: a + b, [(3, 1, 4), (2, 5)]),
    ("sub", dlia.sub, torch.sub, [(2, 3), (3, 2)]),
    ("mul", dlia.mul, torch.mul, [(4,), (5,)]),
    ("div", dlia.div, torch.div, [(2, 3), (2,)]),
    ("pow", dlia.pow, torch.pow, [(2, 3), (4,)]),
    ("maximum", dlia.maximum, torch.maximum, [(2, 3), (4, 3)]),
    ("minimum", dlia.minimum, torch.minimum, [(2,), (3,)]),
    ("mse_loss", dlia.mse_loss, F.mse_loss, [(4, 3), (3, 4)]),
    ("binary_cross_entropy_with_logits", dlia.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits,
     [(4, 3), (4, 2)]),
])
def test_binary_shape_mismatch(op, ours, theirs, shapes):
    err = assert_both_raise(ours, theirs, *[Z(s) for s in shapes], error=dlia.ShapeError)
    _expect_message(err, op, *shapes)


def test_where_shape_mismatch():
    cond = np.ones((2, 3), dtype=bool)
    err = assert_both_raise(lambda a, b: dlia.where(cond, a, b), lambda a, b: torch.where(torch.tensor(cond), a, b),
                            Z((2, 3)), Z((4,)), error=dlia.ShapeError)
    _expect_message(err, "where", (2, 3), (4,))


@pytest.mark.parametrize("shape, target", [((2, 3), (4, 5)), ((6,), (4,)), ((2, 3), (2, -1, 4))])
def test_reshape_to_an_impossible_shape(shape, target):
    err = assert_both_raise(lambda a: dlia.reshape(a, target), lambda t: t.reshape(target), Z(shape),
                            error=dlia.ShapeError)
    _expect_message(err, "reshape", shape)
    assert str(tuple(target)) in str(err)


@pytest.mark.parametrize("x_shape, t_shape", [((4, 3), (5,)), ((4, 3), (4, 1)), ((2, 3, 4), (2, 3)), ((3,), (2,))])
@pytest.mark.parametrize("loss, twin", [(dlia.cross_entropy, F.cross_entropy), (dlia.nll_loss, F.nll_loss)])
def test_class_loss_with_a_wrong_target_shape(loss, twin, x_shape, t_shape):
    err = assert_both_raise(loss, twin, Z(x_shape), np.zeros(t_shape, dtype=np.int64), error=dlia.ShapeError)
    _expect_message(err, loss.__name__, x_shape, t_shape)


@pytest.mark.parametrize("shapes, axis", [([(2, 3), (2, 4)], 0), ([(2, 3), (3, 3)], 1), ([(2, 3), (2, 3, 1)], 0)])
def test_concatenate_mismatch(shapes, axis):
    err = assert_both_raise(lambda *xs: dlia.concatenate(xs, axis), lambda *ts: torch.cat(ts, axis),
                            *[Z(s) for s in shapes], error=dlia.ShapeError)
    _expect_message(err, "concatenate", *shapes)


def test_stack_mismatch():
    err = assert_both_raise(lambda *xs: dlia.stack(xs), lambda *ts: torch.stack(ts), Z((2, 3)), Z((3, 2)),
                            error=dlia.ShapeError)
    _expect_message(err, "stack", (2, 3), (3, 2))


def test_broadcast_to_an_incompatible_shape():
    err = assert_both_raise(lambda a: dlia.broadcast_to(a, (2, 4)), lambda t: t.expand(2, 4), Z((3,)),
                            error=dlia.ShapeError)
    _expect_message(err, "broadcast_to", (3,))
    assert "(2, 4)" in str(err)


def test_permute_with_axes_that_are_not_a_permutation():
    err = assert_both_raise(lambda a: dlia.permute(a, (0, 0, 1)), lambda t: t.permute(0, 0, 1), Z((2, 3, 4)),
                            error=dlia.ShapeError)
    _expect_message(err, "transpose", (2, 3, 4))


def test_split_sizes_that_do_not_add_up():
    err = assert_both_raise(lambda a: dlia.split(a, [2, 2]), lambda t: torch.split(t, [2, 2]), Z((5, 2)),
                            error=dlia.ShapeError)
    _expect_message(err, "split", (5, 2))


def test_getitem_out_of_range():
    err = assert_both_raise(lambda a: a[5], lambda t: t[5], Z((3, 2)), error=(dlia.ShapeError, IndexError))
    assert "(3, 2)" in str(err)


def test_matmul_of_a_0d_tensor():
    err = assert_both_raise(dlia.matmul, torch.matmul, Z(()), Z((3,)), error=dlia.ShapeError)
    _expect_message(err, "matmul", (), (3,))


def test_shape_error_is_catchable_as_value_error():
    with pytest.raises(ValueError):
        dlia.tensor(Z((2, 3))) @ dlia.tensor(Z((2, 3)))
    assert issubclass(dlia.ShapeError, ValueError)


# -- axes: one checked rule for every op that takes an axis (issue 10, A1) ---------------------------
def _axis_ops(axis):
    """Every op that takes an axis, as (name, dlia_fn, torch_fn), on a (2, 3) input."""
    return [
        ("sum", lambda a: a.sum(axis=axis), lambda t: t.sum(axis)),
        ("mean", lambda a: dlia.mean(a, axis), lambda t: t.mean(axis)),
        ("var", lambda a: dlia.var(a, axis), lambda t: t.var(axis)),
        ("max", lambda a: a.max(axis), lambda t: t.amax(axis)),
        ("min", lambda a: dlia.min(a, axis), lambda t: t.amin(axis)),
        ("logsumexp", lambda a: a.logsumexp(axis), lambda t: t.logsumexp(axis)),
        ("softmax", lambda a: a.softmax(axis), lambda t: t.softmax(axis)),
        ("log_softmax", lambda a: dlia.log_softmax(a, axis), lambda t: t.log_softmax(axis)),
        ("argmax", lambda a: a.argmax(axis), lambda t: t.argmax(axis)),
        ("argmin", lambda a: a.argmin(axis), lambda t: t.argmin(axis)),
        ("squeeze", lambda a: a.squeeze(axis), lambda t: t.squeeze(axis)),
        ("flatten", lambda a: a.flatten(axis), lambda t: t.flatten(axis)),
        ("split", lambda a: a.split(1, axis), lambda t: t.split(1, axis)),
        ("concatenate", lambda a: dlia.concatenate([a, a], axis), lambda t: torch.cat([t, t], axis)),
        ("transpose", lambda a: a.transpose(0, axis), lambda t: t.transpose(0, axis)),
        ("transpose", lambda a: dlia.permute(a, (axis, 0)), lambda t: t.permute(axis, 0)),
    ]


def _new_axis_ops(axis):
    """Ops whose axis may also name the new position after the last: unsqueeze, stack (ndim + 1 places)."""
    return [
        ("unsqueeze", lambda a: a.unsqueeze(axis), lambda t: t.unsqueeze(axis)),
        ("stack", lambda a: dlia.stack([a, a], axis), lambda t: torch.stack([t, t], axis)),
    ]


@pytest.mark.parametrize("op, ours, theirs", [op for axis in (2, 5, -3) for op in _axis_ops(axis)]
                         + [op for axis in (3, -4) for op in _new_axis_ops(axis)])
def test_an_axis_out_of_range_raises_like_torch_and_numpy(op, ours, theirs):
    """Out-of-range axes used to wrap around (sum(axis=2) of a (2, 3) tensor summed axis 0). The error is
    an IndexError (torch's type) and a ShapeError, so a ValueError (NumPy's AxisError is both)."""
    err = assert_both_raise(ours, theirs, Z((2, 3)), error=IndexError)
    assert isinstance(err, AxisError)
    _expect_message(err, op, (2, 3))
    assert "out of range" in str(err)


@pytest.mark.parametrize("op, ours, theirs", [op for op in _axis_ops(2) if not op[0].startswith("arg")]  # no graph op
                         + _new_axis_ops(3))
def test_an_axis_out_of_range_raises_in_graph_mode(op, ours, theirs):
    from dlia import graph as G

    with pytest.raises(ValueError, match="out of range"):
        ours(G.placeholder((2, 3), graph=G.Graph()))


@pytest.mark.parametrize("ours, theirs", [
    (lambda a: a.sum(axis=(0, 0)), lambda t: t.sum((0, 0))),
    (lambda a: a.mean(axis=(1, -1)), lambda t: t.mean((1, -1))),
    (lambda a: a.max(axis=(0, -2)), lambda t: t.amax((0, -2))),
])
def test_a_repeated_axis_raises(ours, theirs):
    err = assert_both_raise(ours, theirs, Z((2, 3)), error=dlia.ShapeError)
    assert "more than once" in str(err)


def test_an_axis_must_be_an_integer():
    with pytest.raises(TypeError, match="sum: axis must be an integer"):
        dlia.tensor(Z((2, 3))).sum(axis=1.0)
    assert dlia.tensor(Z((2, 3))).sum(axis=np.int64(1)).shape == (2,)
    with pytest.raises(TypeError, match="got bool"):  # review of issue 10: True was axis 1
        dlia.tensor(Z((2, 3))).sum(axis=True)


def test_expand_takes_minus_one_only_for_existing_dimensions():
    """expand(-1, 3) of a (3,) tensor gave (3, 3): -1 on a new leading dimension read a wrapped size."""
    err = assert_both_raise(lambda a: a.expand(-1, 3), lambda t: t.expand(-1, 3), Z((3,)), error=dlia.ShapeError)
    _expect_message(err, "broadcast_to", (3,))
    assert dlia.tensor(Z((1, 3))).expand(2, -1).shape == (2, 3)
    assert dlia.tensor(Z((1, 3))).expand(4, -1, -1).shape == (4, 1, 3)


def test_numpy_value_errors_that_are_not_about_shapes_stay_value_errors():
    """NumPy's ValueErrors were all relabelled as ShapeError ("pow: Integers to negative integer powers")."""
    with pytest.raises(ValueError, match="pow: Integers to negative integer powers") as info:
        dlia.tensor([2]) ** dlia.tensor([-1])
    assert not isinstance(info.value, dlia.ShapeError)
