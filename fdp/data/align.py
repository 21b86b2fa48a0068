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
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

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
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    raise DataError(f"align: expected an (H, W, 3) or (H, W) image, got shape {frame.shape}")


def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) similarity (rotation, uniform scale, translation) mapping src[0]->dst[0], src[1]->dst[1]."""
    s = src[:, 0] + 1j * src[:, 1]
    d = dst[:, 0] + 1j * dst[:, 1]
    a = (d[1] - d[0]) / (s[1] - s[0])  # complex scale-rotation
    b = d[0] - a * s[0]
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)


def _rotation(shape: tuple[int, int], angle: float) -> np.ndarray:
    """(2, 3) rotation by `angle` degrees about the image centre (cv2 convention)."""
    h, w = shape
    return cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m)


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
    core = cv2.GaussianBlur(roi[y0:y1, x0:x1].astype(np.float32), (0, 0), max(1.0, w / 25))
    thr = np.percentile(core, 12)
    wgt = np.clip(thr - core, 0, None) + 1e-6 * (core <= thr)
    ys, xs = np.mgrid[0:core.shape[0], 0:core.shape[1]]
    return np.array([x0 + (wgt * xs).sum() / wgt.sum(), y0 + (wgt * ys).sum() / wgt.sum()])


def _eye_pair(grey: np.ndarray, face: np.ndarray) -> np.ndarray | None:
    """(2, 2) eye centres (image-left first) inside `face` of an upright grey frame, or None."""
    x, y, w, h = face
    scale = _EYE_ROI_WIDTH / w
    x0, y0 = int(round(x)), int(round(y))
    roi = grey[y0:y0 + int(round(0.62 * h)), x0:x0 + int(round(w))]  # eyes live in the upper part
    if roi.size == 0:
        return None
    roi = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    roi = cv2.equalizeHist(roi)
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
        centres.append(c / scale + (x0, y0))
    return np.stack(centres)


def estimate_transform(frame: np.ndarray, size: int = ALIGNED_SIZE,
                       target_eyes: tuple[tuple[float, float], tuple[float, float]] = TARGET_EYES) -> Alignment:
    """The alignment of one frame (the onset frame of a clip): see the module docstring."""
    grey = cv2.equalizeHist(to_grey(frame))
    dst = np.asarray(target_eyes, np.float64) * (size / ALIGNED_SIZE)
    face_hit: tuple[np.ndarray, float] | None = None
    for angle in _ANGLES:
        rot = _rotation(grey.shape, angle)
        upright = grey if angle == 0 else cv2.warpAffine(grey, rot, grey.shape[::-1], flags=cv2.INTER_LINEAR,
                                                         borderMode=cv2.BORDER_REPLICATE)
        face = _largest_face(upright)
        if face is None:
            continue
        back = _invert(rot)
        eyes = _eye_pair(upright, face)
        if eyes is not None:
            src = _apply(back, eyes)
            return Alignment(similarity_from_points(src, dst), "eyes", src, angle)
        if face_hit is None:
            x, y, w, h = face
            guess = np.array([[x + fx * w, y + fy * h] for fx, fy in FACE_BOX_EYES])
            face_hit = (_apply(back, guess), angle)
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
    m = alignment.matrix
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    # A bilinear warp that shrinks by more than ~2x aliases (a 250 px face -> 72 px): shrink with
    # area averaging first so that the warp itself only scales by ~2/3.
    pre = 1.5 * scale if scale < 0.5 else 1.0
    if pre != 1.0:
        m = m @ np.diag([1.0 / pre, 1.0 / pre, 1.0])
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for k, f in enumerate(frames):
        if f.ndim == 2:
            f = cv2.cvtColor(f, cv2.COLOR_GRAY2RGB)
        if pre != 1.0:
            f = cv2.resize(f, None, fx=pre, fy=pre, interpolation=cv2.INTER_AREA)
        out[k] = cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
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
