"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad``/``step``/``state_dict``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from dlia.backend.device import get_array_module
from dlia.core.creation import zeros_like
from dlia.core.function import enable_grad, restore_mode, set_grad_mode
from dlia.core.sparse import SparseGrad
from dlia.core.tensor import Tensor, next_write, track_writes


class Optimizer:
    """Base class: holds ``param_groups`` (dicts with ``params`` and hyper-parameters) and ``state``.

    Subclasses implement ``update(p, grad, group, state)`` on raw arrays for one parameter; the
    base class walks the groups, skips parameters without gradients (frozen ones, with
    ``requires_grad=False``, are accepted and skipped, as in torch) and runs under ``no_grad``.
    """

    #: whether ``update`` accepts a ``SparseGrad`` (otherwise sparse gradients are densified)
    handles_sparse = False

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add parameters with their own hyper-parameters (the rest come from the defaults)."""
        group = dict(group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        for i, p in enumerate(group["params"]):
            if any(p is q for g in self.param_groups for q in g["params"]):
                raise ValueError("optimizer: a parameter appears in more than one group")
            if any(p is q for q in group["params"][:i]):
                raise ValueError(f"optimizer: parameter {i} of the group is listed twice")
        track_writes(group["params"])  # step() stamps them: backward can see that a step came after its forward
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None or isinstance(p.grad, SparseGrad):
                    p.grad = None
                else:
                    p.grad = zeros_like(p.grad)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        stamp = next_write()  # the update writes every parameter with a gradient in place
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p._version = stamp
        token = set_grad_mode(False)  # like no_grad(), without its call overhead
        try:
            self._step_all()
        finally:
            restore_mode(token)
        return loss

    def _step_all(self) -> None:
        for group in self.param_groups:
            if self.update_group is not None and _group_rule(type(self)) and self._step_group(group):
                continue
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if type(grad) is SparseGrad:
                    if not self.handles_sparse:
                        grad = grad.to_dense()
                else:
                    grad = grad.data
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self.update(p, grad, group, state)

    def update(self, p: Tensor, grad: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError

    #: optional multi-tensor form of ``update``: ``update_group(flat, grads, group)`` updates every
    #: parameter of a group at once on flat state arrays (see ``_step_group``); ``None`` if absent
    update_group: Callable[..., None] | None = None
    #: names of the per-element state arrays ``update_group`` keeps flat
    flat_state: tuple[str, ...] = ()

    def _step_group(self, group: dict[str, Any]) -> bool:
        """The multi-tensor path: when every gradient of the group is a dense array of one dtype and
        device and the parameters share a step count, their state lives in flat arrays (the
        per-parameter state entries are views of them), so each step of the rule is one array
        operation for the whole group instead of one per parameter. Returns False when it does not
        apply; the caller then updates parameter by parameter. Both paths give identical results."""
        if len(group["params"]) < 2 or not self.multi_tensor(group):  # nothing to gather, or not worth it
            return False
        flats = self.__dict__.setdefault("_flat", {})
        ps, grads = [], []
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if type(g) is SparseGrad:
                flats.pop(id(group), None)
                return False
            ps.append(p)
            grads.append(g.data)
        flat = flats.get(id(group))
        if flat is not None and flat.matches(ps, grads, self.state):
            self.update_group(flat, grads, group)
            return True
        if len(ps) < 2 or not _one_kind(ps, grads):
            flats.pop(id(group), None)  # the per-parameter path runs: the flat layout is rebuilt next time
            return False
        flat = _FlatState.build(ps, self.state, self.flat_state, self._init_state, group)
        if flat is None:
            flats.pop(id(group), None)
            return False
        flats[id(group)] = flat
        self.update_group(flat, grads, group)
        return True

    def multi_tensor(self, group: dict[str, Any]) -> bool:
        """Whether ``group`` may take the multi-tensor path (a rule may decline for some settings)."""
        return True

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """A parameter's fresh state, as ``update`` would create it (used by the multi-tensor path)."""
        raise NotImplementedError

    def scratch(self, p: Tensor) -> Any:
        """A reusable work array shaped like ``p`` (not part of the state: never saved)."""
        buffers = self.__dict__.setdefault("_scratch", {})
        tmp = buffers.get(id(p))
        if tmp is None or tmp.shape != p.data.shape or tmp.dtype != p.data.dtype:
            tmp = buffers[id(p)] = get_array_module(p.data).zeros_like(p.data)
        return tmp

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: array or number}}, "param_groups": [...]}`` like PyTorch,
        with parameters replaced by their position across groups."""
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore from ``state_dict()``; the parameter groups must have the same sizes."""
        groups = state_dict.get("param_groups")
        if groups is None or "state" not in state_dict:
            raise ValueError("optimizer state dict needs 'state' and 'param_groups'")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"optimizer state has {len(groups)} parameter groups, optimizer has {len(self.param_groups)}")
        params = []
        for saved, own in zip(groups, self.param_groups):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(
                    f"optimizer state group has {len(saved['params'])} parameters, optimizer group has {len(own['params'])}"
                )
            params.extend(own["params"])
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, s in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"optimizer state refers to parameter {i}, but there are {len(params)}")
            p = params[i]
            restored = {}
            for name, v in s.items():
                if hasattr(v, "shape") and tuple(v.shape) == tuple(p.shape):
                    v = p.device.xp.array(v, dtype=p.dtype)  # per-element state, 0-d parameters included
                elif hasattr(v, "shape") and getattr(v, "ndim", 0) == 0:
                    v = v.item()  # a scalar (a step count)
                elif hasattr(v, "shape"):
                    raise ValueError(
                        f"optimizer state {name!r} of parameter {i} has shape {tuple(v.shape)}, parameter has {p.shape}"
                    )
                restored[name] = v
            new_state[p] = restored
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = copy.deepcopy(v)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _one_kind(ps: list[Tensor], grads: list[Any]) -> bool:
    """Whether the parameters and their gradients are all arrays of one type (device) and dtype."""
    kind, dtype = type(grads[0]), grads[0].dtype
    return all(type(g) is kind and g.dtype == dtype and type(p.data) is kind and p.data.dtype == dtype
               for p, g in zip(ps, grads))


_GROUP_RULE: dict[type, bool] = {}


def _group_rule(cls: type) -> bool:
    """Whether ``cls``'s ``update_group`` is the multi-tensor form of its ``update``: a subclass that
    overrides ``update`` alone (the documented extension point) must not be bypassed."""
    ok = _GROUP_RULE.get(cls)
    if ok is None:
        owner = next((k for k in cls.__mro__ if "update_group" in k.__dict__), None)
        ok = _GROUP_RULE[cls] = owner is not None and owner.__dict__["update_group"] is not None and \
            cls.update is owner.__dict__.get("update")
    return ok


class _FlatState:
    """Flat per-element state of one parameter group for ``Optimizer.update_group``.

    ``arrays[name]`` holds every parameter's ``state[name]`` end to end; the per-parameter entries
    are views into it, so ``state_dict`` sees ordinary arrays, and a ``load_state_dict`` (which
    replaces the entries) is noticed by ``matches`` and the flat arrays are rebuilt from them.

    When the parameters' own arrays are consecutive slices of one array (a graph Session lays out
    the variables of a train op that way), ``param`` is that array and ``subtract`` updates every
    parameter with one operation; otherwise ``param`` is None and they are updated one by one.
    """

    __slots__ = ("params", "views", "arrays", "grad", "tmp", "shapes", "offsets", "states", "param", "pdata")

    @classmethod
    def build(cls, ps: list[Tensor], state: dict[Tensor, dict[str, Any]], names: tuple[str, ...],
              init: Callable[[Tensor, dict[str, Any]], dict[str, Any]], group: dict[str, Any]) -> _FlatState | None:
        states = []
        for p in ps:
            st = state.get(p)
            if not st:
                st = state[p] = init(p, group)
            states.append(st)
        present = [tuple(n for n in names if n in st) for st in states]  # e.g. max_exp_avg_sq only with amsgrad
        names = present[0]
        steps = {st.get("step") for st in states}
        if len(steps) != 1 or any(p != names for p in present):
            return None  # parameters at different steps (bias corrections differ) or with different state
        xp = get_array_module(ps[0].data)
        self = cls()
        self.params = list(ps)
        self.shapes = [p.data.shape for p in ps]
        sizes = [p.data.size for p in ps]
        self.offsets = [0]
        for n in sizes:
            self.offsets.append(self.offsets[-1] + n)
        dtype = ps[0].data.dtype
        self.arrays, self.views, self.states = {}, {}, states
        for name in names:
            self.add(name, xp.concatenate([xp.asarray(st[name], dtype=dtype).ravel() for st in states]))
        self.grad = xp.empty(self.offsets[-1], dtype=dtype)
        self.tmp = xp.empty(self.offsets[-1], dtype=dtype)
        self.param = _consecutive([p.data for p in ps], self.offsets)
        self.pdata = [p.data for p in ps]
        return self

    def split(self, flat: Any) -> list[Any]:
        """Views of a flat array shaped like each parameter."""
        o = self.offsets
        return [flat[o[i]:o[i + 1]].reshape(shape) for i, shape in enumerate(self.shapes)]

    def matches(self, ps: list[Tensor], grads: list[Any], state: dict[Tensor, dict[str, Any]]) -> bool:
        """Whether this layout still describes ``ps`` and their state: the same parameters holding the
        same arrays (a parameter given a new array, e.g. by ``module.to``, is laid out again),
        gradients of their type and dtype, state entries still these views, and one step count."""
        if len(ps) != len(self.params):
            return False
        kind, dtype = type(self.grad), self.grad.dtype
        for p, q, d, st, g in zip(ps, self.params, self.pdata, self.states, grads):
            if p is not q or p.data is not d or state.get(p) is not st or type(g) is not kind or g.dtype != dtype:
                return False
        for name, views in self.views.items():
            for st, v in zip(self.states, views):
                if st.get(name) is not v:
                    return False
        step = self.states[0].get("step")
        return all(st.get("step") == step for st in self.states)

    def gather(self, grads: list[Any]) -> Any:
        """The gradients end to end in one flat array."""
        xp = get_array_module(self.grad)
        return xp.concatenate([g.reshape(-1) for g in grads], out=self.grad)

    def add(self, name: str, flat: Any) -> Any:
        """Make the flat array ``flat`` the state entry ``name`` of every parameter (as views)."""
        views = self.split(flat)
        for st, v in zip(self.states, views):
            st[name] = v
        self.arrays[name], self.views[name] = flat, views
        return flat

    def flat_params(self) -> Any:
        """The parameters end to end: ``param`` itself, or a new flat copy."""
        if self.param is not None:
            return self.param
        return get_array_module(self.grad).concatenate([p.data.reshape(-1) for p in self.params])

    def scale(self, factor: Any) -> None:
        """p ← p · factor for every parameter."""
        if self.param is not None:
            self.param *= factor
        else:
            for p in self.params:
                p.data *= factor

    def subtract(self, update: Any) -> None:
        """p ← p - update for every parameter, ``update`` being flat."""
        if self.param is not None:
            self.param -= update
        else:
            for p, u in zip(self.params, self.split(update)):
                p.data -= u


def _consecutive(arrays: list[Any], offsets: list[int]) -> Any:
    """The 1-d array of which ``arrays`` are consecutive, contiguous slices in order, or None."""
    base = arrays[0].base
    if base is None or base.ndim != 1 or base.size != offsets[-1] or not base.flags.c_contiguous:
        return None
    start = _address(base)
    for a, off in zip(arrays, offsets):
        if a.base is not base or not a.flags.c_contiguous or _address(a) != start + off * a.itemsize:
            return None
    return base


def _address(a: Any) -> int:
    """Where an array's first element is in memory (NumPy or CuPy)."""
    return a.__array_interface__["data"][0] if hasattr(a, "__array_interface__") else a.data.ptr
