"""Significance tests and uncertainty (paper §4.4, SPEC §5).

* Between variants of our own runs: a Wilcoxon signed-rank test paired by LOSO fold
  (`paired_wilcoxon`) and percentile bootstrap intervals over test clips (`bootstrap_ci`).
* The paper's Tables 12–13: a one-sided Wilcoxon rank-sum test (H1: ours superior) on F1 lists
  (`ranksum_one_sided`), applied with the paper's list construction (`paper_rank_sum`).
* Several seeds: mean ± sample std (`mean_std`).
* Subject-level uncertainty: `subject_bootstrap_ci`, `paired_subject_bootstrap` resample
  whole subjects; `holm` adjusts a table's p-values; `detectable_difference` is the smallest
  paired UF1 difference the folds and seeds could detect (paired t, noncentral t power).
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
    `orchestrator.report.analysis.reproduce_significance`): the single F1 of ours is repeated once per
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


# ---------------------------------------------------------------------------------------------
# uncertainty that respects subjects: clips of one subject are not independent, so
# the bootstrap resamples whole subjects (a LOSO fold is one subject), not clips.


@dataclass(frozen=True)
class SeedPredictions:
    """The pooled test predictions of one seed of one configuration: one entry per test clip."""

    labels: np.ndarray  # (N,) int
    preds: np.ndarray  # (N,) int
    subjects: np.ndarray  # (N,) str: the test subject (= LOSO fold) of each clip

    @classmethod
    def of(cls, labels: Sequence[int], preds: Sequence[int], subjects: Sequence[str]) -> "SeedPredictions":
        y, p, s = np.asarray(labels), np.asarray(preds), np.asarray(subjects).astype(str)
        if y.ndim != 1 or y.shape != p.shape or y.shape != s.shape or y.size == 0:
            raise ValueError(f"labels, preds and subjects must be non-empty 1-D of equal length, "
                             f"got {y.shape}, {p.shape}, {s.shape}")
        return cls(y, p, s)


def _by_subject(seeds: Sequence[SeedPredictions], names: Sequence[str]) -> list[list[np.ndarray]]:
    """[seed][subject] -> the clip positions of that subject in that seed's predictions."""
    return [[np.flatnonzero(sp.subjects == s) for s in names] for sp in seeds]


def _seed_mean(seeds: Sequence[SeedPredictions], pos: Sequence[Sequence[np.ndarray]], draw: np.ndarray,
               metric_fn: Callable[[np.ndarray, np.ndarray], float]) -> float:
    """Mean over seeds of the metric pooled over the clips of the drawn subjects (with repeats)."""
    vals = []
    for sp, by_subj in zip(seeds, pos):
        i = np.concatenate([by_subj[j] for j in draw])
        vals.append(metric_fn(sp.labels[i], sp.preds[i]))
    return float(np.mean(vals))


def _subjects_of(seeds: Sequence[SeedPredictions]) -> list[str]:
    names = sorted(set(seeds[0].subjects.tolist()))
    for sp in seeds[1:]:
        if sorted(set(sp.subjects.tolist())) != names:
            raise ValueError("every seed must have the same test subjects")
    return names


def _check_boot(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def subject_bootstrap_ci(seeds: SeedPredictions | Sequence[SeedPredictions],
                         metric_fn: Callable[[np.ndarray, np.ndarray], float], n_boot: int = 2000,
                         alpha: float = 0.05, seed: int = 0) -> BootstrapCI:
    """Percentile bootstrap (1 - alpha) interval of a pooled metric, resampling SUBJECTS with
    replacement: a drawn subject brings all its clips (drawn twice: twice), and the metric is
    pooled over the resample's clips (SPEC §5). With several seeds, each resample scores every
    seed on the same drawn subjects and takes the mean over seeds; `estimate` is that mean on
    the full sample. Deterministic for a given `seed`."""
    seeds = [seeds] if isinstance(seeds, SeedPredictions) else list(seeds)
    if not seeds:
        raise ValueError("subject_bootstrap_ci needs at least one seed's predictions")
    _check_boot(n_boot, alpha)
    names = _subjects_of(seeds)
    pos = _by_subject(seeds, names)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(n_boot, len(names)))
    values = np.array([_seed_mean(seeds, pos, d, metric_fn) for d in draws])
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    est = _seed_mean(seeds, pos, np.arange(len(names)), metric_fn)
    return BootstrapCI(est, float(low), float(high), int(n_boot), float(alpha))


def paired_subject_bootstrap(a: SeedPredictions | Sequence[SeedPredictions],
                             b: SeedPredictions | Sequence[SeedPredictions],
                             metric_fn: Callable[[np.ndarray, np.ndarray], float], n_boot: int = 2000,
                             alpha: float = 0.05, seed: int = 0) -> BootstrapCI:
    """Interval of the difference metric(a) - metric(b) (each pooled, mean over its seeds) from a
    PAIRED subject bootstrap: every resample draws one set of subjects and scores both
    configurations on it, so what the two share (which subjects are hard) cancels."""
    a = [a] if isinstance(a, SeedPredictions) else list(a)
    b = [b] if isinstance(b, SeedPredictions) else list(b)
    if not a or not b:
        raise ValueError("paired_subject_bootstrap needs predictions of both configurations")
    _check_boot(n_boot, alpha)
    names = _subjects_of(a)
    if _subjects_of(b) != names:
        raise ValueError("the two configurations must have the same test subjects to be paired")
    pa, pb = _by_subject(a, names), _by_subject(b, names)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(n_boot, len(names)))
    values = np.array([_seed_mean(a, pa, d, metric_fn) - _seed_mean(b, pb, d, metric_fn) for d in draws])
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    full = np.arange(len(names))
    est = _seed_mean(a, pa, full, metric_fn) - _seed_mean(b, pb, full, metric_fn)
    return BootstrapCI(float(est), float(low), float(high), int(n_boot), float(alpha))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given: sort ascending, multiply the k-th
    smallest (k = 1..m) by m - k + 1, make the sequence non-decreasing, cap at 1. Rejecting where
    the adjusted p < alpha controls the family-wise error rate at alpha (Holm 1979)."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p-values must be a 1-D list in [0, 1], got {pvalues!r}")
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out.tolist()


@dataclass(frozen=True)
class DetectableDifference:
    """Smallest true mean paired difference a two-sided paired t-test over folds detects with the
    given power; from the fold-level spread of the differences."""

    mdd: float  # in the units of the differences (UF1 fraction)
    n_folds: int
    n_seeds: int
    sd_fold: float  # between-fold sd of the difference of a single seed, seed noise removed
    sd_seed: float  # within-fold sd over seeds (0 with one seed: then part of sd_fold)
    alpha: float
    power: float


def mdd_paired_t(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean difference delta that a two-sided one-sample (paired) t-test of n values with
    standard deviation `sd` detects with probability `power`: solves
    P(|T| > t_{1-alpha/2, n-1}) = power for T ~ noncentral t(n-1, delta sqrt(n) / sd) (scipy)."""
    if n < 2:
        raise ValueError(f"a paired t-test needs at least 2 folds, got {n}")
    if sd < 0 or not np.isfinite(sd):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    from scipy.optimize import brentq

    df = n - 1
    crit = _st.t.ppf(1 - alpha / 2, df)

    def gap(nc: float) -> float:
        return _st.nct.sf(crit, df, nc) + _st.nct.cdf(-crit, df, nc) - power

    hi = 4.0
    while (g := gap(hi)) < 0:  # power rises with the noncentrality; widen until it passes `power`
        hi *= 2
        if hi > 1e4:
            break
    if not g >= 0:  # NaN (scipy's nct fails for huge noncentralities) or never reached
        raise ValueError(f"no difference reaches power {power} with a t-test of {n} folds (too few)")
    nc = brentq(gap, 0.0, hi)
    return float(nc * sd / np.sqrt(n))


def detectable_difference(diffs: np.ndarray | Sequence[Sequence[float]], alpha: float = 0.05,
                          power: float = 0.8) -> DetectableDifference:
    """MDD of a mean paired difference from fold-level differences `diffs` (n_folds, n_seeds):
    the per-fold value of a configuration minus the other's, per seed. The variance of a fold's
    seed mean is sd_fold^2 + sd_seed^2 / n_seeds (one-way random effects, method of moments:
    sd_seed^2 = mean within-fold variance, sd_fold^2 = var(fold means) - sd_seed^2 / n_seeds,
    floored at 0), and the MDD is `mdd_paired_t` of that sd over n_folds."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    n, k = d.shape
    if n < 2 or k < 1 or not np.all(np.isfinite(d)):
        raise ValueError(f"need finite differences of >= 2 folds, got shape {d.shape}")
    var_seed = float(d.var(axis=1, ddof=1).mean()) if k > 1 else 0.0
    var_fold = max(0.0, float(d.mean(axis=1).var(ddof=1)) - var_seed / k)
    return mdd_from_components(np.sqrt(var_fold), np.sqrt(var_seed), n, k, alpha, power)


def mdd_from_components(sd_fold: float, sd_seed: float, n_folds: int, n_seeds: int, alpha: float = 0.05,
                        power: float = 0.8) -> DetectableDifference:
    """The MDD for a design of `n_folds` folds x `n_seeds` seeds with the given variance
    components (what a planned study with more folds or seeds could detect)."""
    sd = float(np.sqrt(sd_fold ** 2 + sd_seed ** 2 / n_seeds))
    return DetectableDifference(mdd_paired_t(sd, n_folds, alpha, power), int(n_folds), int(n_seeds),
                                float(sd_fold), float(sd_seed), float(alpha), float(power))
