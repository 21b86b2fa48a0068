"""Recognition and dynamic-image metrics of the paper (§4.1.2, §4.5).

Protocol (SPEC §5): the predictions of all LOSO folds are concatenated and the metrics are computed
once on the pooled confusion matrix ("pooled"); the per-fold mean ± std is a secondary view.

* Acc = WAR (eq. 10): sum_j TP_j / N.
* UF1: macro F1 over *all* m classes of the setting, F1_j = 2 TP_j / (2 TP_j + FP_j + FN_j),
  0 where the denominator is 0 — exactly sklearn's ``f1_score(average="macro",
  labels=range(m), zero_division=0)``.
* UAR (eq. 9): (1/m) sum_j TP_j / (TP_j + FN_j) over all m classes; a class with no true sample
  (TP_j + FN_j = 0) contributes 0 — sklearn's ``recall_score(average="macro", labels=range(m),
  zero_division=0)``. Pooled over all folds every class of a real setting is present, so this rule
  never fires there; inside a single LOSO fold a subject often lacks some classes, whose recall is
  undefined, and the rule then pulls the fold's UAR (and UF1) down. That is why per-fold means are
  lower than pooled values and are only reported as a secondary view.

All values are fractions in [0, 1]; tables multiply by 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

ArrayLike = Sequence[int] | np.ndarray

METRICS: tuple[str, ...] = ("acc", "war", "uf1", "uar")


def _as_labels(x: ArrayLike, name: str, num_classes: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
        a = a.astype(np.int64)
    a = a.astype(np.int64, copy=False)
    if a.size and (a.min() < 0 or a.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got range [{a.min()}, {a.max()}]")
    return a


def _check(labels: ArrayLike, preds: ArrayLike, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    y = _as_labels(labels, "labels", int(num_classes))
    p = _as_labels(preds, "preds", int(num_classes))
    if y.shape != p.shape:
        raise ValueError(f"labels and preds differ in length: {y.shape[0]} vs {p.shape[0]}")
    return y, p


def confusion(labels: ArrayLike, preds: ArrayLike, num_classes: int) -> np.ndarray:
    """Confusion matrix C (m, m), C[i, j] = number of clips of true class i predicted as j."""
    y, p = _check(labels, preds, num_classes)
    return np.bincount(y * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes)


def metrics_from_confusion(cm: np.ndarray) -> dict[str, float]:
    """Acc/WAR (eq. 10), UF1 and UAR (eq. 9) of one confusion matrix (rows: true classes)."""
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    n = cm.sum()
    if n == 0:
        raise ValueError("confusion matrix is empty (no samples)")
    tp = np.diag(cm)
    support = cm.sum(axis=1)  # TP + FN per class
    predicted = cm.sum(axis=0)  # TP + FP per class
    f1_den = support + predicted  # 2TP + FP + FN
    f1 = np.divide(2 * tp, f1_den, out=np.zeros_like(tp), where=f1_den > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    acc = float(tp.sum() / n)
    return {"acc": acc, "war": acc, "uf1": float(f1.mean()), "uar": float(recall.mean())}


def pooled_metrics(labels: ArrayLike, preds: ArrayLike, num_classes: int) -> dict[str, float]:
    """Metrics of the concatenated predictions of all folds: {"acc", "war", "uf1", "uar"}."""
    return metrics_from_confusion(confusion(labels, preds, num_classes))


def weighted_f1(labels: ArrayLike, preds: ArrayLike, num_classes: int) -> float:
    """F1 per class weighted by the class's share of the true labels (sklearn's
    `f1_score(average="weighted")`): what the authors' FDP code prints per fold."""
    cm = confusion(labels, preds, num_classes).astype(np.float64)
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    den = support + predicted
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
    return float((f1 * support).sum() / support.sum())


def per_fold_metrics(folds: Sequence[tuple[ArrayLike, ArrayLike]],
                     num_classes: int) -> dict[str, tuple[float, float]]:
    """Mean and sample std (ddof = 1; 0 for a single fold) over folds of each metric.

    A class absent from a fold's labels contributes recall 0 and, unless predicted, F1 0 to that
    fold (see the module docstring), so the fold mean is not the pooled value.
    """
    if len(folds) == 0:
        raise ValueError("per_fold_metrics needs at least one fold")
    per = [pooled_metrics(y, p, num_classes) for y, p in folds]
    out: dict[str, tuple[float, float]] = {}
    for k in METRICS:
        v = np.array([m[k] for m in per])
        out[k] = (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0)
    return out


def mean_di_mse(values: Iterable[float] | Iterable[Sequence[float]] | np.ndarray) -> float:
    """Average MSE between ground-truth and predicted dynamic images over all test clips (§4.5,
    Table 14). Takes per-clip MSEs, flat or as one sequence per fold (concatenated first)."""
    parts = [np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel() for v in values]
    a = np.concatenate(parts) if parts else np.empty(0)
    if a.size == 0:
        raise ValueError("mean_di_mse needs at least one per-clip MSE")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("per-clip MSEs must be finite and non-negative")
    return float(a.mean())
