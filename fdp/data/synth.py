"""The synthetic micro-expression benchmark (SPEC §4.4), written in the CASME II layout.

Licensed ME data cannot be downloaded, so `write_synthetic` writes a stand-in that the real
`casme2` reader, the real alignment and the real training path all run on:

    <out>/CASME2-coding-synthetic.xlsx                  # CASME II columns, blank ones included
    <out>/CASME2_RAW_selected/subXX/<Filename>/img<N>.jpg   # N absolute, not zero-padded

How a clip is made:

* **Identity** (per subject): the face of `skimage.data.astronaut()` seen through a per-subject
  camera crop (shift, scale, roll, mirror), a smooth random shape warp, per-subject AU-shaped
  shape offsets (wider mouth, higher brows, ...), skin tone / gamma / shading, and moles.
* **Expression** (per clip): a small, localised, AU-like displacement field (Gaussian bumps at
  facial landmarks: brows, lids, nose, lip corners, chin) whose intensity rises from the onset to
  the apex (10-25 % into the span by default) and falls back by the offset, inside a longer
  recording. Classes (CASME II 5-class): happiness AU6+12, disgust AU4+9+10, repression
  AU14+17+24, surprise AU1+2, others one of AU4 / AU7 / AU15.
* **Only the change carries the class.** Every clip starts from a randomly pre-deformed neutral
  face: a static offset on *all* AU fields, drawn uniformly over a range several times the
  expression amplitude, and the expression is centred on it (neutral = offset - amplitude/2 on the
  class AUs, apex = offset + amplitude/2). So the apex frame alone, or any single frame, is drawn
  from nearly the same distribution for every class, while apex minus onset is the class field.
* **Nuisances in every class**: sensor noise, slow head drift (translation + roll), blinks,
  illumination flicker (mains-like at 200 fps plus jitter), JPEG compression.

Everything is a deterministic function of `seed` (one `SeedSequence` child per subject and per
clip). `difficulty` in [0, 1] shrinks the expression and strengthens the nuisances.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fdp.data.samples import DataError

ANNOTATION_NAME = "CASME2-coding-synthetic.xlsx"
FRAMES_DIR = "CASME2_RAW_selected"
# the exact CASME II header row (SPEC §4.1): the two blank columns stay blank
HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
          "Estimated Emotion"]
CLASSES = ("happiness", "disgust", "repression", "surprise", "others")
FPS = 200.0  # CASME II recording rate; the reader takes it from the dataset, we only mirror it

# Landmarks of the astronaut's face in skimage.data.astronaut() pixel coordinates (x, y), read
# off the image once (pupils agree with OpenCV's eye cascade to 1 px). "_l" = image-left.
_LANDMARKS: dict[str, tuple[float, float]] = {
    "eye_l": (202.5, 101.5), "eye_r": (246.5, 103.0),
    "brow_in_l": (211.0, 91.0), "brow_out_l": (193.0, 91.0),
    "brow_in_r": (238.0, 92.0), "brow_out_r": (257.0, 93.0),
    "lid_up_l": (202.5, 97.0), "lid_up_r": (246.5, 98.5),
    "lid_low_l": (202.5, 107.0), "lid_low_r": (246.5, 108.5),
    "nose_root": (224.0, 104.0), "nose_l": (214.0, 126.0), "nose_r": (235.0, 126.0),
    "cheek_l": (192.0, 124.0), "cheek_r": (257.0, 125.0),
    "lip_up": (224.0, 139.0), "lip_low": (224.0, 152.0),
    "mouth_l": (203.0, 141.0), "mouth_r": (245.0, 141.0),
    "chin": (224.0, 172.0),
}
_FACE_CENTRE = (224.0, 125.0)  # astronaut coords; centre of the camera crop
_CROP_SIDE = 150.0  # astronaut pixels seen by a frame before the per-subject scale jitter

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
    # real MEs; a mid-span apex cancels in the dynamic image of the span (docs/learnability.md)
    apex_range: tuple[float, float] = (0.1, 0.25)

    @classmethod
    def from_difficulty(cls, difficulty: float) -> SynthParams:
        d = float(difficulty)
        return cls(amplitude=_lerp(0.08, 0.03, d), noise=_lerp(1.0, 6.0, d), drift=_lerp(0.01, 0.05, d),
                   drift_deg=_lerp(0.2, 1.0, d), flicker=_lerp(0.005, 0.03, d), blink_p=_lerp(0.3, 0.8, d))


@dataclass
class _Identity:
    """One subject: a source image, a frame->source map, and its AU displacement basis."""

    source: np.ndarray  # (512, 512, 3) float32 RGB, appearance-adjusted and pre-blurred
    map_xy: np.ndarray  # (S, S, 2) float32: source coords of each frame pixel at rest
    basis: np.ndarray  # (n_AU, S, S, 2) float32: displacement (frame px) per unit AU coefficient
    eyes: np.ndarray  # (2, 2) frame coords of the eyes at rest
    d_e: float  # inter-ocular distance in frame pixels
    offset: np.ndarray  # (n_AU,) subject-level AU offsets (part of identity)


def _smooth_field(rng: np.random.Generator, size: int, grid: int, std: float) -> np.ndarray:
    """(size, size, 2) smooth random field: a grid x grid lattice of N(0, std) upsampled cubically."""
    ctrl = rng.normal(0.0, std, (grid, grid, 2)).astype(np.float32)
    return cv2.resize(ctrl, (size, size), interpolation=cv2.INTER_CUBIC)


def _landmarks_in_frame(map_xy: np.ndarray) -> dict[str, np.ndarray]:
    """Invert the rest map at each landmark: the frame pixel whose source coordinate is nearest,
    refined to sub-pixel by one Newton step on the local Jacobian of the (smooth) map."""
    out: dict[str, np.ndarray] = {}
    size = map_xy.shape[0]
    for name, p in _LANDMARKS.items():
        d2 = ((map_xy - np.asarray(p, np.float32)) ** 2).sum(-1)
        y, x = np.unravel_index(int(np.argmin(d2)), d2.shape)
        y, x = min(max(y, 1), size - 2), min(max(x, 1), size - 2)
        jac = np.stack([(map_xy[y, x + 1] - map_xy[y, x - 1]) / 2, (map_xy[y + 1, x] - map_xy[y - 1, x]) / 2], 1)
        step = np.linalg.solve(jac, np.asarray(p, np.float32) - map_xy[y, x])
        out[name] = np.array([x, y], np.float32) + step
    return out


def _au_basis(lm: dict[str, np.ndarray], size: int, d_e: float) -> np.ndarray:
    """(n_AU, S, S, 2) displacement fields in frame pixels for a unit coefficient of each AU."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    mid_x = (lm["eye_l"][0] + lm["eye_r"][0]) / 2
    basis = np.zeros((len(_AU_NAMES), size, size, 2), np.float32)
    for a, name in enumerate(_AU_NAMES):
        for names, (out, up), sigma in _AUS[name]:
            for n in names:
                cx, cy = lm[n]
                side = np.sign(cx - mid_x) if abs(cx - mid_x) > 1e-3 else 0.0
                g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * (sigma * d_e) ** 2))
                basis[a, ..., 0] += g * out * side * d_e
                basis[a, ..., 1] += g * (-up) * d_e  # image y points down
    return basis


def _make_identity(rng: np.random.Generator, astronaut: np.ndarray, size: int, params: SynthParams) -> _Identity:
    """A distinct subject derived from the astronaut face (see module docstring)."""
    # --- appearance of the source image
    src = astronaut.astype(np.float32) / 255.0
    gains = rng.uniform(0.8, 1.15, 3).astype(np.float32)  # skin tone / white balance
    gamma = rng.uniform(0.8, 1.25)
    src = np.clip(src * gains, 0, 1) ** gamma
    h, w = src.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)  # side lighting of this recording setup
    shade = 1 + rng.uniform(0.05, 0.2) * ((xx - 224) * np.cos(ang) + (yy - 125) * np.sin(ang)) / 90.0
    src = src * shade[..., None]
    for _ in range(int(rng.integers(3, 9))):  # moles / freckles on the face
        cx, cy = rng.normal(_FACE_CENTRE[0], 22), rng.normal(_FACE_CENTRE[1], 25)
        r = rng.uniform(0.8, 2.0)
        spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r ** 2))[..., None]
        src = src * (1 - 0.45 * spot)
    # anti-alias for the ~150/size downscale the frame map performs
    sigma = max(0.0, 0.5 * _CROP_SIDE / size - 0.3)
    if sigma > 0:
        src = cv2.GaussianBlur(src, (0, 0), sigma)
    src = np.clip(src * 255.0, 0, 255).astype(np.float32)

    # --- camera crop: frame pixel -> source pixel (similarity), optional mirror
    scale = _CROP_SIDE * rng.uniform(0.9, 1.1) / size
    roll = np.deg2rad(rng.normal(0.0, 3.0))
    centre = np.asarray(_FACE_CENTRE, np.float32) + rng.normal(0, 4, 2).astype(np.float32)
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    u, v = (xs - size / 2) * mirror, ys - size / 2
    c, s = np.cos(roll), np.sin(roll)
    map_xy = np.stack([centre[0] + scale * (c * u - s * v), centre[1] + scale * (s * u + c * v)], -1)
    # smooth random shape warp (face proportions), in source pixels
    map_xy = (map_xy + _smooth_field(rng, size, 5, 3.0)).astype(np.float32)

    lm = _landmarks_in_frame(map_xy)
    eyes = np.stack([lm["eye_l"], lm["eye_r"]])
    d_e = float(np.linalg.norm(eyes[1] - eyes[0]))
    basis = _au_basis(lm, size, d_e)
    # subject-level AU offsets: resting brow height, mouth width, ... differ between people
    offset = rng.uniform(-1, 1, len(_AU_NAMES)).astype(np.float32) * 1.5 * params.amplitude
    return _Identity(source=src, map_xy=map_xy, basis=basis, eyes=eyes, d_e=d_e, offset=offset)


def _intensity(n: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """(n,) expression intensity per frame index: 0 outside onset..offset, cosine ramps up to 1 at
    the apex and back to 0 at the offset."""
    t = np.arange(n, dtype=np.float64)
    s = np.zeros(n)
    rise = (t >= onset) & (t <= apex)
    s[rise] = 0.5 * (1 - np.cos(np.pi * (t[rise] - onset) / max(apex - onset, 1)))
    fall = (t > apex) & (t <= offset)
    s[fall] = 0.5 * (1 + np.cos(np.pi * (t[fall] - apex) / max(offset - apex, 1)))
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

    # --- AU coefficients over time: static offset + centred expression (module docstring)
    alt = _CLASS_AUS[emotion][int(rng.integers(len(_CLASS_AUS[emotion])))]
    w_class = np.array([alt.get(a, 0.0) for a in _AU_NAMES], np.float32)
    amp = params.amplitude * rng.uniform(0.75, 1.25)
    static = identity.offset + rng.uniform(-1, 1, len(_AU_NAMES)).astype(np.float32) * params.static_range * amp
    coeffs = static[None, :] + ((s - 0.5) * amp)[:, None].astype(np.float32) * w_class[None, :]  # (n, n_AU)

    # --- slow head drift: translation + roll about the face centre, ramp plus a slow wobble
    t = np.linspace(0.0, 1.0, n_frames)
    ramp = t if rng.random() < 0.5 else np.sin(0.5 * np.pi * t)
    wob = 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi))
    prof = ramp + wob - (ramp + wob)[0]  # zero at the first frame
    direc = rng.normal(0, 1, 2)
    direc /= np.linalg.norm(direc)
    shift = prof[:, None] * direc[None, :] * params.drift * d_e * rng.uniform(0.5, 1.0)  # (n, 2)
    rot = np.deg2rad(prof * params.drift_deg * rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0))
    centre = identity.eyes.mean(0)

    # --- blinks (never on the first frames around the onset: the face is aligned on the onset)
    blink = np.zeros(n_frames)
    if rng.random() < params.blink_p:
        dur = int(rng.integers(3, 7))
        choices = [b for b in range(0, n_frames - dur) if not (b - 1 <= onset <= b + dur)]
        if choices:
            b0 = int(rng.choice(choices))
            blink[b0:b0 + dur] = np.sin(np.pi * (np.arange(dur) + 0.5) / dur)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    eye_mask = np.zeros((size, size), np.float32)
    for ex, ey in identity.eyes:
        eye_mask += np.exp(-(((xs - ex) / (0.28 * d_e)) ** 2 + ((ys - ey) / (0.13 * d_e)) ** 2))
    eye_mask = np.clip(eye_mask, 0, 1)[..., None]

    # --- illumination flicker: mains-like oscillation (period of a few frames at 200 fps) + jitter
    period = rng.uniform(3.0, 8.0)
    phase = rng.uniform(0, 2 * np.pi)
    gain = (1 + params.flicker * np.sin(2 * np.pi * np.arange(n_frames) / period + phase)
            + 0.5 * params.flicker * rng.normal(0, 1, n_frames))

    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for k in range(n_frames):
        # backward map: frame pixel x shows source at rest_map(R^-1(x - shift) - d(x))
        c, sn = np.cos(-rot[k]), np.sin(-rot[k])
        u, v = xs - centre[0] - shift[k, 0], ys - centre[1] - shift[k, 1]
        qx, qy = centre[0] + c * u - sn * v, centre[1] + sn * u + c * v
        disp = np.tensordot(coeffs[k], identity.basis, axes=1)  # (S, S, 2)
        qx, qy = (qx - disp[..., 0]).astype(np.float32), (qy - disp[..., 1]).astype(np.float32)
        src_xy = cv2.remap(identity.map_xy, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        img = cv2.remap(identity.source, src_xy[..., 0], src_xy[..., 1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT)
        if blink[k] > 0:  # closed lids: the eye region takes the surrounding skin tone
            lids = cv2.GaussianBlur(img, (0, 0), 0.2 * d_e)
            wgt = blink[k] * eye_mask
            img = img * (1 - wgt) + lids * wgt
        img = img * gain[k] + rng.normal(0, params.noise, img.shape).astype(np.float32)
        frames[k] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    aus = "+".join(a for a in _AU_NAMES if alt.get(a, 0.0) > 0)
    return SynthClip(frames=frames, emotion=emotion, action_units=aus, onset=onset, apex=apex, offset=offset)


def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as e:  # scikit-image ships the seed photograph; no network needed
        raise DataError(f"synthetic benchmark: scikit-image is needed for its face image ({e})") from e
    return data.astronaut()


def write_synthetic(out_dir: str | Path, subjects: int = 8, clips_per_subject: int = 10, seed: int = 0,
                    difficulty: float = 0.5, size: int = 128, frames_per_clip: int = 40, jpeg_quality: int = 92,
                    progress: Callable[[int, int], None] | None = None, amplitude: float | None = None,
                    static_range: float | None = None, apex_range: tuple[float, float] | None = None,
                    layout: str = "casme2") -> Path:
    """Write the synthetic benchmark in the layout of dataset `layout` (casme2, samm or smic; see
    `LAYOUTS`) under `out_dir`; return `out_dir`. The CASME II layout is the default and its output
    is byte-identical to what this function wrote before the other layouts existed.

    subjects x clips_per_subject clips; emotions cycle through the five CASME II classes per
    subject (with a per-subject rotation), so counts are balanced to within one per class.
    `size` is the side of the square source frames, `frames_per_clip` the length of each
    recording (the annotated onset..offset span is 50-80 % of it). `progress(done, total)` is
    called after each clip. `amplitude` and `static_range` replace the values `difficulty` implies
    (SynthParams): a smaller static range lets single frames tell more about the class.
    `apex_range` (lo, hi): where the apex falls in the onset..offset span, as fractions (default
    0.1-0.25: a fast onset and a slow return, as in many real MEs, which keeps the dynamic image of
    onset..offset frames from cancelling the expression; a mid-span apex such as 0.3-0.6 cancels).
    Deterministic in all arguments.
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
    astronaut = _astronaut()
    root_ss = np.random.SeedSequence(seed)
    subj_seeds = root_ss.spawn(subjects)

    classes = writer.classes
    total, done = subjects * clips_per_subject, 0
    counts = {writer.word(c): 0 for c in classes}
    for si in range(subjects):
        sub_ss = subj_seeds[si]
        id_ss, *clip_seeds = sub_ss.spawn(1 + clips_per_subject)
        identity = _make_identity(np.random.default_rng(id_ss), astronaut, size, params)
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
        "generator": "fdp.data.synth.write_synthetic", "layout": layout, "seed": seed, "subjects": subjects,
        "clips_per_subject": clips_per_subject, "difficulty": difficulty, "size": size,
        "frames_per_clip": frames_per_clip, "fps": FPS, "counts": counts,
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
