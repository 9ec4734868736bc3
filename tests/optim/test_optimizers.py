"""Optimizers against ``torch.optim``: identical twin layers, identical batches, 20 steps each.

Each optimizer configuration trains a ``dlia.nn.Linear`` and a ``torch.nn.Linear`` holding the
same initial weights (copied from ours into torch) on the same random batches; the weights must
agree to 1e-5 in float32 after every step. Also: parameter groups, checkpoints of the optimizer
state, and the errors for bad state dicts and bad hyper-parameters.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import dlia
from dlia import nn, optim

IN, OUT, BATCH, STEPS = 6, 4, 16, 20


def make_twins(seed: int = 0, in_features: int = IN, out_features: int = OUT) -> tuple[nn.Linear, torch.nn.Linear]:
    """A dlia Linear and a torch Linear with the same float32 weights (ours copied into torch)."""
    ours = nn.Linear(in_features, out_features, generator=dlia.Generator(seed))
    theirs = torch.nn.Linear(in_features, out_features)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().copy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.numpy().copy()))
    return ours, theirs


def make_batches(seed: int, loss: str, steps: int = STEPS) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        x = rng.standard_normal((BATCH, IN)).astype(np.float32)
        if loss == "ce":
            y = rng.integers(0, OUT, BATCH).astype(np.int64)
        else:
            y = rng.standard_normal((BATCH, OUT)).astype(np.float32)
        out.append((x, y))
    return out


def dlia_step(model: nn.Module, opt: optim.Optimizer, x: np.ndarray, y: np.ndarray, loss: str) -> None:
    opt.zero_grad()
    out = model(dlia.tensor(x))
    value = nn.functional.cross_entropy(out, y) if loss == "ce" else nn.functional.mse_loss(out, dlia.tensor(y))
    value.backward()
    opt.step()


def torch_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: np.ndarray, y: np.ndarray, loss: str) -> None:
    opt.zero_grad()
    out = model(torch.from_numpy(x))
    target = torch.from_numpy(y)
    value = torch.nn.functional.cross_entropy(out, target) if loss == "ce" else torch.nn.functional.mse_loss(out, target)
    value.backward()
    opt.step()


def assert_same_weights(ours: nn.Linear, theirs: torch.nn.Linear, step: int, atol: float = 1e-5) -> None:
    for name in ("weight", "bias"):
        a = getattr(ours, name).numpy()
        b = getattr(theirs, name).detach().numpy()
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=atol, err_msg=f"{name} differs after step {step}")


# name, dlia class, torch class, hyper-parameters (same names in both), loss
CONFIGS = [
    ("sgd", optim.SGD, torch.optim.SGD, dict(lr=0.1), "ce"),
    ("sgd_momentum", optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9), "ce"),
    ("sgd_nesterov_wd", optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2), "ce"),
    ("sgd_dampening", optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3), "ce"),
    ("sgd_momentum_mse", optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9), "mse"),
    ("adam", optim.Adam, torch.optim.Adam, dict(lr=1e-2), "ce"),
    ("adam_betas_eps", optim.Adam, torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-6), "ce"),
    ("adam_amsgrad_wd", optim.Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True, weight_decay=1e-2), "ce"),
    ("adam_mse", optim.Adam, torch.optim.Adam, dict(lr=1e-2), "mse"),
    ("adamw", optim.AdamW, torch.optim.AdamW, dict(lr=1e-2), "ce"),
    ("adamw_wd_amsgrad", optim.AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True), "ce"),
    ("rmsprop", optim.RMSprop, torch.optim.RMSprop, dict(lr=1e-2), "ce"),
    ("rmsprop_centered", optim.RMSprop, torch.optim.RMSprop, dict(lr=1e-2, centered=True), "ce"),
    ("rmsprop_momentum", optim.RMSprop, torch.optim.RMSprop, dict(lr=1e-2, momentum=0.9), "ce"),
    ("rmsprop_weight_decay", optim.RMSprop, torch.optim.RMSprop, dict(lr=1e-2, alpha=0.9, weight_decay=0.05), "ce"),
    ("rmsprop_all", optim.RMSprop, torch.optim.RMSprop,
     dict(lr=5e-3, centered=True, momentum=0.5, weight_decay=0.01), "mse"),
    ("adagrad", optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1), "ce"),
    ("adagrad_decay_wd_init", optim.Adagrad, torch.optim.Adagrad,
     dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1), "ce"),
]


@pytest.mark.parametrize(("name", "ours_cls", "torch_cls", "hp", "loss"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_matches_torch_over_20_steps(name, ours_cls, torch_cls, hp, loss) -> None:
    ours, theirs = make_twins(seed=1)
    opt = ours_cls(ours.parameters(), **hp)
    topt = torch_cls(theirs.parameters(), **hp)
    for step, (x, y) in enumerate(make_batches(seed=2, loss=loss), start=1):
        dlia_step(ours, opt, x, y, loss)
        torch_step(theirs, topt, x, y, loss)
        assert_same_weights(ours, theirs, step)
    # the run really moved the weights (a no-op optimizer would pass trivially otherwise)
    fresh, _ = make_twins(seed=1)
    assert np.abs(ours.weight.numpy() - fresh.weight.numpy()).max() > 1e-2


def test_defaults_match_torch() -> None:
    """The default hyper-parameters are PyTorch's (so the twins above also cover the defaults)."""
    p = [nn.Parameter(np.zeros(2, np.float32))]
    tp = [torch.nn.Parameter(torch.zeros(2))]
    pairs = [
        (optim.SGD(p, lr=0.1), torch.optim.SGD(tp, lr=0.1)),
        (optim.Adam(p), torch.optim.Adam(tp)),
        (optim.AdamW(p), torch.optim.AdamW(tp)),
        (optim.RMSprop(p), torch.optim.RMSprop(tp)),
        (optim.Adagrad(p), torch.optim.Adagrad(tp)),
    ]
    for ours, theirs in pairs:
        for key, value in ours.defaults.items():
            assert key in theirs.defaults, f"{type(ours).__name__}: {key} is not a torch hyper-parameter"
            want = theirs.defaults[key]
            assert value == (tuple(want) if isinstance(want, (tuple, list)) else want), (type(ours).__name__, key)


def test_param_groups_with_different_lr() -> None:
    ours, theirs = make_twins(seed=3)
    opt = optim.SGD([{"params": [ours.weight], "lr": 0.2}, {"params": [ours.bias]}], lr=0.01, momentum=0.9)
    topt = torch.optim.SGD([{"params": [theirs.weight], "lr": 0.2}, {"params": [theirs.bias]}], lr=0.01, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.01]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    for step, (x, y) in enumerate(make_batches(seed=4, loss="ce"), start=1):
        dlia_step(ours, opt, x, y, "ce")
        torch_step(theirs, topt, x, y, "ce")
        assert_same_weights(ours, theirs, step)


def test_param_groups_adam_own_hyper_parameters() -> None:
    ours, theirs = make_twins(seed=5)
    groups = lambda m: [  # noqa: E731
        {"params": [m.weight], "lr": 3e-2, "weight_decay": 0.1},
        {"params": [m.bias], "betas": (0.5, 0.9)},
    ]
    opt = optim.Adam(groups(ours), lr=1e-2)
    topt = torch.optim.Adam(groups(theirs), lr=1e-2)
    for step, (x, y) in enumerate(make_batches(seed=6, loss="mse"), start=1):
        dlia_step(ours, opt, x, y, "mse")
        torch_step(theirs, topt, x, y, "mse")
        assert_same_weights(ours, theirs, step)


def test_add_param_group_after_construction() -> None:
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = optim.SGD(a.parameters(), lr=0.1)
    opt.add_param_group({"params": b.parameters(), "lr": 0.5})
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.0
    with pytest.raises(ValueError, match="more than one group"):
        opt.add_param_group({"params": [a.weight]})


def test_parameters_without_grad_are_skipped() -> None:
    """A parameter that got no gradient is left alone, and gets no optimizer state (as in torch)."""
    used, unused = nn.Linear(3, 2), nn.Linear(3, 2)
    before = unused.weight.numpy().copy()
    opt = optim.Adam(list(used.parameters()) + list(unused.parameters()), lr=0.1)
    used(dlia.ones((1, 3))).sum().backward()
    opt.step()
    np.testing.assert_array_equal(unused.weight.numpy(), before)
    assert unused.weight not in opt.state and used.weight in opt.state


def test_step_with_closure_returns_loss() -> None:
    ours, theirs = make_twins(seed=7)
    x, y = make_batches(seed=8, loss="ce", steps=1)[0]
    opt = optim.SGD(ours.parameters(), lr=0.1)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1)

    def closure() -> dlia.Tensor:
        opt.zero_grad()
        value = nn.functional.cross_entropy(ours(dlia.tensor(x)), y)
        value.backward()
        return value

    def tclosure() -> torch.Tensor:
        topt.zero_grad()
        value = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        value.backward()
        return value

    assert float(opt.step(closure)) == pytest.approx(topt.step(tclosure).item(), rel=1e-6)
    assert_same_weights(ours, theirs, 1)


def test_zero_grad_set_to_none_and_zeros() -> None:
    lin = nn.Linear(3, 2)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(dlia.ones((1, 3))).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert lin.weight.grad is not None and not lin.weight.grad.numpy().any()
    opt.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_zero_grad_without_set_to_none_fills_zeros_even_over_inf_and_nan() -> None:
    lin = nn.Linear(2, 2)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin.weight.grad = dlia.tensor(np.array([[np.inf, -np.inf], [np.nan, 1.0]], np.float32))
    opt.zero_grad(set_to_none=False)  # inf·0 would leave NaN, and NaN stays through every step
    assert lin.weight.grad.dtype == np.float32 and np.array_equal(lin.weight.grad.numpy(), np.zeros((2, 2)))


# -- checkpoints of the optimizer state ----------------------------------------------------------
RESUME = [
    ("sgd_momentum", optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("adam_amsgrad", optim.Adam, dict(lr=1e-2, amsgrad=True)),
    ("adamw", optim.AdamW, dict(lr=1e-2)),
    ("rmsprop_centered_momentum", optim.RMSprop, dict(lr=1e-2, centered=True, momentum=0.5)),
    ("adagrad", optim.Adagrad, dict(lr=0.1, lr_decay=0.01)),
]


@pytest.mark.parametrize(("name", "cls", "hp"), RESUME, ids=[r[0] for r in RESUME])
def test_state_dict_resume_continues_identically(name, cls, hp) -> None:
    batches = make_batches(seed=9, loss="ce")
    model, _ = make_twins(seed=10)
    opt = cls(model.parameters(), **hp)
    for x, y in batches[:10]:
        dlia_step(model, opt, x, y, "ce")
    saved = copy.deepcopy(opt.state_dict())  # as if written to disk and read back

    resumed = nn.Linear(IN, OUT)
    resumed.load_state_dict({k: v.numpy().copy() for k, v in model.state_dict().items()})
    opt2 = cls(resumed.parameters(), lr=123.0)  # the loaded groups bring the real lr back
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == hp["lr"]
    assert set(opt2.state_dict()["state"]) == set(saved["state"])

    for x, y in batches[10:]:
        dlia_step(model, opt, x, y, "ce")
        dlia_step(resumed, opt2, x, y, "ce")
    np.testing.assert_array_equal(resumed.weight.numpy(), model.weight.numpy())
    np.testing.assert_array_equal(resumed.bias.numpy(), model.bias.numpy())


def test_state_dict_resume_matches_uninterrupted_torch_run() -> None:
    """Save after 10 steps, resume in a fresh optimizer, and still track torch's unbroken run."""
    batches = make_batches(seed=11, loss="ce")
    ours, theirs = make_twins(seed=12)
    opt = optim.Adam(ours.parameters(), lr=1e-2, weight_decay=1e-3)
    topt = torch.optim.Adam(theirs.parameters(), lr=1e-2, weight_decay=1e-3)
    for x, y in batches[:10]:
        dlia_step(ours, opt, x, y, "ce")
        torch_step(theirs, topt, x, y, "ce")
    opt2 = optim.Adam(ours.parameters(), lr=1e-2, weight_decay=1e-3)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for step, (x, y) in enumerate(batches[10:], start=11):
        dlia_step(ours, opt2, x, y, "ce")
        torch_step(theirs, topt, x, y, "ce")
        assert_same_weights(ours, theirs, step)


def test_state_dict_layout_like_torch() -> None:
    ours, theirs = make_twins(seed=13)
    opt = optim.Adam(ours.parameters(), lr=1e-2)
    topt = torch.optim.Adam(theirs.parameters(), lr=1e-2)
    x, y = make_batches(seed=14, loss="ce", steps=1)[0]
    dlia_step(ours, opt, x, y, "ce")
    torch_step(theirs, topt, x, y, "ce")
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd) == sorted(tsd) == ["param_groups", "state"]
    assert sd["param_groups"][0]["params"] == tsd["param_groups"][0]["params"] == [0, 1]
    assert set(sd["state"]) == set(tsd["state"]) == {0, 1}
    assert set(sd["state"][0]) == set(tsd["state"][0])
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(sd["state"][0][key], tsd["state"][0][key].numpy(), rtol=1e-5, atol=1e-7)


def _trained_adam(in_features: int = IN) -> tuple[nn.Linear, optim.Adam]:
    model = nn.Linear(in_features, OUT)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    model(dlia.ones((2, in_features))).sum().backward()
    opt.step()
    return model, opt


def test_load_state_dict_group_count_mismatch_raises() -> None:
    _, opt = _trained_adam()
    model = nn.Linear(IN, OUT)
    two_groups = optim.Adam([{"params": [model.weight]}, {"params": [model.bias]}], lr=5e-3)
    with pytest.raises(ValueError, match=r"1 parameter groups, optimizer has 2"):
        two_groups.load_state_dict(opt.state_dict())
    assert [g["lr"] for g in two_groups.param_groups] == [5e-3, 5e-3] and not two_groups.state


def test_load_state_dict_group_size_mismatch_raises() -> None:
    _, opt = _trained_adam()
    model = nn.Linear(IN, OUT)
    only_weight = optim.Adam([model.weight], lr=5e-3)
    with pytest.raises(ValueError, match=r"group has 2 parameters, optimizer group has 1"):
        only_weight.load_state_dict(opt.state_dict())


def test_load_state_dict_shape_mismatch_raises_and_changes_nothing() -> None:
    _, opt = _trained_adam(in_features=IN)
    other, _ = _trained_adam(in_features=IN + 1)
    fresh = optim.Adam(other.parameters(), lr=5e-3)
    with pytest.raises(ValueError, match=r"exp_avg.*shape \(4, 6\).*\(4, 7\)"):
        fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["lr"] == 5e-3 and not fresh.state


def test_load_state_dict_malformed_raises() -> None:
    _, opt = _trained_adam()
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})
    sd = opt.state_dict()
    sd["state"] = {5: sd["state"][0]}
    with pytest.raises(ValueError, match="parameter 5"):
        opt.load_state_dict(sd)


# -- bad hyper-parameters: ValueError, exactly where torch raises one -----------------------------
# dlia class, torch class, hyper-parameters, what the message must name
BAD = [
    (optim.SGD, torch.optim.SGD, dict(lr=-0.1), "lr"),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=-0.5), "momentum"),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=-1e-4), "weight_decay"),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, nesterov=True), "Nesterov"),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (optim.Adam, torch.optim.Adam, dict(lr=-1e-3), "lr"),
    (optim.Adam, torch.optim.Adam, dict(eps=-1e-8), "eps"),
    (optim.Adam, torch.optim.Adam, dict(betas=(1.0, 0.999)), "betas"),
    (optim.Adam, torch.optim.Adam, dict(betas=(0.9, -0.1)), "betas"),
    (optim.Adam, torch.optim.Adam, dict(weight_decay=-0.1), "weight_decay"),
    (optim.AdamW, torch.optim.AdamW, dict(lr=-1e-3), "lr"),
    (optim.AdamW, torch.optim.AdamW, dict(weight_decay=-0.1), "weight_decay"),
    (optim.AdamW, torch.optim.AdamW, dict(betas=(0.9, 1.5)), "betas"),
    (optim.RMSprop, torch.optim.RMSprop, dict(lr=-0.01), "lr"),
    (optim.RMSprop, torch.optim.RMSprop, dict(alpha=-0.5), "alpha"),
    (optim.RMSprop, torch.optim.RMSprop, dict(eps=-1.0), "eps"),
    (optim.RMSprop, torch.optim.RMSprop, dict(momentum=-0.9), "momentum"),
    (optim.RMSprop, torch.optim.RMSprop, dict(weight_decay=-0.01), "weight_decay"),
    (optim.Adagrad, torch.optim.Adagrad, dict(lr=-0.01), "lr"),
    (optim.Adagrad, torch.optim.Adagrad, dict(lr_decay=-0.1), "lr_decay"),
    (optim.Adagrad, torch.optim.Adagrad, dict(weight_decay=-0.01), "weight_decay"),
    (optim.Adagrad, torch.optim.Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (optim.Adagrad, torch.optim.Adagrad, dict(eps=-1e-10), "eps"),
]


@pytest.mark.parametrize(("ours_cls", "torch_cls", "hp", "names"), BAD,
                         ids=[f"{c[0].__name__}-{'-'.join(c[2])}" for c in BAD])
def test_invalid_hyper_parameters_raise(ours_cls, torch_cls, hp, names) -> None:
    with pytest.raises(ValueError):
        torch_cls([torch.nn.Parameter(torch.zeros(2))], **hp)
    with pytest.raises(ValueError, match=names):
        ours_cls([nn.Parameter(np.zeros(2, np.float32))], **hp)


def test_empty_parameter_list_raises() -> None:
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])


# -- frozen parameters (requires_grad=False) are accepted and skipped, as in torch ----------------
FROZEN = [
    ("sgd_momentum", optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    ("adam", optim.Adam, torch.optim.Adam, dict(lr=1e-2)),
    ("adam_wd", optim.Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
    ("adamw", optim.AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    ("rmsprop", optim.RMSprop, torch.optim.RMSprop, dict(lr=1e-2, momentum=0.5)),
    ("adagrad", optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
]


def _twin_stack(seed: int) -> tuple[list[nn.Linear], list[torch.nn.Linear]]:
    ours, theirs = [], []
    for k, (i, o) in enumerate([(IN, 8), (8, 8), (8, OUT), (IN, OUT)]):  # the last one never gets a gradient
        a, b = make_twins(seed + k, i, o)
        ours.append(a)
        theirs.append(b)
    return ours, theirs


@pytest.mark.parametrize(("name", "ours_cls", "torch_cls", "hp"), FROZEN, ids=[c[0] for c in FROZEN])
def test_frozen_parameters_are_skipped_then_train_once_unfrozen_like_torch(name, ours_cls, torch_cls, hp) -> None:
    ours, theirs = _twin_stack(seed=3)
    for layers in (ours, theirs):
        layers[0].requires_grad_(False)  # frozen from the start, unfrozen at step 8
        layers[2].bias.requires_grad_(False)  # frozen throughout
    opt = ours_cls([p for m in ours for p in m.parameters()], **hp)
    topt = torch_cls([p for m in theirs for p in m.parameters()], **hp)
    start = [m.weight.numpy().copy() for m in ours]
    for step, (x, y) in enumerate(make_batches(seed=4, loss="ce"), start=1):
        if step == 8:
            ours[0].requires_grad_(True)
            theirs[0].requires_grad_(True)
        opt.zero_grad()
        h = dlia.tensor(x)
        for m in ours[:3]:
            h = dlia.tanh(m(h))
        nn.functional.cross_entropy(h, y).backward()
        opt.step()
        topt.zero_grad()
        t = torch.from_numpy(x)
        for m in theirs[:3]:
            t = torch.tanh(m(t))
        torch.nn.functional.cross_entropy(t, torch.from_numpy(y)).backward()
        topt.step()
        for a, b in zip(ours, theirs):
            assert_same_weights(a, b, step)
        assert (ours[0].weight in opt.state) == (step >= 8)
        assert ours[2].bias not in opt.state and ours[3].weight not in opt.state
    np.testing.assert_array_equal(ours[3].weight.numpy(), start[3])  # grad None throughout: untouched
    assert np.abs(ours[0].weight.numpy() - start[0]).max() > 1e-3  # unfrozen: it trained


# -- the multi-tensor ("foreach") path -----------------------------------------------------------
def _mlp(seed: int) -> nn.Module:
    return nn.Sequential(nn.Linear(5, 7, generator=dlia.Generator(seed)), nn.Tanh(),
                         nn.Linear(7, 3, generator=dlia.Generator(seed + 1)))


def _train(opt_factory, per_parameter: bool, steps: int = 12, skip_at: int | None = None, reload_at: int | None = None):
    model = _mlp(0)
    opt = opt_factory(model.parameters())
    if per_parameter:
        opt.update_group = None  # force the one-parameter-at-a-time path
    rng = np.random.default_rng(3)
    for step in range(steps):
        x, y = rng.standard_normal((8, 5)).astype(np.float32), rng.integers(0, 3, 8)
        opt.zero_grad()
        dlia.cross_entropy(model(dlia.tensor(x)), y).backward()
        if step == skip_at:
            model[2].bias.grad = None  # one parameter sits a step out: its step count falls behind
        opt.step()
        if step == reload_at:
            state = copy.deepcopy(opt.state_dict())
            opt = opt_factory(model.parameters())
            if per_parameter:
                opt.update_group = None
            opt.load_state_dict(state)
    return [p.numpy().copy() for p in model.parameters()], opt


@pytest.mark.parametrize("factory", [
    lambda ps: optim.Adam(ps, lr=1e-2),
    lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=1e-2, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
], ids=["adam", "adam-l2", "amsgrad", "adamw", "sgd", "sgd-momentum-dampening-wd", "sgd-nesterov"])
@pytest.mark.parametrize("skip_at, reload_at", [(None, None), (0, None), (4, None), (None, 5), (3, 7)])
def test_group_update_equals_per_parameter_update_bit_for_bit(factory, skip_at, reload_at) -> None:
    a, opt_a = _train(factory, per_parameter=False, skip_at=skip_at, reload_at=reload_at)
    b, opt_b = _train(factory, per_parameter=True, skip_at=skip_at, reload_at=reload_at)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa, pb)
    sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    for k in sb:
        for name, v in sb[k].items():
            np.testing.assert_array_equal(np.asarray(sa[k][name]), np.asarray(v), err_msg=f"{k}/{name}")


def test_group_update_state_entries_are_views_and_checkpoints_are_plain_arrays(tmp_path) -> None:
    from dlia.io import load_checkpoint, save_checkpoint

    params, opt = _train(lambda ps: optim.Adam(ps, lr=1e-2), per_parameter=False, steps=3)
    flat = opt._flat[id(opt.param_groups[0])]
    p0 = opt.param_groups[0]["params"][0]
    assert opt.state[p0]["exp_avg"].base is flat.arrays["exp_avg"]
    model = _mlp(0)
    opt2 = optim.Adam(model.parameters(), lr=1e-2)
    path = save_checkpoint(tmp_path / "c.npz", _mlp(0), opt)
    load_checkpoint(path, model, opt2)
    for k, st in opt.state_dict()["state"].items():
        np.testing.assert_array_equal(opt2.state_dict()["state"][k]["exp_avg"], st["exp_avg"])


@pytest.mark.parametrize("lib", [dlia, torch], ids=["dlia", "torch"])
def test_optimizer_step_between_forward_and_backward_is_detected(lib):
    x = lib.tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)  # so torch saves the weight too
    lin = (nn if lib is dlia else torch.nn).Linear(3, 2)
    opt = (optim if lib is dlia else torch.optim).SGD(lin.parameters(), lr=0.1)
    lin(x).sum().backward()
    loss = lin(x).sum()  # the linear op saved the weight for x's gradient
    opt.step()  # updates the weight in place
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    opt.zero_grad()
    lin(x).sum().backward()  # a forward after the step is fine
    retained = lin(x).sum()
    retained.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        retained.backward()
