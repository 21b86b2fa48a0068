"""Image arithmetic that gives the same bits on every CPU (the synthetic benchmark and `prepare`).

numpy's elementwise +, -, *, /, sqrt, floor and rint are IEEE-754 operations: exact to the last
bit whatever the SIMD width the CPU offers. Transcendentals are not (numpy dispatches exp, sin,
cos, power to per-instruction-set kernels; libm has per-CPU variants), nor are BLAS products,
large float reductions, or OpenCV's vectorised float kernels (warps, blurs, area resizes). So
here:

* transcendentals are evaluated on short vectors and snapped to a 2^-20 grid (`snap`): kernels
  that differ in the last bits land on the same grid point, unless a value lies within a few ulp
  of a grid midpoint (about one value in 10^9);
* resampling, blurs and warps are written with elementwise operations and sums in a fixed order;
* integer arithmetic where it is natural (grey conversion, histogram equalisation, block means).
"""

from __future__ import annotations

import math

import numpy as np

GRID = 2.0 ** 20  # snapped values are multiples of 1 / GRID


def snap(x) -> np.ndarray:
    """float64 values rounded to the 2^-20 grid."""
    return np.rint(np.asarray(x, np.float64) * GRID) / GRID


def gauss(x, centre: float, sigma: float) -> np.ndarray:
    """exp(-(x - centre)^2 / (2 sigma^2)) of a short 1-D vector, float64, snapped. A 2-D Gaussian is
    the outer product of two of these."""
    d = (np.asarray(x, np.float64) - centre) / sigma
    return snap(np.exp(-0.5 * d * d))


def cubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of cubic-convolution resampling (Keys, a = -0.5) of n_in samples to
    n_out, pixel centres aligned and borders replicated (cv2.resize's geometry); plain floats."""
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        x = (o + 0.5) * n_in / n_out - 0.5
        i0 = math.floor(x)
        for k in range(-1, 3):
            d = abs(x - (i0 + k))
            if d <= 1.0:
                wk = (1.5 * d - 2.5) * d * d + 1.0
            elif d < 2.0:
                wk = ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0
            else:
                wk = 0.0
            w[o, min(max(i0 + k, 0), n_in - 1)] += wk
    return w


def resample(img: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """(H, W, ...) -> (len(wy), len(wx), ...) float64: wy @ img @ wx.T as sums in a fixed order
    (for small weight matrices: a lattice upsampled, a thumbnail enlarged)."""
    img = np.asarray(img, np.float64)
    tail = (1,) * (img.ndim - 2)
    tmp = np.zeros((wy.shape[0],) + img.shape[1:])
    for i in range(wy.shape[1]):
        tmp += wy[:, i].reshape((-1, 1) + tail) * img[i][None]
    out = np.zeros((wy.shape[0], wx.shape[0]) + img.shape[2:])
    for j in range(wx.shape[1]):
        out += tmp[:, j][:, None] * wx[:, j].reshape((1, -1) + tail)
    return out


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a float (H, W) or (H, W, C) array, radius ceil(3 sigma),
    reflect-101 borders (OpenCV's default), taps summed in a fixed order; keeps the dtype."""
    r = max(1, math.ceil(3.0 * sigma))
    k = gauss(np.arange(-r, r + 1), 0.0, sigma)
    k = (k / math.fsum(k)).astype(img.dtype)
    out = img
    for axis in (0, 1):
        n = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (min(r, n - 1), min(r, n - 1))
        p = np.pad(out, pad, mode="reflect")
        if r > n - 1:  # tiny images: replicate what one reflection cannot reach
            extra = [(0, 0)] * out.ndim
            extra[axis] = (r - n + 1, r - n + 1)
            p = np.pad(p, extra, mode="edge")
        acc = np.zeros_like(out)
        for i in range(2 * r + 1):
            acc += k[i] * (p[i:i + n] if axis == 0 else p[:, i:i + n])
        out = acc
    return out


def _border_index(i: np.ndarray, n: int, border: str) -> np.ndarray:
    if border == "reflect":  # fedcba|abcdef|fedcba (OpenCV's BORDER_REFLECT)
        i = np.where(i < 0, -i - 1, i)
        i = np.where(i >= n, 2 * n - 1 - i, i)
    return np.clip(i, 0, n - 1)


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray, border: str = "replicate") -> np.ndarray:
    """`img` (H, W) or (H, W, C) sampled at coordinates (x, y) (same shape; pixel centres at
    integers) by bilinear interpolation; border "replicate" or "reflect". Computes in the dtype
    that img and x promote to (uint8 images: pass float coordinates)."""
    h, w = img.shape[:2]
    fx, fy = np.floor(x), np.floor(y)
    ax, ay = x - fx, y - fy
    x0, y0 = fx.astype(np.intp), fy.astype(np.intp)
    xa, xb = _border_index(x0, w, border), _border_index(x0 + 1, w, border)
    ya, yb = _border_index(y0, h, border) * w, _border_index(y0 + 1, h, border) * w
    flat = img.reshape((h * w,) + img.shape[2:])
    if img.ndim == 3:
        ax, ay = ax[..., None], ay[..., None]
    v00, v01, v10, v11 = flat[ya + xa], flat[ya + xb], flat[yb + xa], flat[yb + xb]
    if v00.dtype == np.uint8:
        v00, v01, v10, v11 = (v.astype(ax.dtype) for v in (v00, v01, v10, v11))
    top = v00 + (v01 - v00) * ax
    bot = v10 + (v11 - v10) * ax
    return top + (bot - top) * ay


class Sampler:
    """Bilinear sampling of one image at many sets of coordinates (the generator's per-frame warps):
    the image is padded once -- `margin` pixels of `border` ("replicate" or "reflect") on every side
    and one more replicated row and column -- so that a call only clamps the coordinates. Equal to
    `bilinear` for coordinates within `margin` of the image (up to the float rounding of adding the
    margin); farther out the border replicates. Channels are kept as separate flat arrays (a 1-D
    gather is many times faster than a gather of rows)."""

    def __init__(self, img: np.ndarray, border: str = "replicate", margin: int = 0) -> None:
        planes = [img] if img.ndim == 2 else [img[..., c] for c in range(img.shape[2])]
        mode = "symmetric" if border == "reflect" else "edge"
        padded = [np.pad(np.pad(p, margin, mode=mode), ((0, 1), (0, 1)), mode="edge") for p in planes]
        self.margin = margin
        self.h, self.w = padded[0].shape[0] - 1, padded[0].shape[1] - 1  # without the extra row/column
        self.stride = padded[0].shape[1]
        self.flats = [np.ascontiguousarray(p).ravel() for p in padded]
        self.grey = img.ndim == 2

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """The samples at (x, y): an array like x for a 2-D image, else a list of one per channel."""
        x = np.clip(x + self.margin, 0, self.w - 1)
        y = np.clip(y + self.margin, 0, self.h - 1)
        fx, fy = np.floor(x), np.floor(y)
        ax, ay = x - fx, y - fy
        i00 = fy.astype(np.intp) * self.stride + fx.astype(np.intp)
        i01, i10 = i00 + 1, i00 + self.stride
        i11 = i10 + 1
        out = []
        for f in self.flats:
            v00, v01, v10, v11 = f[i00], f[i01], f[i10], f[i11]
            top = v00 + (v01 - v00) * ax
            bot = v10 + (v11 - v10) * ax
            out.append(top + (bot - top) * ay)
        return out[0] if self.grey else out


def invert_affine(m) -> tuple[float, float, float, float, float, float]:
    """The inverse of the (2, 3) affine map `m` as six Python floats (a, b, c, d, e, f):
    x = a x' + b y' + c, y = d x' + e y' + f."""
    m00, m01, m02 = (float(v) for v in m[0])
    m10, m11, m12 = (float(v) for v in m[1])
    det = m00 * m11 - m01 * m10
    a, b, d, e = m11 / det, -m01 / det, -m10 / det, m00 / det
    return a, b, -(a * m02 + b * m12), d, e, -(d * m02 + e * m12)


def warp_affine(img: np.ndarray, m, size: tuple[int, int]) -> np.ndarray:
    """cv2.warpAffine(img, m, size, INTER_LINEAR, BORDER_REPLICATE) in float64 arithmetic: `m`
    (2, 3) maps source pixels to output pixels, `size` = (width, height); uint8 in, uint8 out
    (rounded to nearest, ties to even)."""
    a, b, c, d, e, f = invert_affine(m)
    width, height = size
    xs = np.arange(width, dtype=np.float64)[None, :]
    ys = np.arange(height, dtype=np.float64)[:, None]
    sx = (a * xs + c) + b * ys
    sy = (d * xs + f) + e * ys
    out = bilinear(img, sx, sy, "replicate")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def block_mean(img: np.ndarray, k: int) -> np.ndarray:
    """Mean of each k x k block of a uint8 (H, W[, C]) image (integer sums, one float64 division;
    the last partial row/column of blocks is dropped): an exact area shrink by an integer factor.
    Pixel (i, j) of the result is centred on source pixel (k j + (k - 1) / 2, k i + (k - 1) / 2)."""
    h, w = img.shape[0] // k * k, img.shape[1] // k * k
    acc = np.zeros((h // k, w // k) + img.shape[2:], np.int32)
    for dy in range(k):
        for dx in range(k):
            acc += img[dy:h:k, dx:w:k]
    return acc / float(k * k)


def grey(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> grey uint8: BT.601 weights in 15-bit fixed point, integer arithmetic
    (the same result as cv2.cvtColor(..., COLOR_RGB2GRAY) in OpenCV 4)."""
    v = rgb.astype(np.int32)
    return ((v[..., 0] * 9798 + v[..., 1] * 19235 + v[..., 2] * 3735 + (1 << 14)) >> 15).astype(np.uint8)


def equalize_hist(g: np.ndarray) -> np.ndarray:
    """cv2.equalizeHist in numpy: the same lookup table (float32 scale, rounded half to even)."""
    hist = np.bincount(g.ravel(), minlength=256)
    lo = int(np.flatnonzero(hist)[0])
    total = g.size
    if hist[lo] == total:
        return np.full_like(g, lo)
    scale = np.float32(255.0) / np.float32(total - hist[lo])
    cum = np.cumsum(hist) - hist[lo]  # integers: exact
    lut = np.rint(cum.astype(np.float32) * scale)
    lut[:lo + 1] = 0
    return np.clip(lut, 0, 255).astype(np.uint8)[g]
