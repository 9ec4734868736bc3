"""Figures for the lecture's models. matplotlib is imported lazily so ``import dlia`` stays fast."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy

from dlia.io.atomic import atomic_write


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: file name suffix → matplotlib format of the pictures we write
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpeg", ".jpeg": "jpeg"}


def plot_format(path: str | os.PathLike[str]) -> str:
    """The picture format a file name asks for (by its suffix; none means PNG).

    Raises:
        ValueError: an unknown suffix, naming the ones that work.
    """
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "png"
    if suffix not in FORMATS:
        raise ValueError(f"{path}: cannot write a {suffix} picture; use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def save(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` in the format its file name asks for (PNG, SVG, PDF or JPEG) via a temporary
    file and rename, then close it."""
    plt = _pyplot()
    target = Path(path)
    try:
        fmt = plot_format(target)
        with atomic_write(target, "wb") as f:
            fig.savefig(f, format=fmt, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return target


def _scatter_labels(ax: Any, x: numpy.ndarray, y: numpy.ndarray, positive: Any = 1, negative: Any = 0) -> None:
    pos = y == positive
    ax.scatter(x[pos, 0], x[pos, 1], marker="o", c="tab:blue", edgecolors="k", s=60, label=f"y = {positive}", zorder=3)
    ax.scatter(x[~pos, 0], x[~pos, 1], marker="s", c="tab:orange", edgecolors="k", s=60, label=f"y = {negative}", zorder=3)


def _line(ax: Any, w: numpy.ndarray, b: float, x: numpy.ndarray, label: str) -> None:
    lo, hi = x[:, 0].min() - 0.5, x[:, 0].max() + 0.5
    xs = numpy.linspace(lo, hi, 50)
    if abs(w[1]) > 1e-12:
        ax.plot(xs, -(w[0] * xs + b) / w[1], "k--", label=label)
    elif abs(w[0]) > 1e-12:
        ax.axvline(-b / w[0], color="k", linestyle="--", label=label)
    ax.set_xlim(lo, hi)
    ax.set_ylim(x[:, 1].min() - 0.5, x[:, 1].max() + 0.5)


def perceptron_plot(x: numpy.ndarray, y: numpy.ndarray, w: numpy.ndarray, b: float, title: str,
                    path: str | os.PathLike[str]) -> Path:
    """Points by label and the perceptron's final separating line w·x + b = 0."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    _scatter_labels(ax, x, y, positive=1, negative=-1)
    _line(ax, w, b, x, "w·x + b = 0")
    ax.set_title(title)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.legend(loc="best", fontsize=8)
    return save(fig, path)


def curves_plot(curves: dict[str, Sequence[float]], title: str, path: str | os.PathLike[str], xlabel: str = "iteration",
                ylabel: str = "objective", log: bool = True) -> Path:
    """Several named curves on one axis (log scale by default)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(numpy.arange(len(values)), values, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


def loss_curve_plot(train: Sequence[float], val_iterations: Sequence[int], val: Sequence[float], title: str,
                    path: str | os.PathLike[str]) -> Path:
    """A training run's loss curve: the loss of every training batch (faint), its moving average
    over 50 batches, and the validation loss at the iterations where it was measured (dots), on a
    linear scale in nats per symbol."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    y = numpy.asarray(train, dtype=float)
    x = numpy.arange(1, len(y) + 1)
    if len(y):
        ax.plot(x, y, color="tab:blue", alpha=0.25, linewidth=0.6)
        k = min(50, len(y))
        smooth = numpy.convolve(y, numpy.ones(k) / k, mode="valid")
        ax.plot(x[k - 1:], smooth, color="tab:blue", label=f"training (mean of {k} batches)")
    if len(val):
        ax.plot(list(val_iterations), list(val), "o-", color="tab:red", markersize=3, label="validation")
        best = int(numpy.argmin(val))
        ax.annotate(f"best {val[best]:.3f}", (val_iterations[best], val[best]), textcoords="offset points",
                    xytext=(0, -14), ha="center", fontsize=8, color="tab:red")
    ax.set_xlabel("iteration (batch)")
    ax.set_ylabel("loss (nats per character)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


def xor_plot(predict: Callable[[numpy.ndarray], numpy.ndarray], hidden: Callable[[numpy.ndarray], numpy.ndarray],
             w_out: numpy.ndarray, b_out: float, x: numpy.ndarray, y: numpy.ndarray, title: str,
             path: str | os.PathLike[str]) -> Path:
    """Left: the decision boundary P(y=1 | x) = 0.5 in input space. Right: the four points in the
    space of the first two hidden units with the output unit's line, where XOR becomes linearly
    separable."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.5))
    g = numpy.linspace(-0.5, 1.5, 201)
    gx, gy = numpy.meshgrid(g, g)
    p = predict(numpy.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(gx.shape)
    ax1.contourf(gx, gy, p, levels=numpy.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax1.contour(gx, gy, p, levels=[0.5], colors="k")
    _scatter_labels(ax1, x, y)
    ax1.set_title("input space: P(y=1) and the 0.5 boundary")
    ax1.set_xlabel("x₁")
    ax1.set_ylabel("x₂")
    h = hidden(x)
    _scatter_labels(ax2, h[:, :2], y)
    for (hx, hy), (a, b) in zip(h[:, :2], x):
        ax2.annotate(f"({a:.0f},{b:.0f})", (hx, hy), textcoords="offset points", xytext=(6, 6), fontsize=8)
    if h.shape[1] == 2:
        _line(ax2, w_out, b_out, h, "output unit: w·h + b = 0")
        ax2.legend(loc="best", fontsize=8)
    ax2.set_title("hidden space: the classes are linearly separable")
    ax2.set_xlabel("h₁")
    ax2.set_ylabel("h₂")
    fig.suptitle(title)
    return save(fig, path)


def filters_plot(filters: numpy.ndarray, image: numpy.ndarray, maps: numpy.ndarray, path: str | os.PathLike[str]) -> Path:
    """First-layer filters (C, kh, kw), an input image, and its feature maps (C, H, W) in one picture."""
    plt = _pyplot()
    c = len(filters)
    cols = min(c, 8)
    rows = -(-c // cols)
    fig, axes = plt.subplots(2 * rows + 1, cols, figsize=(1.4 * cols, 1.4 * (2 * rows + 1)))
    axes = numpy.atleast_2d(axes)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    lim = numpy.abs(filters).max()
    for i in range(c):
        r, k = divmod(i, cols)
        axes[1 + r, k].imshow(filters[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[1 + r, k].set_title(f"filter {i}", fontsize=7)
        axes[1 + rows + r, k].imshow(maps[i], cmap="viridis")
        axes[1 + rows + r, k].set_title(f"map {i}", fontsize=7)
    fig.suptitle("first conv layer: 3×3 filters and their feature maps")
    return save(fig, path)


def captions_plot(images: Sequence[numpy.ndarray], captions: Sequence[str], truths: Sequence[str | None], title: str,
                  path: str | os.PathLike[str], columns: int = 4) -> Path:
    """Pictures in a grid, each with its generated caption below (green when it equals the true
    sentence, red otherwise, the true one under it; black when there is no true one)."""
    import textwrap

    plt = _pyplot()
    n = len(images)
    cols = max(1, min(columns, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 4.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, caption, truth in zip(axes.ravel(), images, captions, truths, strict=False):
        ax.imshow(image, interpolation="nearest")
        colour = "black" if truth is None else "tab:green" if caption == truth else "tab:red"
        text = "\n".join(textwrap.wrap(caption or "(empty)", 34))
        if truth is not None and caption != truth:
            text += "\ntrue: " + "\n".join(textwrap.wrap(truth, 34))
        ax.set_title(text, fontsize=7, color=colour, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)
