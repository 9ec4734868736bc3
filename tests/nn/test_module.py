"""``nn.Module``: registration, traversal order and names, state dicts (also from torch), modes,
gradients and dtype conversion."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import dlia
from dlia import nn


class Block(nn.Module):
    """A custom module: its own parameter, a child module, and a ModuleList."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, np.float32))
        self.inner = nn.Linear(3, 3)
        self.heads = nn.ModuleList([nn.Linear(3, 2), nn.Linear(3, 2, bias=False)])

    def forward(self, x: dlia.Tensor) -> list[dlia.Tensor]:
        h = self.inner(x * self.scale)
        return [head(h) for head in self.heads]


class TorchBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(3))
        self.inner = torch.nn.Linear(3, 3)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(3, 2), torch.nn.Linear(3, 2, bias=False)])


def _nested() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), Block(), nn.Sequential(OrderedDict(last=nn.Linear(2, 1))))


def _nested_torch() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), TorchBlock(),
                               torch.nn.Sequential(OrderedDict(last=torch.nn.Linear(2, 1))))


def _to_numpy(sd: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in sd.items()}


def _twin_mlp() -> tuple[nn.Sequential, torch.nn.Sequential]:
    return (nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)),
            torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)))


# -- traversal ---------------------------------------------------------------------------------
def test_named_parameters_order_and_names_match_torch() -> None:
    ours, theirs = _nested(), _nested_torch()
    names = [n for n, _ in ours.named_parameters()]
    assert names == [n for n, _ in theirs.named_parameters()]
    assert names[:4] == ["0.weight", "0.bias", "2.scale", "2.inner.weight"]
    assert names[-1] == "3.last.bias"
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


def test_named_modules_and_children_match_torch() -> None:
    ours, theirs = _nested(), _nested_torch()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [type(m).__name__ for m in ours[2].children()] == ["Linear", "ModuleList"]
    assert [n for n, _ in ours[2].named_parameters(recurse=False)] == ["scale"]


def test_shared_parameter_and_module_counted_once() -> None:
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    tied = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    tied[1].weight = tied[0].weight
    tshared = torch.nn.Linear(3, 3)
    tmodel = torch.nn.Sequential(tshared, torch.nn.Tanh(), tshared)
    ttied = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    ttied[1].weight = ttied[0].weight
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in tmodel.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in tied.named_parameters()] == [n for n, _ in ttied.named_parameters()]
    assert len(list(tied.parameters())) == 3 and tied.num_parameters() == 9 + 3 + 3
    # a shared parameter gets one gradient, the sum over both uses
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    model.load_state_dict(_to_numpy(tmodel.state_dict()))
    model(dlia.tensor(x)).sum().backward()
    tmodel(torch.from_numpy(x)).sum().backward()
    np.testing.assert_allclose(shared.weight.grad.numpy(), tshared.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_state_dict_of_shared_modules_lists_every_name_like_torch() -> None:
    """torch saves a shared module (or tied weight) under every name; the checkpoints must load both ways."""
    shared, tshared = nn.Linear(3, 3), torch.nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    tmodel = torch.nn.Sequential(tshared, torch.nn.Tanh(), tshared)
    assert list(model.state_dict()) == list(tmodel.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    model.load_state_dict(_to_numpy(tmodel.state_dict()))  # strict: no unexpected keys
    np.testing.assert_array_equal(shared.weight.numpy(), tshared.weight.detach().numpy())
    tmodel.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})

    tied = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    tied[1].weight = tied[0].weight
    ttied = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    ttied[1].weight = ttied[0].weight
    assert list(tied.state_dict()) == list(ttied.state_dict())


def test_reassigning_a_parameter_keeps_its_place() -> None:
    """Weight tying (``decoder.weight = encoder.weight``) must not reorder the parameters."""
    ours, theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ours.weight = nn.Parameter(np.zeros((2, 2), np.float32))
    theirs.weight = torch.nn.Parameter(torch.zeros(2, 2))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == ["weight", "bias"]


def test_reassigning_an_attribute_replaces_the_registration() -> None:
    m = nn.Module()
    m.a = nn.Linear(2, 2)
    m.a = nn.Parameter(np.zeros(2, np.float32))
    assert [n for n, _ in m.named_parameters()] == ["a"]
    del m.a
    assert list(m.named_parameters()) == []
    with pytest.raises(AttributeError, match="Module.__init__"):
        class Broken(nn.Module):
            def __init__(self) -> None:
                self.w = nn.Parameter(np.zeros(1, np.float32))

        Broken()


def test_assigning_a_tensor_over_a_parameter_raises_like_torch() -> None:
    """``lin.weight = lin.weight * 2`` would silently unregister the weight: TypeError, as in torch."""
    ours, theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"cannot assign 'torch.FloatTensor' as parameter 'weight' \("):
        theirs.weight = theirs.weight * 2
    with pytest.raises(TypeError, match=r"cannot assign 'Tensor' as parameter 'weight' \(nn.Parameter or None expected\)"):
        ours.weight = ours.weight * 2
    with pytest.raises(TypeError, match="as parameter 'bias'"):
        ours.bias = np.zeros(2, np.float32)
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"] and isinstance(ours.weight, nn.Parameter)
    with pytest.raises(TypeError, match=r"cannot assign 'int' as child module '0' \(nn.Module or None expected\)"):
        setattr(nn.Sequential(nn.ReLU()), "0", 3)
    m = nn.Module()
    m.register_buffer("running", np.zeros(2, np.float32))
    with pytest.raises(TypeError, match=r"cannot assign 'list' as buffer 'running' \(Tensor or None expected\)"):
        m.running = [1.0, 2.0]


def test_assigning_none_over_a_parameter_registers_none_like_torch() -> None:
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ours.bias, theirs.bias = None, None
    assert ours.bias is None and "bias" in ours._parameters
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == ["weight"]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(ours(dlia.tensor(x)).numpy(), x @ ours.weight.numpy().T, rtol=1e-6)
    ours.bias, theirs.bias = nn.Parameter(np.ones(2, np.float32)), torch.nn.Parameter(torch.ones(2))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == ["weight", "bias"]
    ours.register_parameter("weight", None)  # register_parameter(None) keeps the name too, as in torch
    theirs.register_parameter("weight", None)
    assert list(ours._parameters) == list(theirs._parameters) == ["weight", "bias"]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias"]


# -- state dicts -----------------------------------------------------------------------------------
def test_state_dict_keys_equal_torch() -> None:
    ours, theirs = _twin_mlp()
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert list(sd) == list(tsd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(sd[k].shape == tuple(tsd[k].shape) for k in sd)
    assert list(_nested().state_dict()) == list(_nested_torch().state_dict())


def test_load_torch_state_dict_makes_outputs_equal() -> None:
    ours, theirs = _twin_mlp()
    result = ours.load_state_dict(_to_numpy(theirs.state_dict()))
    assert result == nn.IncompatibleKeys([], [])
    x = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    out = ours(dlia.tensor(x))
    np.testing.assert_allclose(out.numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert ours[0].weight.dtype == np.float32


def test_load_state_dict_accepts_dlia_tensors_and_copies() -> None:
    a, _ = _twin_mlp()
    b, _ = _twin_mlp()
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b[2].bias.numpy(), a[2].bias.numpy())
    b[2].bias.data[...] = 7.0  # loading copied: a is unaffected
    assert not np.any(a[2].bias.numpy() == 7.0)


def test_state_dict_shares_data_and_is_detached() -> None:
    ours, _ = _twin_mlp()
    sd = ours.state_dict()
    assert not sd["0.weight"].requires_grad
    ours[0].weight.data[0, 0] = 42.0
    assert sd["0.weight"].numpy()[0, 0] == 42.0


def test_strict_load_names_missing_and_unexpected_keys() -> None:
    ours, theirs = _twin_mlp()
    sd = _to_numpy(theirs.state_dict())
    del sd["2.bias"]
    sd["3.weight"] = np.zeros((1, 1), np.float32)
    before = {k: v.numpy().copy() for k, v in ours.state_dict().items()}
    with pytest.raises(nn.StateDictError) as info:
        ours.load_state_dict(sd)
    msg = str(info.value)
    assert "missing keys: 2.bias" in msg and "unexpected keys: 3.weight" in msg
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg="a failed strict load changed the model")


def test_non_strict_load_returns_incompatible_keys() -> None:
    ours, theirs = _twin_mlp()
    sd = _to_numpy(theirs.state_dict())
    del sd["0.bias"]
    sd["extra"] = np.zeros(2, np.float32)
    result = ours.load_state_dict(sd, strict=False)
    assert isinstance(result, nn.IncompatibleKeys)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    missing, unexpected = result
    assert (missing, unexpected) == (["0.bias"], ["extra"])
    np.testing.assert_array_equal(ours[0].weight.numpy(), sd["0.weight"])  # what was there was loaded
    tresult = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    assert (tresult.missing_keys, tresult.unexpected_keys) == (missing, unexpected)


@pytest.mark.parametrize("strict", [True, False])
def test_shape_mismatch_names_key_and_shapes_and_changes_nothing(strict: bool) -> None:
    ours, theirs = _twin_mlp()
    sd = _to_numpy(theirs.state_dict())
    sd["2.weight"] = np.zeros((4, 7), np.float32)
    before = {k: v.numpy().copy() for k, v in ours.state_dict().items()}
    with pytest.raises(nn.StateDictError) as info:
        ours.load_state_dict(sd, strict=strict)
    msg = str(info.value)
    assert "2.weight" in msg and "(4, 7)" in msg and "(3, 7)" in msg
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=f"{k} changed by a failed load")


def test_load_keeps_parameter_dtype() -> None:
    ours, theirs = _twin_mlp()
    ours.load_state_dict({k: v.astype(np.float64) for k, v in _to_numpy(theirs.state_dict()).items()})
    assert all(p.dtype == np.float32 for p in ours.parameters())


# -- modes, gradients, dtype ----------------------------------------------------------------------
def test_train_eval_propagate_and_dropout_follows() -> None:
    drop = nn.Dropout(0.5, generator=dlia.Generator(0))
    model = nn.Sequential(nn.Linear(4, 4), Block().heads, nn.Sequential(drop))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    x = dlia.tensor(np.ones((50, 40), np.float32))
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())  # identity in eval
    model.train()
    assert all(m.training for m in model.modules())
    y = drop(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}  # inverted dropout: kept values scaled by 1/(1-p)
    assert 0.4 < (y == 0).mean() < 0.6
    model.train(False)
    assert not drop.training


def test_dropout_matches_torch_statistics_and_gradient() -> None:
    drop = nn.Dropout(0.2, generator=dlia.Generator(3))
    x = dlia.tensor(np.full((200, 100), 3.0, np.float32), requires_grad=True)
    y = drop(x)
    y.sum().backward()
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], 3.0 / 0.8, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.8, rtol=1e-6)  # gradient flows through kept units
    assert abs(kept.mean() - 0.8) < 0.01


def test_zero_grad() -> None:
    model, _ = _twin_mlp()
    model(dlia.tensor(np.ones((2, 5), np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_without_set_to_none_fills_zeros_even_over_inf_and_nan() -> None:
    model, _ = _twin_mlp()
    for p in model.parameters():
        p.grad = dlia.tensor(np.full(p.shape, np.inf, p.dtype))
    model.zero_grad(set_to_none=False)  # inf·0 would leave NaN
    assert all(p.grad.dtype == p.dtype and np.array_equal(p.grad.numpy(), np.zeros(p.shape)) for p in model.parameters())


def test_gradients_accumulate_like_torch() -> None:
    ours, theirs = _twin_mlp()
    ours.load_state_dict(_to_numpy(theirs.state_dict()))
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    for _ in range(2):
        ours(dlia.tensor(x)).sum().backward()
        theirs(torch.from_numpy(x)).sum().backward()
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_to_float64_converts_parameters_and_computes_in_float64() -> None:
    ours, theirs = _twin_mlp()
    ours.load_state_dict(_to_numpy(theirs.state_dict()))
    ours(dlia.tensor(np.ones((1, 5), np.float32))).sum().backward()
    assert ours.to(dtype=np.float64) is ours
    assert all(p.dtype == np.float64 for p in ours.parameters())
    assert all(p.grad is None for p in ours.parameters())
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())
    theirs.double()
    x = np.random.default_rng(3).standard_normal((3, 5))
    out = ours(dlia.tensor(x))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)
    assert all(p.dtype == np.float32 for p in ours.float().parameters())
    assert all(p.dtype == np.float64 for p in ours.double().parameters())


def test_apply_and_requires_grad() -> None:
    model, _ = _twin_mlp()
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential"]  # children first, like torch
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_buffers_are_saved_unless_non_persistent() -> None:
    m = nn.Linear(2, 2)
    m.register_buffer("running", np.zeros(2, np.float32))
    m.register_buffer("scratch", np.zeros(2, np.float32), persistent=False)
    assert list(m.state_dict()) == ["weight", "bias", "running"]
    assert [n for n, _ in m.named_buffers()] == ["running", "scratch"]
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": np.ones(2), "running": np.full(2, 5.0)})
    np.testing.assert_array_equal(m.running.numpy(), [5.0, 5.0])


def test_reassigned_buffer_stays_a_buffer() -> None:
    """``self.running = 0.9 * self.running + ...`` (running statistics) keeps it in the state dict, as in torch."""
    m = nn.Linear(2, 2)
    m.register_buffer("running", np.zeros(2, np.float32))
    m.running = m.running * 0.5 + 1.0
    assert list(m.state_dict()) == ["weight", "bias", "running"]
    np.testing.assert_array_equal(m.state_dict()["running"].numpy(), [1.0, 1.0])
    m.running = nn.Parameter(np.zeros(2, np.float32))  # a parameter now, as torch would have it
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias", "running"]
    assert list(m.named_buffers()) == []


def test_repr_lists_children() -> None:
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in text and "(1): ReLU()" in text


def test_names_and_kinds_of_registered_attributes_follow_torch():  # review of issue 10
    for lib, ones in ((nn, lambda: dlia.ones((2,))), (torch.nn, lambda: torch.ones(2))):
        m = lib.Linear(2, 2)
        with pytest.raises(TypeError, match="cannot assign"):
            m.weight = lib.Linear(2, 2)  # a module over a parameter
        for name in ("weight", "a.b", "", "training"):
            with pytest.raises(KeyError):
                m.register_buffer(name, ones())
        m.register_buffer("rb", ones())
        m.register_buffer("rb", ones())  # the same kind again is fine
        assert list(m.state_dict()) == ["weight", "bias", "rb"]


def test_linear_lr_refuses_a_zero_start_factor_like_torch():  # review of issue 10: was ZeroDivisionError at step
    from dlia import optim

    with pytest.raises(ValueError):
        torch.optim.lr_scheduler.LinearLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), start_factor=0.0)
    with pytest.raises(ValueError, match="start_factor"):
        optim.lr_scheduler.LinearLR(optim.SGD([nn.Parameter(dlia.zeros((1,)))], lr=0.1), start_factor=0.0)
