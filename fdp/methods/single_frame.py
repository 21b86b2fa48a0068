"""The method `single_frame`: what no motion gets (SPEC §4.4). A logistic regression on ONE frame
of each clip, under the same folds as FDP; on the synthetic benchmark only the change between
frames tells the class, so it must sit near chance.

Features: the annotated apex frame (the frame that shows the most of the expression; the middle
frame of the span when the apex is unknown), centre crop of side `data.crop`, grey, area-resized
to 16 x 16, standardised on the training clips; L2-regularised logistic regression (C = 0.1,
fixed, nothing selected), fitted once: there are no steps, so nothing for a test-selected
protocol to choose either.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fdp.methods.registry import Method, register

FEATURE_SIDE = 16  # frames are area-resized to 16 x 16 grey before the regression
C_REG = 0.1  # inverse L2 strength of the regression, fixed (not tuned on anything)


def small(frame: np.ndarray, crop: int | None = None) -> np.ndarray:
    """(3, S, S) uint8 aligned frame -> (256,) float32: centre crop (default: S - 8, the 64 of a 72
    cache), grey, 16 x 16."""
    import cv2

    s = frame.shape[-1]
    crop = crop or s - 8
    m = (s - crop) // 2
    g = frame[:, m:m + crop, m:m + crop].astype(np.float32).mean(0)
    return cv2.resize(g, (FEATURE_SIDE, FEATURE_SIDE), interpolation=cv2.INTER_AREA).ravel()


def classifier():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C_REG, max_iter=2000))


def apex_offset(clip: dict) -> int:
    """Position of the apex within a cached clip (which starts at the onset); mid-span if unknown."""
    apex = clip.get("apex")
    if isinstance(apex, (int, np.integer)) and clip["onset"] <= apex < clip["onset"] + clip["length"]:
        return int(apex - clip["onset"])
    return int(clip["length"]) // 2


def bank_apex_features(bank, cache, positions: np.ndarray, crop: int) -> np.ndarray:
    """(n, 256) apex-frame features of bank positions `positions` (`cache` is the bank's cache)."""
    rows = []
    for k in positions:
        clip = cache.clips[int(bank.clip_indices[k])]
        frame = bank.frames[int(bank.start[k]) + apex_offset(clip)].cpu().numpy()
        rows.append(small(frame, crop))
    return np.asarray(rows, dtype=np.float32)


def fitted_count(clf) -> int:
    """Numbers the fitted pipeline learned: regression coefficients and intercepts (one row per
    class, one row in all for two classes), and the scaler's per-feature mean and scale."""
    scaler, reg = clf[0], clf[-1]
    return int(reg.coef_.size + reg.intercept_.size + scaler.mean_.size + scaler.scale_.size)


def count(cfg: Any) -> int:
    """`fitted_count` of a fit that sees all m classes of the setting."""
    rows = cfg.model.num_classes if cfg.model.num_classes > 2 else 1
    d = FEATURE_SIDE * FEATURE_SIDE
    return (d + 1) * rows + 2 * d


def check(cfg: Any) -> None:
    from fdp.config import ConfigError

    if cfg.data.crop > cfg.data.aligned_size:
        raise ConfigError(f"data.crop={cfg.data.crop}: larger than the cached frames (data.aligned_size="
                          f"{cfg.data.aligned_size})")


def run(inputs: Any) -> Any:
    """Fit on `split.train` (labels `inputs.train_labels`: the bank's, or the shuffled control's) and
    predict `split.test` once."""
    import torch

    from fdp.fold import result_of_predictions

    cfg, split = inputs.cfg, inputs.split
    t0 = time.perf_counter()
    x_tr = bank_apex_features(inputs.bank, inputs.cache, split.train, cfg.data.crop)
    y_tr = inputs.train_labels[torch.as_tensor(split.train)].cpu().numpy()
    x_te = bank_apex_features(inputs.test_bank, inputs.test_cache, split.test, cfg.data.crop)
    clf = classifier().fit(x_tr, y_tr)
    probs = np.zeros((len(split.test), cfg.model.num_classes))
    probs[:, clf.classes_] = clf.predict_proba(x_te)  # classes absent from training get 0
    return result_of_predictions(
        inputs, probs, t0=t0, n_params=fitted_count(clf),
        selection=f"none: apex-frame logistic regression (C={C_REG}, fixed), fit once on the training subjects")


register(Method(
    name="single_frame",
    paper="none: a control of this project (SPEC §4.4), what one frame without motion gets",
    input=lambda cfg: (f"the apex frame (mid-span when unknown), grey, centre {cfg.data.crop} x {cfg.data.crop} "
                       f"area-resized to {FEATURE_SIDE} x {FEATURE_SIDE}"),
    params=count, params_note="fitted numbers: regression weights and intercepts, the scaler's means and scales",
    run=run, check=check, title="single frame + logistic regression",
    selection="fitted once, nothing to select", steps=lambda cfg: "-"))
