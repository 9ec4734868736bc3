"""Type promotion, as in torch: the dtype a binary op computes in when its operands' dtypes differ.

Dtypes rank by category, bool < integer < floating. The result takes the highest category of the two
operands, in that operand's dtype: ``float32 * int64`` is float32 and ``int64 + bool`` is int64, where
NumPy would give float64 and int64. Within one category, a tensor with dimensions outranks a 0-d one
(``x_f16 * tensor(2.0)`` stays float16), and two of the same rank take the wider dtype (float16 with
float32 → float32, float32 with float64 → float64).

Python numbers and lists never get here as such: ``lift`` turns them into arrays of the other
operand's dtype when their kind fits it (``x_f16 + 2.5`` and ``x_f32 - [1., 2.]`` keep the
tensor's dtype), and otherwise into the default dtype of their kind (``int_tensor * 2.5`` is
float32). Ops call ``promote`` only when the two dtypes differ, so the usual same-dtype case costs
one identity test.
"""

from __future__ import annotations

from typing import Any

import numpy

#: rank of each dtype kind (unsigned integers rank with the signed ones)
CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
#: the dtype a Python number or list of each kind gets when the other operand cannot hold it
DEFAULT = {"b": numpy.dtype(numpy.bool_), "i": numpy.dtype(numpy.int64), "f": numpy.dtype(numpy.float32)}


def result_type(a: Any, b: Any) -> numpy.dtype:
    """The dtype torch computes ``a op b`` in, for two arrays (see the module docstring)."""
    da, db = a.dtype, b.dtype
    if da == db:
        return da
    ca, cb = CATEGORY.get(da.kind), CATEGORY.get(db.kind)
    if ca is None or cb is None:  # strings, objects: NumPy decides (and usually refuses)
        return numpy.result_type(da, db)
    if ca != cb:
        return da if ca > cb else db
    if (a.ndim == 0) != (b.ndim == 0):
        return db if a.ndim == 0 else da
    return numpy.promote_types(da, db)


def promote(a: Any, b: Any, floating: bool = False) -> tuple[Any, Any]:
    """``a`` and ``b`` in their result type (only an operand of another dtype is copied).

    ``floating``: the op's result is always floating (true division), so integer and bool
    operands become float32, torch's default dtype.
    """
    dt = result_type(a, b)
    if floating and dt.kind not in "fc":
        dt = DEFAULT["f"]
    return (a if a.dtype == dt else a.astype(dt)), (b if b.dtype == dt else b.astype(dt))


def weak_dtype(value: Any, like: Any) -> Any:
    """The dtype of a Python number or list given beside a tensor of dtype ``like`` (or None when
    it is not one of those): ``like`` when the value's kind ranks no higher, else the kind's default."""
    if isinstance(value, (bool, int, float)):
        kind = "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
    elif isinstance(value, (list, tuple)):
        kind = numpy.asarray(value).dtype.kind
        if kind not in DEFAULT:
            return None  # ragged, strings, arrays of other kinds: NumPy's own conversion decides
    else:
        return None
    if like is not None and CATEGORY[kind] <= CATEGORY.get(like.kind, -1):
        if kind == "i" and like.kind in "iu" and not fits(value, like):
            return DEFAULT["i"]  # -1 beside uint8, 2**40 beside int32: held in int64, cast by the op as torch does
        return like
    return DEFAULT[kind]


def fits(value: Any, dtype: numpy.dtype) -> bool:
    """Whether every Python integer in ``value`` (a number, or a list of them) lies in ``dtype``'s range."""
    info = numpy.iinfo(dtype)
    values = numpy.asarray(value, dtype=object).ravel() if isinstance(value, (list, tuple)) else (value,)
    return all(info.min <= int(v) <= info.max for v in values)
