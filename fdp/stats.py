"""Significance tests and uncertainty (paper §4.4, SPEC §5).

* Between variants of our own runs: a Wilcoxon signed-rank test paired by LOSO fold
  (`paired_wilcoxon`) and percentile bootstrap intervals over test clips (`bootstrap_ci`).
* The paper's Tables 12–13: a one-sided Wilcoxon rank-sum test (H1: ours superior) on F1 lists
  (`ranksum_one_sided`), applied with the paper's list construction (`paper_rank_sum`).
* Several seeds: mean ± sample std (`mean_std`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st


@dataclass(frozen=True)
class WilcoxonResult:
    """Signed-rank test of a paired sample."""

    statistic: float  # scipy's statistic: for one-sided tests the sum of positive ranks (W+)
    pvalue: float
    n: int  # number of pairs (folds) entering the test, zero differences included


@dataclass(frozen=True)
class RankSumResult:
    """Wilcoxon rank-sum test, normal approximation (scipy.stats.ranksums, no tie correction)."""

    statistic: float  # z = (R_ours - n1 (n1 + n2 + 1) / 2) / sqrt(n1 n2 (n1 + n2 + 1) / 12)
    pvalue: float  # one-sided, 1 - Phi(z) for H1 "ours larger"
    n_ours: int
    n_others: int


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile bootstrap interval of a metric over resampled test clips."""

    estimate: float  # metric on the full sample
    low: float
    high: float
    n_boot: int
    alpha: float


def _pairs(a: Sequence[float] | Mapping[str, float],
           b: Sequence[float] | Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueError("pass both samples as sequences or both as {fold: value} mappings")
    if isinstance(a, Mapping):
        common = sorted(set(a) & set(b))
        x = np.array([a[k] for k in common], dtype=np.float64)
        y = np.array([b[k] for k in common], dtype=np.float64)
    else:
        x = np.asarray(a, dtype=np.float64)
        y = np.asarray(b, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"paired samples must be 1-D of equal length, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("paired test needs at least one pair (no common folds)")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("paired samples must be finite")
    return x, y


def paired_wilcoxon(a_by_fold: Sequence[float] | Mapping[str, float],
                    b_by_fold: Sequence[float] | Mapping[str, float],
                    alternative: str = "two-sided") -> WilcoxonResult:
    """Wilcoxon signed-rank test of a - b, paired by fold (scipy.stats.wilcoxon, zero
    differences dropped as in Wilcoxon's original test).

    Mappings are paired on their common fold names (folds only one side has are left out);
    sequences are paired by position. `alternative="greater"` tests H1: a is better than b.
    All-zero differences give statistic 0 and p = 1.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less, got {alternative!r}")
    x, y = _pairs(a_by_fold, b_by_fold)
    if np.all(x == y):
        return WilcoxonResult(0.0, 1.0, int(x.size))
    r = _st.wilcoxon(x, y, alternative=alternative)
    return WilcoxonResult(float(r.statistic), float(r.pvalue), int(x.size))


def ranksum_one_sided(ours: Sequence[float], others: Sequence[float]) -> RankSumResult:
    """One-sided Wilcoxon rank-sum test, H1: `ours` is stochastically larger than `others`
    (the test of the paper's Tables 12–13, ref. [41]); scipy.stats.ranksums, alternative
    "greater", normal approximation without tie or continuity correction."""
    x = np.asarray(ours, dtype=np.float64)
    y = np.asarray(others, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or x.size == 0 or y.size == 0:
        raise ValueError(f"rank-sum test needs two non-empty 1-D samples, got {x.shape} and {y.shape}")
    r = _st.ranksums(x, y, alternative="greater")
    return RankSumResult(float(r.statistic), float(r.pvalue), int(x.size), int(y.size))


def paper_rank_sum(ours: float, others: Sequence[float]) -> RankSumResult:
    """The paper's Tables 12–13 test of one F1 value against a table of published F1 values.

    Reconstructed from the printed numbers (all 8 rows of Tables 12–13 reproduce, see
    `orchestrator.tables.reproduce_significance`): the single F1 of ours is repeated once per
    compared method with a reported F1, and tested against the *distinct* F1 values of those
    methods, ``ranksums([ours] * len(others), unique(others), alternative="greater")``.
    Only SAMM 5-class has a repeated value (64.00 twice); every other row is the plain
    n-versus-n test. When ours beats all n1 = n and n2 = n_distinct values,
    z = sqrt(3 n1 n2 / (n1 + n2 + 1)), so the statistic depends on the list sizes only.
    """
    y = np.asarray(others, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError("paper_rank_sum needs a non-empty list of compared F1 values")
    if not np.isfinite(ours):
        raise ValueError(f"ours must be finite, got {ours!r}")
    return ranksum_one_sided(np.full(y.size, float(ours)), np.unique(y))


def bootstrap_ci(labels: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray,
                 metric_fn: Callable[[np.ndarray, np.ndarray], float], n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0) -> BootstrapCI:
    """Percentile bootstrap (1 - alpha) interval of `metric_fn(labels, preds)`, resampling test
    clips with replacement; deterministic for a given seed."""
    y = np.asarray(labels)
    p = np.asarray(preds)
    if y.ndim != 1 or y.shape != p.shape or y.size == 0:
        raise ValueError(f"labels and preds must be non-empty 1-D of equal length, "
                         f"got {y.shape} and {p.shape}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(n_boot, y.size))
    values = np.array([metric_fn(y[i], p[i]) for i in idx], dtype=np.float64)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return BootstrapCI(float(metric_fn(y, p)), float(low), float(high), int(n_boot), float(alpha))


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1) over seeds; std 0 for one value."""
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("mean_std needs at least one value")
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0
