"""Signal and image processing: Octave's ``conv2`` and ``xcorr2``, and GIMP's Convolution Matrix filter."""

from dlia.signal.conv import SCALES, SHAPES, conv2, parse_matrix, xcorr2
from dlia.signal.filters import BORDERS, KERNELS, convolution_matrix, load_kernel, normalise, parse_kernel

__all__ = ["conv2", "xcorr2", "parse_matrix", "SHAPES", "SCALES",
           "convolution_matrix", "load_kernel", "normalise", "parse_kernel", "BORDERS", "KERNELS"]
