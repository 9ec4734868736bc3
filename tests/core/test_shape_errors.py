"""Bad inputs: a ``dlia.ShapeError`` (a ValueError) naming the op and every input shape, where
torch rejects the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dlia
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
