"""conv2 and xcorr2 with Octave's semantics: the lecture's example, SciPy as oracle for 'full', 'valid'
and the correlation, Octave's centring for 'same', and xcorr2's scalings against straightforward loops."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import convolve2d, correlate2d

from dlia.signal import conv as conv_module
from dlia.signal import conv2, parse_matrix, xcorr2

A = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
B = np.array([[1, 0], [0, 0]])


def test_lecture_example_octave_values():
    """Octave 7.3: conv2(A, B, 'full' | 'same' | 'valid') for the lecture's A and B."""
    np.testing.assert_array_equal(conv2(A, B), [[1, 2, 3, 0], [4, 5, 6, 0], [7, 8, 9, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(conv2(A, B, "full"), conv2(A, B))
    np.testing.assert_array_equal(conv2(A, B, "same"), [[5, 6, 0], [8, 9, 0], [0, 0, 0]])
    np.testing.assert_array_equal(conv2(A, B, "valid"), [[5, 6], [8, 9]])
    np.testing.assert_array_equal(xcorr2(A, B), [[0, 0, 0, 0], [0, 1, 2, 3], [0, 4, 5, 6], [0, 7, 8, 9]])


def test_scipy_same_centres_differently():
    """SciPy's 'same' starts at (mb-1)//2, Octave's at mb//2: they differ for even kernel sizes."""
    np.testing.assert_array_equal(convolve2d(A, B, "same"), A)
    assert not np.array_equal(conv2(A, B, "same"), convolve2d(A, B, "same"))
    odd = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(conv2(A, odd, "same"), convolve2d(A, odd, "same"))  # odd sizes agree


def test_octave_xcorr2_test_vector():
    """The test in Octave-forge signal's xcorr2.m: magic(5) against a 3×3 matrix."""
    magic5 = np.array([[17, 24, 1, 8, 15], [23, 5, 7, 14, 16], [4, 6, 13, 20, 22], [10, 12, 19, 21, 3],
                       [11, 18, 25, 2, 9]])
    b = np.array([[6, 13, 22], [10, 18, 23], [8, 15, 23]])
    c = [[391, 807, 519, 391, 473, 289, 120], [920, 1318, 1045, 909, 1133, 702, 278],
         [995, 1476, 1338, 1534, 2040, 1161, 426], [828, 1045, 1501, 2047, 2108, 1101, 340],
         [571, 1219, 2074, 2155, 1896, 821, 234], [473, 1006, 1643, 1457, 946, 347, 108],
         [242, 539, 850, 477, 374, 129, 54]]
    np.testing.assert_array_equal(xcorr2(magic5, b), c)


def octave_same(a, b):
    full = convolve2d(a, b, "full")
    mb, nb = b.shape
    return full[mb // 2:mb // 2 + a.shape[0], nb // 2:nb // 2 + a.shape[1]]


def check_against_scipy(a, b):
    scale = max(1.0, np.abs(a).sum() * np.abs(b).max())
    tol = 1e-10 * scale if min(a.size, b.size) > 100 else 1e-10
    np.testing.assert_allclose(conv2(a, b, "full"), convolve2d(a, b, "full"), rtol=0, atol=tol)
    np.testing.assert_allclose(conv2(a, b, "same"), octave_same(a, b), rtol=0, atol=tol)
    valid = conv2(a, b, "valid")
    (ma, na), (mb, nb) = a.shape, b.shape
    assert valid.shape == (max(ma - mb + 1, 0), max(na - nb + 1, 0))
    if ma >= mb and na >= nb:
        np.testing.assert_allclose(valid, convolve2d(a, b, "valid"), rtol=0, atol=tol)
    np.testing.assert_allclose(xcorr2(a, b), correlate2d(a, b, "full"), rtol=0, atol=tol)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((5, 7), (3, 3)), ((6, 5), (2, 4)), ((4, 4), (1, 1)), ((8, 3), (5, 1)), ((1, 7), (1, 3)),
    ((30, 40), (7, 6)), ((3, 4), (6, 8)), ((3, 9), (5, 2)), ((2, 2), (2, 2)),
])
def test_random_real_against_scipy(shape_a, shape_b):
    rng = np.random.default_rng(sum(shape_a) * 100 + sum(shape_b))
    check_against_scipy(rng.standard_normal(shape_a), rng.standard_normal(shape_b))


def test_fft_path_against_scipy():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((150, 120)), rng.standard_normal((31, 40))
    assert conv_module._use_fft(a, b, 180, 159)
    check_against_scipy(a, b)


def test_fft_path_gives_exact_integers():
    rng = np.random.default_rng(8)
    a, b = rng.integers(-9, 10, (140, 130)), rng.integers(-9, 10, (35, 33))
    assert conv_module._use_fft(a.astype(float), b.astype(float), 174, 162)
    np.testing.assert_array_equal(conv2(a, b), convolve2d(a, b))  # integer arithmetic in SciPy: exact
    np.testing.assert_array_equal(xcorr2(a, b), correlate2d(a, b))


def test_nan_stays_local_as_in_octave():
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((150, 120)), rng.standard_normal((31, 40))
    a[70, 60] = np.nan
    got = conv2(a, b)
    assert np.isnan(got).sum() == 31 * 40
    np.testing.assert_allclose(got, convolve2d(a, b), atol=1e-9)


def test_complex_inputs():
    rng = np.random.default_rng(10)
    a = rng.standard_normal((5, 6)) + 1j * rng.standard_normal((5, 6))
    b = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    np.testing.assert_allclose(conv2(a, b), convolve2d(a, b), atol=1e-12)
    np.testing.assert_allclose(xcorr2(a, b), correlate2d(a, b), atol=1e-12)  # conj(b), as Octave


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_hypothesis_shapes(ma, na, mb, nb, seed):
    rng = np.random.default_rng(seed)
    check_against_scipy(rng.uniform(-5, 5, (ma, na)), rng.uniform(-5, 5, (mb, nb)))


def slow_xcorr2(a, b, scale):
    """Every lag by loops: the raw sum, how many products made it, and the energy of A under B."""
    (ma, na), (mb, nb) = a.shape, b.shape
    c = np.zeros((ma + mb - 1, na + nb - 1))
    for k in range(ma + mb - 1):
        for l in range(na + nb - 1):
            total = count = energy_a = 0.0
            for i in range(mb):
                for j in range(nb):
                    m, n = k - (mb - 1) + i, l - (nb - 1) + j  # A's element under b[i, j]
                    if 0 <= m < ma and 0 <= n < na:
                        total += a[m, n] * b[i, j]
                        count += 1
                        energy_a += a[m, n] ** 2
            if scale == "none":
                c[k, l] = total
            elif scale == "biased":
                c[k, l] = total / (min(ma, mb) * min(na, nb))
            elif scale == "unbiased":
                c[k, l] = total / count
            else:
                denom = np.sqrt(energy_a * (b ** 2).sum())
                c[k, l] = total / denom if denom else np.nan
    return c


@pytest.mark.parametrize("scale", ["none", "biased", "unbiased", "coeff"])
@pytest.mark.parametrize("shape_a, shape_b", [((5, 7), (3, 2)), ((3, 4), (6, 8)), ((4, 4), (4, 4)), ((1, 6), (2, 1))])
def test_scales_against_loops(scale, shape_a, shape_b):
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    np.testing.assert_allclose(xcorr2(a, b, scale), slow_xcorr2(a, b, scale), rtol=1e-12, atol=1e-12)


def test_coeff_finds_a_patch_and_autocorrelation():
    rng = np.random.default_rng(12)
    a = rng.integers(1, 256, (30, 30)).astype(float)
    patch = a[7:18, 12:20]  # 11×8, bottom-right corner at (17, 19)
    c = xcorr2(a, patch, "coeff")
    assert np.unravel_index(np.nanargmax(c), c.shape) == (17, 19)
    assert c[17, 19] == pytest.approx(1.0)
    assert np.nanmax(np.abs(c)) <= 1 + 1e-12
    auto = xcorr2(a, scale="coeff")
    np.testing.assert_allclose(auto, xcorr2(a, a, "coeff"))
    np.testing.assert_allclose(xcorr2(a, -a, "coeff"), -auto)


def test_coeff_is_nan_over_zeros():
    a = np.zeros((4, 5))
    a[0, 0] = 1.0
    c = xcorr2(a, np.ones((2, 2)), "coeff")
    assert np.isnan(c[-1, -1]) and c[0, 0] == 0.5  # 1/sqrt(1·4); 0/0 where B covers only zeros, as Octave


@pytest.mark.parametrize("call, message", [
    (lambda: conv2([1, 2, 3], B), r"conv2: A must be a 2-D matrix, got shape \(3,\)"),
    (lambda: conv2(A, np.zeros((2, 2, 2))), r"conv2: B must be a 2-D matrix, got shape \(2, 2, 2\)"),
    (lambda: conv2(np.zeros((0, 3)), B), r"conv2: A must not be empty, got shape \(0, 3\)"),
    (lambda: conv2([["a", "b"]], B), "conv2: A must be numeric, got dtype <U1"),
    (lambda: conv2([[1, 2], [3]], B), "conv2: A must be a 2-D numeric matrix, got a ragged sequence"),
    (lambda: conv2(A, B, "middle"), r"conv2: shape must be one of full, same, valid; got 'middle' \(A 3×3, B 2×2\)"),
    (lambda: xcorr2(A, B, "normalized"), r"xcorr2: scale must be one of none, biased, unbiased, coeff"),
    (lambda: xcorr2(np.ones((2, 2, 2))), r"xcorr2: A must be a 2-D matrix, got shape \(2, 2, 2\)"),
])
def test_validation(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_integer_and_bool_inputs_and_parse_matrix():
    np.testing.assert_array_equal(conv2(np.eye(2, dtype=bool), [[2]]), [[2, 0], [0, 2]])
    assert conv2(A, B).dtype == np.float64
    np.testing.assert_array_equal(parse_matrix("[1 2 3; 4,5,6]"), [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="different lengths"):
        parse_matrix("1 2; 3")


@pytest.mark.parametrize("a, b", [
    ([[np.inf, 1.0]], [[1.0, 0.0], [0.0, 0.0]]),
    ([[1.0, 2.0, 3.0], [4.0, np.inf, 6.0], [7.0, 8.0, 9.0]], [[1.0, 0.0], [0.0, 0.0]]),
    (np.ones((5, 5)), [[1.0, np.nan], [0.0, 0.0]]),
    ([[1.0, -np.inf], [2.0, 3.0]], np.ones((3, 4))),
])
def test_inf_and_nan_stay_where_the_direct_sum_puts_them(a, b):
    """Octave sums A(m,n)·B(i-m,j-n) over index pairs inside both matrices: an Inf meets the kernel's
    zeros (NaN) only where they overlap, and entries it never reaches stay finite."""
    a, b = np.asarray(a), np.asarray(b)
    want = np.zeros((a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1))
    with np.errstate(invalid="ignore"):  # the definition, term by term (SciPy's convolve2d spreads NaN further)
        for (m, n), x in np.ndenumerate(a):
            for (i, j), y in np.ndenumerate(b):
                want[m + i, n + j] += x * y
        got = conv2(a, b)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~np.isnan(got)], want[~np.isnan(want)])


@pytest.mark.parametrize("text, match", [("1,,2", "empty entry"), (",1,2", "empty entry"), ("1,2,", "empty entry"),
                                         ("1,2;3, ,4", "empty entry"), ("1_000", "not a number"), ("[1 2", "unbalanced")])
def test_parse_matrix_refuses_what_octave_refuses(text, match):  # issue #10 B8: "1,,2" was read as [1 2]
    with pytest.raises(ValueError, match=match):
        parse_matrix(text)
