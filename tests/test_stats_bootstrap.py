"""fdp.stats, issue #14: the subject bootstrap, its paired form, Holm's adjustment and the minimal
detectable difference, each against a computation by hand (or an independent simulation)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as st

from fdp.stats import (SeedPredictions, bootstrap_ci, detectable_difference, holm, mdd_from_components,
                       mdd_paired_t, paired_subject_bootstrap, subject_bootstrap_ci)


def acc(y, p):
    return float(np.mean(np.asarray(y) == np.asarray(p)))


def two_subjects(n_a: int = 10, n_b: int = 10) -> SeedPredictions:
    """Subject A: every clip right; subject B: every clip wrong."""
    y = np.zeros(n_a + n_b, dtype=int)
    p = np.r_[np.zeros(n_a, dtype=int), np.ones(n_b, dtype=int)]
    return SeedPredictions.of(y, p, ["A"] * n_a + ["B"] * n_b)


def test_subject_bootstrap_equals_hand_computation_two_subjects():
    # by hand: a resample is AA (acc 1), AB or BA (0.5) or BB (0), with probability 1/4, 1/2, 1/4;
    # both tails hold 1/4 > 2.5 %, so the 95 % percentile interval is exactly [0, 1]
    r = subject_bootstrap_ci(two_subjects(), acc, n_boot=4000, seed=1)
    assert (r.estimate, r.low, r.high) == (0.5, 0.0, 1.0)
    # unequal sizes: pooled over clips, AB = 30 of 40 right, the estimate 0.75, the tails still 0 and 1
    r = subject_bootstrap_ci(two_subjects(30, 10), acc, n_boot=4000, seed=1)
    assert (r.estimate, r.low, r.high) == (0.75, 0.0, 1.0)


def test_subject_bootstrap_matches_enumerated_distribution():
    # four subjects of 4 clips with 4, 3, 1, 0 right: all 4^4 equally likely ordered draws, by hand
    right = [4, 3, 1, 0]
    y = np.zeros(16, dtype=int)
    p = np.concatenate([[0] * k + [1] * (4 - k) for k in right])
    sp = SeedPredictions.of(y, p, np.repeat(list("ABCD"), 4))
    exact = sorted(sum(right[i] for i in d) / 16 for d in itertools.product(range(4), repeat=4))
    cdf = np.arange(1, len(exact) + 1) / len(exact)
    low = exact[int(np.searchsorted(cdf, 0.025))]  # smallest value whose CDF reaches 2.5 %
    high = exact[int(np.searchsorted(cdf, 0.975))]
    r = subject_bootstrap_ci(sp, acc, n_boot=20000, seed=0)
    assert r.estimate == 0.5
    assert abs(r.low - low) <= 1 / 16 and abs(r.high - high) <= 1 / 16  # one step of the support
    assert (low, high) == (0.125, 0.875)


def test_subject_bootstrap_wider_than_clip_bootstrap_when_subjects_differ():
    sp = two_subjects()
    subj = subject_bootstrap_ci(sp, acc, n_boot=4000, seed=0)
    clip = bootstrap_ci(sp.labels, sp.preds, acc, n_boot=4000, seed=0)
    # by hand: the clip bootstrap draws Binomial(20, 1/2) right clips; its 2.5 % / 97.5 % quantiles
    # are 6 and 14 (P(X <= 5) = 0.021, P(X <= 6) = 0.058; symmetric), i.e. [0.30, 0.70]
    assert (clip.low, clip.high) == (0.3, 0.7)
    assert subj.high - subj.low > clip.high - clip.low


def test_subject_bootstrap_equals_clip_level_spread_when_subjects_are_alike():
    # every subject alike (half right): no between-subject spread, the subject interval is a point
    y = np.zeros(40, dtype=int)
    p = np.tile([0, 1], 20)
    r = subject_bootstrap_ci(SeedPredictions.of(y, p, np.repeat(list("ABCD"), 10)), acc, n_boot=500)
    assert (r.low, r.high) == (0.5, 0.5)


def test_subject_bootstrap_over_seeds_is_mean_of_seeds():
    a, b = two_subjects(), two_subjects()
    b = SeedPredictions.of(b.labels, np.zeros_like(b.preds), b.subjects)  # seed 2: every clip right
    r = subject_bootstrap_ci([a, b], acc, n_boot=4000, seed=0)
    # by hand: mean over the seeds of (seed 1 as above, seed 2 always 1): 1, 0.75, 0.5 -> [0.5, 1]
    assert (r.estimate, r.low, r.high) == (0.75, 0.5, 1.0)


def test_paired_subject_bootstrap_hand_case():
    good = SeedPredictions.of(np.zeros(20, int), np.zeros(20, int), ["A"] * 10 + ["B"] * 10)
    half = two_subjects()
    r = paired_subject_bootstrap(good, half, acc, n_boot=4000, seed=0)
    # by hand: good scores 1 on every resample; half scores 1, 0.5, 0 -> difference 0, 0.5, 1
    assert (r.estimate, r.low, r.high) == (0.5, 0.0, 1.0)
    same = paired_subject_bootstrap(half, half, acc, n_boot=200)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)  # paired: nothing but zeros


def test_paired_subject_bootstrap_refuses_other_subjects():
    other = SeedPredictions.of([0, 0], [0, 0], ["A", "C"])
    with pytest.raises(ValueError, match="same test subjects"):
        paired_subject_bootstrap(two_subjects(), other, acc)


def test_holm_equals_hand_computation():
    # by hand, m = 4: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04;
    # running maximum 0.02, 0.03, 0.06, 0.06; back in the given order:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # 0.5 x 2 = 1.0, then max(1.0, 0.6): capped at 1
    assert holm([0.2]) == [0.2]


def test_mdd_paired_t_has_the_power_it_claims():
    sd, n = 0.1, 8
    mdd = mdd_paired_t(sd, n)
    # by hand: above the normal approximation (z_0.975 + z_0.8) sd / sqrt(n) = 0.0991, within 1 %
    # of the central-t approximation (t_0.975,7 + t_0.8,7) sd / sqrt(n) = 0.1153
    z = (st.norm.ppf(0.975) + st.norm.ppf(0.8)) * sd / np.sqrt(n)
    t = (st.t.ppf(0.975, n - 1) + st.t.ppf(0.8, n - 1)) * sd / np.sqrt(n)
    assert z < mdd and mdd == pytest.approx(t, rel=0.01)
    # independent check by simulation: paired t-tests of n folds with true mean mdd reject 80 %
    rng = np.random.default_rng(0)
    d = rng.normal(mdd, sd, size=(20000, n))
    rejected = st.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05
    assert rejected.mean() == pytest.approx(0.8, abs=0.012)


def test_mdd_shrinks_as_folds_or_seeds_grow():
    by_folds = [mdd_from_components(0.08, 0.06, n, 1).mdd for n in (4, 8, 16, 28)]
    by_seeds = [mdd_from_components(0.08, 0.06, 8, k).mdd for k in (1, 2, 3, 5)]
    assert all(a > b for a, b in zip(by_folds, by_folds[1:]))
    assert all(a > b for a, b in zip(by_seeds, by_seeds[1:]))


def test_detectable_difference_from_fold_seed_differences():
    # by hand: 4 folds x 2 seeds; within-fold variances 0.005, 0.005, 0.005, 0.005 (pairs 0.1 apart)
    # -> sd_seed^2 = 0.005; fold means 0.05, 0.15, 0.0, 0.1 -> var 0.0041667; minus 0.005 / 2 -> 0.0016667
    d = np.array([[0.0, 0.1], [0.1, 0.2], [-0.05, 0.05], [0.05, 0.15]])
    r = detectable_difference(d)
    assert r.sd_seed == pytest.approx(np.sqrt(0.005))
    assert r.sd_fold == pytest.approx(np.sqrt(0.0041667 - 0.0025), rel=1e-4)
    assert r.mdd == pytest.approx(mdd_paired_t(np.sqrt(0.0041667), 4), rel=1e-4)
    assert (r.n_folds, r.n_seeds) == (4, 2)
    one = detectable_difference(d[:, 0])  # one seed: the whole spread counts as fold spread
    assert one.sd_seed == 0 and one.sd_fold == pytest.approx(np.std(d[:, 0], ddof=1))


def test_mdd_refuses_designs_that_cannot_reach_the_power():
    with pytest.raises(ValueError, match="too few"):
        mdd_paired_t(0.1, 2)  # one degree of freedom: the noncentral t never gets there numerically
    with pytest.raises(ValueError, match="at least 2 folds"):
        mdd_paired_t(0.1, 1)
