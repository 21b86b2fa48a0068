"""Linear read-outs of a synthetic draw (SPEC §4.4, the benchmark's honesty checks): the logistic
regression of the `single_frame` method (fdp.methods.single_frame) on the annotated apex frame, a
random frame, and apex minus onset (the simplest motion feature, given the key frames), each under
LOSO. A benchmark fit for the demo keeps the single-frame read-outs near chance and the motion one
above it (used by tests/test_synth.py, tests/test_learning.py, tests/test_demo.py and
bench/demo_benchmark.py)."""

from __future__ import annotations

import collections

import numpy as np

from fdp.methods.single_frame import classifier, small


def loso_predictions(x: np.ndarray, y: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Predictions of the standardised, L2-regularised logistic regression, one fold per subject."""
    pred = np.empty_like(y)
    for s in np.unique(subjects):
        test = subjects == s
        clf = classifier()
        clf.fit(x[~test], y[~test])
        pred[test] = clf.predict(x[test])
    return pred


def frame_features(cache) -> dict[str, np.ndarray]:
    """Per clip of a cache: the apex frame, a random frame, and apex minus onset (the simplest motion
    feature, given the key frames), each as `small` vectors."""
    rng = np.random.default_rng(0)
    out = collections.defaultdict(list)
    for i, c in enumerate(cache.clips):
        frames = cache.clip_frames(i)
        apex = small(frames[c["apex"] - c["onset"]])
        out["apex"].append(apex)
        out["random"].append(small(frames[rng.integers(len(frames))]))
        out["motion"].append(apex - small(frames[0]))
    return {k: np.asarray(v) for k, v in out.items()}


def draw_readouts(cache, crop: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """LOSO predictions of the linear read-outs of a prepared (synthetic) draw, each on the
    `crop` x `crop` centre: the annotated apex frame, a random frame (seeded), and apex - onset (a
    motion feature given the key frames). Returns ({read-out: predictions}, labels, class names):
    a benchmark fit for the demo keeps the single-frame read-outs near chance."""
    classes = sorted({c["emotion"] for c in cache.clips})
    y = np.array([classes.index(c["emotion"]) for c in cache.clips])
    subjects = np.array([c["subject"] for c in cache.clips])
    rng = np.random.default_rng(seed)
    feats: dict[str, list] = {"apex": [], "random": [], "apex-onset": []}
    for i, c in enumerate(cache.clips):
        frames = cache.clip_frames(i)
        apex = small(frames[c["apex"] - c["onset"]], crop)
        feats["apex"].append(apex)
        feats["random"].append(small(frames[rng.integers(len(frames))], crop))
        feats["apex-onset"].append(apex - small(frames[0], crop))
    return {k: loso_predictions(np.asarray(v), y, subjects) for k, v in feats.items()}, y, classes
