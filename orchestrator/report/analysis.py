"""The statistics of our results, apart from how a table lays them out: per configuration the
subject-bootstrap interval of a pooled metric (`subject_interval`), per pair of configurations the
paired comparison (`comparisons`: effect with its paired subject-bootstrap interval, one-sided
Wilcoxon signed-rank over folds, Holm across the comparisons, smallest detectable difference), and
the paper's Tables 12-13 rank-sum tests recomputed from the published F1 lists
(`reproduce_significance`). Plain data in, plain data out: the renderer (`report.tables`) and the
MLflow logger both read these.

Input: one `ConfigResult` per configuration key, with per seed the pooled predictions and each
clip's subject (`fdp.stats.SeedPredictions`). The tests themselves are `fdp.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fdp.stats import (RankSumResult, SeedPredictions, WilcoxonResult, detectable_difference, holm, mean_std,
                       paired_subject_bootstrap, paired_wilcoxon, paper_rank_sum, subject_bootstrap_ci)
from orchestrator.report.reference import Reference, RefTestRow, reference

N_BOOT = 1000  # subject-bootstrap resamples per interval
ALPHA = 0.05  # intervals are 1 - ALPHA; tests and the detectable difference at ALPHA
POWER = 0.8  # power of the minimal detectable difference
INTERVAL_METRICS = ("acc", "war", "uf1", "uar")


@dataclass
class ConfigResult:
    """Our results for one configuration key, over seeds.

    `metrics` holds one pooled value per seed (fractions in [0, 1] for acc, war, uf1, uar, as
    `fdp.metrics.pooled_metrics` returns them; raw mean MSE for di_mse). `fold_metrics` holds,
    per metric, the per-fold value keyed by fold name (averaged over seeds), used by the paired
    tests of Table 13. `missing` describes jobs that did not finish (one line each).
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)  # metric -> value per seed
    fold_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> {fold: v}
    n_params: int | None = None  # trainable parameters of the model (Table 10)
    missing: list[str] = field(default_factory=list)  # e.g. "seed 1, fold 006: FAILED"
    # per seed, the pooled test predictions with each clip's subject: the subject bootstrap's input
    # (intervals and paired comparisons); empty where unknown (then no interval is printed)
    predictions: list[SeedPredictions] = field(default_factory=list)
    # where the pooled runs come from, as `TIDY_COLUMNS` names it (sweep, data, ..., commit, version, smoke)
    source: dict[str, str] = field(default_factory=dict)
    # the classes of the setting (predictions.csv's prob columns): a class no clip has and none is
    # predicted as still counts in UF1 / UAR (SPEC §5); 0 = unknown, counted from labels and preds
    num_classes: int = 0
    run_ids: list[str] = field(default_factory=list)  # the runs pooled into these numbers

    def __post_init__(self) -> None:
        for k, v in self.metrics.items():
            if isinstance(v, (int, float)):
                raise ValueError(f"metrics[{k!r}] must be a list of per-seed values, got {v!r}")
            if not all(math.isfinite(x) for x in v):
                raise ValueError(f"metrics[{k!r}] holds a non-finite value: {v!r}")

    def values(self, metric: str) -> list[float]:
        """Per-seed values of `metric` (war falls back to acc, they are equal, eq. 10)."""
        v = self.metrics.get(metric)
        if not v and metric == "war":
            v = self.metrics.get("acc")
        return list(v or [])


@dataclass(frozen=True)
class SignificanceRow:
    """One row of Table 12/13 recomputed from the published F1 lists with `paper_rank_sum`."""

    table: int
    label: str
    key: str
    paper_statistic: float
    paper_pvalue: float
    result: RankSumResult


# ---------------------------------------------------------------------------------------------
# intervals


def _metric_fn(metric: str, num_classes: int):
    from fdp.metrics import pooled_metrics

    key = "acc" if metric == "war" else metric
    return lambda y, p: pooled_metrics(y, p, num_classes)[key]


def _num_classes(res: ConfigResult) -> int:
    seen = int(max(int(max(sp.labels.max(), sp.preds.max())) for sp in res.predictions) + 1)
    return max(res.num_classes, seen)


def subject_interval(res: ConfigResult | None, metric: str, num_classes: int | None = None) -> tuple[float, float] | None:
    """95 % subject-bootstrap interval (fractions) of the pooled metric, mean over seeds; None
    without predictions or when the seeds' test subjects differ."""
    if res is None or not res.predictions or metric not in INTERVAL_METRICS:
        return None
    try:
        ci = subject_bootstrap_ci(res.predictions, _metric_fn(metric, num_classes or _num_classes(res)),
                                  n_boot=N_BOOT, alpha=ALPHA)
    except ValueError:
        return None
    return ci.low, ci.high


# ---------------------------------------------------------------------------------------------
# paired comparisons


@dataclass(frozen=True)
class Paired:
    """One configuration against another, paired by test subject (= LOSO fold), before any
    adjustment for the other comparisons of its family."""

    n_folds: int  # folds both have (the pairs of the signed-rank test)
    n_seeds: int  # seeds paired by position (the fewer of the two)
    diff: float  # pooled metric of the first minus the second's (mean over seeds), fraction
    low: float  # paired subject-bootstrap interval of `diff`
    high: float
    wilcoxon: WilcoxonResult  # one-sided signed-rank on the per-fold values (mean over seeds), H1: the first better
    mdd: float | None  # smallest difference these folds and seeds detect (None with < 2 folds)


@dataclass(frozen=True)
class Comparison:
    """FDP vs one other configuration of ours, paired by test subject (= LOSO fold)."""

    key: str
    n_folds: int  # folds both have (the pairs of the signed-rank test)
    n_seeds: int  # seeds paired by position (the fewer of the two)
    diff: float  # pooled metric of FDP minus the other's (mean over seeds), fraction
    low: float  # paired subject-bootstrap interval of `diff`
    high: float
    wilcoxon: WilcoxonResult  # one-sided signed-rank on the per-fold values (mean over seeds), H1: FDP better
    holm_p: float  # Holm-adjusted over the comparisons of one table
    mdd: float | None  # smallest difference these folds and seeds detect (None with < 2 folds)


def _per_fold(sp: SeedPredictions, fn) -> dict[str, float]:
    return {s: fn(sp.labels[sp.subjects == s], sp.preds[sp.subjects == s]) for s in sorted(set(sp.subjects))}


def compare(a: ConfigResult, b: ConfigResult, metric: str = "uf1") -> Paired | None:
    """`a` against `b`: the effect (difference of pooled `metric`) with its paired subject-bootstrap
    interval, a one-sided Wilcoxon signed-rank test over folds (H1: `a` better), and the minimal
    detectable difference from the fold-level spread of the paired differences. None when either
    has no predictions or their test subjects differ (nothing to pair)."""
    if not a.predictions or not b.predictions:
        return None
    fn = _metric_fn(metric, max(_num_classes(a), _num_classes(b)))
    try:
        ci = paired_subject_bootstrap(a.predictions, b.predictions, fn, n_boot=N_BOOT, alpha=ALPHA)
    except ValueError:  # other subjects: not paired
        return None
    k_seeds = min(len(a.predictions), len(b.predictions))
    fa, fb = ([_per_fold(sp, fn) for sp in r.predictions[:k_seeds]] for r in (a, b))
    folds = sorted(fa[0])
    d = [[fa[j][f] - fb[j][f] for j in range(k_seeds)] for f in folds]  # (folds, seeds)
    mean_a, mean_b = ({f: float(sum(x[f] for x in per) / k_seeds) for f in folds} for per in (fa, fb))
    w = paired_wilcoxon(mean_a, mean_b, alternative="greater")
    try:
        mdd = detectable_difference(d, ALPHA, POWER).mdd
    except ValueError:  # too few folds for a t-test to reach the power
        mdd = None
    return Paired(len(folds), k_seeds, ci.estimate, ci.low, ci.high, w, mdd)


def fold_signed_rank(a: ConfigResult | None, b: ConfigResult | None, metric: str = "uf1") -> WilcoxonResult | None:
    """One-sided Wilcoxon signed-rank (H1: `a` better) on the per-fold values the fold runs logged
    (`fold_metrics`, mean over seeds), paired by fold name; None without a common fold."""
    fa = a.fold_metrics.get(metric, {}) if a is not None else {}
    fb = b.fold_metrics.get(metric, {}) if b is not None else {}
    return paired_wilcoxon(fa, fb, alternative="greater") if set(fa) & set(fb) else None


def comparisons(ours: Mapping[str, ConfigResult], keys: Sequence[str], base: str = "fdp", metric: str = "uf1") -> list[Comparison]:
    """`base` against every other key in `keys` that has predictions on the same subjects
    (`compare`), with Holm's adjustment across these comparisons."""
    a = ours.get(base)
    if a is None or not a.predictions:
        return []
    found = [(k, p) for k in keys if k != base and (b := ours.get(k)) is not None
             and (p := compare(a, b, metric)) is not None]
    adj = holm([p.wilcoxon.pvalue for _, p in found]) if found else []
    return [Comparison(k, p.n_folds, p.n_seeds, p.diff, p.low, p.high, p.wilcoxon, h, p.mdd)
            for (k, p), h in zip(found, adj)]


# ---------------------------------------------------------------------------------------------
# the paper's Tables 12 and 13 from the published F1 lists


def compared_f1(ref: Reference, test: RefTestRow) -> tuple[float, list[float]]:
    """(F1 of FDP, F1 of the compared rows) of the published table column a test row names."""
    t = ref.tables[test.table]
    i = t.column(test.column)
    if test.ours_key:
        mine = t.row(test.ours_key)
        others = [r.values[i] for r in t.rows if r is not mine and r.values[i] is not None]
    else:
        mine = t.paper_row
        others = t.values(test.column, ours=False)
    if mine.values[i] is None:
        raise ValueError(f"table {test.table}: FDP has no value in column {test.column!r}")
    return float(mine.values[i]), [float(v) for v in others]


def reproduce_significance(ref: Reference | None = None) -> list[SignificanceRow]:
    """Recompute every row of the paper's Tables 12 and 13 from the published F1 lists.

    Test: one-sided Wilcoxon rank-sum (H1: FDP superior), normal approximation without tie
    correction (scipy.stats.ranksums), applied by `fdp.stats.paper_rank_sum`: FDP's single F1
    repeated once per compared method, against the distinct F1 values of the compared methods
    (methods printing "-" for F1 left out). Table 12 compares the FDP row of Tables 4–7 with the
    other methods of that column; Table 13 compares FDP's F1 with the five ablation variants of
    Table 9 ("Modules") and with the four other backbones of Table 10 ("Backbones").

    Result, to the printed precision (3 decimals / 4 significant digits): all 8 statistics and
    7 of 8 P-values match. The printed pairs are those of z = sqrt(3 n1 n2 / (n1 + n2 + 1)):
    n = 17, 4, 4, 3, 5 (Table 12) and 5, 4 (Table 13) give 4.977, 2.309, 2.309, 1.964, 2.611,
    2.611, 2.309 with n1 = n2 = n. SAMM five categories lists 13 compared F1 values, and 13 vs 13
    would give z = 4.333 (p = 7.343e-6); the printed 4.243 = sqrt(18) is exactly 13 vs 12, i.e.
    one of the 13 values is not in the second list — the duplicate 64.00 (MERSiamC3D, SLSTT)
    counted once is the only rule that needs no arbitrary choice, hence the "distinct values"
    step (it changes no other row, and which single value is dropped does not matter since FDP
    beats all). Its P-value: 1 - Phi(sqrt(18)) = 1.1045e-5 prints as 1.105e-5, the paper prints
    1.106e-5; no z that rounds to the printed 4.243 gives 1.106e-5 (that needs z <= 4.24244), so
    the last digit of that P-value is a slip in the paper. Rejected alternatives: Mann–Whitney U
    with tie correction (the repeated FDP value forms a tie group: 13 vs 13 gives z = 4.632),
    continuity correction (17 vs 17 gives 4.960), two-sided P-values (twice the printed ones).
    """
    ref = ref or reference()
    out = []
    for n in (12, 13):
        for r in ref.tests[n].rows:
            mine, others = compared_f1(ref, r)
            out.append(SignificanceRow(n, r.label, r.key, r.statistic, r.pvalue,
                                       paper_rank_sum(mine, others)))
    return out


@dataclass(frozen=True)
class RankSumRow:
    """A row of the paper's Table 12 or 13 tested on ours: our mean F1 against the F1 values the
    paper's row compares FDP with (Table 12: the published methods of that benchmark; Table 13: our
    other variants of Table 9 "Modules" or Table 10 "Backbones")."""

    table: int
    label: str  # as the paper prints it, e.g. "CASME II (Five Categories)", "Modules"
    key: str  # Table 12: the setting our runs are filed under; Table 13: "modules" / "backbones"
    f1: float | None  # ours: FDP's pooled F1, mean over seeds, percent (None: no result of ours)
    compared: tuple[str, ...]  # Table 13: our keys whose F1 FDP's is tested against; Table 12: ()
    absent: tuple[str, ...]  # Table 13: keys of the paper's row without a result of ours
    result: RankSumResult | None  # None when there is nothing to test


def mean_of(res: ConfigResult | None, metric: str) -> float | None:
    """Mean over seeds of a pooled metric (fraction), None without a value."""
    v = res.values(metric) if res is not None else []
    return mean_std(v)[0] if v else None


def rank_sum_rows(ours: Mapping[str, ConfigResult], n: int, ref: Reference | None = None) -> list[RankSumRow]:
    """Table `n` (12 or 13)'s rank-sum tests on our F1 (`fdp.stats.paper_rank_sum`, the paper's rule)."""
    ref = ref or reference()
    out = []
    for tr in ref.tests[n].rows:
        if n == 12:
            f1 = mean_of(ours.get(tr.key), "uf1")
            f1 = None if f1 is None else 100 * f1
            res = paper_rank_sum(f1, compared_f1(ref, tr)[1]) if f1 is not None else None
            out.append(RankSumRow(n, tr.label, tr.key, f1, (), (), res))
            continue
        full = mean_of(ours.get(tr.ours_key), "uf1")
        variants = [r.key for r in ref.tables[tr.table].rows if r.key != tr.ours_key]
        f1s = {k: 100 * v for k in variants if (v := mean_of(ours.get(k), "uf1")) is not None}
        f1 = None if full is None else 100 * full
        res = paper_rank_sum(f1, list(f1s.values())) if f1 is not None and f1s else None
        out.append(RankSumRow(n, tr.label, tr.key, f1, tuple(f1s), tuple(k for k in variants if k not in f1s), res))
    return out

