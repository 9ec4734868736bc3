"""reshape, transpose/permute, broadcast_to/expand, getitem, concatenate, stack, split,
squeeze/unsqueeze/flatten: each moves gradients back into place."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlia
from helpers import OpCase, OpTestCase, cases, check_vjp, compare_torch


def case(name, ours, theirs, *shapes, tag="", domain="real"):
    return OpCase(name, ours, theirs, tuple(shapes), domain, tag=tag)


class TestReshapeAndAxes(OpTestCase):
    cases = [
        case("reshape", lambda a: dlia.reshape(a, (4, 6)), lambda t: t.reshape(4, 6), (2, 3, 4)),
        case("reshape", lambda a: dlia.reshape(a, (-1,)), lambda t: t.reshape(-1), (2, 3, 4), tag="-1"),
        case("reshape", lambda a: dlia.reshape(a, (1, 3, 1)), lambda t: t.reshape(1, 3, 1), (3,), tag="ones"),
        case("reshape", lambda a: dlia.reshape(a, ()), lambda t: t.reshape(()), (1, 1), tag="scalar"),
        case("reshape_method", lambda a: a.reshape(2, -1, 3), lambda t: t.reshape(2, -1, 3), (2, 3, 4)),
        case("view_method", lambda a: a.view((6, 4)), lambda t: t.view(6, 4), (2, 3, 4)),
        case("transpose", dlia.transpose, lambda t: t.permute(*reversed(range(t.ndim))), (2, 3, 4)),
        case("transpose", dlia.transpose, lambda t: t.t(), (3, 4), tag="2d"),
        case("transpose", lambda a: dlia.transpose(a, (1, 0, 2)), lambda t: t.permute(1, 0, 2), (2, 3, 4),
             tag="axes"),
        case("permute", lambda a: dlia.permute(a, (2, 0, 1)), lambda t: t.permute(2, 0, 1), (2, 3, 4)),
        case("permute", lambda a: dlia.permute(a, (-1, 0, 1)), lambda t: t.permute(-1, 0, 1), (2, 3, 4),
             tag="negative"),
        case("permute_method", lambda a: a.permute(1, 2, 0), lambda t: t.permute(1, 2, 0), (2, 3, 4)),
        case("transpose_method", lambda a: a.transpose(0, 2), lambda t: t.transpose(0, 2), (2, 3, 4)),
        case("transpose_method", lambda a: a.transpose(0, 1), lambda t: t.transpose(0, 1), (3, 4), tag="2d"),
        case("transpose_method", lambda a: a.transpose(1, 0), lambda t: t.transpose(1, 0), (3, 4), tag="2d-10"),
        case("T", lambda a: a.T, lambda t: t.T, (3, 4)),
        case("broadcast_to", lambda a: dlia.broadcast_to(a, (2, 3, 5, 4)), lambda t: t.expand(2, 3, 5, 4),
             (3, 1, 4)),
        case("broadcast_to", lambda a: dlia.broadcast_to(a, (3, 4)), lambda t: t.expand(3, 4), (), tag="scalar"),
        case("expand", lambda a: dlia.expand(a, (2, -1, 5, -1)), lambda t: t.expand(2, -1, 5, -1), (3, 1, 4)),
        case("expand_method", lambda a: a.expand(4, 3), lambda t: t.expand(4, 3), (3,)),
        case("squeeze", dlia.squeeze, torch.squeeze, (3, 1, 4, 1)),
        case("squeeze", lambda a: dlia.squeeze(a, 1), lambda t: t.squeeze(1), (3, 1, 4, 1), tag="1"),
        case("squeeze", lambda a: dlia.squeeze(a, -1), lambda t: t.squeeze(-1), (3, 1, 4, 1), tag="-1"),
        case("squeeze", lambda a: dlia.squeeze(a, 0), lambda t: t.squeeze(0), (3, 1, 4, 1), tag="not-1"),
        case("squeeze_method", lambda a: a.squeeze(), lambda t: t.squeeze(), (1, 1)),
        case("unsqueeze", lambda a: dlia.unsqueeze(a, 0), lambda t: t.unsqueeze(0), (3, 4)),
        case("unsqueeze", lambda a: dlia.unsqueeze(a, -1), lambda t: t.unsqueeze(-1), (3, 4), tag="-1"),
        case("unsqueeze", lambda a: dlia.unsqueeze(a, 1), lambda t: t.unsqueeze(1), (3, 4), tag="1"),
        case("unsqueeze_method", lambda a: a.unsqueeze(-2), lambda t: t.unsqueeze(-2), (3, 4)),
        case("flatten", dlia.flatten, torch.flatten, (2, 3, 4)),
        case("flatten", lambda a: dlia.flatten(a, 1), lambda t: torch.flatten(t, 1), (2, 3, 4, 2), tag="1"),
        case("flatten_method", lambda a: a.flatten(2), lambda t: t.flatten(2), (2, 3, 4, 2)),
    ]


MASK = np.random.default_rng(7).random((3, 4)) < 0.5
ROWS = np.array([True, False, True])
GATHER = np.array([[1, 1], [0, 2]])


class TestGetItem(OpTestCase):
    """Basic slicing, negative steps, integer-array gathers (repeated indices) and boolean masks."""

    cases = [
        case("getitem", lambda a: a[1], lambda t: t[1], (3, 4), tag="int"),
        case("getitem", lambda a: a[-1, 2], lambda t: t[-1, 2], (3, 4), tag="ints"),
        case("getitem", lambda a: a[1:3], lambda t: t[1:3], (4, 5), tag="slice"),
        case("getitem", lambda a: a[::2, 1:-1], lambda t: t[::2, 1:-1], (5, 6), tag="strided"),
        case("getitem", lambda a: a[..., 1], lambda t: t[..., 1], (2, 3, 4), tag="ellipsis"),
        case("getitem", lambda a: a[:, None, 1:], lambda t: t[:, None, 1:], (3, 4), tag="newaxis"),
        case("getitem", lambda a: a[::-1], lambda t: torch.flip(t, [0]), (4, 3), tag="reverse"),
        case("getitem", lambda a: a[::-2, ::-1], lambda t: torch.flip(t, [0, 1])[::2], (5, 3), tag="negative-step"),
        case("getitem", lambda a: a[3:0:-1, 1], lambda t: torch.flip(t[1:4, 1], [0]), (5, 3), tag="reverse-range"),
        case("getitem", lambda a: a[[0, 2, 0, 0]], lambda t: t[[0, 2, 0, 0]], (3, 4), tag="gather-repeated"),
        case("getitem", lambda a: a[GATHER], lambda t: t[torch.from_numpy(GATHER)], (3, 4), tag="gather-2d"),
        case("getitem", lambda a: a[:, [3, 3, 0]], lambda t: t[:, [3, 3, 0]], (3, 4), tag="gather-axis1"),
        case("getitem", lambda a: a[[0, 0, 2], [1, 1, 3]], lambda t: t[[0, 0, 2], [1, 1, 3]], (3, 4),
             tag="gather-pairs"),
        case("getitem", lambda a: a[1:, [0, 0]], lambda t: t[1:, [0, 0]], (3, 4), tag="slice-and-gather"),
        case("getitem", lambda a: a[dlia.tensor([2, 2, 1])], lambda t: t[torch.tensor([2, 2, 1])], (3, 4),
             tag="tensor-index"),
        case("getitem", lambda a: a[MASK], lambda t: t[torch.from_numpy(MASK)], (3, 4), tag="mask"),
        case("getitem", lambda a: a[ROWS], lambda t: t[torch.from_numpy(ROWS)], (3, 4), tag="row-mask"),
        case("getitem", lambda a: a[dlia.tensor(MASK)], lambda t: t[torch.from_numpy(MASK)], (3, 4),
             tag="tensor-mask"),
        case("getitem", lambda a: dlia.getitem(a, (slice(None), 2)), lambda t: t[:, 2], (3, 4), tag="function"),
    ]


def cat(axis):
    return lambda *xs: dlia.concatenate(xs, axis), lambda *ts: torch.cat(ts, axis)


def stk(axis):
    return lambda *xs: dlia.stack(xs, axis), lambda *ts: torch.stack(ts, axis)


class TestJoinAndSplit(OpTestCase):
    cases = [
        *cases("concatenate", *cat(0), [[(2, 3), (4, 3)], [(1, 3), (2, 3), (3, 3)]], tag="0"),
        *cases("concatenate", *cat(1), [[(2, 3), (2, 1)], [(2, 1, 4), (2, 2, 4)]], tag="1"),
        *cases("concatenate", *cat(-1), [[(2, 3), (2, 2)], [(2, 3, 1), (2, 3, 2)]], tag="-1"),
        *cases("concatenate", *cat(0), [[(5,)]], tag="single"),
        *cases("stack", *stk(0), [[(2, 3)] * 3, [(4,), (4,)]], tag="0"),
        *cases("stack", *stk(1), [[(2, 3)] * 2], tag="1"),
        *cases("stack", *stk(-1), [[(2, 3)] * 3, [(), ()]], tag="-1"),
        case("split", lambda a: dlia.split(a, 2), lambda t: torch.split(t, 2), (5, 3), tag="chunk"),
        case("split", lambda a: dlia.split(a, 2, axis=1), lambda t: torch.split(t, 2, 1), (3, 4), tag="chunk-axis1"),
        case("split", lambda a: dlia.split(a, 3, axis=-1), lambda t: torch.split(t, 3, -1), (2, 3), tag="one-chunk"),
        case("split", lambda a: dlia.split(a, [1, 3, 1]), lambda t: torch.split(t, [1, 3, 1]), (5, 2), tag="sizes"),
        case("split", lambda a: dlia.split(a, [2, 0, 2], axis=1), lambda t: torch.split(t, [2, 0, 2], 1), (3, 4),
             tag="sizes-with-empty"),
        case("split_method", lambda a: a.split([1, 2], axis=-1), lambda t: t.split([1, 2], -1), (2, 2, 3)),
        case("split_used_once", lambda a: dlia.split(a, 2)[1], lambda t: torch.split(t, 2)[1], (5, 3)),
    ]


def test_concatenate_and_stack_with_one_constant_input():
    a = np.ones((2, 3))
    b = np.random.default_rng(0).standard_normal((2, 3))
    outs, xs = compare_torch(lambda x: dlia.concatenate([dlia.tensor(a), x], 0),
                             lambda t: torch.cat([torch.tensor(a), t], 0), b)
    compare_torch(lambda x: dlia.stack([x, dlia.tensor(a)], 1), lambda t: torch.stack([t, torch.tensor(a)], 1), b)


def test_gather_with_repeated_indices_accumulates():
    x = dlia.tensor(np.arange(3.0), requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_overlapping_slices_accumulate():
    check_vjp(lambda a: a[1:] * a[:-1] + a[::-1][1:], np.random.default_rng(1).standard_normal(6))


def test_split_pieces_cover_the_input():
    x = dlia.tensor(np.arange(10.0))
    pieces = dlia.split(x, 3)
    assert [p.shape for p in pieces] == [(3,), (3,), (3,), (1,)]
    np.testing.assert_array_equal(dlia.concatenate(pieces).numpy(), x.numpy())


def test_split_rejects_a_non_positive_chunk():
    with pytest.raises(ValueError, match="positive"):
        dlia.split(dlia.tensor(np.ones(4)), 0)


def test_broadcast_output_can_be_used_further():
    """A broadcast view is read-only; ops after it must still work and give the right gradient."""
    check_vjp(lambda a: (dlia.broadcast_to(a, (3, 4)) * 2.0).exp(), np.random.default_rng(2).standard_normal((4,)))


@pytest.mark.parametrize("index", [[], ([], slice(None)), (slice(None), [])])
def test_an_empty_index_list_selects_nothing_like_torch(index):
    """a[[]] raised: NumPy reads [] as a float array, which is no index."""
    compare_torch(lambda a: a[index], lambda t: t[index], np.arange(6.0).reshape(3, 2))
