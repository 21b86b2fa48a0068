"""LBP-TOP: local binary patterns on three orthogonal planes (Zhao & Pietikainen, TPAMI 2007), with
the parameters of the MEGC2019 baseline (the challenge guideline, `../shared/data/README.md` and
docs/methods.md): radii R_X = R_Y = 1, R_T = 4, P = 4 neighbours on every plane, 5 x 5
non-overlapping blocks, each clip first interpolated to 10 frames with the temporal interpolation
model (TIM, Zhou et al. 2011; Pfister et al. 2011).

Codes. A centre voxel g_c at (t, y, x) is compared with P neighbours on a circle (an ellipse when
the two radii of a plane differ) in each plane; bit p is 1 when g_p >= g_c. Neighbour p sits at
angle a = 2 pi p / P, rounded to the nearest voxel (as the authors' Matlab code samples):

    XY: (y - R_Y sin a, x + R_X cos a) at t      -> p = 0 right, 1 up, 2 left, 3 down (P = 4)
    XT: (t - R_T sin a, x + R_X cos a) at y      -> p = 0 right, 1 earlier, 2 left, 3 later
    YT: (t - R_T sin a, y - R_Y cos a) at x      -> p = 0 up, 1 earlier, 2 down, 3 later

Centres are the voxels whose every neighbour lies inside the volume (R_T <= t < T - R_T, likewise
in y and x), the same set for all three planes. Uniform patterns ("u2": at most two 0/1
transitions around the circle) get one bin each, in increasing code order, and all others share
the last bin: P (P - 1) + 3 bins (15 for P = 4). The centre grid is split into rows x cols
non-overlapping blocks (as evenly as integer sizes allow); one histogram per block and plane,
normalised to sum 1, concatenated block by block (row-major), planes XY, XT, YT within a block:
5 x 5 x 3 x 15 = 1125 values.

TIM. The path-graph Laplacian embedding of Zhou et al. places frame i of n on the curve
y_k(i) = cos(pi k (i + 1/2) / n), k = 1..n-1 (their sin(pi k t + pi (n - k) / 2n) at t = (i+1)/n):
the DCT-II basis. Interpolating along that curve is therefore expanding each pixel's time series
in the DCT-II basis and evaluating it at `tim_frames` positions spread evenly from the first to the
last frame; at the original positions it returns the original frames exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import scipy.fft


@dataclass(frozen=True)
class LBPTOPParams:
    """LBP-TOP settings; the defaults are the MEGC2019 baseline's (guideline, footnote of its table)."""

    radius_x: int = 1
    radius_y: int = 1
    radius_t: int = 4
    points_xy: int = 4
    points_xt: int = 4
    points_yt: int = 4
    rows: int = 5  # blocks down the face
    cols: int = 5  # blocks across the face
    tim_frames: int = 10  # frames after temporal interpolation; 0: use the clip's frames as they are
    grey: str = "bt601"  # how RGB frames become grey (cv2.COLOR_RGB2GRAY)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def length(self) -> int:
        """Length of the feature vector."""
        return self.rows * self.cols * 3 * max(n_bins(self.points_xy), n_bins(self.points_xt), n_bins(self.points_yt))


def n_bins(points: int) -> int:
    """Bins of the uniform ("u2") mapping of `points`-bit codes."""
    return points * (points - 1) + 3


def uniform_mapping(points: int) -> np.ndarray:
    """(2**points,) bin of every code: uniform codes numbered in increasing order, the rest last."""
    table = np.empty(2 ** points, dtype=np.int64)
    last = n_bins(points) - 1
    index = 0
    for code in range(2 ** points):
        rotated = ((code << 1) | (code >> (points - 1))) & (2 ** points - 1)
        if bin(code ^ rotated).count("1") <= 2:
            table[code] = index
            index += 1
        else:
            table[code] = last
    return table


def tim_interpolate(volume: np.ndarray, n_out: int) -> np.ndarray:
    """(T, H, W) -> (n_out, H, W) float64 along the TIM curve (DCT-II basis, see the module doc)."""
    v = np.asarray(volume, dtype=np.float64)
    n = v.shape[0]
    if n == 1:
        return np.repeat(v, n_out, axis=0)
    coeffs = scipy.fft.dct(v, type=2, axis=0, norm="ortho")  # (n, H, W)
    s = np.linspace(0.0, n - 1.0, n_out)  # positions of the new frames, first to last frame
    k = np.arange(n)
    basis = np.cos(np.pi * np.outer(2.0 * s + 1.0, k) / (2.0 * n)) * np.sqrt(2.0 / n)  # (n_out, n)
    basis[:, 0] = np.sqrt(1.0 / n)
    return np.tensordot(basis, coeffs, axes=(1, 0))


def _round(x: float) -> int:
    """Nearest integer, halves up (the authors' Matlab code: floor(x + 0.5))."""
    return int(np.floor(x + 0.5))


def _angles(points: int) -> np.ndarray:
    return 2.0 * np.pi * np.arange(points) / points


def lbp_top_histograms(volume: np.ndarray, params: LBPTOPParams = LBPTOPParams()) -> np.ndarray:
    """(rows * cols, 3, bins) counts of the uniform LBP codes of a (T, H, W) grey volume (no TIM
    here: `clip_lbp_top` applies it), planes XY, XT, YT; bins = the largest of the three planes'."""
    v = np.asarray(volume, dtype=np.float64)
    T, H, W = v.shape
    rx, ry, rt = params.radius_x, params.radius_y, params.radius_t
    if T <= 2 * rt or H <= 2 * ry or W <= 2 * rx:
        raise ValueError(f"LBP-TOP: a {T} x {H} x {W} volume has no centre voxel for radii "
                         f"(t, y, x) = ({rt}, {ry}, {rx})")
    ct, cy, cx = slice(rt, T - rt), slice(ry, H - ry), slice(rx, W - rx)
    centre = v[ct, cy, cx]

    def shifted(dt: int, dy: int, dx: int) -> np.ndarray:
        return v[rt + dt:T - rt + dt, ry + dy:H - ry + dy, rx + dx:W - rx + dx]

    # (dt, dy, dx) of each neighbour, in the order of the module docstring's table
    planes = (
        (params.points_xy, [(0, _round(-ry * np.sin(a)), _round(rx * np.cos(a))) for a in _angles(params.points_xy)]),
        (params.points_xt, [(_round(-rt * np.sin(a)), 0, _round(rx * np.cos(a))) for a in _angles(params.points_xt)]),
        (params.points_yt, [(_round(-rt * np.sin(a)), _round(-ry * np.cos(a)), 0) for a in _angles(params.points_yt)]),
    )
    bins = max(n_bins(p) for p, _ in planes)
    nt, ny, nx = centre.shape
    block = ((np.arange(ny) * params.rows) // ny)[:, None] * params.cols + ((np.arange(nx) * params.cols) // nx)[None, :]
    block = np.broadcast_to(block, (nt, ny, nx)).ravel()  # (nt * ny * nx,) block of each centre
    out = np.zeros((params.rows * params.cols, 3, bins), dtype=np.int64)
    for j, (points, offsets) in enumerate(planes):
        code = np.zeros(centre.shape, dtype=np.int64)
        for p, (dt, dy, dx) in enumerate(offsets):
            code |= (shifted(dt, dy, dx) >= centre).astype(np.int64) << p
        bin_of = uniform_mapping(points)[code.ravel()]
        np.add.at(out[:, j, :], (block, bin_of), 1)
    return out


def grey_volume(frames: np.ndarray) -> np.ndarray:
    """(T, 3, S, S) uint8 RGB frames -> (T, S, S) uint8 grey."""
    return np.stack([cv2.cvtColor(np.ascontiguousarray(f.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY) for f in frames])


def lbp_top_vector(volume: np.ndarray, params: LBPTOPParams = LBPTOPParams()) -> np.ndarray:
    """(params.length,) float32 LBP-TOP feature of a (T, H, W) grey volume: TIM to
    `params.tim_frames` frames (unless 0), histograms per block and plane, each normalised to sum 1."""
    v = np.asarray(volume, dtype=np.float64)
    if params.tim_frames:
        v = tim_interpolate(v, params.tim_frames)
    h = lbp_top_histograms(v, params).astype(np.float64)
    h /= np.maximum(h.sum(axis=2, keepdims=True), 1.0)
    return h.ravel().astype(np.float32)


def clip_lbp_top(cache, i: int, params: LBPTOPParams = LBPTOPParams()) -> np.ndarray:
    """LBP-TOP feature of clip i of a `ClipCache`: all its frames, onset..offset."""
    return lbp_top_vector(grey_volume(np.asarray(cache.clip_frames(i))), params)
