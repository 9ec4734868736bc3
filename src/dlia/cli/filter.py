"""``dlia filter``: the lecture's Gimp demo — an image through GIMP's Convolution Matrix filter."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy

from dlia.cli.common import check_output, eight_bit, path_name, read_image
from dlia.cli.errors import UserError
from dlia.io.atomic import OutputError, atomic_write
from dlia.signal import BORDERS, KERNELS, convolution_matrix, load_kernel, normalise

#: Pillow modes filtered as they are; anything else is converted to one of them first
NATIVE_MODES = ("L", "LA", "RGB", "RGBA")
#: memory a filtered pixel needs: the pixels, the result and the float work arrays (measured: ~16 bytes
#: for RGBA in NumPy, doubled for Pillow's own copies)
FILTER_BYTES_PER_PIXEL = 32


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    names = ", ".join(sorted(KERNELS))
    p = sub.add_parser("filter", help="filter an image with a convolution matrix, as GIMP does",
                       description="Apply a kernel to an image the way GIMP's Filters → Generic → Convolution Matrix "
                                   "does: without flipping it (a cross-correlation), dividing by the divisor, adding "
                                   "the offset, rounding and clamping to 0..255, per channel. The alpha channel is "
                                   "kept unless --filter-alpha.")
    p.add_argument("input", metavar="IN", type=path_name, help="input image (PNG, JPEG, ... anything Pillow reads)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", type=path_name,
                   help="output image; the format follows the extension")
    p.add_argument("--kernel", required=True, metavar="KERNEL",
                   help=f"a name ({names}; blur is normalised), a matrix such as \"0,-1,0;-1,5,-1;0,-1,0\" "
                        f"(odd numbers of rows and columns; start with a minus sign as --kernel='-1,...'), "
                        f"or @FILE with one row per line")
    p.add_argument("--divisor", type=finite_float, default=None, help="divide the weighted sum by this (default 1)")
    p.add_argument("--offset", type=finite_float, default=None, help="then add this (default 0)")
    p.add_argument("--normalise", "--normalize", action="store_true",
                   help="GIMP's Normalise: divisor = kernel sum, offset 0 (sum < 0: divisor -sum, offset 255; "
                        "sum 0: divisor 1, offset 128)")
    p.add_argument("--border", choices=BORDERS, default="extend",
                   help="pixels beyond the edge: extend (repeat the edge; default), wrap (opposite side), "
                        "crop (transparent black)")
    p.add_argument("--filter-alpha", action="store_true", help="filter the alpha channel too (GIMP's default)")
    p.add_argument("--alpha-weighting", action="store_true",
                   help="weight colours by their alpha so transparent pixels do not bleed (GIMP's Alpha-weighting)")
    p.add_argument("--side-by-side", action="store_true", help="write the input and the result next to each other")
    p.set_defaults(run=run)


def native(im):
    """The image in L, LA, RGB or RGBA; the second value names the conversion, if any."""
    if im.mode in NATIVE_MODES:
        return im, None
    scaled = eight_bit(im)
    if scaled is not im:  # 16-bit greyscale: scaled to 8 bits, not clipped
        return scaled, f"{im.mode} → L, scaled to 8 bits"
    bands = im.getbands()
    has_alpha = bands[-1] in ("A", "a") or "transparency" in im.info
    grey = bands[0] in ("1", "L", "I", "F") and len(bands) - (bands[-1] in ("A", "a")) == 1
    target = ("LA" if has_alpha else "L") if grey else ("RGBA" if has_alpha else "RGB")
    return im.convert(target), f"{im.mode} → {target}"


def _format_for(path: str) -> str:
    from PIL import Image

    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None:
        raise UserError(f"cannot tell the image format from {path!r}; end it in .png, .jpg, .bmp, .tif, ...")
    return fmt


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    fmt = _format_for(args.output)
    kernel_file = args.kernel[1:] if args.kernel.startswith("@") else None
    check_output(args.output, "-o", inputs=[("IN", args.input), ("--kernel", kernel_file)])
    try:
        kernel, preset_normalised = load_kernel(args.kernel)
    except FileNotFoundError:
        raise UserError(f"no such kernel file: {args.kernel[1:]}") from None
    except UnicodeDecodeError:
        raise UserError(f"kernel file {args.kernel[1:]} is not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"cannot read kernel file {args.kernel[1:]}: {getattr(e, 'strerror', None) or e}") from None
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.normalise and (args.divisor is not None or args.offset is not None):
        raise UserError("--normalise sets the divisor and offset from the kernel; drop --divisor/--offset")
    if args.divisor == 0:
        raise UserError("--divisor must not be 0")
    use_normalise = args.normalise or (preset_normalised and args.divisor is None and args.offset is None)

    im, converted = native(read_image(args.input, FILTER_BYTES_PER_PIXEL))
    pixels = numpy.asarray(im)
    start = time.perf_counter()
    try:
        result = convolution_matrix(pixels, kernel, divisor=args.divisor, offset=args.offset or 0.0,
                                    normalise_kernel=use_normalise, border=args.border,
                                    filter_alpha=args.filter_alpha, alpha_weighting=args.alpha_weighting)
    except ValueError as e:
        raise UserError(str(e).removeprefix("convolution_matrix: ")) from None
    elapsed = time.perf_counter() - start
    if args.side_by_side:
        result = numpy.concatenate([pixels, result], axis=1)
    out = Image.fromarray(result)  # L, LA, RGB or RGBA from the array's shape
    try:
        with atomic_write(args.output, "wb") as f:
            # zlib level 1: a 4000×3000 photo saves in ~1.5 s instead of 3-5 s, for files ~5-15 % larger
            out.save(f, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
    except OutputError:  # already names the file and why: main prints it as it is
        raise
    except (OSError, ValueError, KeyError) as e:
        hint = "; use .png to keep the alpha channel" if "RGBA" in str(e) or " LA " in f" {e} " else ""
        raise UserError(f"cannot write {args.output} as {fmt}: {getattr(e, 'strerror', None) or e}{hint}") from None

    divisor, offset = normalise(kernel) if use_normalise else (args.divisor or 1.0, args.offset or 0.0)
    rows = "; ".join(" ".join(f"{v:g}" for v in row) for row in kernel)
    note = f", converted {converted}" if converted else ""
    print(f"{args.input} ({im.width}×{im.height} {im.mode}{note}) → {args.output}"
          f"{' (before | after)' if args.side_by_side else ''}")
    print(f"kernel [{rows}], divisor {divisor:g}, offset {offset:g}, border {args.border}; "
          f"filtered in {elapsed:.3f} s")
    return 0

