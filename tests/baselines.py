"""Linear baselines of the synthetic benchmark (SPEC §4.4): what one frame, or the simplest
motion feature, tells a logistic regression under LOSO. Shared by the honesty check of
test_synth and the learning check of test_learning."""

from __future__ import annotations

import collections

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def loso_predictions(x: np.ndarray, y: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Predictions of a standardised, L2-regularised logistic regression, one fold per subject."""
    pred = np.empty_like(y)
    for s in np.unique(subjects):
        test = subjects == s
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        clf.fit(x[~test], y[~test])
        pred[test] = clf.predict(x[test])
    return pred


def frame_features(cache) -> dict[str, np.ndarray]:
    """Per clip, on the aligned 64 x 64 centre crop downsampled to 16 x 16 grey: the apex frame, a
    random frame, and apex minus onset (the simplest motion feature, given the key frames)."""
    def small(f):  # (3, 72, 72) uint8 -> (256,)
        g = f[:, 4:68, 4:68].astype(np.float32).mean(0)
        return cv2.resize(g, (16, 16), interpolation=cv2.INTER_AREA).ravel()

    rng = np.random.default_rng(0)
    out = collections.defaultdict(list)
    for i, c in enumerate(cache.clips):
        frames = cache.clip_frames(i)
        apex = small(frames[c["apex"] - c["onset"]])
        out["apex"].append(apex)
        out["random"].append(small(frames[rng.integers(len(frames))]))
        out["motion"].append(apex - small(frames[0]))
    return {k: np.asarray(v) for k, v in out.items()}
