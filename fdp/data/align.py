"""Face alignment of a clip (SPEC §4.3): one similarity transform per clip, from the onset frame.

Face and eyes are found with the Haar cascades bundled in opencv-python(-headless) 4.x
(`cv2.data.haarcascades`; they are gone in OpenCV 5). The transform puts the two eye centres level
at fixed positions of a `size` x `size` crop (`target_eyes`) and is applied unchanged to every
frame of the clip: per-frame alignment would add jitter of the same order as a micro-expression.

The frontal cascades tolerate little roll, so detection is tried on the frame counter-rotated by
0, +-10, +-20, +-30 degrees and the first rotation that yields a face with a plausible eye pair
wins. When that fails the transform degrades, and says so in `Alignment.method`:

* "eyes"  — face and both eyes found (the normal case);
* "face"  — a face but no eye pair: eyes assumed at their average place in the cascade's face box
            (level in the rotation the face was found at);
* "frame" — no face at all: the central square of the frame, resized (pre-cropped data).

**The same cache on every CPU.** Everything but the cascades' own search is computed with
`fdp.data.exact` (integer grey conversion and histogram equalisation, float64 warps and blurs
written with elementwise operations, no OpenCV float kernels, no BLAS): the same frame gives the
same bytes whatever the instruction set. The eye centres are snapped to 1/32 px and the
similarity is computed from them in plain float64, so a last-bit difference before that point
cannot reach the stored frames. What remains possible is a detection decision that flips: OpenCV's
cascade evaluation sums feature responses in floating point, and a window scoring within rounding
of a stage threshold on one CPU and not on another changes the boxes found (and then the
transform, or the method). Nothing of the kind has been seen on the synthetic benchmark across the
emulated instruction sets of bench/fingerprints.py.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from fdp.data import exact
from fdp.data.samples import DataError

ALIGNED_SIZE = 72  # side of the aligned crop (SPEC §2: aligned 72 x 72, random 64 crop)
# eye centres in a 72 x 72 crop: inter-ocular distance 28 px leaves brows to chin inside the
# 64 x 64 training crops (mouth ~ y 57)
TARGET_EYES = ((22.0, 26.0), (50.0, 26.0))
# where the eye centres sit in a frontal-face cascade box (fractions of its side); measured on
# skimage's astronaut (box 95 px, eyes at 0.27/0.73 x, 0.38 y)
FACE_BOX_EYES = ((0.27, 0.38), (0.73, 0.38))
_ANGLES = (0.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0)  # counter-rotations tried, degrees
_EYE_ROI_WIDTH = 160  # the face box is rescaled to this width before the eye cascade runs
_EYE_GRID = 32.0  # eye centres are snapped to 1 / _EYE_GRID px before the transform is computed


@dataclass(frozen=True)
class Alignment:
    """The transform of one clip and how it was obtained."""

    matrix: np.ndarray  # (2, 3) float64, source frame pixel -> aligned crop pixel
    method: str  # "eyes" | "face" | "frame" (see module docstring)
    eyes: np.ndarray | None  # (2, 2) eye centres in the source frame (image-left first), if any
    angle: float  # counter-rotation (degrees) at which the face was found; 0 for "frame"


@functools.lru_cache(maxsize=None)
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    clf = cv2.CascadeClassifier(path)
    if clf.empty():
        raise DataError(f"{path}: cannot load OpenCV Haar cascade (opencv-python 4.x needed)")
    return clf


def to_grey(frame: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) or grey (H, W) uint8 -> grey uint8."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return exact.grey(frame)
    raise DataError(f"align: expected an (H, W, 3) or (H, W) image, got shape {frame.shape}")


def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) similarity (rotation, uniform scale, translation) mapping src[0]->dst[0], src[1]->dst[1]
    (z -> a z + b in complex terms, written out in float64 scalars)."""
    (sx0, sy0), (sx1, sy1) = ((float(v) for v in p) for p in src)
    (dx0, dy0), (dx1, dy1) = ((float(v) for v in p) for p in dst)
    ux, uy, vx, vy = sx1 - sx0, sy1 - sy0, dx1 - dx0, dy1 - dy0
    n = ux * ux + uy * uy
    a, b = (vx * ux + vy * uy) / n, (vy * ux - vx * uy) / n
    return np.array([[a, -b, dx0 - (a * sx0 - b * sy0)], [b, a, dy0 - (b * sx0 + a * sy0)]], np.float64)


def _rotation(shape: tuple[int, int], angle: float) -> np.ndarray:
    """(2, 3) rotation by `angle` degrees about the image centre (cv2.getRotationMatrix2D's
    convention), cosine and sine snapped."""
    h, w = shape
    cx, cy = w / 2.0, h / 2.0
    c, s = (float(exact.snap(f(math.radians(angle)))) for f in (math.cos, math.sin))
    return np.array([[c, s, (1.0 - c) * cx - s * cy], [-s, c, s * cx + (1.0 - c) * cy]], np.float64)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points through the (2, 3) map, sums written out (no BLAS)."""
    x, y = pts[:, 0], pts[:, 1]
    return np.stack([(m[0, 0] * x + m[0, 1] * y) + m[0, 2], (m[1, 0] * x + m[1, 1] * y) + m[1, 2]], 1)


def _invert(m: np.ndarray) -> np.ndarray:
    a, b, c, d, e, f = exact.invert_affine(m)
    return np.array([[a, b, c], [d, e, f]], np.float64)


def _snap_eyes(pts: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(pts, np.float64) * _EYE_GRID) / _EYE_GRID


def _largest_face(grey: np.ndarray) -> np.ndarray | None:
    """(x, y, w, h) of the largest frontal face, or None."""
    side = min(grey.shape)
    min_size = max(24, int(0.2 * side))
    for name, neighbours in (("haarcascade_frontalface_default.xml", 5), ("haarcascade_frontalface_alt2.xml", 3)):
        faces = _cascade(name).detectMultiScale(grey, scaleFactor=1.05, minNeighbors=neighbours,
                                                minSize=(min_size, min_size))
        if len(faces):
            return np.asarray(max(faces, key=lambda f: f[2] * f[3]), np.float64)
    return None


def _pupil(roi: np.ndarray) -> np.ndarray:
    """Sub-box refinement of an eye centre: centroid of the darkest pixels (iris/pupil) of the
    central part of a cascade eye box, which is more precise than the box centre."""
    h, w = roi.shape
    y0, y1, x0, x1 = int(0.25 * h), int(0.8 * h), int(0.15 * w), int(0.85 * w)
    core = exact.blur(roi[y0:y1, x0:x1].astype(np.float64), max(1.0, w / 25))
    thr = np.percentile(core, 12)
    wgt = np.clip(thr - core, 0, None) + 1e-6 * (core <= thr)
    ys, xs = np.mgrid[0:core.shape[0], 0:core.shape[1]]
    total = math.fsum(wgt.ravel())  # exactly rounded sums: no order to depend on
    return np.array([x0 + math.fsum((wgt * xs).ravel()) / total, y0 + math.fsum((wgt * ys).ravel()) / total])


def _eye_pair(grey: np.ndarray, face: np.ndarray) -> np.ndarray | None:
    """(2, 2) eye centres (image-left first) inside `face` of an upright grey frame, or None."""
    x, y, w, h = face
    scale = _EYE_ROI_WIDTH / w
    x0, y0 = int(round(x)), int(round(y))
    roi = grey[y0:y0 + int(round(0.62 * h)), x0:x0 + int(round(w))]  # eyes live in the upper part
    if roi.size == 0:
        return None
    # cv2.resize's geometry (pixel centres aligned: dst = scale * (src + 1/2) - 1/2), exact arithmetic
    off = 0.5 * scale - 0.5
    roi = exact.warp_affine(roi, np.array([[scale, 0.0, off], [0.0, scale, off]]),
                            (int(round(roi.shape[1] * scale)), int(round(roi.shape[0] * scale))))
    roi = exact.equalize_hist(roi)
    fw = _EYE_ROI_WIDTH
    boxes = _cascade("haarcascade_eye.xml").detectMultiScale(
        roi, scaleFactor=1.05, minNeighbors=3, minSize=(int(0.12 * fw), int(0.12 * fw)),
        maxSize=(int(0.4 * fw), int(0.4 * fw)))
    best, best_score = None, np.inf
    for i in range(len(boxes)):
        for j in range(len(boxes)):
            (ax, ay, aw, ah), (bx, by, bw, bh) = boxes[i], boxes[j]
            ca = np.array([ax + aw / 2, ay + ah / 2])
            cb = np.array([bx + bw / 2, by + bh / 2])
            # a left eye in the left half and a right eye in the right half, about level
            if not (ca[0] < 0.5 * fw < cb[0]):
                continue
            dist = cb[0] - ca[0]
            if abs(cb[1] - ca[1]) > 0.15 * fw or not 0.3 * fw < dist < 0.65 * fw:
                continue
            score = (abs(dist - 0.46 * fw) / fw + abs(aw - bw) / fw + abs(cb[1] - ca[1]) / fw
                     + abs((ca[1] + cb[1]) / 2 - 0.38 * fw) / fw)
            if score < best_score:
                best, best_score = (boxes[i], boxes[j]), score
    if best is None:
        return None
    centres = []
    for bx, by, bw, bh in best:
        c = _pupil(roi[by:by + bh, bx:bx + bw]) + (bx, by)
        centres.append((c + 0.5) / scale - 0.5 + (x0, y0))
    return np.stack(centres)


def estimate_transform(frame: np.ndarray, size: int = ALIGNED_SIZE,
                       target_eyes: tuple[tuple[float, float], tuple[float, float]] = TARGET_EYES) -> Alignment:
    """The alignment of one frame (the onset frame of a clip): see the module docstring."""
    grey = exact.equalize_hist(to_grey(frame))
    dst = np.asarray(target_eyes, np.float64) * (size / ALIGNED_SIZE)
    face_hit: tuple[np.ndarray, float] | None = None
    for angle in _ANGLES:
        rot = _rotation(grey.shape, angle)
        upright = grey if angle == 0 else exact.warp_affine(grey, rot, grey.shape[::-1])
        face = _largest_face(upright)
        if face is None:
            continue
        back = _invert(rot)
        eyes = _eye_pair(upright, face)
        if eyes is not None:
            src = _snap_eyes(_apply(back, eyes))
            return Alignment(similarity_from_points(src, dst), "eyes", src, angle)
        if face_hit is None:
            x, y, w, h = face
            guess = np.array([[x + fx * w, y + fy * h] for fx, fy in FACE_BOX_EYES])
            face_hit = (_snap_eyes(_apply(back, guess)), angle)
    if face_hit is not None:
        src, angle = face_hit
        return Alignment(similarity_from_points(src, dst), "face", src, angle)
    # no face: the central square, resized (e.g. data that is already cropped to the face)
    h, w = grey.shape
    side = min(h, w)
    s = size / side
    m = np.array([[s, 0.0, -s * (w - side) / 2], [0.0, s, -s * (h - side) / 2]], np.float64)
    return Alignment(m, "frame", None, 0.0)


def apply_transform(frames: list[np.ndarray] | np.ndarray, alignment: Alignment,
                    size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp every frame with the one transform -> (T, size, size, 3) uint8 (grey frames become 3-channel)."""
    m = np.asarray(alignment.matrix, np.float64)
    scale = math.sqrt(abs(float(m[0, 0]) * float(m[1, 1]) - float(m[0, 1]) * float(m[1, 0])))
    # A bilinear warp that shrinks by more than ~2x aliases (a 250 px face -> 72 px): average k x k
    # blocks first (exact, integer sums), k chosen so that the warp itself scales by 0.5-1.
    k = max(1, round(0.75 / scale))
    if k > 1:  # block (i, j) is centred on source pixel (k j + (k - 1) / 2, k i + (k - 1) / 2)
        half = (k - 1) / 2.0
        m = np.concatenate([m[:, :2] * k, ((m[:, 0] * half + m[:, 1] * half) + m[:, 2])[:, None]], 1)
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, f in enumerate(frames):
        if f.ndim == 2:
            f = np.repeat(f[..., None], 3, axis=-1)
        out[i] = exact.warp_affine(exact.block_mean(f, k) if k > 1 else f, m, (size, size))
    return out


def align_clip(frames: list[np.ndarray] | np.ndarray, size: int = ALIGNED_SIZE,
               alignment: Alignment | None = None) -> np.ndarray:
    """Align a clip (frames onset..offset, RGB or grey uint8): one transform estimated on the first
    (onset) frame unless given, applied to all -> (T, size, size, 3) uint8."""
    if len(frames) == 0:
        raise DataError("align: empty clip")
    if alignment is None:
        alignment = estimate_transform(frames[0], size)
    return apply_transform(frames, alignment, size)


def resize_clip(frames: list[np.ndarray] | np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """No alignment (`--no-align`, pre-cropped data): the central square of each frame, resized."""
    if len(frames) == 0:
        raise DataError("align: empty clip")
    h, w = frames[0].shape[:2]
    side = min(h, w)
    s = size / side
    m = np.array([[s, 0.0, -s * (w - side) / 2], [0.0, s, -s * (h - side) / 2]], np.float64)
    return apply_transform(frames, Alignment(m, "frame", None, 0.0), size)
