"""fdp.metrics: pooled and per-fold Acc/WAR, UF1, UAR (eq. 9–10) against hand-computed confusion
matrices and sklearn; the DI MSE average of Table 14."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from fdp.metrics import confusion, mean_di_mse, metrics_from_confusion, per_fold_metrics, pooled_metrics

# Two LOSO folds of a 3-class setting; class 2 is absent from fold B's labels (but predicted once).
FOLD_A = ([0, 0, 1, 1, 2], [0, 1, 1, 1, 2])
FOLD_B = ([0, 0, 1], [0, 2, 1])


def test_confusion_rows_are_true_classes():
    cm = confusion(FOLD_A[0] + FOLD_B[0], FOLD_A[1] + FOLD_B[1], 3)
    np.testing.assert_array_equal(cm, [[2, 1, 1], [0, 3, 0], [0, 0, 1]])


def test_pooled_metrics_hand_computed():
    m = pooled_metrics(FOLD_A[0] + FOLD_B[0], FOLD_A[1] + FOLD_B[1], 3)
    # confusion [[2,1,1],[0,3,0],[0,0,1]], N = 8
    assert m["acc"] == pytest.approx(6 / 8)
    assert m["war"] == m["acc"]
    # recalls 2/4, 3/3, 1/1
    assert m["uar"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    # F1_j = 2TP / (2TP + FP + FN): 4/6, 6/7, 2/3
    assert m["uf1"] == pytest.approx((4 / 6 + 6 / 7 + 2 / 3) / 3)


def test_per_fold_differs_from_pooled_when_a_class_is_absent():
    pf = per_fold_metrics([FOLD_A, FOLD_B], 3)
    # fold A: acc 4/5, UAR (1/2+1+1)/3 = 5/6, UF1 (2/3 + 4/5 + 1)/3
    # fold B: acc 2/3, UAR (1/2+1+0)/3 = 1/2 (class 2 absent: recall 0), UF1 (2/3 + 1 + 0)/3
    uar_a, uar_b = 5 / 6, 1 / 2
    uf1_a, uf1_b = (2 / 3 + 4 / 5 + 1) / 3, (2 / 3 + 1 + 0) / 3
    assert pf["uar"][0] == pytest.approx((uar_a + uar_b) / 2)
    assert pf["uar"][1] == pytest.approx(abs(uar_a - uar_b) / np.sqrt(2))  # sample std, 2 folds
    assert pf["uf1"][0] == pytest.approx((uf1_a + uf1_b) / 2)
    assert pf["acc"][0] == pytest.approx((4 / 5 + 2 / 3) / 2)
    pooled = pooled_metrics(FOLD_A[0] + FOLD_B[0], FOLD_A[1] + FOLD_B[1], 3)
    assert pf["uar"][0] == pytest.approx(2 / 3)
    assert pooled["uar"] == pytest.approx(5 / 6)
    assert pf["uar"][0] < pooled["uar"] - 0.1


def test_single_fold_std_is_zero():
    pf = per_fold_metrics([FOLD_A], 3)
    assert pf["acc"] == (pytest.approx(0.8), 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_macro_with_all_labels(seed):
    rng = np.random.default_rng(seed)
    m = 5
    y = rng.integers(0, m - 1, size=40)  # class 4 never true
    p = rng.integers(0, m, size=40)
    got = pooled_metrics(y, p, m)
    labels = list(range(m))
    assert got["acc"] == pytest.approx(accuracy_score(y, p))
    assert got["uf1"] == pytest.approx(f1_score(y, p, labels=labels, average="macro", zero_division=0))
    assert got["uar"] == pytest.approx(recall_score(y, p, labels=labels, average="macro", zero_division=0))


def test_class_never_seen_counts_zero_in_macro_averages():
    # 3-class setting, only classes 0 and 1 occur, all correct: F1 and recall of class 2 are 0.
    m = pooled_metrics([0, 1, 1], [0, 1, 1], 3)
    assert m["acc"] == 1.0
    assert m["uf1"] == pytest.approx(2 / 3)
    assert m["uar"] == pytest.approx(2 / 3)


def test_metrics_from_confusion_perfect_and_empty():
    assert metrics_from_confusion(np.diag([3, 2])) == {"acc": 1.0, "war": 1.0, "uf1": 1.0, "uar": 1.0}
    with pytest.raises(ValueError, match="empty"):
        metrics_from_confusion(np.zeros((2, 2)))


@pytest.mark.parametrize("labels, preds, match", [
    ([0, 1], [0], "differ in length"),
    ([0, 3], [0, 1], r"labels must lie in \[0, 3\)"),
    ([0, 1], [-1, 1], "preds must lie"),
    ([[0, 1]], [[0, 1]], "1-D"),
    ([0.5, 1.0], [0, 1], "integer"),
])
def test_validation_errors_are_one_line(labels, preds, match):
    with pytest.raises(ValueError, match=match) as e:
        pooled_metrics(labels, preds, 3)
    assert "\n" not in str(e.value)


def test_integral_floats_are_accepted():
    assert pooled_metrics(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 2)["acc"] == 1.0


def test_per_fold_needs_folds():
    with pytest.raises(ValueError):
        per_fold_metrics([], 3)


def test_mean_di_mse():
    assert mean_di_mse([[1e-3, 2e-3], [3e-3]]) == pytest.approx(2e-3)  # over clips, not folds
    assert mean_di_mse(np.array([1.0, 3.0])) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        mean_di_mse([])
    with pytest.raises(ValueError):
        mean_di_mse([1.0, -1.0])
    with pytest.raises(ValueError):
        mean_di_mse([1.0, float("nan")])
