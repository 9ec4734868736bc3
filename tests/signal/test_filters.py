"""GIMP Convolution Matrix semantics, against a slow pixel-by-pixel reference written from GIMP 2.8's
plug-in: no kernel flip, divisor, offset, ROUND = floor(v + 0.5), clamp, Extend/Wrap/Crop borders,
Normalise, alpha channel and alpha weighting."""

import numpy as np
import pytest

from dlia.signal import KERNELS, convolution_matrix, load_kernel, normalise, parse_kernel


def source_pixel(img, y, x, border):
    """The pixel GIMP reads at (y, x), which may lie outside the image."""
    h, w = img.shape[:2]
    if border == "extend":
        return img[min(max(y, 0), h - 1), min(max(x, 0), w - 1)].astype(np.float64)
    if border == "wrap":
        return img[y % h, x % w].astype(np.float64)
    if 0 <= y < h and 0 <= x < w:  # crop: outside is transparent black
        return img[y, x].astype(np.float64)
    return np.zeros(img.shape[2])


def reference(img, kernel, divisor=1.0, offset=0.0, border="extend", filter_alpha=False, alpha_weighting=False):
    img3 = img[:, :, None] if img.ndim == 2 else img
    h, w, nch = img3.shape
    has_alpha = nch in (2, 4)
    kh, kw = kernel.shape
    out = np.zeros((h, w, nch))
    matrixsum = np.abs(kernel).sum()
    for y in range(h):
        for x in range(w):
            for c in range(nch):
                is_alpha = has_alpha and c == nch - 1
                if is_alpha and not filter_alpha:
                    out[y, x, c] = img3[y, x, c]
                    continue
                total = alphasum = 0.0
                for i in range(kh):
                    for j in range(kw):
                        p = source_pixel(img3, y + i - kh // 2, x + j - kw // 2, border)
                        t = kernel[i, j]
                        if alpha_weighting and has_alpha and not is_alpha:
                            t *= p[-1]
                            alphasum += abs(t)
                        total += t * p[c]
                total /= divisor
                if alpha_weighting and has_alpha and not is_alpha:
                    total = total * matrixsum / alphasum if alphasum != 0 else 0.0
                out[y, x, c] = total + offset
    if img.dtype == np.uint8:
        out = np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out[:, :, 0] if img.ndim == 2 else out


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def image(rng, shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("border", ["extend", "wrap", "crop"])
@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("shape", [(7, 9), (6, 5, 3), (5, 8, 4)])
def test_named_kernels_every_border(rng, border, name, shape):
    img = image(rng, shape)
    kernel, normalised = load_kernel(name)
    divisor, offset = normalise(kernel) if normalised else (1.0, 0.0)
    got = convolution_matrix(img, kernel, normalise_kernel=normalised, border=border)
    assert got.dtype == np.uint8 and got.shape == img.shape
    np.testing.assert_array_equal(got, reference(img, kernel, divisor, offset, border))


@pytest.mark.parametrize("border", ["extend", "wrap", "crop"])
@pytest.mark.parametrize("divisor, offset", [(1, 0), (2, 0), (4, 10), (-3, 255), (0.5, -20)])
def test_divisor_and_offset(rng, border, divisor, offset):
    img = image(rng, (6, 7, 3))
    kernel = np.array([[1, 2, 1], [0, 3, 0], [-1, -2, -1]], dtype=float)
    got = convolution_matrix(img, kernel, divisor=divisor, offset=offset, border=border)
    np.testing.assert_array_equal(got, reference(img, kernel, divisor, offset, border))


def test_gimp_manual_example_moves_the_image_down():
    """A 1 in the kernel's top middle copies the pixel above: no flip (the GIMP manual's example)."""
    img = np.arange(1, 26, dtype=np.uint8).reshape(5, 5) * 10
    kernel = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    got = convolution_matrix(img, kernel)
    np.testing.assert_array_equal(got[1:], img[:-1])
    np.testing.assert_array_equal(got[0], img[0])  # extend: the row above row 0 is row 0 again


def test_normalise_rules():
    assert normalise(KERNELS["blur"]) == (9.0, 0.0)
    assert normalise(KERNELS["sharpen"]) == (1.0, 0.0)
    assert normalise(KERNELS["edge_detect"]) == (1.0, 128.0)  # sum 0: offset 128
    assert normalise(-np.ones((3, 3))) == (9.0, 255.0)  # negative sum: divisor -sum, offset 255


def test_normalised_edge_detect_is_grey_on_flat_image():
    img = np.full((5, 6), 77, dtype=np.uint8)
    np.testing.assert_array_equal(convolution_matrix(img, KERNELS["edge_detect"], normalise_kernel=True), 128)
    np.testing.assert_array_equal(convolution_matrix(img, KERNELS["blur"], normalise_kernel=True), 77)


def test_rounding_is_half_up_and_clamped():
    img = np.array([[0, 1, 0], [3, 5, 250]], dtype=np.uint8)
    kernel = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(convolution_matrix(img, kernel, divisor=2), [[0, 1, 0], [2, 3, 125]])  # 0.5→1, 2.5→3
    np.testing.assert_array_equal(convolution_matrix(img, kernel, offset=10), [[10, 11, 10], [13, 15, 255]])
    np.testing.assert_array_equal(convolution_matrix(img, kernel, offset=-2), [[0, 0, 0], [1, 3, 248]])


@pytest.mark.parametrize("border", ["extend", "wrap", "crop"])
def test_rgba_alpha_kept_by_default(rng, border):
    img = image(rng, (6, 5, 4))
    got = convolution_matrix(img, KERNELS["sharpen"], border=border)
    np.testing.assert_array_equal(got[..., 3], img[..., 3])
    np.testing.assert_array_equal(got, reference(img, KERNELS["sharpen"], border=border))
    grey_alpha = image(rng, (4, 6, 2))
    got = convolution_matrix(grey_alpha, KERNELS["edge_detect"], normalise_kernel=True, border=border)
    np.testing.assert_array_equal(got[..., 1], grey_alpha[..., 1])


@pytest.mark.parametrize("border", ["extend", "wrap", "crop"])
@pytest.mark.parametrize("filter_alpha", [False, True])
def test_alpha_channel_and_alpha_weighting(rng, border, filter_alpha):
    img = image(rng, (6, 7, 4))
    img[2, 3, 3] = 0  # a fully transparent pixel
    img[:, 0, 3] = 0
    kernel = KERNELS["blur"]
    got = convolution_matrix(img, kernel, normalise_kernel=True, border=border, filter_alpha=filter_alpha,
                             alpha_weighting=True)
    want = reference(img, kernel, 9.0, 0.0, border, filter_alpha=filter_alpha, alpha_weighting=True)
    np.testing.assert_array_equal(got, want)
    got = convolution_matrix(img, kernel, normalise_kernel=True, border=border, filter_alpha=filter_alpha)
    np.testing.assert_array_equal(got, reference(img, kernel, 9.0, 0.0, border, filter_alpha=filter_alpha))


def test_alpha_weighting_ignores_colour_of_transparent_pixels():
    img = np.zeros((3, 3, 4), dtype=np.uint8)
    img[..., :3] = 200
    img[..., 3] = 255
    img[1, 1] = (0, 0, 0, 0)  # transparent "black" in the middle
    plain = convolution_matrix(img, KERNELS["blur"], normalise_kernel=True)
    weighted = convolution_matrix(img, KERNELS["blur"], normalise_kernel=True, alpha_weighting=True)
    assert plain[1, 1, 0] == 178  # 8·200/9 rounded: the black leaks in
    np.testing.assert_array_equal(weighted[..., :3], 200)


@pytest.mark.parametrize("border", ["extend", "wrap", "crop"])
def test_5x5_non_square_and_large_kernels(rng, monkeypatch, border):
    import dlia.signal.filters as filters

    img = image(rng, (9, 8, 3))
    k5 = rng.integers(-3, 4, (5, 5)).astype(float)
    np.testing.assert_array_equal(convolution_matrix(img, k5, divisor=7, offset=3, border=border),
                                  reference(img, k5, 7, 3, border))
    k35 = rng.integers(-2, 3, (3, 5)).astype(float)
    np.testing.assert_array_equal(convolution_matrix(img, k35, border=border), reference(img, k35, border=border))
    # a kernel larger than the image, by shifted adds and (forced) by conv2
    k11 = rng.integers(-2, 3, (11, 9)).astype(float)
    want = reference(img, k11, 16, 100, border)
    np.testing.assert_array_equal(convolution_matrix(img, k11, divisor=16, offset=100, border=border), want)
    monkeypatch.setattr(filters, "_MAX_SHIFTED_TERMS", 10)
    np.testing.assert_array_equal(convolution_matrix(img, k11, divisor=16, offset=100, border=border), want)
    rgba = image(rng, (6, 7, 4))
    np.testing.assert_array_equal(
        convolution_matrix(rgba, k5, divisor=5, border=border, filter_alpha=True, alpha_weighting=True),
        reference(rgba, k5, 5, 0, border, filter_alpha=True, alpha_weighting=True))


def test_float_images_are_not_rounded(rng):
    img = rng.uniform(0, 255, (5, 6))
    got = convolution_matrix(img, KERNELS["sharpen"], offset=0.25)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, reference(img, KERNELS["sharpen"], 1.0, 0.25), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("border", ["extend", "wrap", "crop"])
def test_tiles_and_threads_agree(rng, monkeypatch, border):
    """Many one- and two-row tiles (top, interior and bottom ones), filtered by several threads."""
    import dlia.signal.filters as filters

    monkeypatch.setattr(filters, "_TILE_ELEMENTS", 40)
    img = image(rng, (23, 11, 3))
    want = reference(img, KERNELS["sharpen"], border=border)
    np.testing.assert_array_equal(convolution_matrix(img, KERNELS["sharpen"], border=border, workers=4), want)
    np.testing.assert_array_equal(convolution_matrix(img, KERNELS["sharpen"], border=border, workers=1), want)
    k5 = np.arange(25, dtype=float).reshape(5, 5) - 12
    np.testing.assert_array_equal(convolution_matrix(img, k5, divisor=10, border=border, workers=3),
                                  reference(img, k5, 10, 0, border))


def test_parse_and_load_kernels(tmp_path):
    np.testing.assert_array_equal(parse_kernel("0,-1,0;-1,5,-1;0,-1,0"), KERNELS["sharpen"])
    np.testing.assert_array_equal(parse_kernel("[1 2 1; 2 4 2; 1 2 1]"), [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    f = tmp_path / "k.txt"
    f.write_text("# sharpen\n0 -1 0\n-1 5 -1\n0 -1 0\n", encoding="utf-8")
    kernel, normalised = load_kernel(f"@{f}")
    np.testing.assert_array_equal(kernel, KERNELS["sharpen"])
    assert not normalised
    assert load_kernel("blur")[1] is True


def test_kernel_names_as_users_type_them():
    for spelling in ("edge-detect", "Edge_Detect", "edge detect"):
        np.testing.assert_array_equal(load_kernel(spelling)[0], KERNELS["edge_detect"])
    assert load_kernel("BLUR")[1] is True
    with pytest.raises(ValueError, match=r"no kernel named 'sharpn'; the names are edge_enhance, edge_detect, blur, sharpen"):
        load_kernel("sharpn")


@pytest.mark.parametrize("text, message", [
    ("", "no numbers"),
    ("1,2;3", "different lengths"),
    ("1,a,3", "'a' is not a number"),
    ("1,0;0,0", "odd numbers of rows and columns"),
    ("1,inf,1", "finite"),
])
def test_bad_kernel_text(text, message):
    with pytest.raises(ValueError, match=message):
        parse_kernel(text)


def test_bad_arguments():
    img = np.zeros((4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="divisor must be a non-zero"):
        convolution_matrix(img, KERNELS["sharpen"], divisor=0)
    with pytest.raises(ValueError, match="border must be one of"):
        convolution_matrix(img, KERNELS["sharpen"], border="mirror")
    with pytest.raises(ValueError, match="normalise sets the divisor"):
        convolution_matrix(img, KERNELS["sharpen"], divisor=2, normalise_kernel=True)
    with pytest.raises(ValueError, match=r"got shape \(4, 4, 5\)"):
        convolution_matrix(np.zeros((4, 4, 5), dtype=np.uint8), KERNELS["sharpen"])
    with pytest.raises(ValueError, match="uint8 or floating point"):
        convolution_matrix(np.zeros((4, 4), dtype=np.int32), KERNELS["sharpen"])
