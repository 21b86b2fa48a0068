"""Collect sweeps' runs from MLflow into a `tables.TableInput` (and Fig. 4 from its artifacts).

Which sweep: the latest *complete* parent run (`fdp.role=parent`, status FINISHED: every job
finished) whose `fdp.table` tag lists the table ("9", "4,5,6,7"), else the latest one of any
status (with a note); smoke parents (`fdp.smoke=true`) are skipped unless asked for. `--sweep
NAME` takes the latest parent of that name whatever its status; several names merge their runs:
one run per job key (the latest FINISHED one, else the latest), then one per (table key, seed,
fold) (the latest, with a note when two configurations compete for a cell).

Child runs are grouped by the table's configuration key (`tables.row_keys`): the variant (Tables
9, 10, 13, 14), `loss_key(lambda_d, lambda_r)` (Table 11), or the experiment (`fdp.experiment`
tag: the class setting for Tables 4-7 and 12, the direction `casme2->samm` for Table 8; runs
older than that tag fall back to their `data.*` params). So one sweep with an `experiments:`
list fills every cell of Tables 4-7, each cell from its own experiment's runs. Per key and seed,
the children's `predictions.csv` are concatenated and scored with `fdp.metrics.pooled_metrics`
(SPEC §5: pooled over folds, not averaged); `di_mse` is the mean over clips. Per-fold UF1 (mean
over seeds) feeds Table 13's paired tests; `n_params` is counted on a model built from a child's
`config.yaml` (Table 10).
"""

from __future__ import annotations

import math
import tempfile
import textwrap
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fdp.stats import SeedPredictions
from orchestrator.report.analysis import ConfigResult
from orchestrator.report.tables import TableInput, all_row_keys, loss_key, merge_sources, rerun_key, row_keys
from fdp.pooling import concat_predictions, pool_predictions
from orchestrator.track.driver import SweepTracker
from orchestrator.track.store import with_retry

if TYPE_CHECKING:
    from mlflow.entities import Run

# the sweep file that fills each table (for the "no sweep found" message)
SWEEP_FILES = {4: "sota", 5: "sota", 6: "sota", 7: "sota", 8: "cross_dataset", 9: "ablation",
               10: "backbones", 11: "loss_weights", 12: "sota", 13: "ablation", 14: "dic"}
# the data the paper's numbers are on, per table whose rows are variants (Tables 4-8 and 12: each
# cell's own experiment key)
PAPER_DATA = {9: "samm/5", 10: "samm/5", 11: "samm/5", 13: "samm/5", 14: "samm/5"}
SOURCES = {13: (9, 10), 12: (4, 5, 6, 7)}  # tables built from other tables' sweeps
EXPERIMENT_TABLES = (4, 5, 6, 7, 8, 12)  # tables whose cells are experiments (dataset/setting)


class SummaryError(RuntimeError):
    """A one-line reason why a table cannot be summarized."""


@dataclass
class SweepRuns:
    parent: "Run"
    experiment_id: str
    children: list["Run"] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.parent.data.tags.get("fdp.sweep", "?")

    @property
    def experiments(self) -> list[str]:
        """The experiment keys the sweep's spec lists (tag `fdp.experiments`; [] on older runs)."""
        return [k for k in self.parent.data.tags.get("fdp.experiments", "").split(",") if k]


def _tables_of(run: "Run") -> list[str]:
    return [t.strip() for t in run.data.tags.get("fdp.table", "").split(",") if t.strip()]


def find_parent(tracker: SweepTracker, table: int | None = None, sweep: str | None = None,
                include_smoke: bool = False, notes: list[str] | None = None) -> SweepRuns | None:
    """The parent run of a sweep, with its child runs: the latest one named `sweep` (any status),
    or the latest complete (FINISHED) one whose `fdp.table` lists `table`, else the latest such
    one of any status (noted in `notes`)."""
    exps = with_retry(tracker.client.search_experiments)
    flt = "tags.`fdp.role` = 'parent'"
    if sweep:
        flt += f" and tags.`fdp.sweep` = '{sweep}'"
    candidates: list[tuple[Run, str]] = []
    for exp in exps:
        for run in tracker.search(exp.experiment_id, flt):
            if not (include_smoke or sweep) and run.data.tags.get("fdp.smoke") == "true":
                continue
            if not sweep and table is not None and str(table) not in _tables_of(run):
                continue
            candidates.append((run, exp.experiment_id))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0].info.start_time or 0, reverse=True)
    best = candidates[0]
    if not sweep:
        done = [c for c in candidates if c[0].info.status == "FINISHED"]
        if done and done[0] is not best:
            newer = [c[0] for c in candidates if (c[0].info.start_time or 0) > (done[0][0].info.start_time or 0)]
            if notes is not None:
                for r in newer:
                    notes.append(f"newer sweep {r.data.tags.get('fdp.sweep', '?')} (parent run {r.info.run_id}, "
                                 f"{r.info.status}) skipped: not complete; `--sweep "
                                 f"{r.data.tags.get('fdp.sweep', '?')}` reads it")
            best = done[0]
        elif not done and notes is not None:
            notes.append(f"no complete sweep for Table {table}: using the latest, "
                         f"{best[0].data.tags.get('fdp.sweep', '?')} ({best[0].info.status})")
    run, eid = best
    children = tracker.search(eid, f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    return SweepRuns(run, eid, children)


def _rank(run: "Run") -> tuple[bool, int]:
    """Which of two runs of one job wins: a finished one, then the later one."""
    return run.info.status == "FINISHED", run.info.start_time or 0


def merge_runs(sweeps: Sequence[SweepRuns]) -> list["Run"]:
    """The child runs of several sweeps, one per job key: the latest FINISHED run, else the latest."""
    best: dict[str, Run] = {}
    for s in sweeps:
        for r in s.children:
            k = r.data.tags.get("fdp.job_key") or r.info.run_id
            if k not in best or _rank(r) > _rank(best[k]):
                best[k] = r
    return list(best.values())


def _of_current_data(run: "Run", sweeps: Sequence[SweepRuns], notes: list[str]) -> bool:
    """Whether a child run read the data its sweep instance is about (parent tag `fdp.data`): a
    run of an older data version never joins the pool, even if it sits under the same parent."""
    data = next((s.parent.data.tags.get("fdp.data", "") for s in sweeps
                 if s.parent.info.run_id == run.data.tags.get("mlflow.parentRunId")), "")
    fp = run.data.tags.get("fdp.data_fingerprint", "")
    if not data or not fp or fp in data.split(",") or "->" in data:
        return True
    notes.append(f"run {run.info.run_id} ({run.data.tags.get('fdp.config_label', '?')}, fold "
                 f"{run.data.tags.get('fdp.fold', '?')}) read data {fp}, not the sweep's {data}; left out")
    return False


def config_key(table: int, run: "Run") -> str:
    """The `TableInput` key a child run is filed under in `table`."""
    p, t = run.data.params, run.data.tags
    if table in EXPERIMENT_TABLES:  # FDP under the experiment's key, a method re-run beside it under its own
        if "fdp.experiment" in t:
            exp = t["fdp.experiment"]
        elif table == 8:  # runs from before experiments were tagged
            exp = f"{p.get('data.dataset', '')}->{p.get('data.test_dataset', '')}"
        else:
            exp = p.get("data.setting", "")
        return rerun_key(exp, t.get("fdp.variant") or "fdp")
    if table == 11:
        try:
            return loss_key(float(p["loss.lambda_d"]), float(p["loss.lambda_r"]))
        except (KeyError, ValueError):
            return ""
    v = t.get("fdp.variant", "")
    if t.get("fdp.control") == "shuffled_labels" and not _shuffles(v):
        return f"{v}+shuffled"  # a control of another variant (train.shuffle_labels in a grid): its own key
    return v


def _shuffles(variant: str) -> bool:
    """Whether a registered variant is itself a shuffled-label control (fdp_shuffled, ststnet_shuffled)."""
    from fdp.variants import VARIANTS

    v = VARIANTS.get(variant)
    return v is not None and bool(v.overrides.get("train.shuffle_labels"))


def count_params(tracker: SweepTracker, run: "Run") -> int | None:
    """What the run fitted: its `n_params` metric (logged with the result), else the count of its
    method (fdp.methods) for the run's `config.yaml` artifact (runs logged before that metric)."""
    import yaml

    from fdp.config import ExperimentConfig, from_dict
    from fdp.methods import get_method

    if run.data.metrics.get("n_params") is not None:
        return int(run.data.metrics["n_params"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = with_retry(tracker.client.download_artifacts, run.info.run_id, "config.yaml", tmp)
            cfg = from_dict(ExperimentConfig, yaml.safe_load(Path(path).read_text()))
        return get_method(cfg.method).params(cfg)
    except Exception:  # noqa: BLE001 - a missing/old config only loses the #params cell
        return None


def _one_run_per_cell(table: int, runs: list["Run"], sweeps: Sequence[SweepRuns],
                      notes: list[str]) -> dict[str, list["Run"]]:
    """key -> its runs, one per (seed, fold): two configurations of one cell (e.g. two merged
    sweeps with other step budgets) would otherwise be pooled as if they were more clips. Keys
    table `table` does not read are skipped, with a note."""
    keys = set(row_keys(table, reruns=True))
    sweep_of = {r.info.run_id: s.name for s in sweeps for r in s.children}
    cells: dict[tuple[str, str, str], Run] = {}
    skipped: dict[str, int] = defaultdict(int)
    for run in runs:
        k = config_key(table, run)
        if k not in keys:
            skipped[k] += 1
            continue
        cell = (k, run.data.tags.get("fdp.seed", "0"), run.data.tags.get("fdp.fold", "?"))
        other = cells.get(cell)
        if other is not None:
            keep, drop = (run, other) if _rank(run) > _rank(other) else (other, run)
            kept, dropped = (sweep_of.get(r.info.run_id, "?") for r in (keep, drop))
            notes.append(f"{k}: seed {cell[1]}, fold {cell[2]} has runs of two configurations "
                         f"({drop.data.tags.get('fdp.config_label', '?')} in sweep {dropped}, "
                         f"{keep.data.tags.get('fdp.config_label', '?')} in sweep {kept}); using the latest "
                         f"finished one, from {kept}")
            run = keep
        cells[cell] = run
    # runs of another table's experiments (sota.yaml fills Tables 4-7) are expected here
    for k, n in skipped.items():
        if k not in all_row_keys():
            notes.append(f"{n} run(s) with key {k!r} are not a row of Table {table}; skipped")
    by_key: dict[str, list[Run]] = defaultdict(list)
    for (k, _, _), run in cells.items():
        by_key[k].append(run)
    return by_key


def config_result(tracker: SweepTracker, runs: list["Run"], with_params: bool) -> ConfigResult:
    """The ConfigResult of one key's runs: per seed, the FINISHED runs' predictions pooled; the
    others listed as missing."""
    per_seed: dict[str, list[Run]] = defaultdict(list)
    missing: list[str] = []
    for r in sorted(runs, key=lambda r: (r.data.tags.get("fdp.seed", ""), r.data.tags.get("fdp.fold", ""))):
        seed = r.data.tags.get("fdp.seed", "0")
        if r.info.status == "FINISHED":
            per_seed[seed].append(r)
        else:
            err = r.data.tags.get("fdp.error", "")
            missing.append(f"seed {seed}, fold {r.data.tags.get('fdp.fold', '?')}: {r.info.status}"
                           + (f" ({err[:80]})" if err else ""))
    metrics: dict[str, list[float]] = defaultdict(list)
    folds: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seed_preds: list[SeedPredictions] = []  # per seed, for the subject bootstrap
    num_classes = 0
    for seed in sorted(per_seed, key=lambda s: int(s) if s.isdigit() else 0):
        preds = [tracker.predictions(r.info.run_id) for r in per_seed[seed]]
        c = concat_predictions(preds)
        num_classes = max(num_classes, c["num_classes"])
        if c["preds"] is not None:  # per_seed's lists are never empty
            seed_preds.append(SeedPredictions.of(c["labels"], c["preds"], c["subjects"]))
        for m, v in pool_predictions(preds).items():
            if v is not None and math.isfinite(v):
                metrics[m].append(float(v))
        for r in per_seed[seed]:
            for m in ("uf1", "acc"):
                v = r.data.metrics.get(m)
                if v is not None and math.isfinite(v):
                    folds[m][r.data.tags.get("fdp.fold", "?")].append(float(v))
    fold_metrics = {m: {f: sum(v) / len(v) for f, v in fv.items()} for m, fv in folds.items()}
    n_params = count_params(tracker, next(iter(per_seed.values()))[0]) if with_params and per_seed else None
    pooled = sum(per_seed.values(), [])
    return ConfigResult(metrics=dict(metrics), fold_metrics=fold_metrics, n_params=n_params,
                        missing=missing, predictions=seed_preds, source=run_source(pooled),
                        num_classes=num_classes, run_ids=sorted(r.info.run_id for r in pooled))


def run_source(runs: Sequence["Run"]) -> dict[str, str]:
    """Where the runs pooled into one number come from, as the tidy CSV's columns (sweep, data,
    data_fingerprint, commit with "-dirty", fdp-sweep version, smoke), each value once, joined by "; "."""
    def one(r: "Run") -> dict[str, str]:
        t = r.data.tags
        label, synthetic, fp = _data_of(r)
        commit = t.get("mlflow.source.git.commit", "")[:12]
        return {"sweep": t.get("fdp.sweep", ""), "data": ("synthetic " if synthetic else "") + label,
                "data_fingerprint": "->".join(filter(None, (fp, t.get("fdp.test_data_fingerprint", "")))),
                "commit": commit + ("-dirty" if commit and t.get("fdp.git_dirty") == "true" else ""),
                "version": t.get("fdp.version", ""), "smoke": t.get("fdp.smoke", "")}

    return merge_sources(*map(one, runs))


def collect(tracker: SweepTracker, sweep: SweepRuns | Sequence[SweepRuns], table: int,
            with_params: bool | None = None, notes: list[str] | None = None) -> dict[str, ConfigResult]:
    """key -> ConfigResult for the child runs of one sweep, or of several merged (`merge_runs`);
    keys table `table` does not read are skipped, with a note."""
    notes = [] if notes is None else notes
    sweeps = [sweep] if isinstance(sweep, SweepRuns) else list(sweep)
    runs = merge_runs(sweeps) if len(sweeps) > 1 else list(sweeps[0].children)
    runs = [r for r in runs if _of_current_data(r, sweeps, notes)]
    with_params = table == 10 if with_params is None else with_params
    by_key = _one_run_per_cell(table, runs, sweeps, notes)
    return {k: config_result(tracker, key_runs, with_params) for k, key_runs in by_key.items()}


def table_input(tracker: SweepTracker, table: int, sweep: str | Sequence[str] | None = None,
                include_smoke: bool = False, notes: list[str] | None = None,
                read: list[SweepRuns] | None = None) -> TableInput:
    """Our results for `table` from the latest matching sweep(s), or from the named sweeps merged
    (appended to `read` when given). Raises SummaryError when a table that needs runs has none."""
    notes = notes if notes is not None else []
    names = [sweep] if isinstance(sweep, str) else list(sweep or [])
    results: dict[str, ConfigResult] = {}
    sources: list[tuple[int, list[SweepRuns]]] = []
    if names:
        found = []
        for name in dict.fromkeys(names):
            f = find_parent(tracker, sweep=name, include_smoke=True)
            if f is None:
                raise SummaryError(f"no sweep named {name!r} in {tracker.uri}")
            found.append(f)
        sources = [(table, found)]
    else:
        seen: set[str] = set()
        for smoke_too in ((include_smoke,) if include_smoke else (False, True)):
            for t in SOURCES.get(table, (table,)):
                f = find_parent(tracker, table=t, include_smoke=smoke_too, notes=notes)
                if f is not None and f.parent.info.run_id not in seen:
                    seen.add(f.parent.info.run_id)
                    sources.append((t, [f]))
            if sources:
                if smoke_too and not include_smoke:
                    # e.g. right after `fdp-sweep demo`: its smoke sweep is all there is
                    notes.append(f"no full sweep for Table {table}: showing a smoke sweep (a pipeline check, "
                                 "not a result)")
                break
        if not sources:
            raise SummaryError(f"no sweep for Table {table} in {tracker.uri}: nothing of ours to fill it; run "
                               f"`fdp-sweep run sweeps/{SWEEP_FILES.get(table, '?')}.yaml` first")
    for t, found in sources:
        for f in found:
            smoke = " [smoke]" if f.parent.data.tags.get("fdp.smoke") == "true" else ""
            exps = f", experiments {', '.join(f.experiments)}" if f.experiments else ""
            notes.append(f"sweep {f.name}{smoke}: parent run {f.parent.info.run_id} ({f.parent.info.status}), "
                         f"{len(f.children)} job run(s){exps}")
        for k, res in collect(tracker, found, table, with_params=(t == 10), notes=notes).items():
            results.setdefault(k, res)
    all_found = [f for _, found in sources for f in found]
    if read is not None:
        read.extend(all_found)
    if table in EXPERIMENT_TABLES:
        used = ", ".join(f.name for f in all_found)
        for k in row_keys(table):
            if k not in results:
                notes.append(f"missing: {k}: no job run in sweep(s) {used or '(none)'}; add the experiment to "
                             f"the spec's `experiments:`, or merge a sweep that has it (--sweep A --sweep B)")
    if not results and table in (12, 13):
        raise SummaryError(f"Table {table}: no run of ours in sweep(s) "
                           f"{', '.join(f.name for f in all_found)} fills it (it tests "
                           f"Tables {', '.join(map(str, SOURCES[table]))}); run `fdp-sweep run sweeps/"
                           f"{SWEEP_FILES[table]}.yaml` first")
    lines, used = provenance(all_found, table)
    return TableInput(results, provenance=lines, data_used=used)


def _data_of(run: "Run") -> tuple[str, bool, str]:
    """(dataset/setting label as trained on, synthetic, fingerprint) of a child run."""
    from orchestrator.track.driver import dataset_name

    p, t = run.data.params, run.data.tags
    label = dataset_name(p.get("data.dataset", "?"), p.get("data.setting", "?"))
    if p.get("data.test_dataset"):
        label += f" -> {p['data.test_dataset']}"
    return label, t.get("fdp.data_synthetic") == "true", t.get("fdp.data_fingerprint", "")


def provenance(sweeps: Sequence[SweepRuns], table: int | None = None) -> tuple[list[str], str | None]:
    """Where a table's numbers come from, one line per sweep (data: dataset/setting, real or
    synthetic, fingerprint; sweep and parent run; smoke or not; steps per fold; folds run of
    folds expected; seeds; git commit and "dirty"), and the data actually used when it is not the
    paper's (for the caption: "synthetic casme2/5"), else None."""
    lines: list[str] = []
    used: dict[str, None] = {}
    off_paper = False
    machines: defaultdict[str, Counter[str]] = defaultdict(Counter)  # fdp.machine of the job runs -> sweep -> runs
    for s in sweeps:
        tags = s.parent.data.tags
        data: dict[tuple[str, bool, str], None] = {}
        for r in s.children:
            label, synthetic, fp = _data_of(r)
            data[(label, synthetic, fp)] = None
            used[("synthetic " if synthetic else "") + label] = None
            paper = PAPER_DATA.get(table or 0) or r.data.tags.get("fdp.experiment", "")
            if synthetic or (paper and label.replace(" -> ", "->") not in (paper, paper.replace("->", "/cross/"))):
                off_paper = True
        finished = [r for r in s.children if r.info.status == "FINISHED"]
        folds_run = len({(r.data.tags.get("fdp.experiment", ""), r.data.tags.get("fdp.fold")) for r in finished})
        expected = tags.get("fdp.folds_expected", "?")
        # the steps each job ran (tag fdp.steps; runs logged before it: train.steps); 0: fitted once
        ran = {r.data.tags.get("fdp.steps") or r.data.params.get("train.steps", "?") for r in s.children}
        steps = [v if v != "0" else "none (fitted once)" for v in sorted(ran, key=lambda v: (len(v), v))]
        seeds = sorted({r.data.tags.get("fdp.seed", "?") for r in s.children}, key=lambda x: (len(x), x))
        commit = tags.get("mlflow.source.git.commit", "")
        code = (f"git {commit[:12]}" + (" (dirty: uncommitted changes)" if tags.get("fdp.git_dirty") == "true" else "")
                if commit else "git commit unknown (the code did not run from a git checkout)")
        code += f", fdp-sweep {tags['fdp.version']}" if tags.get("fdp.version") else ""
        datas = "; ".join(f"{label} ({'synthetic' if syn else 'real'}), fingerprint {fp or 'unknown (run predates fingerprints)'}"
                          for label, syn, fp in data) or "no job runs"
        smoke = "yes (a pipeline check, not a result)" if tags.get("fdp.smoke") == "true" else "no"
        study = tags.get("fdp.from_search")
        tuned = f" (the holdout subjects of Optuna study {study}, which chose its values)" if study else ""
        ran_on = Counter(c.data.tags.get("fdp.machine", "") for c in s.children)
        for m, n in ran_on.items():
            machines[m][s.name] += n
        # the CPU and kernels its jobs computed with, when they agree (else the line below says who did what)
        machine = f" | machine: {next(iter(ran_on))}" if len(ran_on) == 1 and "" not in ran_on else ""
        lines.append(f"provenance: data {datas} | sweep {s.name}, parent run {s.parent.info.run_id} "
                     f"({s.parent.info.status}) | smoke: {smoke} | steps per fold: {', '.join(steps) or '?'} | "
                     f"folds: {folds_run} run of {expected} expected{tuned} | seeds: {', '.join(seeds) or '?'} | "
                     f"{code}{machine}")
    if len(machines) > 1:  # the runs pooled here computed with other CPU kernels: say which did what
        lines.append("machines differ between the runs pooled here (results can move with CPU kernels alone): "
                     + "; ".join(f"{m or 'not recorded'} ({', '.join(f'{n} run(s) of sweep {s}' for s, n in by.items())})"
                                 for m, by in machines.items()))
    return lines, (", ".join(used) if off_paper and used else None)


def summary_input(table: int, tracking_uri: str, sweep: str | Sequence[str] | None = None,
                  include_smoke: bool = False) -> tuple[SweepTracker, TableInput, list[str], list[SweepRuns]]:
    """(tracker, our results, notes, the sweeps read) of `fdp-sweep summarize --table N`."""
    tracker = SweepTracker(tracking_uri)
    notes: list[str] = []
    read: list[SweepRuns] = []
    ours = table_input(tracker, table, sweep, include_smoke, notes, read)
    for k, r in ours.results.items():
        for m in r.missing:
            notes.append(f"missing: {k}: {m}")
    return tracker, ours, notes, read


def render_summary(table: int, tracking_uri: str, sweep: str | Sequence[str] | None = None, fmt: str = "md",
                   include_smoke: bool = False) -> tuple[str, list[str]]:
    """(rendered table, notes) for `fdp-sweep summarize --table N [--sweep A --sweep B]`."""
    from orchestrator.report.tables import render_table

    _, ours, notes, _ = summary_input(table, tracking_uri, sweep, include_smoke)
    if fmt == "tidy":  # the table's notes are not in a tidy CSV: its provenance goes with the notes
        notes += ours.provenance
    return render_table(table, ours, fmt), notes


# ---------------------------------------------------------------------------------------------
# Fig. 4


def figure4(tracking_uri: str, out: Path, sweep: str | None = None, include_smoke: bool = False) -> Path:
    """Stack the `examples.png` grids (frames, ground-truth DI, predicted DI) of each variant of
    the latest Table 14 sweep (else Table 9) into one PNG, one row per variant (first fold)."""
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tracker = SweepTracker(tracking_uri)
    if sweep:
        found = find_parent(tracker, sweep=sweep, include_smoke=True)
    else:  # the first of: Table 14's sweep, Table 9's, then (if that is all) a smoke sweep of either
        tries = [(t, smoke) for smoke in ((True,) if include_smoke else (False, True)) for t in (14, 9)]
        found = next(filter(None, (find_parent(tracker, table=t, include_smoke=s) for t, s in tries)), None)
    if found is None:
        raise SummaryError(f"no Table 14 or Table 9 sweep in {tracking_uri}; run "
                           f"`fdp-sweep run sweeps/dic.yaml` first")
    first: dict[str, Run] = {}
    for r in sorted(found.children, key=lambda r: (r.data.tags.get("fdp.seed", ""), r.data.tags.get("fdp.fold", ""))):
        v = r.data.tags.get("fdp.variant", "?")
        if r.info.status == "FINISHED" and v not in first:
            first[v] = r
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        for v, r in first.items():
            try:
                p = with_retry(tracker.client.download_artifacts, r.info.run_id, "examples.png", tmp + "/" + v)
            except Exception:  # noqa: BLE001 - a variant without examples is left out
                continue
            images.append((v, r.data.tags.get("fdp.fold", "?"), mpimg.imread(p)))
    if not images:
        raise SummaryError(f"sweep {found.name}: no finished job has an examples.png artifact")
    width = max(img.shape[1] for _, _, img in images) / 100
    heights = [img.shape[0] / 100 for _, _, img in images]
    # the same provenance as under the tables, as a footer: a figure travels without its command
    lines, used = provenance([found], 14)
    footer = [w for line in lines for w in textwrap.wrap(line, width=max(60, int(width * 100 / 5.5)))]
    if used:
        footer.insert(0, f"ours on {used} (the paper's Fig. 4: SAMM)")
    foot_h = 0.14 * len(footer) + 0.1
    total_h = sum(heights) + 0.3 * len(images) + foot_h
    fig = Figure(figsize=(width, total_h), dpi=100)
    FigureCanvasAgg(fig)
    for i, (v, fold, img) in enumerate(images):
        ax = fig.add_subplot(len(images), 1, i + 1)
        ax.imshow(img)
        ax.set_axis_off()
        ax.set_title(f"{v} (fold {fold})", fontsize=9)
    fig.tight_layout(rect=(0, foot_h / total_h, 1, 1))
    fig.text(0.005, 0.005, "\n".join(footer), fontsize=6, family="monospace", va="bottom", ha="left")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
