"""Image filters with the semantics of GIMP's *Convolution Matrix* (Filters → Generic).

GIMP slides the kernel over the image WITHOUT flipping it (a cross-correlation): the output pixel is
Σ K[i, j]·I[y+i-ci, x+j-cj] over the kernel, with (ci, cj) its centre, divided by the *divisor*, plus
the *offset*, rounded (``floor(v + 0.5)``) and clamped to 0..255, per channel. A 1 in the kernel's
top middle therefore copies the pixel above: the image moves one pixel down (the example of the
GIMP manual). Details follow GIMP 2.8's plug-in (``plug-ins/common/convolution-matrix.c``), the one
docs.gimp.org's ``plugin-convmatrix`` page describes:

- *Borders*: ``"extend"`` repeats the edge pixels, ``"wrap"`` takes them from the opposite side,
  ``"crop"`` treats everything outside as transparent black (every channel, alpha included, is 0),
  so with alpha weighting the outside counts for nothing and the alpha channel fades at the edge.
  GIMP offers Crop only for layers with alpha; here an image without alpha is padded with black.
- *Normalise*: the divisor becomes the kernel's sum and the offset 0; a negative sum gives divisor
  −sum and offset 255; a zero sum (edge detectors, emboss) gives divisor 1 and offset 128.
- *Alpha channel*: GIMP filters it by default, with the same divisor and offset, which turns the
  alpha of an edge-detected layer into a flat 128. Here it is copied unchanged unless
  ``filter_alpha=True`` (GIMP's "Alpha" channel box unticked vs ticked).
- *Alpha-weighting* (off by default, as GIMP 2.8 sets it for layers with alpha): colour products are
  weighted by the source alpha and renormalised, c = (Σ K·α·v / divisor)·Σ|K| / Σ|K·α| + offset, so
  transparent pixels do not bleed their (meaningless) colour into their neighbours.

GIMP's matrix is at most 5×5 (3×3 when the outer ring is zero); here any kernel with odd numbers
of rows and columns works, centred on the pixel. 3×3 and 5×5 kernels run as a handful of shifted
float32 multiply-adds over cache-sized row tiles on all cores; large kernels go through
:func:`dlia.signal.conv2` (FFT).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dlia.signal.conv import conv2, parse_matrix

__all__ = ["BORDERS", "KERNELS", "NORMALISED", "convolution_matrix", "load_kernel", "normalise", "parse_kernel"]

#: border modes of GIMP's Convolution Matrix
BORDERS = ("extend", "wrap", "crop")

#: the lecture's kernels (Gimp demo)
KERNELS: dict[str, np.ndarray] = {
    "edge_enhance": np.array([[0, 0, 0], [-1, 1, 0], [0, 0, 0]], dtype=np.float64),
    "edge_detect": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64),
    "blur": np.ones((3, 3), dtype=np.float64),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64),
}
#: named kernels that are meant to be normalised (divided by their sum) by default
NORMALISED = frozenset({"blur"})

# Kernels with more non-zero elements than this go through conv2 (FFT) instead of shifted adds; on
# a 4000×3000 RGB image tiled float32 shifted adds are faster up to roughly 25×25 (measured).
_MAX_SHIFTED_TERMS = 400
# Elements (rows × width × channels) per row tile: small enough for the accumulator, the source
# rows and a temporary to stay in a core's L2 cache.
_TILE_ELEMENTS = 1 << 16


def parse_kernel(text: str) -> np.ndarray:
    """A kernel from text: rows separated by ``;`` or newlines, numbers by commas and/or spaces.

    ``[`` and ``]`` are ignored, as are lines starting with ``#``, so ``"0,-1,0;-1,5,-1;0,-1,0"``,
    ``"[1 2 1; 2 4 2; 1 2 1]"`` and a text file with one row per line all work (see
    :func:`dlia.signal.conv.parse_matrix`).

    Raises:
        ValueError: empty text, a token that is not a number, rows of different lengths, an entry
            that is not finite, or an even number of rows or columns (the kernel needs a centre).
    """
    try:
        kernel = parse_matrix(text)
    except ValueError as e:
        raise ValueError(str(e).replace("matrix:", "kernel:", 1)) from None
    if not np.all(np.isfinite(kernel)):
        raise ValueError("kernel: entries must be finite numbers")
    _check_kernel(kernel)
    return kernel


def _check_kernel(kernel: np.ndarray) -> None:
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f"kernel: must be a non-empty 2-D matrix, got shape {kernel.shape}")
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel: needs odd numbers of rows and columns so it has a centre pixel, "
                         f"got {kernel.shape[0]}×{kernel.shape[1]}")


def load_kernel(spec: str) -> tuple[np.ndarray, bool]:
    """A kernel from a name in :data:`KERNELS`, ``@path`` to a text file, or matrix text.

    Returns:
        The kernel and whether it is meant to be normalised (``True`` for ``blur``).

    Raises:
        ValueError: unreadable or malformed kernel text (see :func:`parse_kernel`).
        OSError: the ``@file`` cannot be read.
    """
    name = spec.strip().lower().replace("-", "_").replace(" ", "_")
    if name in KERNELS:  # "edge-detect" and "Edge detect" name the same kernel as "edge_detect"
        return KERNELS[name].copy(), name in NORMALISED
    if spec.startswith("@"):
        text = Path(spec[1:]).read_text(encoding="utf-8")
        return parse_kernel(text), False
    if name.replace("_", "").isalpha():  # a word, not a matrix: a misspelt name
        raise ValueError(f"kernel: no kernel named {spec!r}; the names are {', '.join(KERNELS)} "
                         f"(or give a matrix such as \"0,-1,0;-1,5,-1;0,-1,0\", or @FILE)")
    return parse_kernel(spec), False


def normalise(kernel: np.ndarray) -> tuple[float, float]:
    """GIMP's *Normalise*: (divisor, offset) from the kernel's sum.

    sum > 0 → (sum, 0); sum < 0 → (−sum, 255); sum = 0 → (1, 128).

    Example:
        >>> normalise(KERNELS["blur"]), normalise(KERNELS["edge_detect"])
        ((9.0, 0.0), (1.0, 128.0))
    """
    s = float(np.sum(kernel))
    if s > 0:
        return s, 0.0
    if s < 0:
        return -s, 255.0
    return 1.0, 128.0


def _border_index(idx: np.ndarray, n: int, border: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Map indices that may fall outside 0..n-1 to source indices; for crop also a mask of the outside."""
    if border == "extend":
        return np.clip(idx, 0, n - 1), None
    if border == "wrap":
        return idx % n, None
    outside = (idx < 0) | (idx >= n)
    return np.clip(idx, 0, n - 1), (outside if outside.any() else None)


def _source_tile(img: np.ndarray, r0: int, r1: int, kh: int, kw: int, border: str, channels: int,
                 dtype: type) -> np.ndarray:
    """Rows r0-kh//2 .. r1+kh//2 of the image, padded by kw//2 columns each side per ``border``, as ``dtype``.

    Built tile by tile rather than by padding the whole image first: one pass over memory instead of two.
    """
    h, w = img.shape[:2]
    ph, pw = kh // 2, kw // 2
    if r0 - ph >= 0 and r1 + ph <= h:
        rows, row_out = img[r0 - ph:r1 + ph, :, :channels], None
    else:
        ridx, row_out = _border_index(np.arange(r0 - ph, r1 + ph), h, border)
        rows = img[ridx, :, :channels]
    src = np.empty((rows.shape[0], w + 2 * pw, channels), dtype=dtype)
    src[:, pw:pw + w] = rows
    if pw:
        cidx, col_out = _border_index(np.r_[np.arange(-pw, 0), np.arange(w, w + pw)], w, border)
        src[:, :pw] = rows[:, cidx[:pw]]
        src[:, pw + w:] = rows[:, cidx[pw:]]
        if col_out is not None:
            src[:, np.r_[np.arange(pw), np.arange(pw + w, w + 2 * pw)][col_out]] = 0
    if row_out is not None:
        src[row_out] = 0
    return src


def _accumulate(src: np.ndarray, kernel: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Σ kernel[i, j]·src[i:i+rows, j:j+cols] (cross-correlation) as shifted float adds."""
    acc = np.zeros((rows, cols) + src.shape[2:], dtype=src.dtype)
    tmp = np.empty_like(acc)
    for (i, j), k in np.ndenumerate(kernel):
        if k == 0:
            continue
        window = src[i:i + rows, j:j + cols]
        if k == 1:
            acc += window
        elif k == -1:
            acc -= window
        else:
            np.multiply(window, src.dtype.type(k), out=tmp)
            acc += tmp
    return acc


def _correlate_fft(src: np.ndarray, kernel: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The same sum through conv2 'valid' on each channel (kernel flipped back: conv2 flips it)."""
    flipped = kernel[::-1, ::-1]
    out = np.empty((rows, cols) + src.shape[2:], dtype=np.float64)
    for c in range(src.shape[2]):
        out[..., c] = conv2(src[..., c], flipped, "valid")
    return out


def _finish(values: np.ndarray, divisor: float, offset: float, out: np.ndarray) -> None:
    """Divide, add the offset and store; 8-bit output is rounded as GIMP's ROUND and clamped."""
    values /= values.dtype.type(divisor)
    values += values.dtype.type(offset)
    if out.dtype == np.uint8:
        np.floor(values + values.dtype.type(0.5), out=values)
        np.clip(values, 0, 255, out=values)
    out[...] = values


def convolution_matrix(image: object, kernel: object, divisor: float | None = None, offset: float = 0.0,
                       normalise_kernel: bool = False, border: str = "extend", filter_alpha: bool = False,
                       alpha_weighting: bool = False, workers: int | None = None) -> np.ndarray:
    """Apply a kernel the way GIMP's Convolution Matrix does (see the module docstring).

    Args:
        image: H×W (grey), H×W×2 (grey + alpha), H×W×3 (RGB) or H×W×4 (RGBA) array; ``uint8`` as
            GIMP's 8-bit images, or floats on the same 0..255 scale (then nothing is rounded or
            clamped and the result is float64).
        kernel: 2-D matrix with odd numbers of rows and columns, applied without flipping.
        divisor: the sum is divided by this (default 1; must not be 0).
        offset: added after the division.
        normalise_kernel: GIMP's *Normalise*: divisor and offset from the kernel's sum (see
            :func:`normalise`); ``divisor`` and ``offset`` must then be left at their defaults.
        border: ``"extend"``, ``"wrap"`` or ``"crop"``.
        filter_alpha: filter the alpha channel too (GIMP's default); otherwise it is copied.
        alpha_weighting: weight colour products by the source alpha (GIMP's *Alpha-weighting*).
        workers: threads for the row tiles (default: one per CPU core).

    Returns:
        An array of the image's shape: ``uint8`` for ``uint8`` input, float64 otherwise.

    Raises:
        ValueError: a bad image shape or dtype, a bad kernel, a zero divisor, an unknown border, or
            ``normalise_kernel`` together with an explicit divisor or offset.

    Example:
        >>> img = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], dtype=np.uint8)
        >>> convolution_matrix(img, KERNELS["blur"], normalise_kernel=True)[1, 1]
        np.uint8(50)
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"convolution_matrix: image must be uint8 or floating point, got dtype {img.dtype}")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4)) or img.size == 0:
        raise ValueError(f"convolution_matrix: image must be H×W, H×W×1, H×W×2, H×W×3 or H×W×4 and non-empty, "
                         f"got shape {img.shape}")
    k = np.asarray(kernel, dtype=np.float64)
    _check_kernel(k)
    if not np.all(np.isfinite(k)):
        raise ValueError("convolution_matrix: kernel entries must be finite")
    if border not in BORDERS:
        raise ValueError(f"convolution_matrix: border must be one of {', '.join(BORDERS)}, got {border!r}")
    if normalise_kernel:
        if divisor is not None or offset != 0:
            raise ValueError("convolution_matrix: normalise sets the divisor and offset; do not give them as well")
        divisor, offset = normalise(k)
    divisor = 1.0 if divisor is None else float(divisor)
    if divisor == 0 or not np.isfinite(divisor):
        raise ValueError(f"convolution_matrix: divisor must be a non-zero finite number, got {divisor:g}")

    planar = img.ndim == 2
    img3 = img[:, :, None] if planar else img
    h, w, nch = img3.shape
    has_alpha = nch in (2, 4)
    ncolour = nch - 1 if has_alpha else nch
    out = np.empty(img3.shape, dtype=np.uint8 if img.dtype == np.uint8 else np.float64)
    if has_alpha and not filter_alpha:
        out[..., -1] = img3[..., -1]
    nfilter = nch if (has_alpha and filter_alpha) else ncolour
    weighting = has_alpha and alpha_weighting

    kh, kw = k.shape
    big = np.count_nonzero(k) > _MAX_SHIFTED_TERMS
    kabs = np.abs(k)
    matrixsum = float(kabs.sum())
    # float32 (as GIMP's gfloat) sums 8-bit pixels times integer weights exactly below 2**24
    exact32 = 255 * matrixsum * (255 if weighting else 1) < 2**24
    work = np.float32 if (img.dtype == np.uint8 and not big and exact32) else np.float64

    def tile(r0: int, r1: int) -> None:
        src = _source_tile(img3, r0, r1, kh, kw, border, nch if weighting else nfilter, work)
        rows = r1 - r0
        correlate = _correlate_fft if big else _accumulate
        if weighting:
            alpha = src[..., -1:]
            num = correlate(src[..., :ncolour] * alpha, k, rows, w)
            alphasum = correlate(alpha, kabs, rows, w)
            with np.errstate(divide="ignore", invalid="ignore"):
                num = np.where(alphasum > 0, num / work(divisor) * work(matrixsum) / alphasum, 0)
            _finish(num.astype(work, copy=False), 1.0, offset, out[r0:r1, :, :ncolour])
            if filter_alpha:
                _finish(correlate(alpha, k, rows, w), divisor, offset, out[r0:r1, :, -1:])
        else:
            _finish(correlate(src[..., :nfilter], k, rows, w), divisor, offset, out[r0:r1, :, :nfilter])

    if big:
        tile(0, h)
    else:
        step = max(1, _TILE_ELEMENTS // (w * nch))
        bounds = [(r, min(r + step, h)) for r in range(0, h, step)]
        workers = min(workers or os.cpu_count() or 1, len(bounds))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda b: tile(*b), bounds))
        else:
            for b in bounds:
                tile(*b)
    return out[:, :, 0] if planar else out
