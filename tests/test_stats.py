"""fdp.stats: paired signed-rank, one-sided rank-sum (Tables 12–13), bootstrap CI, mean ± std."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from fdp.metrics import pooled_metrics
from fdp.stats import bootstrap_ci, mean_std, paired_wilcoxon, paper_rank_sum, ranksum_one_sided

A = [0.81, 0.72, 0.90, 0.65, 0.77, 0.88, 0.69, 0.95]
B = [0.70, 0.74, 0.80, 0.60, 0.71, 0.79, 0.69, 0.85]


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_paired_wilcoxon_matches_scipy(alternative):
    r = paired_wilcoxon(A, B, alternative)
    ref = st.wilcoxon(A, B, alternative=alternative)
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.pvalue == pytest.approx(ref.pvalue)
    assert r.n == len(A)


def test_paired_wilcoxon_known_value():
    # all 5 differences positive, exact distribution: P(W+ = 15) = 1/32
    r = paired_wilcoxon([1, 2, 3, 4.5, 6], [0, 1, 2, 3, 4], "greater")
    assert (r.statistic, r.pvalue, r.n) == (15.0, pytest.approx(1 / 32), 5)


def test_paired_wilcoxon_pairs_mappings_by_fold():
    a = {"s01": 0.9, "s02": 0.8, "s03": 0.7, "s04": 0.95, "s05": 0.6, "only_a": 0.0}
    b = {"s05": 0.5, "s04": 0.9, "s03": 0.6, "s02": 0.75, "s01": 0.85, "only_b": 1.0}
    r = paired_wilcoxon(a, b, "greater")
    ref = st.wilcoxon([0.9, 0.8, 0.7, 0.95, 0.6], [0.85, 0.75, 0.6, 0.9, 0.5], alternative="greater")
    assert r.n == 5
    assert r.pvalue == pytest.approx(ref.pvalue)


def test_paired_wilcoxon_edge_cases():
    assert paired_wilcoxon([0.5, 0.6], [0.5, 0.6]).pvalue == 1.0
    with pytest.raises(ValueError):
        paired_wilcoxon([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        paired_wilcoxon({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError):
        paired_wilcoxon(A, B, "bigger")


def test_ranksum_one_sided_matches_scipy():
    ours, others = [85.3, 86.1, 84.9], [80.4, 80.0, 79.8, 75.3, 59.1, 86.0]
    r = ranksum_one_sided(ours, others)
    ref = st.ranksums(ours, others, alternative="greater")
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.pvalue == pytest.approx(ref.pvalue)
    assert (r.n_ours, r.n_others) == (3, 6)
    # one-sided p = 1 - Phi(z)
    assert r.pvalue == pytest.approx(st.norm.sf(r.statistic))


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
