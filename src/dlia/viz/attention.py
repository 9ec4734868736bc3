"""Attention matrices as pictures: which source tokens each output token looked at."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy

from dlia.viz.plots import _pyplot, save


def _label(token: str) -> str:
    return "␣" if token == " " else token


def attention_plot(examples: Sequence[tuple[Sequence[str], Sequence[str], numpy.ndarray]], path: str | os.PathLike[str],
                   title: str | None = None) -> Path:
    """One heat map per example: output tokens down the rows (the last row is EOS when the output
    ended with it), source tokens along the columns, cell (t, j) = the weight output step t gave
    source token j (each row sums to 1). Spaces are drawn as ␣. Written as PNG, SVG, PDF or JPEG by
    the file name's suffix.

    Args:
        examples: (source tokens, output tokens, weights (steps, len(source))) per example; ``steps``
            may be ``len(output) + 1`` (the EOS step) or ``len(output)``.
        path: the picture to write.
        title: above the pictures.

    Raises:
        ValueError: no example, or weights whose shape does not fit the tokens.
    """
    if not examples:
        raise ValueError("attention_plot: no example to draw")
    for k, (src, out, w) in enumerate(examples):
        w = numpy.asarray(w)
        if w.ndim != 2 or w.shape[1] != len(src) or w.shape[0] not in (len(out), len(out) + 1):
            raise ValueError(f"attention_plot: example {k} has weights of shape {w.shape} for {len(src)} source "
                             f"and {len(out)} output tokens")
    plt = _pyplot()
    widths = [max(len(src), 4) for src, _, _ in examples]
    height = max(numpy.asarray(w).shape[0] for _, _, w in examples)
    fig, axes = plt.subplots(1, len(examples), figsize=(min(0.32 * sum(widths) + 1.5 * len(examples), 40), 0.32 * height + 1),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, (src, out, w) in zip(axes[0], examples):
        w = numpy.asarray(w, dtype=float)
        rows = [_label(t) for t in out] + (["</s>"] if w.shape[0] == len(out) + 1 else [])
        ax.imshow(w, cmap="Greys", vmin=0, vmax=1, aspect="equal", interpolation="nearest")
        ax.set_xticks(range(len(src)), [_label(t) for t in src], rotation=90 if max(map(len, src), default=1) > 1 else 0,
                      fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, path)
