"""The synthetic micro-expression benchmark (SPEC §4.4), written in the CASME II layout.

Licensed ME data cannot be downloaded, so `write_synthetic` writes a stand-in that the real
`casme2` reader, the real alignment and the real training path all run on:

    <out>/CASME2-coding-synthetic.xlsx                  # CASME II columns, blank ones included
    <out>/CASME2_RAW_selected/subXX/<Filename>/img<N>.jpg   # N absolute, not zero-padded

How a clip is made:

* **Identity** (per subject): a real face -- one of the LFW photographs that scikit-image ships
  (`skimage.data.lfw_subset()`, 25 x 25 grey crops of LFW's commonly aligned images), a different
  person for each subject of a draw (`FACE_BANK`'s 60 faces repeat only in draws of more subjects)
  -- pasted, eyes on eyes, into the head of
  `skimage.data.astronaut()` (hair, neck and background around the face), seen through a
  per-subject camera crop (shift, scale, roll, mirror), a smooth random shape warp, per-subject
  AU-shaped shape offsets (wider mouth, higher brows, ...), skin tint, gamma and side lighting.
  Landmarks (brows, lids, nose, lip corners, chin) come from the faces' common alignment: read
  off their mean face once, in units of the eye distance, and carried by each face's eyes.
* **Expression** (per clip): a small, localised, AU-like displacement field (Gaussian bumps at
  the landmarks) whose intensity rises from the onset to the apex (10-25 % into the span by
  default) and falls back by the offset, inside a longer recording. Classes (CASME II 5-class):
  happiness AU6+12, disgust AU4+9+10, repression AU14+17+24, surprise AU1+2, others one of AU4 /
  AU7 / AU15.
* **Only the change carries the class.** Every clip starts from a randomly pre-deformed neutral
  face: a static offset on *all* AU fields, drawn uniformly over a range several times the
  expression amplitude, and the expression is centred on it (neutral = offset - amplitude/2 on the
  class AUs, apex = offset + amplitude/2). So the apex frame alone, or any single frame, is drawn
  from nearly the same distribution for every class, while apex minus onset is the class field.
* **Nuisances in every class**: sensor noise, slow head drift (translation + roll), blinks,
  illumination flicker (mains-like at 200 fps plus jitter), JPEG compression.

Everything is a deterministic function of `seed` (one `SeedSequence` child per subject and per
clip, one for the choice of faces). `difficulty` in [0, 1] shrinks the expression and
strengthens the nuisances.

**The same bytes on every CPU.** Between the seed and the stored JPEGs no result depends on the
instruction set (`fdp.data.exact`): images are resampled, warped and blurred with numpy's
elementwise IEEE-754 arithmetic and sums in a fixed order (no BLAS, no OpenCV float kernels); the
few transcendentals (exp, sin, cos, power) are evaluated on short vectors -- a Gaussian bump is the
outer product of two 1-D ones, gamma a lookup table -- and snapped to a 2^-20 grid; sensor noise
is 16-bit random integers looked up in a table of normal quantiles. What remains is numpy's
random generators (integer arithmetic, bar a libm exp/log in the rare rejection steps of normal
draws, too rare a decision to flip) and libjpeg-turbo's integer JPEG encoder, whose SIMD and
plain-C paths write the same coefficients (tests/test_bytes.py checks both on every run of CI).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fdp.data.exact import Sampler, bilinear, blur, cubic_weights, gauss, resample, snap
from fdp.data.samples import DataError

ANNOTATION_NAME = "CASME2-coding-synthetic.xlsx"
FRAMES_DIR = "CASME2_RAW_selected"
# the exact CASME II header row (SPEC §4.1): the two blank columns stay blank
HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
          "Estimated Emotion"]
CLASSES = ("happiness", "disgust", "repression", "surprise", "others")
FPS = 200.0  # CASME II recording rate; the reader takes it from the dataset, we only mirror it
# bumped whenever the same arguments write other bytes (recorded in synthetic.json; the demo's
# folder of generated data carries it, so a draw of an older generator is not reused)
SYNTH_VERSION = 2

# --- the faces. skimage.data.lfw_subset()[:100] are faces (the rest are not); their eye centres
# (x, y; pixel centres at integers), read off the mean of the 100 crops: LFW's funneling aligned them
_LFW_EYES = ((6.0, 8.0), (14.8, 8.0))
# the faces used as identities: the frontal, unoccluded ones (no hand, hair or dark glasses over the
# face) in which the Haar aligner found a face in each of three test renders; one photograph per
# person where the same person seemed to appear twice (lfw_subset carries no names)
FACE_BANK: tuple[int, ...] = (
    1, 3, 6, 7, 8, 10, 11, 15, 18, 19, 20, 21, 24, 25, 26, 27, 34, 35, 37, 38, 39, 41, 42, 43, 45, 46, 48, 49, 50, 51,
    55, 56, 58, 60, 61, 62, 64, 66, 67, 68, 69, 72, 73, 74, 76, 77, 78, 79, 80, 81, 84, 86, 88, 91, 92, 93, 95, 97, 98,
    99)
# the soft ellipse of a face crop that is pasted (centre, semi-axes; crop pixels) and its feather
_FACE_ELLIPSE = ((10.4, 12.4), (9.6, 12.8))
_FEATHER = 0.18
# the astronaut photograph's pupils (x, y), read off the image once: the pasted eyes go there
_ASTRONAUT_EYES = ((202.5, 101.5), (246.5, 103.0))
_FACE_CENTRE = (224.0, 125.0)  # astronaut coords; centre of the camera crop
_CROP_SIDE = 150.0  # astronaut pixels seen by a frame before the per-subject scale jitter
_UPSAMPLE = 4  # a face crop is upsampled (cubic) by this factor before it is pasted

# Landmarks in face-local units of the inter-ocular distance d_e: x from the midline towards the
# image-right eye, y down from the eye line; read off the mean face of the LFW crops. "_l" = image-left.
_LANDMARKS: dict[str, tuple[float, float]] = {
    "eye_l": (-0.5, 0.0), "eye_r": (0.5, 0.0),
    "brow_in_l": (-0.3, -0.28), "brow_out_l": (-0.72, -0.25),
    "brow_in_r": (0.3, -0.28), "brow_out_r": (0.72, -0.25),
    "lid_up_l": (-0.5, -0.1), "lid_up_r": (0.5, -0.1),
    "lid_low_l": (-0.5, 0.12), "lid_low_r": (0.5, 0.12),
    "nose_root": (0.0, 0.03), "nose_l": (-0.2, 0.68), "nose_r": (0.2, 0.68),
    "cheek_l": (-0.72, 0.55), "cheek_r": (0.72, 0.55),
    "lip_up": (0.0, 0.97), "lip_low": (0.0, 1.25),
    "mouth_l": (-0.46, 1.07), "mouth_r": (0.46, 1.07),
    "chin": (0.0, 1.6),
}

# Action units as Gaussian displacement bumps: (landmarks, (out, up), sigma). Displacements are in
# units of the inter-ocular distance d_e and in face-local axes: "out" points away from the
# midline (so mirrored faces stay right), "up" towards the forehead. sigma is also in d_e.
_Bump = tuple[tuple[str, ...], tuple[float, float], float]
_AUS: dict[str, list[_Bump]] = {
    "1": [(("brow_in_l", "brow_in_r"), (0.0, 1.0), 0.22)],  # inner brow raiser
    "2": [(("brow_out_l", "brow_out_r"), (0.0, 1.0), 0.22)],  # outer brow raiser
    "4": [(("brow_in_l", "brow_in_r"), (-0.5, -0.8), 0.22)],  # brow lowerer
    "6": [(("cheek_l", "cheek_r"), (0.0, 0.8), 0.28), (("lid_low_l", "lid_low_r"), (0.0, 0.3), 0.16)],
    "7": [(("lid_low_l", "lid_low_r"), (0.0, 0.5), 0.16), (("lid_up_l", "lid_up_r"), (0.0, -0.2), 0.16)],
    "9": [(("nose_l", "nose_r"), (0.0, 0.8), 0.18), (("nose_root",), (0.0, -0.3), 0.18)],
    "10": [(("lip_up",), (0.0, 0.8), 0.22)],  # upper lip raiser
    "12": [(("mouth_l", "mouth_r"), (0.6, 0.8), 0.22)],  # lip corner puller
    "14": [(("mouth_l", "mouth_r"), (-0.6, 0.1), 0.2)],  # dimpler
    "15": [(("mouth_l", "mouth_r"), (0.0, -0.9), 0.22)],  # lip corner depressor
    "17": [(("chin",), (0.0, 0.7), 0.30), (("lip_low",), (0.0, 0.4), 0.18)],  # chin raiser
    "24": [(("lip_up",), (0.0, -0.5), 0.16), (("lip_low",), (0.0, 0.5), 0.16)],  # lip pressor
}
_AU_NAMES = tuple(_AUS)
# class -> list of alternatives, each {AU: weight}; "others" draws one alternative per clip
_CLASS_AUS: dict[str, list[dict[str, float]]] = {
    "happiness": [{"6": 0.6, "12": 1.0}],
    "disgust": [{"4": 0.3, "9": 1.0, "10": 0.7}],
    "repression": [{"14": 1.0, "17": 0.7, "24": 0.5}],
    "surprise": [{"1": 1.0, "2": 1.0}],
    "others": [{"4": 1.0}, {"7": 1.0}, {"15": 1.0}],
}
# static (neutral-face) offsets are drawn from U[-R, R] with R = this x the clip's amplitude: wide
# enough that the +-amplitude/2 shift of apex vs. neutral leaves a single frame ambiguous
_STATIC_RANGE = 4.0


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


@dataclass(frozen=True)
class SynthParams:
    """Strengths derived from `difficulty` (0 easy .. 1 hard); all lengths in units of d_e."""

    amplitude: float  # peak displacement of the class AUs
    noise: float  # sensor noise std in grey levels
    drift: float  # head translation over a recording
    drift_deg: float  # head roll over a recording, degrees
    flicker: float  # illumination flicker amplitude (relative gain)
    blink_p: float  # probability of a blink in a recording
    static_range: float = _STATIC_RANGE  # neutral-face AU offsets ~ U[-R, R] x amplitude: how little one frame tells
    # apex position ~ U[lo, hi] of the onset..offset span: a fast onset and a slow return, as in many
    # real MEs; a mid-span apex cancels in the dynamic image of the span (docs/experiments/learnability.md)
    apex_range: tuple[float, float] = (0.1, 0.25)

    @classmethod
    def from_difficulty(cls, difficulty: float) -> SynthParams:
        d = float(difficulty)
        return cls(amplitude=_lerp(0.08, 0.03, d), noise=_lerp(1.0, 6.0, d), drift=_lerp(0.01, 0.05, d),
                   drift_deg=_lerp(0.2, 1.0, d), flicker=_lerp(0.005, 0.03, d), blink_p=_lerp(0.3, 0.8, d))


# ---------------------------------------------------------------------------------------------
# identities


@dataclass
class _Identity:
    """One subject: a grey source image and its tint, a frame->source map, and its AU basis."""

    source: np.ndarray  # (512, 512) float32 grey, appearance-adjusted and pre-blurred
    tint: np.ndarray  # (3,) float64 RGB gains of the skin tone / white balance
    map_xy: np.ndarray  # (S, S, 2) float32: source coords of each frame pixel at rest
    basis: np.ndarray  # (n_AU, S, S, 2) float32: displacement (frame px) per unit AU coefficient
    eyes: np.ndarray  # (2, 2) frame coords of the eyes at rest
    d_e: float  # inter-ocular distance in frame pixels
    offset: np.ndarray  # (n_AU,) subject-level AU offsets (part of identity)

    def __post_init__(self) -> None:
        # per-frame lookups: the rest map (replicated borders) and the source (reflected; the frame
        # never looks farther than the margin outside the 512 x 512 photograph)
        self.map_at = Sampler(self.map_xy, "replicate")
        self.source_at = Sampler(self.source, "reflect", margin=64)


def _similarity(src: tuple, dst: tuple) -> tuple[float, float, float, float]:
    """(a, b, tx, ty) of the similarity x' = a x - b y + tx, y' = b x + a y + ty taking the point
    pair src onto dst (Python floats)."""
    (sx0, sy0), (sx1, sy1) = src
    (dx0, dy0), (dx1, dy1) = dst
    ux, uy, vx, vy = sx1 - sx0, sy1 - sy0, dx1 - dx0, dy1 - dy0
    n = ux * ux + uy * uy
    a, b = (vx * ux + vy * uy) / n, (vy * ux - vx * uy) / n
    return a, b, dx0 - (a * sx0 - b * sy0), dy0 - (b * sx0 + a * sy0)


def _source_landmarks() -> dict[str, tuple[float, float]]:
    """The landmark template placed on the astronaut's eyes (where every pasted face's eyes go):
    astronaut pixel coordinates."""
    a, b, tx, ty = _similarity(((-0.5, 0.0), (0.5, 0.0)), _ASTRONAUT_EYES)
    return {k: (a * x - b * y + tx, b * x + a * y + ty) for k, (x, y) in _LANDMARKS.items()}


@functools.lru_cache(maxsize=1)
def _photographs() -> tuple[np.ndarray, np.ndarray]:
    """(astronaut grey (512, 512) float64, LFW faces (100, 25, 25) float64 grey levels) from
    scikit-image's bundled data (no network)."""
    try:
        from skimage import data
    except ImportError as e:
        raise DataError(f"synthetic benchmark: scikit-image is needed for its face images ({e})") from e
    rgb = data.astronaut().astype(np.int64)
    grey = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000  # integer luma
    faces = np.rint(data.lfw_subset()[:100] * 255.0)
    return grey.astype(np.float64), faces


def _paste_face(face: np.ndarray, astro: np.ndarray) -> np.ndarray:
    """(512, 512) float64: the astronaut with `face` (25 x 25 grey levels) over her face, its eyes
    on hers, brightness and contrast matched to hers inside the pasted ellipse, feathered edge."""
    a, b, tx, ty = _similarity(_ASTRONAUT_EYES, _LFW_EYES)  # astronaut -> face crop coordinates
    ys, xs = np.mgrid[40:210, 150:320].astype(np.float64)  # holds the pasted crop with margin
    fx, fy = a * xs - b * ys + tx, b * xs + a * ys + ty
    (cx, cy), (rx, ry) = _FACE_ELLIPSE
    ex, ey = (fx - cx) / rx, (fy - cy) / ry
    w = np.clip((1.0 - np.sqrt(ex * ex + ey * ey)) / _FEATHER, 0.0, 1.0)
    w = w * w * (3.0 - 2.0 * w)  # smoothstep
    k = cubic_weights(face.shape[0], _UPSAMPLE * face.shape[0])
    up = resample(face, k, k)
    patch = bilinear(up, _UPSAMPLE * fx + (_UPSAMPLE - 1) / 2, _UPSAMPLE * fy + (_UPSAMPLE - 1) / 2, "replicate")
    under = astro[40:210, 150:320]

    def moments(v: np.ndarray) -> tuple[float, float]:
        sw = math.fsum(w.ravel())
        mean = math.fsum((w * v).ravel()) / sw
        d = v - mean
        return mean, math.sqrt(math.fsum((w * d * d).ravel()) / sw)

    (mf, sf), (ma, sa) = moments(patch), moments(under)
    patch = (patch - mf) * (sa / max(sf, 1.0)) + ma
    out = astro.copy()
    out[40:210, 150:320] = under * (1.0 - w) + patch * w
    return out


def _smooth_field(rng: np.random.Generator, size: int, grid: int, std: float) -> np.ndarray:
    """(size, size, 2) float64 smooth random field: a grid x grid lattice of N(0, std) upsampled cubically."""
    ctrl = rng.normal(0.0, std, (grid, grid, 2))
    k = cubic_weights(grid, size)
    return resample(ctrl, k, k)


def _landmarks_in_frame(map_xy: np.ndarray) -> dict[str, tuple[float, float]]:
    """Invert the rest map at each landmark: the frame pixel whose source coordinate is nearest,
    refined to sub-pixel by one Newton step on the local Jacobian of the (smooth) map; snapped."""
    out: dict[str, tuple[float, float]] = {}
    size = map_xy.shape[0]
    mx, my = map_xy[..., 0], map_xy[..., 1]
    m = map_xy.astype(np.float64)
    for name, (px, py) in _source_landmarks().items():
        dx, dy = mx - np.float32(px), my - np.float32(py)
        y, x = divmod(int(np.argmin(dx * dx + dy * dy)), size)
        y, x = min(max(y, 1), size - 2), min(max(x, 1), size - 2)
        jxx, jyx = (m[y, x + 1] - m[y, x - 1]) / 2  # d(source)/d(frame x)
        jxy, jyy = (m[y + 1, x] - m[y - 1, x]) / 2  # d(source)/d(frame y)
        rx, ry = px - m[y, x, 0], py - m[y, x, 1]
        det = jxx * jyy - jxy * jyx
        sx, sy = (rx * jyy - jxy * ry) / det, (jxx * ry - rx * jyx) / det
        out[name] = (float(snap(x + sx)), float(snap(y + sy)))
    return out


def _au_basis(lm: dict[str, tuple[float, float]], size: int, d_e: float) -> np.ndarray:
    """(n_AU, S, S, 2) displacement fields in frame pixels for a unit coefficient of each AU; each
    bump a separable Gaussian (outer product of two snapped 1-D ones)."""
    grid = np.arange(size)
    mid_x = (lm["eye_l"][0] + lm["eye_r"][0]) / 2
    basis = np.zeros((len(_AU_NAMES), size, size, 2), np.float32)
    for a, name in enumerate(_AU_NAMES):
        for names, (out, up), sigma in _AUS[name]:
            for n in names:
                cx, cy = lm[n]
                side = (1.0 if cx > mid_x else -1.0) if abs(cx - mid_x) > 1e-3 else 0.0
                g = (gauss(grid, cy, sigma * d_e)[:, None] * gauss(grid, cx, sigma * d_e)[None, :]).astype(np.float32)
                basis[a, ..., 0] += g * np.float32(out * side * d_e)
                basis[a, ..., 1] += g * np.float32(-up * d_e)  # image y points down
    return basis


def _make_identity(rng: np.random.Generator, face: np.ndarray, size: int, params: SynthParams) -> _Identity:
    """A subject: `face` (one LFW crop) in the astronaut's head, seen by its own camera (module docstring)."""
    astro, _ = _photographs()
    src = _paste_face(face, astro)
    # --- appearance: tint (applied per frame), gamma (a lookup table on a 1/16 grey-level grid), side lighting
    tint = np.array([1.0, 0.86, 0.74]) * rng.uniform(0.9, 1.1, 3) * rng.uniform(0.85, 1.1)
    gamma = rng.uniform(0.8, 1.25)
    levels = np.arange(255 * 16 + 1) / (255.0 * 16)
    lut = 255.0 * snap(np.power(levels, gamma))
    src = lut[np.rint(np.clip(src, 0.0, 255.0) * 16).astype(np.intp)]
    h, w = src.shape
    ang = rng.uniform(0, 2 * np.pi)  # side lighting of this recording setup
    ca, sa = float(snap(math.cos(ang))), float(snap(math.sin(ang)))
    k = rng.uniform(0.05, 0.2)
    xx, yy = np.arange(w, dtype=np.float64)[None, :], np.arange(h, dtype=np.float64)[:, None]
    src = src * (1.0 + k * ((xx - _FACE_CENTRE[0]) * ca + (yy - _FACE_CENTRE[1]) * sa) / 90.0)
    # anti-alias for the ~150/size downscale the frame map performs
    sigma = 0.5 * _CROP_SIDE / size - 0.3
    if sigma > 0.2:
        src = blur(src, sigma)
    src = np.clip(src, 0.0, 255.0).astype(np.float32)

    # --- camera crop: frame pixel -> source pixel (similarity), optional mirror
    scale = _CROP_SIDE * rng.uniform(0.9, 1.1) / size
    roll = math.radians(rng.normal(0.0, 3.0))
    c, s = float(snap(math.cos(roll))), float(snap(math.sin(roll)))
    cx, cy = (v + rng.normal(0, 4) for v in _FACE_CENTRE)
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    u, v = (xs - size / 2) * mirror, ys - size / 2
    field = _smooth_field(rng, size, 5, 3.0)  # smooth random shape warp (face proportions), source pixels
    map_xy = np.stack([cx + scale * (c * u - s * v) + field[..., 0],
                       cy + scale * (s * u + c * v) + field[..., 1]], -1).astype(np.float32)

    lm = _landmarks_in_frame(map_xy)
    eyes = np.array([lm["eye_l"], lm["eye_r"]], np.float64)
    dx, dy = eyes[1] - eyes[0]
    d_e = math.sqrt(dx * dx + dy * dy)
    basis = _au_basis(lm, size, d_e)
    # subject-level AU offsets: resting brow height, mouth width, ... differ between people
    offset = rng.uniform(-1, 1, len(_AU_NAMES)) * 1.5 * params.amplitude
    return _Identity(source=src, tint=tint, map_xy=map_xy, basis=basis, eyes=eyes, d_e=d_e, offset=offset)


@functools.lru_cache(maxsize=1)
def _normal_quantiles() -> np.ndarray:
    """(65536,) float32 standard-normal quantiles at the midpoints (i + 1/2) / 65536: sensor noise is
    drawn as 16-bit random integers looked up here (|z| <= 4.3), snapped like every transcendental."""
    from statistics import NormalDist

    nd = NormalDist()
    return snap([nd.inv_cdf((i + 0.5) / 65536) for i in range(65536)]).astype(np.float32)


def _intensity(n: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """(n,) expression intensity per frame index: 0 outside onset..offset, cosine ramps up to 1 at
    the apex and back to 0 at the offset."""
    t = np.arange(n, dtype=np.float64)
    s = np.zeros(n)
    rise = (t >= onset) & (t <= apex)
    s[rise] = 0.5 * (1 - snap(np.cos(np.pi * (t[rise] - onset) / max(apex - onset, 1))))
    fall = (t > apex) & (t <= offset)
    s[fall] = 0.5 * (1 + snap(np.cos(np.pi * (t[fall] - apex) / max(offset - apex, 1))))
    return s


@dataclass(frozen=True)
class SynthClip:
    """One rendered recording and its annotation (frame indices relative to the recording)."""

    frames: np.ndarray  # (n, S, S, 3) uint8 RGB
    emotion: str
    action_units: str
    onset: int
    apex: int
    offset: int


def render_clip(identity: _Identity, rng: np.random.Generator, emotion: str, n_frames: int,
                params: SynthParams) -> SynthClip:
    """Render one recording of `n_frames` frames with an `emotion` micro-expression inside."""
    size = identity.map_xy.shape[0]
    d_e = identity.d_e
    # --- timing: the ME takes 50-80 % of the recording, apex 10-25 % into it by default
    length = int(rng.integers(int(0.5 * n_frames), int(0.8 * n_frames) + 1))
    onset = int(rng.integers(1, n_frames - length + 1))
    offset = onset + length - 1
    apex = onset + int(round(rng.uniform(*params.apex_range) * (length - 1)))
    s = _intensity(n_frames, onset, apex, offset)

    # --- AU coefficients over time: static offset + centred expression (module docstring); the
    # displacement of frame k is static_field + (s_k - 1/2) amp class_field, both summed in AU order
    alt = _CLASS_AUS[emotion][int(rng.integers(len(_CLASS_AUS[emotion])))]
    amp = params.amplitude * rng.uniform(0.75, 1.25)
    static = identity.offset + rng.uniform(-1, 1, len(_AU_NAMES)) * params.static_range * amp
    static_field = np.zeros(identity.basis.shape[1:], np.float32)
    class_field = np.zeros(identity.basis.shape[1:], np.float32)
    for a, name in enumerate(_AU_NAMES):
        static_field += np.float32(static[a]) * identity.basis[a]
        if alt.get(name, 0.0):
            class_field += np.float32(alt[name]) * identity.basis[a]

    # --- slow head drift: translation + roll about the face centre, ramp plus a slow wobble
    t = np.arange(n_frames) / (n_frames - 1)
    ramp = t if rng.random() < 0.5 else snap(np.sin(0.5 * np.pi * t))
    wob = 0.3 * snap(np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi)))
    prof = ramp + wob - (ramp + wob)[0]  # zero at the first frame
    gx, gy = rng.normal(0, 1, 2)
    norm = math.sqrt(gx * gx + gy * gy)
    reach = params.drift * d_e * rng.uniform(0.5, 1.0)
    shift = np.stack([prof * (gx / norm * reach), prof * (gy / norm * reach)], 1)  # (n, 2)
    rot = prof * (math.radians(params.drift_deg) * rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0))
    cos_r, sin_r = snap(np.cos(-rot)), snap(np.sin(-rot))
    cx, cy = (float(v) for v in (identity.eyes[0] + identity.eyes[1]) / 2)

    # --- blinks (never on the first frames around the onset: the face is aligned on the onset)
    blink = np.zeros(n_frames)
    if rng.random() < params.blink_p:
        dur = int(rng.integers(3, 7))
        choices = [b for b in range(0, n_frames - dur) if not (b - 1 <= onset <= b + dur)]
        if choices:
            b0 = int(rng.choice(choices))
            blink[b0:b0 + dur] = snap(np.sin(np.pi * (np.arange(dur) + 0.5) / dur))
    grid = np.arange(size)
    eye_mask = np.zeros((size, size))
    for ex, ey in identity.eyes:  # separable: exp(-(dx/0.28 d_e)^2 - (dy/0.13 d_e)^2)
        eye_mask += gauss(grid, ey, 0.13 * d_e / math.sqrt(2))[:, None] * gauss(grid, ex, 0.28 * d_e / math.sqrt(2))[None, :]
    eye_mask = np.clip(eye_mask, 0, 1).astype(np.float32)

    # --- illumination flicker: mains-like oscillation (period of a few frames at 200 fps) + jitter
    period = rng.uniform(3.0, 8.0)
    phase = rng.uniform(0, 2 * np.pi)
    gain = (1 + params.flicker * snap(np.sin(2 * np.pi * np.arange(n_frames) / period + phase))
            + 0.5 * params.flicker * rng.normal(0, 1, n_frames))
    colour = (identity.tint[None, :] * gain[:, None]).astype(np.float32)  # (n, 3)

    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    noise = np.float32(params.noise)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for k in range(n_frames):
        # backward map: frame pixel x shows source at rest_map(R^-1(x - shift) - d(x))
        c, sn = float(cos_r[k]), float(sin_r[k])
        u, v = xs - (cx + float(shift[k, 0])), ys - (cy + float(shift[k, 1]))
        disp = static_field + np.float32((s[k] - 0.5) * amp) * class_field  # (S, S, 2)
        qx = (cx + (c * u - sn * v)) - disp[..., 0]
        qy = (cy + (sn * u + c * v)) - disp[..., 1]
        src_x, src_y = identity.map_at(qx, qy)
        img = identity.source_at(src_x, src_y)
        if blink[k] > 0:  # closed lids: the eye region takes the surrounding skin tone
            lids = blur(img, 0.2 * d_e)
            wgt = np.float32(blink[k]) * eye_mask
            img = img * (1 - wgt) + lids * wgt
        rgb = img[..., None] * colour[k] + noise * _normal_quantiles()[rng.integers(0, 1 << 16, (size, size, 3), np.uint16)]
        frames[k] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    aus = "+".join(a for a in _AU_NAMES if alt.get(a, 0.0) > 0)
    return SynthClip(frames=frames, emotion=emotion, action_units=aus, onset=onset, apex=apex, offset=offset)


def write_synthetic(out_dir: str | Path, subjects: int = 8, clips_per_subject: int = 10, seed: int = 0,
                    difficulty: float = 0.5, size: int = 128, frames_per_clip: int = 40, jpeg_quality: int = 92,
                    progress: Callable[[int, int], None] | None = None, amplitude: float | None = None,
                    static_range: float | None = None, apex_range: tuple[float, float] | None = None,
                    layout: str = "casme2") -> Path:
    """Write the synthetic benchmark in the layout of dataset `layout` (casme2, samm or smic; see
    `LAYOUTS`) under `out_dir`; return `out_dir`. The CASME II layout is the default; every layout
    holds the same rendered frames.

    subjects x clips_per_subject clips; emotions cycle through the five CASME II classes per
    subject (with a per-subject rotation), so counts are balanced to within one per class.
    `size` is the side of the square source frames, `frames_per_clip` the length of each
    recording (the annotated onset..offset span is 50-80 % of it). `progress(done, total)` is
    called after each clip. `amplitude` and `static_range` replace the values `difficulty` implies
    (SynthParams): a smaller static range lets single frames tell more about the class.
    `apex_range` (lo, hi): where the apex falls in the onset..offset span, as fractions (default
    0.1-0.25: a fast onset and a slow return, as in many real MEs, which keeps the dynamic image of
    onset..offset frames from cancelling the expression; a mid-span apex such as 0.3-0.6 cancels).
    Deterministic in all arguments, and the same bytes on every CPU (module docstring).
    """
    if not 0.0 <= difficulty <= 1.0:
        raise DataError(f"synthetic benchmark: difficulty must be in [0, 1], got {difficulty}")
    if subjects < 1 or clips_per_subject < 1:
        raise DataError("synthetic benchmark: need at least one subject and one clip per subject")
    if frames_per_clip < 8 or size < 64:
        raise DataError(f"synthetic benchmark: need frames_per_clip >= 8 and size >= 64, got {frames_per_clip}, {size}")
    if layout not in LAYOUTS:
        raise DataError(f"synthetic benchmark: unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    writer = LAYOUTS[layout]()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = SynthParams.from_difficulty(difficulty)
    if amplitude is not None:
        if not 0.0 < amplitude <= 0.5:
            raise DataError(f"synthetic benchmark: amplitude must be in (0, 0.5] (units of the eye distance), got {amplitude}")
        params = dataclasses.replace(params, amplitude=float(amplitude))
    if static_range is not None:
        if not 0.0 <= static_range <= 10.0:
            raise DataError(f"synthetic benchmark: static_range must be in [0, 10], got {static_range}")
        params = dataclasses.replace(params, static_range=float(static_range))
    if apex_range is not None:
        lo, hi = (float(v) for v in apex_range)
        if not 0.0 <= lo <= hi <= 1.0:
            raise DataError(f"synthetic benchmark: apex_range must satisfy 0 <= lo <= hi <= 1, got {lo}, {hi}")
        params = dataclasses.replace(params, apex_range=(lo, hi))
    _, faces = _photographs()
    root_ss = np.random.SeedSequence(seed)
    subj_seeds = root_ss.spawn(subjects)
    # a different person per subject (the bank is reused only past its size), a different choice per draw
    order = np.random.default_rng(root_ss.spawn(1)[0]).permutation(len(FACE_BANK))
    face_of = [FACE_BANK[int(order[si % len(FACE_BANK)])] for si in range(subjects)]

    classes = writer.classes
    total, done = subjects * clips_per_subject, 0
    counts = {writer.word(c): 0 for c in classes}
    for si in range(subjects):
        sub_ss = subj_seeds[si]
        id_ss, *clip_seeds = sub_ss.spawn(1 + clips_per_subject)
        identity = _make_identity(np.random.default_rng(id_ss), faces[face_of[si]], size, params)
        order_rng = np.random.default_rng(sub_ss.spawn(1)[0])
        emotions = [classes[(si + j) % len(classes)] for j in range(clips_per_subject)]
        order_rng.shuffle(emotions)
        for j in range(clips_per_subject):
            rng = np.random.default_rng(clip_seeds[j])
            clip = render_clip(identity, rng, emotions[j], frames_per_clip, params)
            first = int(rng.integers(10, 400))  # absolute numbering never starts at 1, as in CASME II
            take = int(rng.integers(1, 10))  # drawn in every layout: same frames whatever the layout
            writer.clip(out, si + 1, j, first, take, clip, jpeg_quality)
            counts[writer.word(clip.emotion)] += 1
            done += 1
            if progress is not None:
                progress(done, total)
    writer.finish(out)
    # provenance only; readers ignore it
    (out / "synthetic.json").write_text(json.dumps({
        "generator": "fdp.data.synth.write_synthetic", "generator_version": SYNTH_VERSION, "layout": layout,
        "seed": seed, "subjects": subjects,
        "clips_per_subject": clips_per_subject, "difficulty": difficulty, "size": size,
        "frames_per_clip": frames_per_clip, "fps": FPS, "counts": counts, "lfw_subset_faces": face_of,
        "params": params.__dict__}, indent=2))
    return out



# ---------------------------------------------------------------------------------------------
# layouts: where the rendered clips go, in each dataset's distributed form (fdp.data.readers)


def _write_frames(folder: Path, names: list[str], frames: np.ndarray, jpeg_quality: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(names, frames):
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if name.endswith(".jpg") else []
        if not cv2.imwrite(str(folder / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params):
            raise DataError(f"{folder}: could not write frame {name}")


class _SheetLayout:
    """A layout with an annotation workbook: its file and sheet name, note rows above the header,
    the header, and the dataset's words for the generated deformations (`WORDS`; identity if empty).
    Subclasses write each clip's frames and its row (`clip`)."""

    classes = CLASSES
    FILE = ""
    SHEET = "Sheet1"
    NOTES: tuple[str | None, ...] = ()
    HEADER: list[str | None] = []
    WORDS: dict[str, str] = {}

    def __init__(self) -> None:
        from openpyxl import Workbook

        self.wb = Workbook()
        self.ws = self.wb.active
        self.ws.title = self.SHEET
        for note in self.NOTES:
            self.ws.append([note])
        self.ws.append(self.HEADER)

    def word(self, emotion: str) -> str:
        return self.WORDS[emotion] if self.WORDS else emotion

    def finish(self, out: Path) -> None:
        self.wb.save(out / self.FILE)


class _Casme2Layout(_SheetLayout):
    """`CASME2-coding-synthetic.xlsx` + `CASME2_RAW_selected/subXX/<Filename>/img<N>.jpg`."""

    FILE = ANNOTATION_NAME
    HEADER = HEADER

    def clip(self, out: Path, subject: int, j: int, first: int, take: int, clip: SynthClip, q: int) -> None:
        sub = f"{subject:02d}"
        filename = f"EP{j + 1:02d}_{take}{'fsfsf'[j % 5]}"
        _write_frames(out / FRAMES_DIR / f"sub{sub}" / filename,
                      [f"img{first + k}.jpg" for k in range(len(clip.frames))], clip.frames, q)
        self.ws.append([sub, filename, None, first + clip.onset, first + clip.apex, first + clip.offset, None,
                        clip.action_units, clip.emotion])



class _SammLayout(_SheetLayout):
    """`SAMM_Micro_FACS_Codes_v2.xlsx` (sheet MICRO_ONLY, notes above the header, subjects as bare
    integers) + `SAMM/<006>/<006_1_2>/006_<frame:05d>.jpg`; the five generated deformations carry
    the samm/5 words."""

    FILE = "SAMM_Micro_FACS_Codes_v2.xlsx"
    SHEET = "MICRO_ONLY"
    NOTES = ("SAMM micro-movement codes (synthetic stand-in written by fdp.data.synth)", None,
             "Rows below: one micro-expression each", None)
    HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
              "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
    WORDS = {"happiness": "Happiness", "disgust": "Anger", "repression": "Contempt", "surprise": "Surprise",
             "others": "Other"}

    def clip(self, out: Path, subject: int, j: int, first: int, take: int, clip: SynthClip, q: int) -> None:
        sub = f"{subject + 5:03d}"  # SAMM numbers its subjects from 006
        filename = f"{sub}_{take}_{j + 1}"
        _write_frames(out / "SAMM" / sub / filename,
                      [f"{sub}_{first + k:05d}.jpg" for k in range(len(clip.frames))], clip.frames, q)
        self.ws.append([int(sub), filename, take, first + clip.onset, first + clip.apex, first + clip.offset,
                        clip.offset - clip.onset + 1, "Micro", clip.action_units, self.word(clip.emotion), "", ""])



class _SmicLayout:
    """The cropped SMIC-HS release: `SMIC_all_cropped/HS/s<N>/micro/<class>/s<N>_<ne|po|sur>_<nn>/
    reg_image%06d.bmp`, subjects unpadded on disk (`s1`, as released); a clip is the annotated
    span (the release holds only onset..offset frames) and the class is its folder. Three classes
    from three of the generated deformations."""

    classes = ("disgust", "happiness", "surprise")
    SMIC_WORDS = {"disgust": "negative", "happiness": "positive", "surprise": "surprise"}
    SHORT = {"negative": "ne", "positive": "po", "surprise": "sur"}

    def __init__(self) -> None:
        self.n: dict[tuple[int, str], int] = {}

    def word(self, emotion: str) -> str:
        return self.SMIC_WORDS[emotion]

    def clip(self, out: Path, subject: int, j: int, first: int, take: int, clip: SynthClip, q: int) -> None:
        cls = self.word(clip.emotion)
        k = self.n[(subject, cls)] = self.n.get((subject, cls), 0) + 1
        name = f"s{subject}_{self.SHORT[cls]}_{k:02d}"
        span = clip.frames[clip.onset:clip.offset + 1]
        _write_frames(out / "SMIC_all_cropped" / "HS" / f"s{subject}" / "micro" / cls / name,
                      [f"reg_image{i + 1:06d}.bmp" for i in range(len(span))], span, q)

    def finish(self, out: Path) -> None:
        pass


class _MmewLayout(_SheetLayout):
    """`MMEW_Micro_Exp.xlsx` + `Micro_Expression/<emotion>/<Sxx-yy-zzz>/<k>.jpg` (frames from 1 in
    each clip folder, no subject folder; the seventh class's folder is `others`)."""

    FILE = "MMEW_Micro_Exp.xlsx"
    HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion", "Action Units",
              "remarks"]
    WORDS = {"happiness": "happiness", "disgust": "disgust", "repression": "others", "surprise": "surprise",
             "others": "fear"}

    def clip(self, out: Path, subject: int, j: int, first: int, take: int, clip: SynthClip, q: int) -> None:
        name = f"S{subject:02d}-{take:02d}-{j + 1:03d}"
        _write_frames(out / "Micro_Expression" / self.word(clip.emotion) / name,
                      [f"{k + 1}.jpg" for k in range(len(clip.frames))], clip.frames, q)
        self.ws.append([f"S{subject:02d}", name, clip.onset + 1, clip.apex + 1, clip.offset + 1,
                        self.word(clip.emotion), clip.action_units, ""])



class _FourdLayout(_SheetLayout):
    """`4DME_Labelling_Micro_release v1.xlsx` (sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs) +
    `gray_micro/<S1>/<fold_name>/<frame>.jpg` with absolute numbers; grey frames, as released."""

    FILE = "4DME_Labelling_Micro_release v1.xlsx"
    HEADER = ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"]
    WORDS = {"happiness": "Positive", "disgust": "Negative", "repression": "Repression", "surprise": "Surprise",
             "others": "Others"}

    def clip(self, out: Path, subject: int, j: int, first: int, take: int, clip: SynthClip, q: int) -> None:
        name = f"S{subject}_T{take}_{j + 1:02d}"
        grey = np.repeat(clip.frames.mean(axis=-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
        _write_frames(out / "gray_micro" / f"S{subject}" / name,
                      [f"{first + k}.jpg" for k in range(len(clip.frames))], grey, q)
        self.ws.append([f"S{subject}", name, self.word(clip.emotion), first + clip.onset, first + clip.apex,
                        first + clip.offset, clip.action_units])



# layout name (the reader that reads it) -> writer
LAYOUTS = {"casme2": _Casme2Layout, "samm": _SammLayout, "smic": _SmicLayout, "mmew": _MmewLayout,
           "fourd": _FourdLayout}
