"""What "no motion" gets (SPEC §4.4): a logistic regression on ONE frame of each clip, under the
same folds as FDP. On the synthetic benchmark only the change between frames tells the class, so
this baseline must sit near chance; a sweep runs it as a row (variant `single_frame`,
`model.baseline=single_frame`) beside the model it is the control for.

Features: the annotated apex frame (the frame that shows the most of the expression; the middle
frame of the span when the apex is unknown), centre crop of side `data.crop`, grey, area-resized
to 16 x 16, standardised on the training clips; L2-regularised logistic regression (C = 0.1,
fixed, nothing selected). Also the random-frame and apex - onset features of the benchmark's
honesty checks (`frame_features`, used by tests/test_synth.py and tests/test_learning.py).
"""

from __future__ import annotations

import collections
import resource
import time

import cv2
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURE_SIDE = 16  # frames are area-resized to 16 x 16 grey before the regression
C_REG = 0.1  # inverse L2 strength of the regression, fixed (not tuned on anything)


def small(frame: np.ndarray, crop: int | None = None) -> np.ndarray:
    """(3, S, S) uint8 aligned frame -> (256,) float32: centre crop (default: S - 8, the 64 of a 72
    cache), grey, 16 x 16."""
    s = frame.shape[-1]
    crop = crop or s - 8
    m = (s - crop) // 2
    g = frame[:, m:m + crop, m:m + crop].astype(np.float32).mean(0)
    return cv2.resize(g, (FEATURE_SIDE, FEATURE_SIDE), interpolation=cv2.INTER_AREA).ravel()


def classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(C=C_REG, max_iter=2000))


def loso_predictions(x: np.ndarray, y: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Predictions of the standardised, L2-regularised logistic regression, one fold per subject."""
    pred = np.empty_like(y)
    for s in np.unique(subjects):
        test = subjects == s
        clf = classifier()
        clf.fit(x[~test], y[~test])
        pred[test] = clf.predict(x[test])
    return pred


def apex_offset(clip: dict) -> int:
    """Position of the apex within a cached clip (which starts at the onset); mid-span if unknown."""
    apex = clip.get("apex")
    if isinstance(apex, (int, np.integer)) and clip["onset"] <= apex < clip["onset"] + clip["length"]:
        return int(apex - clip["onset"])
    return int(clip["length"]) // 2


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
    a benchmark fit for the demo keeps the single-frame read-outs near chance (issue #14)."""
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


def bank_apex_features(bank, cache, positions: np.ndarray, crop: int) -> np.ndarray:
    """(n, 256) apex-frame features of bank positions `positions` (`cache` is the bank's cache)."""
    rows = []
    for k in positions:
        clip = cache.clips[int(bank.clip_indices[k])]
        frame = bank.frames[int(bank.start[k]) + apex_offset(clip)].cpu().numpy()
        rows.append(small(frame, crop))
    return np.asarray(rows, dtype=np.float32)


def single_frame_fold(cfg, split, bank, cache, train_labels: torch.Tensor, test_bank=None, test_cache=None):
    """Fit the apex-frame regression on `split.train` (labels `train_labels`: the bank's, or the
    shuffled control's) and predict `split.test` once; a `fdp.train.FoldResult` like a network's."""
    from fdp.metrics import pooled_metrics
    from fdp.train import FoldResult

    test_bank = test_bank if test_bank is not None else bank
    test_cache = test_cache if test_cache is not None else cache
    t0 = time.perf_counter()
    x_tr = bank_apex_features(bank, cache, split.train, cfg.data.crop)
    y_tr = train_labels[torch.as_tensor(split.train)].cpu().numpy()
    x_te = bank_apex_features(test_bank, test_cache, split.test, cfg.data.crop)
    labels = test_bank.labels[torch.as_tensor(split.test)].cpu().numpy()
    m = cfg.model.num_classes
    clf = classifier().fit(x_tr, y_tr)
    probs = np.zeros((len(split.test), m))
    probs[:, clf.classes_] = clf.predict_proba(x_te)  # classes absent from training get 0
    preds = probs.argmax(1)
    wall = time.perf_counter() - t0
    return FoldResult(
        fold=split.fold, clip_ids=[test_bank.clip_ids[i] for i in split.test],
        subjects=[test_bank.subjects[i] for i in split.test], labels=labels.tolist(), preds=preds.tolist(),
        probs=probs.tolist(), class_names=list(test_bank.class_names), di_mse=None, curves={}, steps=0,
        wall_time_s=wall, steps_per_s=0.0, peak_mem_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        selection=f"none: apex-frame logistic regression (C={C_REG}, fixed), fit once on the training subjects",
        metrics=pooled_metrics(labels, preds, m), device="cpu")
