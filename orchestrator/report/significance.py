"""Significance results kept on the parent runs in MLflow, computed once by the code `summarize` uses
(runs collected by `report.summarize`, statistics by `report.analysis`). Metric names: docs/tracking.md.

After a sweep (`log_sweep`: the driver calls it, inside its lease, when its jobs are done -- also
when a resumed sweep completes) its parent run receives, for what the sweep ran:

* per configuration -- its label without the seed as a metric prefix (`fdp`, `samm/3/fdp`,
  `fdp/lambda_d:10`) -- the pooled UF1 / UAR / Acc, mean over seeds, and their 95 % interval from a
  bootstrap over test subjects: `<cfg>/uf1`, `<cfg>/uf1_ci_low`, `<cfg>/uf1_ci_high`, ...;
* per comparison the sweep implies -- each other variant against the sweep's `reference` (default
  fdp) at the same experiment and grid point -- under `<cfg>/vs_<reference>/`: `uf1_delta` (the
  reference's pooled UF1 minus this one's), its paired subject-bootstrap interval
  (`uf1_delta_ci_low`, `uf1_delta_ci_high`), the one-sided signed-rank test over folds
  (`signed_rank_w`, `p`), `holm_p` (Holm across all the sweep's comparisons), `n_folds`, `n_seeds`,
  `mdd` (the smallest UF1 difference these folds and seeds detect);
* the paper's rank-sum tests of Tables 12 and 13, when the sweep feeds them (tag `fdp.table`) and
  holds every run a row compares: `table12/<setting>/rank_sum_z`, `table13/modules/p`, ...;
* `significance.json` (the same numbers, read back from the run, with the method, alpha, resamples,
  seed, the runs pooled, and what was not logged and why) and `significance.md` (the tables).

Nothing it cannot support: a configuration is logged once every job of it finished, a comparison
once both its sides are, `holm_p` once every comparison of the sweep is (it depends on the whole
family), Tables 12-13 once the sweep is complete; what is left out is said in the driver's output,
in `significance.json` and in the parent's `fdp.significance` tag and note. A metric keeps its first
value (`store.unlogged_metrics`): a resumed sweep adds what became complete, nothing twice.

`fdp-sweep summarize --log` (`log_table`) logs a table as summarize computed it to every parent run
it read: `summary/table<N>/<key>/...` metrics, `summaries/table<N>.md` and `.json`, the tag
`fdp.summary.table<N>` naming the runs it pooled (count and digest; the json lists them). A parent
that holds that table from other runs keeps it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdp.stats import holm
from orchestrator.report.analysis import (ALPHA, N_BOOT, POWER, ConfigResult, compare, comparisons, mean_of,
                                          rank_sum_rows, subject_interval)
from orchestrator.report.summarize import SOURCES, SweepRuns, collect, config_result, summary_input
from orchestrator.report.tables import MISSING, Table, TableInput, fmt_p, render, render_table
from orchestrator.track.driver import SweepTracker, metric_prefix
from orchestrator.track.store import unlogged_metrics, with_retry

if TYPE_CHECKING:
    from mlflow.entities import Run

    from orchestrator.plan.jobs import Plan
    from orchestrator.run.scheduler import SweepReport

METRICS = ("uf1", "uar", "acc")  # per configuration, each with its interval
COMPARED = "uf1"  # the metric of the paired comparisons (as in the paper's tables)
BOOT_SEED = 0  # the seed of every bootstrap (fdp.stats: seed=0), so a recomputation gives the same numbers
METHOD = {
    "interval": "percentile bootstrap over test subjects (a subject's clips stay together), pooled metric, "
                "mean over seeds (fdp.stats.subject_bootstrap_ci)",
    "effect": "reference's pooled UF1 minus the other's, mean over seeds; interval from a paired bootstrap over "
              "test subjects (fdp.stats.paired_subject_bootstrap)",
    "test": "one-sided Wilcoxon signed-rank on per-fold UF1 (mean over seeds), paired by LOSO fold, H1: the "
            "reference better (fdp.stats.paired_wilcoxon); W+ as statistic",
    "adjustment": "Holm-Bonferroni across the comparisons of the family (fdp.stats.holm)",
    "mdd": "smallest true mean UF1 difference a two-sided paired t-test over folds detects with the given power "
           "(fdp.stats.detectable_difference)",
    "rank_sum": "the paper's Tables 12-13: one-sided Wilcoxon rank-sum, normal approximation, FDP's mean F1 "
                "against the compared F1 values (fdp.stats.paper_rank_sum)",
}
SWEEP_JSON, SWEEP_MD = "significance.json", "significance.md"
SUMMARY = "summary"  # `summarize --log`'s metrics: summary/table<N>/..., apart from what the sweep itself logged


def settings() -> dict[str, Any]:
    """What every record of significance names: the method, alpha, resamples, seed, power."""
    return {"method": METHOD, "alpha": ALPHA, "resamples": N_BOOT, "seed": BOOT_SEED, "power": POWER,
            "metric": COMPARED}


# ---------------------------------------------------------------------------------------------
# the configurations of a sweep, and which comparisons it implies


def cell_label(config_label: str) -> str:
    """A configuration over its seeds: 'fdp|lambda_d=10|seed0' -> 'fdp|lambda_d=10'."""
    parts = config_label.split("|")
    return "|".join(parts[:-1] if len(parts) > 1 and re.fullmatch(r"seed\d+", parts[-1]) else parts)


@dataclass
class Cell:
    """One configuration of a sweep over all its seeds: what it ran, and where its reference is."""

    label: str  # "fdp", "samm/3|fdp", "fdp|lambda_d=10"
    variant: str
    jobs: list[str] = field(default_factory=list)  # job keys (every seed and fold)

    @property
    def context(self) -> tuple[str, ...]:
        """The label without the variant: its experiment and grid point (what a comparison holds fixed)."""
        parts = self.label.split("|")
        if self.variant in parts:
            parts.remove(self.variant)
        return tuple(parts)

    @property
    def prefix(self) -> str:
        return metric_prefix(self.label)


def plan_cells(plan: "Plan") -> dict[str, Cell]:
    """label -> Cell of every configuration of a plan, in plan order."""
    cells: dict[str, Cell] = {}
    for j in plan.jobs:
        label = cell_label(j.config_label)
        cells.setdefault(label, Cell(label, j.variant)).jobs.append(j.key)
    return cells


def implied_pairs(cells: Mapping[str, Cell], reference: str) -> list[tuple[Cell, Cell]]:
    """(reference, other) for every configuration whose experiment and grid point also ran the reference."""
    refs = {c.context: c for c in cells.values() if c.variant == reference}
    return [(refs[c.context], c) for c in cells.values() if c.variant != reference and c.context in refs]


# ---------------------------------------------------------------------------------------------
# after a sweep


def log_sweep(plan: "Plan", report: "SweepReport", tracking_uri: str) -> list[str]:
    """Compute what the sweep's finished runs support and log what its parent run does not hold yet;
    returns the lines for the driver's output."""
    tracker = SweepTracker(tracking_uri)
    parent_id, exp_id = report.parent_run_id, report.experiment_id
    cells = plan_cells(plan)
    if not cells:
        return []
    reference = plan.spec.reference
    children = tracker.children(exp_id, parent_id)
    stats = sweep_statistics(tracker, cells, children, reference)
    parent = with_retry(tracker.client.get_run, parent_id)
    tables = _table_tests(tracker, parent, exp_id, list(children.values()), stats) if stats["complete"] else []
    values = {**stats["values"], **{k: v for t in tables for k, v in t["values"].items()}}
    new = unlogged_metrics(tracker.client, parent_id, values)
    if new:
        with_retry(tracker.client.log_batch, parent_id, metrics=new)
    stored = with_retry(tracker.client.get_run, parent_id).data.metrics
    record = {"sweep": plan.spec.name, "parent_run_id": parent_id, "reference": reference, **settings(),
              **_read_back(stats, stored), "tables": [_tests_read_back(t, stored) for t in tables if t["rows"]],
              "not_logged": stats["not_logged"] + stats["holm_note"] + [n for t in tables for n in t["not_logged"]]}
    status = _status(record, stats)
    have = {f.path for f in with_retry(tracker.client.list_artifacts, parent_id)}
    if new or SWEEP_JSON not in have:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / SWEEP_JSON).write_text(json.dumps(record, indent=1, sort_keys=False))
            (d / SWEEP_MD).write_text(sweep_markdown(record))
            with_retry(tracker.client.log_artifacts, parent_id, str(d))
    with_retry(tracker.client.set_tag, parent_id, "fdp.reference", reference)
    with_retry(tracker.client.set_tag, parent_id, "fdp.significance", status[:5000])
    with_retry(tracker.client.set_tag, parent_id, "mlflow.note.content",
               f"**Significance** ({SWEEP_MD}, {SWEEP_JSON}): {status}"
               + ("\n" if record["not_logged"] else "") + "".join(f"\n- not logged: {n}" for n in record["not_logged"]))
    lines = [f"significance: {status}; " + (f"{len(new)} metric(s) logged on parent run {parent_id}" if new
                                             else f"nothing new for parent run {parent_id} (logged before)")]
    return lines + [f"significance: not logged: {n}" for n in record["not_logged"]]


def sweep_statistics(tracker: SweepTracker, cells: Mapping[str, Cell], children: Mapping[str, "Run"],
                     reference: str) -> dict[str, Any]:
    """The numbers a sweep's finished runs support (`children`: job key -> run): {"values": metric ->
    value, "configurations", "comparisons", "not_logged", "holm_note", "complete"}."""
    results: dict[str, ConfigResult] = {}
    not_logged: list[str] = []
    configurations: dict[str, dict[str, Any]] = {}
    values: dict[str, float] = {}
    for c in cells.values():
        runs = [children[k] for k in c.jobs if k in children]
        done = [r for r in runs if r.info.status == "FINISHED"]
        if len(done) < len(c.jobs):
            why = [f"fold {r.data.tags.get('fdp.fold', '?')} seed {r.data.tags.get('fdp.seed', '?')}: {r.info.status}"
                   for r in runs if r.info.status != "FINISHED"]
            if len(runs) < len(c.jobs):
                why.append(f"{len(c.jobs) - len(runs)} job(s) never started")
            not_logged.append(f"{c.label}: {len(done)} of {len(c.jobs)} job(s) finished ({'; '.join(why)}); its interval and "
                              "every comparison with it wait for the rest")
            continue
        res = results[c.label] = config_result(tracker, done, False)
        mine = {}
        for m in METRICS:
            v = mean_of(res, m)
            if v is None:
                continue
            mine[m] = v
            ci = subject_interval(res, m)
            if ci is not None:
                mine[f"{m}_ci_low"], mine[f"{m}_ci_high"] = ci
        if not mine:
            not_logged.append(f"{c.label}: no class predictions (no MER head): no UF1 / UAR / Acc to test")
        values.update({f"{c.prefix}/{k}": v for k, v in mine.items()})
        configurations[c.label] = {"prefix": c.prefix, "variant": c.variant, "seeds": len(res.predictions) or
                                   len(res.values("uf1")), "folds": len(res.fold_metrics.get("uf1", {})),
                                   "runs": res.run_ids, "metrics": list(mine)}
    pairs = implied_pairs(cells, reference)
    found, waiting = [], []
    for ref, other in pairs:
        name = f"{other.label} vs {ref.label}"
        if ref.label not in results or other.label not in results:
            waiting.append(name)
            not_logged.append(f"{name}: a comparison needs both sides complete")
            continue
        p = compare(results[ref.label], results[other.label], COMPARED)
        if p is None:
            not_logged.append(f"{name}: not computable (a side without class predictions, or other test subjects)")
            continue
        found.append((ref, other, p))
    adj = holm([p.wilcoxon.pvalue for *_, p in found]) if found and not waiting else [None] * len(found)
    comps = []
    for (ref, other, p), h in zip(found, adj):
        prefix = f"{other.prefix}/vs_{reference}"
        mine = {"uf1_delta": p.diff, "uf1_delta_ci_low": p.low, "uf1_delta_ci_high": p.high,
                "signed_rank_w": p.wilcoxon.statistic, "p": p.wilcoxon.pvalue, "n_folds": p.n_folds,
                "n_seeds": p.n_seeds}
        if p.mdd is not None:
            mine["mdd"] = p.mdd
        if h is not None:
            mine["holm_p"] = h
        values.update({f"{prefix}/{k}": float(v) for k, v in mine.items()})
        comps.append({"configuration": other.label, "reference": ref.label, "prefix": prefix, "metrics": list(mine)})
    holm_note = ([f"holm_p: Holm's adjustment is over all {len(pairs)} comparison(s) of the sweep; it waits for "
                  f"{', '.join(waiting)}"] if waiting and found else [])
    return {"values": values, "configurations": configurations, "comparisons": comps, "not_logged": not_logged,
            "holm_note": holm_note, "complete": len(results) == len(cells), "family": len(pairs)}


def _read_back(stats: dict[str, Any], stored: Mapping[str, float]) -> dict[str, Any]:
    """The configurations and comparisons with the values the parent run holds (which are the ones
    computed now, unless an earlier invocation logged them: a metric keeps its first value)."""
    confs = {label: {**{k: v for k, v in c.items() if k != "metrics"},
                     **{m: stored.get(f"{c['prefix']}/{m}") for m in c["metrics"]}}
             for label, c in stats["configurations"].items()}
    comps = [{**{k: v for k, v in c.items() if k != "metrics"},
              **{m: stored.get(f"{c['prefix']}/{m}") for m in c["metrics"]}} for c in stats["comparisons"]]
    for c in comps:
        for k in ("n_folds", "n_seeds"):
            c[k] = int(c[k]) if c.get(k) is not None else None
    return {"configurations": confs, "comparisons": comps, "family": stats["family"]}


def _status(record: dict[str, Any], stats: dict[str, Any]) -> str:
    n, k = len(record["configurations"]), len(record["comparisons"])
    holm = "Holm over the whole family" if record["comparisons"] and not stats["holm_note"] else "no Holm yet"
    if stats["complete"] and not stats["holm_note"]:
        return f"complete: {n} configuration(s), {k} comparison(s)" + (f", {holm}" if k else "")
    return f"partial: {n} configuration(s) and {k} of {stats['family']} comparison(s) logged, {holm}"


# ---------------------------------------------------------------------------------------------
# Tables 12 and 13 (the paper's rank-sum tests), and one table as summarize computed it


def runs_tag(run_ids: Sequence[str]) -> str:
    """`fdp.summary.table<N>`: how many runs a table pooled and a digest of their ids."""
    ids = sorted(set(run_ids))
    return f"{len(ids)} runs, sha256 {hashlib.sha256(','.join(ids).encode()).hexdigest()[:12]}"


def _pooled_runs(ours: Mapping[str, ConfigResult], keys: Sequence[str] | None = None) -> list[str]:
    return sorted({r for k, res in ours.items() if keys is None or k in keys for r in res.run_ids})


def _table_tests(tracker: SweepTracker, parent: "Run", exp_id: str, children: list["Run"],
                 stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The rank-sum tests of Tables 12 / 13 that a complete sweep feeds (its `fdp.table` tag names one
    of their source tables) and holds every run of (Table 13: all the paper's variants of the row)."""
    tables = {t.strip() for t in parent.data.tags.get("fdp.table", "").split(",")}
    out = []
    for n in (12, 13):
        if not tables & {str(s) for s in SOURCES[n]}:
            continue
        results = collect(tracker, SweepRuns(parent, exp_id, children), n, with_params=False, notes=[])
        out.append(_rank_sum_part(n, results, stats_only=True))
    return out


def _rank_sum_part(n: int, results: Mapping[str, ConfigResult], stats_only: bool = False,
                   scope: str = "") -> dict[str, Any]:
    """Table n's rank-sum rows (12, 13) as metrics `<scope>table<n>/<row key>/rank_sum_z` and `.../p`,
    with the rows that cannot be tested said why (`stats_only`, after a sweep: only rows it half has)."""
    values: dict[str, float] = {}
    rows, not_logged, used = [], [], []
    for r in rank_sum_rows(results, n):
        prefix = f"{scope}table{n}/{metric_prefix(r.key)}"
        if r.result is None or (n == 13 and r.absent):
            why = "no F1 of ours" if r.f1 is None else f"no result of ours for {', '.join(r.absent)}"
            if not stats_only or (r.f1 is not None and (n == 12 or r.compared)):  # a sweep: only what it half has
                not_logged.append(f"Table {n} {r.label}: {why}")
            continue
        values.update({f"{prefix}/rank_sum_z": r.result.statistic, f"{prefix}/p": r.result.pvalue})
        rows.append({"table": n, "row": r.label, "key": r.key, "prefix": prefix, "f1": r.f1,
                     "compared": list(r.compared), "n_ours": r.result.n_ours, "n_others": r.result.n_others})
        used += [r.key] if n == 12 else ["fdp", *r.compared]
    return {"table": n, "values": values, "rows": rows, "not_logged": not_logged, "runs": _pooled_runs(results, used)}


def _tests_read_back(t: dict[str, Any], stored: Mapping[str, float]) -> dict[str, Any]:
    return {"table": t["table"], "runs": t["runs"], "rows": [
        {**r, "rank_sum_z": stored.get(f"{r['prefix']}/rank_sum_z"), "p": stored.get(f"{r['prefix']}/p")}
        for r in t["rows"]]}


def table_statistics(n: int, ours: TableInput) -> dict[str, Any]:
    """What `summarize --table n` computed, as metrics under `table<n>/`: per key the pooled Acc / UF1 /
    UAR (mean over seeds) with their intervals and the mean DI MSE; Tables 9, 10, 13 the paired
    comparisons against fdp (Holm over the table's comparisons); Tables 12, 13 the rank-sum tests.
    Keys with jobs missing, and whatever involves them, are left out and said."""
    results = {k: r for k, r in ours.results.items() if not r.missing}
    not_logged = [f"{k}: {len(r.missing)} job(s) missing ({'; '.join(r.missing[:3])}); left out"
                  for k, r in ours.results.items() if r.missing]
    values: dict[str, float] = {}
    keys: dict[str, dict[str, Any]] = {}
    for k, res in results.items():
        prefix = f"{SUMMARY}/table{n}/{metric_prefix(k)}"
        mine = {}
        for m in METRICS:
            if (v := mean_of(res, m)) is not None:
                mine[m] = v
                if (ci := subject_interval(res, m)) is not None:
                    mine[f"{m}_ci_low"], mine[f"{m}_ci_high"] = ci
        if (v := mean_of(res, "di_mse")) is not None:
            mine["di_mse"] = v
        values.update({f"{prefix}/{m}": v for m, v in mine.items()})
        keys[k] = {"prefix": prefix, "seeds": len(res.values("uf1") or res.values("di_mse")), "runs": res.run_ids,
                   "metrics": list(mine)}
    comps = []
    if n in (9, 10, 13) and "fdp" in results:
        for c in comparisons(results, list(results), base="fdp"):
            prefix = f"{SUMMARY}/table{n}/{metric_prefix(c.key)}/vs_fdp"
            mine = {"uf1_delta": c.diff, "uf1_delta_ci_low": c.low, "uf1_delta_ci_high": c.high,
                    "signed_rank_w": c.wilcoxon.statistic, "p": c.wilcoxon.pvalue, "holm_p": c.holm_p,
                    "n_folds": c.n_folds, "n_seeds": c.n_seeds, **({"mdd": c.mdd} if c.mdd is not None else {})}
            values.update({f"{prefix}/{m}": float(v) for m, v in mine.items()})
            comps.append({"configuration": c.key, "reference": "fdp", "prefix": prefix, "metrics": list(mine)})
    tests = _rank_sum_part(n, results, scope=f"{SUMMARY}/") if n in (12, 13) else {"values": {}, "rows": [], "not_logged": []}
    values.update(tests["values"])
    return {"values": values, "keys": keys, "comparisons": comps, "rank_sum": tests["rows"],
            "not_logged": not_logged + tests["not_logged"], "runs": _pooled_runs(results)}


def render_and_log(n: int, tracking_uri: str, sweep: str | Sequence[str] | None = None, fmt: str = "md",
                   include_smoke: bool = False) -> tuple[str, list[str]]:
    """`fdp-sweep summarize --table N --log`: `summarize.render_summary`'s (table, notes), the table's
    statistics logged to the parent runs it read (`log_table`), its lines among the notes."""
    tracker, ours, notes, read = summary_input(n, tracking_uri, sweep, include_smoke)
    if fmt == "tidy":
        notes += ours.provenance
    return render_table(n, ours, fmt), notes + log_table(tracker, n, ours, read)


def log_table(tracker: SweepTracker, n: int, ours: TableInput, sweeps: Sequence[SweepRuns]) -> list[str]:
    """`summarize --log`: table n's statistics (`table_statistics`) onto every parent run it read, with
    the table as printed (`summaries/table<n>.md`) and its record (`.json`); lines for the terminal."""
    stats = table_statistics(n, ours)
    tag, name = runs_tag(stats["runs"]), f"summaries/table{n}"
    lines = []
    for s in sweeps:
        pid = s.parent.info.run_id
        run = with_retry(tracker.client.get_run, pid)
        had = run.data.tags.get(f"fdp.summary.table{n}")
        if had is not None and had != tag:
            lines.append(f"log: parent run {pid} ({s.name}) already holds Table {n} from other runs ({had}); "
                         f"this table pools {tag}: not logged again (a metric keeps one value)")
            continue
        new = unlogged_metrics(tracker.client, pid, stats["values"])
        if new:
            with_retry(tracker.client.log_batch, pid, metrics=new)
        with_retry(tracker.client.set_tag, pid, f"fdp.summary.table{n}", tag)
        stored = with_retry(tracker.client.get_run, pid).data.metrics
        record = {"table": n, "parent_runs": [x.parent.info.run_id for x in sweeps],
                  "sweeps": [x.name for x in sweeps], **settings(), "runs": stats["runs"],
                  "keys": {k: {**{f: v for f, v in c.items() if f != "metrics"},
                               **{m: stored.get(f"{c['prefix']}/{m}") for m in c["metrics"]}}
                           for k, c in stats["keys"].items()},
                  "comparisons": [{**{f: v for f, v in c.items() if f != "metrics"},
                                   **{m: stored.get(f"{c['prefix']}/{m}") for m in c["metrics"]}}
                                  for c in stats["comparisons"]],
                  "rank_sum": _tests_read_back({"table": n, "runs": stats["runs"], "rows": stats["rank_sum"]},
                                               stored)["rows"],
                  "not_logged": stats["not_logged"]}
        have = {f.path for f in with_retry(tracker.client.list_artifacts, pid, "summaries")}
        if new or f"{name}.json" not in have:
            with tempfile.TemporaryDirectory() as tmp:
                d = Path(tmp)
                (d / f"table{n}.json").write_text(json.dumps(record, indent=1))
                (d / f"table{n}.md").write_text(render_table(n, ours, "md"))
                with_retry(tracker.client.log_artifacts, pid, str(d), "summaries")
        lines.append(f"log: Table {n} on parent run {pid} ({s.name}): " + (
            f"{len(new)} metric(s) under table{n}/, {name}.md, {name}.json; tag fdp.summary.table{n} = {tag}"
            if new else "already there (nothing logged twice)"))
    return lines + [f"log: not logged: {x}" for x in stats["not_logged"]]


# ---------------------------------------------------------------------------------------------
# significance.md


def _pct(x: float | None, sign: bool = False) -> str:
    return MISSING if x is None else (f"{100 * x:+.2f}" if sign else f"{100 * x:.2f}")


def _with_ci(c: Mapping[str, Any], m: str, sign: bool = False) -> str:
    if c.get(m) is None:
        return MISSING
    lo, hi = c.get(f"{m}_ci_low"), c.get(f"{m}_ci_high")
    ci = "" if lo is None or hi is None else f" [{_pct(lo, sign)}, {_pct(hi, sign)}]"
    return _pct(c[m], sign) + ci


def sweep_markdown(record: Mapping[str, Any]) -> str:
    """significance.md: the sweep's configurations with intervals, its comparisons, Tables 12-13's
    rank-sum rows, and the notes (method, alpha, resamples, seed, what was not logged)."""
    level = f"{100 * (1 - record['alpha']):g} %"
    confs = Table(0, f"sweep {record['sweep']}: pooled metrics with {level} subject-bootstrap intervals (%)",
                  ["Configuration", "Metric prefix", "Seeds", "Folds", "UF1 [CI]", "UAR [CI]", "Acc [CI]"],
                  [[label, c["prefix"], str(c["seeds"]), str(c["folds"])] + [_with_ci(c, m) for m in METRICS]
                   for label, c in record["configurations"].items()], n_text=2)
    comps = Table(0, f"paired comparisons against the reference ({record['reference']}), UF1",
                  ["Comparison", "Metric prefix", "Folds", "Seeds", f"Δ UF1 (pp) [{level} CI]", "Signed-rank W+",
                   "P (one-sided)", "Holm P", "MDD (pp)"],
                  [[f"{c['reference']} vs {c['configuration']}", c["prefix"], str(c["n_folds"]), str(c["n_seeds"]),
                    _with_ci(c, "uf1_delta", sign=True), MISSING if c.get("signed_rank_w") is None
                    else f"{c['signed_rank_w']:.1f}", fmt_p(c.get("p")), fmt_p(c.get("holm_p")), _pct(c.get("mdd"))]
                   for c in record["comparisons"]], n_text=2)
    tests = Table(0, "the paper's rank-sum tests (Tables 12-13) on ours",
                  ["Table", "Row", "Metric prefix", "Ours F1 (%)", "n", "Statistic z", "P (one-sided)"],
                  [[str(r["table"]), r["row"], r["prefix"], f"{r['f1']:.2f}", f"{r['n_ours']} vs {r['n_others']}",
                    f"{r['rank_sum_z']:.3f}", fmt_p(r["p"])] for t in record["tables"] for r in t["rows"]], n_text=3)
    m = record["method"]
    notes = [f"Intervals: {m['interval']}; {record['resamples']} resamples, seed {record['seed']}, alpha "
             f"{record['alpha']:g}.",
             f"Δ: {m['effect']}. Test: {m['test']}. Holm P: {m['adjustment']}, over the sweep's "
             f"{record['family']} comparison(s). MDD: {m['mdd']}, power {record['power']:g}."]
    notes += [f"Not logged: {n}" for n in record["not_logged"]]
    parts = [t for t in (confs, comps, tests) if t.rows]
    if not parts:
        return "\n".join(["No significance results yet.", ""] + [f"- {n}" for n in notes]) + "\n"
    parts[-1].notes = notes
    text = "\n".join(render(t, "md") for t in parts)
    return re.sub(r"^\*\*Table 0\.\*\* ", "### ", text, flags=re.M)
