"""fdp.data.exact: the arithmetic the synthetic benchmark and `prepare` use so that every CPU stores
the same bytes. Hand-computed values, and equality with the OpenCV functions they replace where
those are integer-exact (grey conversion, histogram equalisation)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from fdp.data import exact


def test_snap_lands_nearby_values_on_one_grid_point():
    x = 0.123456789
    ulp = math.ulp(x)
    assert exact.snap([x, x + 3 * ulp, x - 3 * ulp]).tolist() == [round(x * 2**20) / 2**20] * 3
    assert exact.snap(1.0) == 1.0 and exact.snap(-0.5) == -0.5  # grid points stay


def test_gauss_is_snapped_and_peaks_at_the_centre():
    g = exact.gauss(np.arange(5), 2.0, 1.0)
    assert g[2] == 1.0 and g[1] == g[3] and g[0] == g[4]
    assert g[1] == exact.snap(math.exp(-0.5)) and g[0] == exact.snap(math.exp(-2.0))


def test_cubic_weights_interpolate_and_sum_to_one():
    w = exact.cubic_weights(5, 20)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)
    # a linear ramp stays linear inside (cubic convolution reproduces degree-1 polynomials)
    ramp = np.arange(5.0)
    out = w @ ramp
    inner = slice(6, 14)  # outputs whose four taps are all inside the input
    np.testing.assert_allclose(out[inner], ((np.arange(20) + 0.5) * 5 / 20 - 0.5)[inner], atol=1e-12)
    # upsampling by an integer factor of 1 is the identity
    np.testing.assert_array_equal(exact.cubic_weights(4, 4), np.eye(4))


def test_resample_is_the_matrix_product():
    rng = np.random.default_rng(0)
    img = rng.random((5, 6, 2))
    wy, wx = exact.cubic_weights(5, 9), exact.cubic_weights(6, 11)
    np.testing.assert_allclose(exact.resample(img, wy, wx), np.einsum("ai,ijc,bj->abc", wy, img, wx), atol=1e-12)


def test_blur_keeps_constants_and_mass():
    flat = np.full((20, 30), 7.0, np.float32)
    np.testing.assert_allclose(exact.blur(flat, 2.0), 7.0, rtol=1e-6)
    dot = np.zeros((41, 41))
    dot[20, 20] = 1.0
    b = exact.blur(dot, 2.0)
    assert abs(b.sum() - 1.0) < 1e-9 and b[20, 20] == b.max() and b[20, 18] == b[18, 20] == b[22, 20]


def test_bilinear_hand_computed():
    img = np.array([[0.0, 10.0], [20.0, 30.0]])
    x, y = np.array([0.5, 0.0, 1.0, -3.0, 0.25]), np.array([0.5, 1.0, 0.0, 0.0, 9.0])
    np.testing.assert_allclose(exact.bilinear(img, x, y), [15.0, 20.0, 10.0, 0.0, 22.5])  # replicated borders
    # reflected border: x = -1 reads column 0 (fedcba|abc), x = 2 reads column 1
    assert exact.bilinear(img, np.array([-1.0, 2.0]), np.array([0.0, 0.0]), "reflect").tolist() == [0.0, 10.0]


def test_sampler_equals_bilinear_inside_its_margin():
    rng = np.random.default_rng(1)
    img = rng.random((30, 40)).astype(np.float32)
    x = rng.uniform(-5, 44, (20, 20)).astype(np.float32)
    y = rng.uniform(-5, 34, (20, 20)).astype(np.float32)
    for border in ("replicate", "reflect"):
        np.testing.assert_allclose(exact.Sampler(img, border, margin=8)(x, y), exact.bilinear(img, x, y, border),
                                   atol=1e-4)
    two = np.stack([img, 2 * img], -1)
    a, b = exact.Sampler(two)(x, y)
    np.testing.assert_array_equal(b, 2 * a)


def test_warp_affine_follows_opencv_geometry():
    """Same matrix convention and pixel-centre geometry as cv2.warpAffine (OpenCV rounds the
    coordinates to 1/32 px, hence a level of difference on a smooth image)."""
    yy, xx = np.mgrid[0:60, 0:80]
    img = np.clip(128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 7.0), 0, 255).astype(np.uint8)
    m = cv2.getRotationMatrix2D((40.0, 30.0), 17.0, 0.8)
    ours = exact.warp_affine(img, m, (50, 45))
    theirs = cv2.warpAffine(img, m, (50, 45), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert ours.shape == theirs.shape and np.abs(ours.astype(int) - theirs).max() <= 1
    # a pure translation by whole pixels moves the pixels
    shift = exact.warp_affine(img, np.array([[1.0, 0, 3], [0, 1.0, 2]]), (80, 60))
    np.testing.assert_array_equal(shift[2:, 3:], img[:-2, :-3])


def test_block_mean_and_integer_conversions():
    img = np.arange(2 * 7 * 3, dtype=np.uint8).reshape(2, 7, 3)
    bm = exact.block_mean(img, 2)
    assert bm.shape == (1, 3, 3)
    np.testing.assert_array_equal(bm[0, 0], (img[0, 0] + img[0, 1] + img[1, 0] + img[1, 1]).astype(float) / 4)
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    grey = exact.grey(rgb)
    np.testing.assert_array_equal(grey, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    low = (grey // 3 + 40).astype(np.uint8)  # a narrow histogram: the lookup table stretches it
    np.testing.assert_array_equal(exact.equalize_hist(low), cv2.equalizeHist(low))
    np.testing.assert_array_equal(exact.equalize_hist(np.full((4, 4), 9, np.uint8)), np.full((4, 4), 9))


def test_invert_affine():
    m = np.array([[0.8, -0.3, 5.0], [0.3, 0.8, -2.0]])
    a, b, c, d, e, f = exact.invert_affine(m)
    p = np.array([3.0, 4.0])
    q = m[:, :2] @ p + m[:, 2]
    np.testing.assert_allclose([a * q[0] + b * q[1] + c, d * q[0] + e * q[1] + f], p, atol=1e-12)
