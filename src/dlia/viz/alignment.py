"""The picture of an image–sentence alignment (``dlia caption rank --show-alignment``), in the manner
of Karpathy & Fei-Fei (2015)'s figures: the image with its regions, and each word of the sentence
linked to the region it matched."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy

from dlia.viz.plots import _pyplot, save

#: one colour per region (the 3 × 3 grid in reading order), far from the scenes' red, green, blue, yellow
REGION_COLOURS = ("#ff7f0e", "#17becf", "#e377c2", "#8c564b", "#ff9896", "#bcbd22", "#9467bd", "#7f7f7f", "#aec7e8")


def alignment_plot(image: numpy.ndarray, words: Sequence[str], regions: Sequence[int], scores: Sequence[float],
                   path: str | os.PathLike[str], title: str = "", grid: int = 3) -> Path:
    """Draw ``image`` (uint8 (S, S, 3)) cut into a ``grid`` × ``grid`` grid of regions, and the words of
    a sentence in a column beside it, each joined by a line to the centre of its region.

    Words and lines take their region's colour (numbered in the image, 1 = top left, reading order);
    a line's width grows with the word's score, so the words that matched strongly stand out, and
    a word with a score ≤ 0 gets a dotted line. Sentences are cut into lines at "and" so a three-shape
    scene's 26 words stay readable: one column entry per word, grouped by mention.

    Args:
        image: the picture.
        words: the sentence's words, in order.
        regions: each word's region (0 .. grid² − 1, reading order).
        scores: each word's score v_i·s_t with that region.
        path: the picture to write (its suffix chooses PNG, SVG, PDF or JPEG).
        title: a line above the picture (e.g. the image–sentence score).
    """
    plt = _pyplot()
    from matplotlib.patches import ConnectionPatch

    S = image.shape[0]
    n = len(words)
    height = max(4.0, 0.24 * n + 0.6)
    fig = plt.figure(figsize=(8.5, height))
    ax_img = fig.add_axes((0.02, 0.5 - 2.0 / height, 4.0 / 8.5 * 0.95, 4.0 / height * 0.95))
    ax_txt = fig.add_axes((0.6, 0.02, 0.38, 0.96))
    ax_img.imshow(image, interpolation="nearest", extent=(0, S, S, 0))
    for k in range(1, grid):  # the region boundaries
        edge = k * S / grid
        ax_img.axhline(edge, color="#666666", lw=0.8)
        ax_img.axvline(edge, color="#666666", lw=0.8)
    cell = S / grid
    for r in range(grid * grid):
        row, col = divmod(r, grid)
        ax_img.text(col * cell + 1, row * cell + 1, str(r + 1), color=REGION_COLOURS[r % len(REGION_COLOURS)],
                    fontsize=7, va="top", ha="left")
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    ax_img.set_xlim(0, S)
    ax_img.set_ylim(S, 0)
    ax_txt.set_axis_off()
    ax_txt.set_xlim(0, 1)
    ax_txt.set_ylim(n + 0.5, -0.5)
    top = max((float(s) for s in scores), default=1.0)
    for t, (word, region, score) in enumerate(zip(words, regions, scores)):
        colour = REGION_COLOURS[int(region) % len(REGION_COLOURS)]
        ax_txt.text(0.08, t, word, color="black", fontsize=9, va="center", ha="left",
                    bbox={"boxstyle": "round,pad=0.15", "fc": colour, "ec": "none", "alpha": 0.55})
        ax_txt.text(0.62, t, f"{float(score):+.2f}", fontsize=7, va="center", ha="left", color="#444444")
        row, col = divmod(int(region), grid)
        width = 0.4 + 2.2 * max(0.0, float(score)) / top if top > 0 else 0.6
        link = ConnectionPatch(xyA=(0.06, t), coordsA=ax_txt.transData, xyB=((col + 0.5) * cell, (row + 0.5) * cell),
                               coordsB=ax_img.transData, color=colour, lw=width, alpha=0.8,
                               linestyle="-" if float(score) > 0 else ":")
        fig.add_artist(link)
    if title:
        fig.suptitle(title, fontsize=9, x=0.02, ha="left")
    return save(fig, path)


def caption_attention_plot(image: numpy.ndarray, words: Sequence[str], weights: Sequence[numpy.ndarray],
                           path: str | os.PathLike[str], title: str = "", columns: int = 7) -> Path:
    """Where a captioner looked for each word (``dlia caption describe --show-attention``): one small
    copy of ``image`` (uint8 (S, S, 3)) per word, darkened outside the cells it attended to.

    Args:
        image: the picture.
        words: the caption's words, in order.
        weights: each word's attention weights over the feature map's g × g cells (g² numbers,
            reading order, summing to 1).
        path: the picture to write (its suffix chooses PNG, SVG, PDF or JPEG).
        title: a line above the panels.
    """
    plt = _pyplot()
    n = max(1, len(words))
    cols = min(columns, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols, 1.6 * rows + 0.3), squeeze=False)
    S = image.shape[0]
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= len(words):
            continue
        w = numpy.asarray(weights[k], dtype=float)
        g = int(round(w.size ** 0.5))
        # each cell's weight relative to the largest, as the opacity of a black veil over the others
        veil = numpy.zeros((g, g, 4))
        veil[..., 3] = 0.8 * (1 - w.reshape(g, g) / max(w.max(), 1e-12))
        ax.imshow(image, interpolation="nearest", extent=(0, S, S, 0))
        ax.imshow(veil, interpolation="nearest", extent=(0, S, S, 0))
        ax.set_title(words[k], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9, x=0.02, ha="left")
    return save(fig, path)
