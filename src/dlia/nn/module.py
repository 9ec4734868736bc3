"""``Module``: the base of every layer, with PyTorch's names for parameters and state."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, NamedTuple

import numpy

from dlia.backend.device import Device, get_device
from dlia.core.creation import zeros_like
from dlia.core.sparse import SparseGrad
from dlia.core.tensor import Tensor
from dlia.nn.parameter import Parameter


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` found missing from, or unexpected in, a state dict."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(KeyError):
    """A state dict that does not fit the module (missing/unexpected keys, wrong shapes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _check_kind(registry: dict[str, Any], name: str, value: Any, kind: type | None, what: str, expected: str) -> dict[str, Any]:
    """``registry`` if ``value`` may replace its entry ``name`` (None, or an instance of ``kind``)."""
    if value is not None and (kind is None or not isinstance(value, kind)):
        raise TypeError(f"cannot assign {type(value).__name__!r} as {what} {name!r} ({expected} or None expected)")
    return registry
#: told of every module called while ``dlia.compile`` traces (``observe_calls``), so the trace can be
#: guarded on what it read: each module's ``training`` flag and its tensors
_CALL_OBSERVER: ContextVar[Callable[[Module], None] | None] = ContextVar("dlia_module_call_observer", default=None)


@contextlib.contextmanager
def observe_calls(observer: Callable[[Module], None]) -> Iterator[None]:
    """Call ``observer(module)`` before every module call inside the block (restored on exit)."""
    token = _CALL_OBSERVER.set(observer)
    try:
        yield
    finally:
        _CALL_OBSERVER.reset(token)


def _check_name(module: Module, name: str, what: str, registry: dict[str, Any]) -> None:
    """torch's rules for ``register_buffer``/``register_parameter`` names: a non-empty string without
    dots that is not already an attribute of another kind (KeyError otherwise)."""
    if not isinstance(name, str):
        raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
    if not name or "." in name:
        raise KeyError(f"{what} name can't be empty or contain \".\", got {name!r}")
    if name not in registry and (hasattr(module, name) or any(name in r for r in (
            module._parameters, module._buffers, module._modules))):
        raise KeyError(f"attribute {name!r} already exists")


class Module:
    """Base class of layers and models.

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, so ``parameters()``,
    ``state_dict()``, ``train()``/``eval()`` and ``to()`` reach it. Subclasses implement
    ``forward``; calling the module calls ``forward``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration ----------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"call Module.__init__() in {type(self).__name__}.__init__ before assigning {name!r}")
        # torch's rules: a registered name keeps its kind; only None or a value of that kind may
        # replace it (``lin.weight = lin.weight * 2`` would otherwise silently unregister the weight)
        if isinstance(value, Parameter):
            target = self._parameters
        elif name in self._parameters:  # a module over a parameter is refused too, as in torch
            target = _check_kind(self._parameters, name, value, None, "parameter", "nn.Parameter")
        elif isinstance(value, Module) or name in self._modules:
            target = _check_kind(self._modules, name, value, Module, "child module", "nn.Module")
        elif name in self._buffers:  # reassigning a buffer (running statistics) keeps it a buffer
            target = _check_kind(self._buffers, name, value, Tensor, "buffer", "Tensor")
        else:
            target = None
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not target:
                registry.pop(name, None)
        if target is not None:
            target[name] = value  # a name already there keeps its place, so the order matches PyTorch's
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (``None`` registers an absent optional parameter: the name
        is kept, in its place, but ``parameters()`` and ``state_dict()`` skip it, as in torch)."""
        _check_name(self, name, "parameter", self._parameters)
        if param is None:
            for registry in (self._buffers, self._modules):
                registry.pop(name, None)
            self._parameters[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a non-trainable tensor (e.g. running statistics) that ``state_dict`` saves."""
        _check_name(self, name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(tensor)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # -- traversal -------------------------------------------------------------------------
    def named_modules(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """This module and every submodule with dotted names; a module reached by two paths comes once
        unless ``remove_duplicate`` is False (``state_dict`` names it under every path, like PyTorch)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop(0)
            if remove_duplicate:
                if id(mod) in seen:
                    continue
                seen.add(id(mod))
            yield name, mod
            stack[0:0] = [
                (f"{name}.{child}" if name else child, m) for child, m in mod._modules.items() if m is not None
            ]

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs; a parameter shared by two modules appears once."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mod_name, mod in mods:
            for name, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for mod_name, mod in self.named_modules(prefix):
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self) -> Iterator[Tensor]:
        for _, b in self.named_buffers():
            yield b

    def num_parameters(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.parameters()))

    # -- modes and gradients ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch statistics) on this module and submodules."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode; same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all parameters."""
        for p in self.parameters():
            if set_to_none or p.grad is None or isinstance(p.grad, SparseGrad):
                p.grad = None
            else:
                p.grad = zeros_like(p.grad)

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule and then on this module (e.g. custom initialisation)."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    def to(self, device: str | Device | None = None, dtype: Any = None) -> Module:
        """Move parameters and buffers to a device and/or floating dtype, in place."""
        dev = get_device(device) if device is not None else None
        for t in list(self.parameters()) + list(self.buffers()):
            arr = t.data
            if dtype is not None and arr.dtype.kind == "f":
                arr = arr.astype(dtype)
            if dev is not None:
                arr = dev.xp.asarray(arr) if dev.kind != "cpu" else Tensor(arr).numpy()
            t.data = arr
            t.grad = None
        return self

    def float(self) -> Module:
        return self.to(dtype=numpy.float32)

    def double(self) -> Module:
        return self.to(dtype=numpy.float64)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Every parameter and persistent buffer by dotted name (tensors sharing the data)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for mod_name, mod in self.named_modules(remove_duplicate=False):
            for name, p in mod._parameters.items():
                if p is not None:
                    out[f"{mod_name}.{name}" if mod_name else name] = p.detach()
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[f"{mod_name}.{name}" if mod_name else name] = b.detach()
        return out

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values into this module's parameters and buffers.

        Args:
            state_dict: name → Tensor or array, as returned by ``state_dict()``.
            strict: raise if any key is missing or unexpected.

        Returns:
            ``IncompatibleKeys(missing_keys, unexpected_keys)``.

        Raises:
            StateDictError: on a shape mismatch (always), or missing/unexpected keys when strict;
                the message lists every offending key. Nothing is changed when it raises.
        """
        own = self.state_dict()
        targets: dict[str, Tensor] = {}
        for mod_name, mod in self.named_modules(remove_duplicate=False):
            for name, t in list(mod._parameters.items()) + list(mod._buffers.items()):
                if t is not None:
                    targets[f"{mod_name}.{name}" if mod_name else name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        for k, v in state_dict.items():
            if k in own:
                shape = tuple(v.shape)
                if shape != own[k].shape:
                    problems.append(f"{k}: checkpoint has shape {shape}, model has {own[k].shape}")
        if strict:
            if missing:
                problems.append("missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise StateDictError(f"load_state_dict for {type(self).__name__} failed: " + "; ".join(problems))
        for k, v in state_dict.items():
            if k in targets:
                t = targets[k]
                arr = v.data if isinstance(v, Tensor) else v
                xp = t.device.xp
                t.data = xp.array(arr, dtype=t.data.dtype)
        return IncompatibleKeys(missing, unexpected)

    # -- calling and printing ------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        observer = _CALL_OBSERVER.get()
        if observer is not None:
            observer(self)
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"
