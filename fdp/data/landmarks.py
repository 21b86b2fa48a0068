"""Face alignment from facial landmarks (dlib), the option beside the Haar cascades of
`fdp.data.align`, and the one place that picks between them (`estimate`).

The field aligns micro-expression clips on facial landmarks (the FDP authors' code: dlib's HOG
face detector and a shape predictor). This module runs the same detector with the 5-point shape
predictor that the `face-recognition-models` package ships: two corners of each eye and the base
of the nose. An eye centre is the midpoint of its two corners; the similarity transform and its
use are those of the Haar path (`fdp.data.align.similarity_from_points`, one transform per clip
from the onset frame).

Why the 5-point model: in the same package the 68-point predictor (the authors' choice) is
trained on the iBUG 300-W images, whose terms exclude commercial use, while the 5-point model
was trained on images annotated by dlib's author and released under CC0. Both come with the
optional extra `pip install 'fdp-sweep[landmarks]'`; the 68-point model can be chosen with
`model="68"` (bench/aligners.py measures both). Nothing is downloaded at run time.

Like the frontal Haar cascade, the HOG detector tolerates little roll, so detection is tried on
the frame counter-rotated by 0, +-15, +-30 degrees until a detection scores as a confident face
(else the best-scoring one over all rotations is taken: the most face-like, not the largest);
faces narrower than about 80 px are searched once more, upright, on the frame upsampled by 2. No face: `method` "frame", the central square (as in
`fdp.data.align`); a face: `method` "eyes".
"""

from __future__ import annotations

import functools
import importlib.util
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fdp.data import align as haar
from fdp.data.align import ALIGNED_SIZE, TARGET_EYES, Alignment, similarity_from_points
from fdp.data.samples import DataError

ALIGN_METHODS = ("haar", "landmarks")  # `prepare --align`
DEFAULT_METHOD = "haar"  # dependency-free; "landmarks" needs the extra below
EXTRA = "pip install 'fdp-sweep[landmarks]'"
MODELS = {"5": "shape_predictor_5_face_landmarks.dat", "68": "shape_predictor_68_face_landmarks.dat"}
DEFAULT_MODEL = "5"
_ANGLES = (0.0, 15.0, -15.0, 30.0, -30.0)  # counter-rotations tried, degrees
_CONFIDENT = 0.5  # a detection scoring this (dlib's SVM margin) ends the search over rotations
_MAX_SIDE = 1000  # frames are searched at most this large (a 1280 x 720 frame is shrunk first)


def _eyes_from_parts(parts: np.ndarray) -> np.ndarray:
    """(2, 2) eye centres (image-left first) from the predictor's points: (5, 2) -> midpoints of
    the corners (points 2, 3 and 0, 1); (68, 2) -> means of the eye contours 36-41 and 42-47."""
    if len(parts) == 5:
        return np.stack([parts[2:4].mean(0), parts[0:2].mean(0)])
    return np.stack([parts[36:42].mean(0), parts[42:48].mean(0)])


def _models_dir() -> Path:
    """The folder of `face_recognition_models`' .dat files, found without importing the package
    (its __init__ imports pkg_resources, which current setuptools no longer has)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"--align landmarks: the landmark model package face-recognition-models is not "
                        f"installed; {EXTRA}")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@functools.lru_cache(maxsize=None)
def _dlib(model: str) -> tuple[Any, Any, Any]:
    """(dlib module, HOG frontal face detector, shape predictor), loaded once per process."""
    try:
        import dlib
    except ImportError:
        raise DataError(f"--align landmarks needs dlib and its landmark model: {EXTRA}") from None
    if model not in MODELS:
        raise DataError(f"landmark model {model!r}: expected one of {', '.join(MODELS)}")
    path = _models_dir() / MODELS[model]
    if not path.is_file():
        raise DataError(f"{path}: landmark model missing (reinstall with {EXTRA})")
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


def check_available(method: str) -> None:
    """Raise the one-line DataError naming the extra when `method` cannot run here."""
    if method not in ALIGN_METHODS:
        raise DataError(f"align method {method!r}: expected one of {', '.join(ALIGN_METHODS)}")
    if method == "landmarks":
        _dlib(DEFAULT_MODEL)


def method_version(method: str) -> str:
    """What produced the alignment, with versions: 'opencv 4.x haar cascades' or
    'dlib 20.x hog + 5-point predictor (face-recognition-models 0.3.0)'."""
    if method == "haar":
        return f"opencv {cv2.__version__} haar cascades"
    check_available(method)
    return (f"dlib {metadata.version('dlib-bin') if _has_dist('dlib-bin') else metadata.version('dlib')} hog + "
            f"{DEFAULT_MODEL}-point predictor (face-recognition-models {metadata.version('face-recognition-models')})")


def _has_dist(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def eye_centres(frame: np.ndarray, model: str = DEFAULT_MODEL) -> tuple[np.ndarray, float] | None:
    """(eye centres (2, 2) in frame pixels, image-left first; the counter-rotation in degrees at
    which the face was found) of the largest face, or None when no face is found."""
    _, detector, predictor = _dlib(model)
    grey = haar.to_grey(frame)
    shrink = min(1.0, _MAX_SIDE / max(grey.shape))
    if shrink < 1.0:
        grey = cv2.resize(grey, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    h, w = grey.shape
    # upsample 1 finds faces down to ~40 px at four times the work: upright only (small faces in
    # ME recordings are rare; dlib's detector itself covers some roll)
    for upsample, angles in ((0, _ANGLES), (1, (0.0,))):
        best = None  # (score, angle, rotation, upright frame, box)
        for angle in angles:
            rot = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
            upright = grey if angle == 0 else cv2.warpAffine(grey, rot, (w, h), flags=cv2.INTER_LINEAR,
                                                             borderMode=cv2.BORDER_REPLICATE)
            boxes, scores, _ = detector.run(upright, upsample, 0.0)
            if len(boxes) == 0:
                continue
            # the most face-like detection, not the largest (a badge or a poster can be larger)
            k = int(np.argmax(scores))
            if best is None or scores[k] > best[0]:
                best = (float(scores[k]), angle, rot, upright, boxes[k])
            if best[0] >= _CONFIDENT:
                break
        if best is not None:
            _, angle, rot, upright, box = best
            shape = predictor(upright, box)
            parts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
            back = cv2.invertAffineTransform(rot)
            eyes = _eyes_from_parts(parts) @ back[:, :2].T + back[:, 2]
            return eyes / shrink, angle
    return None


def estimate_landmarks(frame: np.ndarray, size: int = ALIGNED_SIZE,
                       target_eyes: tuple[tuple[float, float], tuple[float, float]] = TARGET_EYES,
                       model: str = DEFAULT_MODEL) -> Alignment:
    """The alignment of one (onset) frame from dlib's landmarks: "eyes", else "frame"."""
    dst = np.asarray(target_eyes, np.float64) * (size / ALIGNED_SIZE)
    found = eye_centres(frame, model)
    if found is not None:
        eyes, angle = found
        return Alignment(similarity_from_points(eyes, dst), "eyes", eyes, angle)
    h, w = frame.shape[:2]
    side = min(h, w)
    s = size / side
    m = np.array([[s, 0.0, -s * (w - side) / 2], [0.0, s, -s * (h - side) / 2]], np.float64)
    return Alignment(m, "frame", None, 0.0)


def estimate(frame: np.ndarray, size: int = ALIGNED_SIZE, method: str = DEFAULT_METHOD) -> Alignment:
    """The alignment of a clip's onset frame by `method` ("haar" | "landmarks")."""
    if method == "haar":
        return haar.estimate_transform(frame, size)
    check_available(method)
    return estimate_landmarks(frame, size)
