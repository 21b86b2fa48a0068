"""LBP-TOP + linear SVM (Zhao & Pietikainen, TPAMI 2007), the MEGC2019 baseline: the histograms of
`fdp.features.lbp_top` (the guideline's parameters) classified by a linear support vector machine,
one-vs-rest (scikit-learn's LinearSVC, liblinear), with a fixed C: nothing is tuned on anything.

The guideline gives no C and no feature scaling; we use C = 1 (scikit-learn's default) on the
histograms as they are (each block and plane sums to 1). "Probabilities": the softmax of the
one-vs-rest decision values, so that their argmax is the SVM's prediction; they are scores, not
calibrated probabilities. A class absent from the training clips gets probability 0.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fdp.methods.fitting import FitOutput
from fdp.methods.registry import Method, register

PAPER = "Zhao & Pietikainen, LBP-TOP, TPAMI 2007 (the MEGC2019 baseline)"
INPUT = "LBP-TOP histograms: R 1,1,4, P 4, 5 x 5 blocks, TIM 10 (1125 values)"
FEATURE_KIND = "lbp_top"
C_SVM = 1.0  # fixed; scikit-learn's default
MAX_ITER = 20_000  # liblinear's iteration cap (its default 1000 may stop before convergence on 1125-d histograms)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def parameter_count(num_classes: int, features: int = 1125) -> int:
    """Fitted weights and biases of the one-vs-rest SVM when every class is in the training clips
    (3,378 for 3 classes); `FitOutput.n_params` gives what one fit actually had."""
    return num_classes * features + num_classes if num_classes > 2 else features + 1


def fit_lbp_top(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, num_classes: int,
                C: float = C_SVM, seed: int = 0) -> FitOutput:
    """Fit the linear SVM on the LBP-TOP features (n, 1125) of the training clips with labels
    y_train (the true ones, or a shuffled control's) and score the test clips."""
    t0 = time.perf_counter()
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    y_train = np.asarray(y_train, dtype=np.int64)
    present = np.unique(y_train)
    probs = np.zeros((len(x_test), num_classes))
    if len(present) == 1:  # one class to learn: it is the prediction
        probs[:, present[0]] = 1.0
        n_params = 0
    else:
        from sklearn.svm import LinearSVC

        svm = LinearSVC(C=C, max_iter=MAX_ITER, random_state=seed).fit(x_train, y_train)
        scores = svm.decision_function(x_test)
        if scores.ndim == 1:  # two classes: one decision value, positive for classes_[1]
            scores = np.stack([-scores, scores], axis=1)
        probs[:, svm.classes_] = _softmax(scores)
        n_params = int(svm.coef_.size + svm.intercept_.size)
    return FitOutput(probs=probs, n_params=n_params, wall_s=time.perf_counter() - t0, steps=0,
                     selection=f"none: linear SVM (C={C}, fixed), fit once on the training subjects",
                     details={"method": "lbp_top", "input": "LBP-TOP (MEGC2019 baseline parameters, TIM 10)",
                              "C": C, "classifier": "LinearSVC one-vs-rest", "seed": seed})


# ---------------------------------------------------------------------------------------------
# the method `lbp_top` (fdp.methods.registry): its histograms from the feature cache


def run(inputs: Any) -> Any:
    """Fit the SVM on the fold's training clips (labels `inputs.train_labels`: the bank's, or the
    shuffled control's) and score its test clips once (fdp.fold.FoldInputs)."""
    from fdp.fold import result_of_predictions
    from fdp.methods.fitting import fold_features

    t0 = time.perf_counter()
    f = fold_features(inputs, FEATURE_KIND)
    out = fit_lbp_top(f.x_train, f.y_train, f.x_test, num_classes=inputs.cfg.model.num_classes,
                      seed=inputs.cfg.train.seed)
    return result_of_predictions(inputs, out.probs, t0=t0, n_params=out.n_params,
                                 selection=f"{out.selection}; every cached frame of each clip (no key frame)")


register(Method(
    name="lbp_top", paper=PAPER, title="LBP-TOP + linear SVM",
    input=lambda cfg: f"{INPUT}, every frame of onset..offset",
    params=lambda cfg: parameter_count(cfg.model.num_classes),
    params_note="fitted weights and biases of the one-vs-rest SVM, every class in training",
    run=run, selection="fitted once, nothing to select", steps=lambda cfg: "-"))
