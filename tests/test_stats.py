"""fdp.stats: paired signed-rank, one-sided rank-sum (Tables 12–13), bootstrap CI, mean ± std."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fdp.metrics import pooled_metrics
from fdp.stats import bootstrap_ci, mean_std, paired_wilcoxon, paper_rank_sum, ranksum_one_sided


# Signed-rank cases small enough to count by hand: with n pairs, no ties and no zero differences,
# each of the 2^n sign patterns of the ranks 1..n is equally likely under H0, so an exact p-value
# is a count of subsets of {1..n} divided by 2^n.
# a - b = [1, -2, 3, 4, 5]: ranks 1..5, W+ = 1 + 3 + 4 + 5 = 13, W- = 2 (of 15).
#   P(W+ >= 13): the negative ranks sum to <= 2: {}, {1}, {2}   -> 3/32
#   P(W+ <= 13) = 1 - P(W+ >= 14) = 1 - |{}, {1}| / 32          -> 30/32
#   two-sided: 2 * min(3/32, 30/32), statistic min(W+, W-) = 2  -> 6/32
A5 = [2, 1, 5, 6, 8]
B5 = [1, 3, 2, 2, 3]


@pytest.mark.parametrize("alternative,statistic,pvalue", [
    ("greater", 13.0, 3 / 32), ("less", 13.0, 30 / 32), ("two-sided", 2.0, 6 / 32),
])
def test_paired_wilcoxon_exact_values_by_hand(alternative, statistic, pvalue):
    r = paired_wilcoxon(A5, B5, alternative)
    assert (r.statistic, r.n) == (statistic, 5)
    assert r.pvalue == pytest.approx(pvalue, abs=1e-12)


def test_paired_wilcoxon_known_value():
    # all 5 differences positive, exact distribution: P(W+ = 15) = 1/32
    r = paired_wilcoxon([1, 2, 3, 4.5, 6], [0, 1, 2, 3, 4], "greater")
    assert (r.statistic, r.pvalue, r.n) == (15.0, pytest.approx(1 / 32), 5)


def test_paired_wilcoxon_drops_zero_differences_but_counts_the_pair():
    # a - b = [0, 1, -2, 3, 4, 5]: the zero is dropped (Wilcoxon's test), the rest is the n = 5 case
    r = paired_wilcoxon([3] + A5, [3] + B5, "greater")
    assert (r.statistic, r.n) == (13.0, 6)
    assert r.pvalue == pytest.approx(3 / 32, abs=1e-12)


def test_paired_wilcoxon_pairs_mappings_by_fold():
    # by fold name: s01..s05 differ by 1, 2, -3, 4, 5 (b is listed in another order; only_a and
    # only_b have no partner). W+ = 1 + 2 + 4 + 5 = 12; W+ >= 12 <=> negative ranks sum to <= 3:
    # {}, {1}, {2}, {3}, {1, 2} -> p = 5/32.
    a = {"s01": 2, "s02": 5, "s03": 1, "s04": 8, "s05": 7, "only_a": 0}
    b = {"s05": 2, "s04": 4, "s03": 4, "s02": 3, "s01": 1, "only_b": 9}
    r = paired_wilcoxon(a, b, "greater")
    assert (r.statistic, r.n) == (12.0, 5)
    assert r.pvalue == pytest.approx(5 / 32, abs=1e-12)


def test_paired_wilcoxon_edge_cases():
    assert paired_wilcoxon([0.5, 0.6], [0.5, 0.6]).pvalue == 1.0
    with pytest.raises(ValueError):
        paired_wilcoxon([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        paired_wilcoxon({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError):
        paired_wilcoxon(A5, B5, "bigger")


def test_ranksum_one_sided_by_hand():
    # pooled order: 59.1 75.3 79.8 80.0 80.4 | 84.9 85.3 | 86.0 | 86.1 -> ours hold ranks 6, 7, 9
    # R = 22, E[R] = n1 (n1 + n2 + 1) / 2 = 15, Var = n1 n2 (n1 + n2 + 1) / 12 = 15, z = 7 / sqrt(15);
    # one-sided p = 1 - Phi(z) = erfc(z / sqrt 2) / 2
    ours, others = [85.3, 86.1, 84.9], [80.4, 80.0, 79.8, 75.3, 59.1, 86.0]
    r = ranksum_one_sided(ours, others)
    assert r.statistic == pytest.approx(7 / math.sqrt(15))  # 1.80739
    assert r.pvalue == pytest.approx(0.5 * math.erfc(7 / math.sqrt(30)))  # 0.035351
    assert r.pvalue == pytest.approx(0.035351, abs=1e-6)
    assert (r.n_ours, r.n_others) == (3, 6)
    # the other way round: R = 45 - 22 = 23 against E[R] = 30 -> z = -7 / sqrt(15), p = 1 - 0.035351
    back = ranksum_one_sided(others, ours)
    assert back.statistic == pytest.approx(-7 / math.sqrt(15))
    assert back.pvalue == pytest.approx(1 - r.pvalue)


def test_paper_rank_sum_closed_form():
    # ours above all n values: z = sqrt(3 n n / (2n + 1))
    for n in (3, 4, 5, 17):
        r = paper_rank_sum(90.0, list(np.linspace(10, 80, n)))
        assert r.statistic == pytest.approx(math.sqrt(3 * n * n / (2 * n + 1)))
    # a repeated compared value is counted once: 13 vs 12
    r = paper_rank_sum(90.0, [10.0 + i for i in range(12)] + [10.0])
    assert (r.n_ours, r.n_others) == (13, 12)
    assert r.statistic == pytest.approx(math.sqrt(18))
    with pytest.raises(ValueError):
        paper_rank_sum(90.0, [])


def _acc(y, p):
    return pooled_metrics(y, p, 3)["acc"]


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    p = np.where(rng.random(120) < 0.7, y, rng.integers(0, 3, 120))
    ci = bootstrap_ci(y, p, _acc, n_boot=300, seed=7)
    assert ci.estimate == pytest.approx(_acc(y, p))
    assert ci.low < ci.estimate < ci.high
    assert 0.0 <= ci.low and ci.high <= 1.0
    assert bootstrap_ci(y, p, _acc, n_boot=300, seed=7) == ci
    other = bootstrap_ci(y, p, _acc, n_boot=300, seed=8)
    assert (other.low, other.high) != (ci.low, ci.high)
    narrow = bootstrap_ci(y, p, _acc, n_boot=300, alpha=0.5, seed=7)
    assert ci.low <= narrow.low <= narrow.high <= ci.high


def test_bootstrap_ci_tiny_case_by_hand():
    """3 clips, the 2nd wrong (accuracy 2/3), 4 resamples: with seed 2 the resampled clip indices
    (numpy's default_rng(2).integers(0, 3, (4, 3))) are [2,0,0], [0,1,2], [1,0,1], [1,2,2], whose
    accuracies are 1, 2/3, 1/3, 2/3. Sorted 1/3, 2/3, 2/3, 1; linear-interpolated quantiles at
    q (position 3q): q = 0.25 -> 1/3 + 0.75/3 = 7/12, q = 0.75 -> 2/3 + 0.25/3 = 3/4;
    q = 0.025 -> 1/3 + 0.075/3 = 43/120, q = 0.975 -> 2/3 + 0.925/3 = 39/40."""
    y, p = [1, 1, 0], [1, 0, 0]
    acc = lambda yy, pp: float(np.mean(yy == pp))  # noqa: E731
    assert np.random.default_rng(2).integers(0, 3, (4, 3)).tolist() == [[2, 0, 0], [0, 1, 2], [1, 0, 1], [1, 2, 2]]
    half = bootstrap_ci(y, p, acc, n_boot=4, alpha=0.5, seed=2)
    assert (half.estimate, half.low, half.high) == pytest.approx((2 / 3, 7 / 12, 3 / 4))
    ci = bootstrap_ci(y, p, acc, n_boot=4, seed=2)
    assert (ci.low, ci.high, ci.n_boot, ci.alpha) == pytest.approx((43 / 120, 39 / 40, 4, 0.05))


def test_bootstrap_ci_validation():
    with pytest.raises(ValueError):
        bootstrap_ci([0, 1], [0], _acc)
    with pytest.raises(ValueError):
        bootstrap_ci([0, 1], [0, 1], _acc, alpha=1.5)


def test_mean_std():
    assert mean_std([0.8]) == (0.8, 0.0)
    m, s = mean_std([0.7, 0.8, 0.9])
    assert m == pytest.approx(0.8)
    assert s == pytest.approx(0.1)  # ddof = 1
    with pytest.raises(ValueError):
        mean_std([])
