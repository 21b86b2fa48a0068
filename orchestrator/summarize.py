"""Collect a sweep's runs from MLflow into a `tables.TableInput` (and Fig. 4 from its artifacts).

Which sweep: the latest parent run (`fdp.role=parent`) whose `fdp.table` tag is the table (or whose
`fdp.sweep` is the name given), smoke parents (`fdp.smoke=true`) skipped unless asked for. Its
FINISHED child runs are grouped by configuration key (`tables.row_keys`): the variant (Tables 9,
10, 13, 14), `loss_key(lambda_d, lambda_r)` (Table 11), the class setting (Tables 4-7) or the
direction `casme2->samm` (Table 8). Per key and seed, the children's `predictions.csv` are
concatenated and scored with `fdp.metrics.pooled_metrics` (SPEC §5: pooled over folds, not
averaged); `di_mse` is the mean over clips. Per-fold UF1 (mean over seeds) feeds Table 13's paired
tests; `n_params` is counted on a model built from a child's `config.yaml` (Table 10).
"""

from __future__ import annotations

import math
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.tables import ConfigResult, TableInput, loss_key, row_keys
from orchestrator.tracking import SweepTracker, with_retry

if TYPE_CHECKING:
    from mlflow.entities import Run

# the sweep file that fills each table (for the "no sweep found" message)
SWEEP_FILES = {4: "sota", 5: "sota", 6: "sota", 7: "sota", 8: "cross_dataset", 9: "ablation",
               10: "backbones", 11: "loss_weights", 14: "dic"}
NO_RUNS_OK = (12, 13)  # tables printed from the published data even with no runs
SOURCES = {13: (9, 10), 12: (4, 5, 6, 7)}  # tables built from other tables' sweeps


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


def find_parent(tracker: SweepTracker, table: int | None = None, sweep: str | None = None,
                include_smoke: bool = False) -> SweepRuns | None:
    """The latest parent run of a sweep for `table` (or named `sweep`), with its child runs."""
    exps = with_retry(tracker.client.search_experiments)
    flt = "tags.`fdp.role` = 'parent'"
    if sweep:
        flt += f" and tags.`fdp.sweep` = '{sweep}'"
    elif table is not None:
        flt += f" and tags.`fdp.table` = '{table}'"
    best = None
    for exp in exps:
        for run in tracker.search(exp.experiment_id, flt, order_by=["attributes.start_time DESC"]):
            if not (include_smoke or sweep) and run.data.tags.get("fdp.smoke") == "true":
                continue
            if best is None or run.info.start_time > best[0].info.start_time:
                best = (run, exp.experiment_id)
            break  # ordered: the first kept one is this experiment's latest
    if best is None:
        return None
    run, eid = best
    children = tracker.search(eid, f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    return SweepRuns(run, eid, children)


def config_key(table: int, run: "Run") -> str:
    """The `TableInput` key a child run is filed under in `table`."""
    p, t = run.data.params, run.data.tags
    if table in (4, 5, 6, 7, 12):
        return p.get("data.setting", "")
    if table == 8:
        return f"{p.get('data.dataset', '')}->{p.get('data.test_dataset', '')}"
    if table == 11:
        try:
            return loss_key(float(p["loss.lambda_d"]), float(p["loss.lambda_r"]))
        except (KeyError, ValueError):
            return ""
    return t.get("fdp.variant", "")


def _run_config(tracker: SweepTracker, run: "Run") -> Any:
    import yaml

    from fdp.config import ExperimentConfig, from_dict

    with tempfile.TemporaryDirectory() as tmp:
        path = with_retry(tracker.client.download_artifacts, run.info.run_id, "config.yaml", tmp)
        return from_dict(ExperimentConfig, yaml.safe_load(Path(path).read_text()))


def count_params(tracker: SweepTracker, run: "Run") -> int | None:
    from fdp.model import build_model, count_parameters

    try:
        return count_parameters(build_model(_run_config(tracker, run).model))
    except Exception:  # noqa: BLE001 - a missing/old config only loses the #params cell
        return None


def collect(tracker: SweepTracker, sweep: SweepRuns, table: int, with_params: bool | None = None,
            notes: list[str] | None = None) -> dict[str, ConfigResult]:
    """key -> ConfigResult for the child runs of one sweep (keys table `table` does not read are
    skipped, with a note)."""
    keys = set(row_keys(table))
    with_params = table == 10 if with_params is None else with_params
    by_key: dict[str, list[Run]] = defaultdict(list)
    for run in sweep.children:
        k = config_key(table, run)
        if k in keys:
            by_key[k].append(run)
        elif notes is not None:
            notes.append(f"run {run.data.tags.get('fdp.config_label', run.info.run_id)}: key {k!r} "
                         f"is not a row of Table {table}; skipped")
    out: dict[str, ConfigResult] = {}
    for k, runs in by_key.items():
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
        for seed in sorted(per_seed, key=lambda s: int(s) if s.isdigit() else 0):
            pooled = tracker.pooled(r.info.run_id for r in per_seed[seed])
            for m, v in pooled.items():
                if v is not None and math.isfinite(v):
                    metrics[m].append(float(v))
            for r in per_seed[seed]:
                for m in ("uf1", "acc"):
                    v = r.data.metrics.get(m)
                    if v is not None and math.isfinite(v):
                        folds[m][r.data.tags.get("fdp.fold", "?")].append(float(v))
        fold_metrics = {m: {f: sum(v) / len(v) for f, v in fv.items()} for m, fv in folds.items()}
        n_params = None
        if with_params and any(per_seed.values()):
            n_params = count_params(tracker, next(iter(per_seed.values()))[0])
        out[k] = ConfigResult(metrics=dict(metrics), fold_metrics=fold_metrics, n_params=n_params,
                              missing=missing)
    return out


def table_input(tracker: SweepTracker, table: int, sweep: str | None = None, include_smoke: bool = False,
                notes: list[str] | None = None) -> TableInput:
    """Our results for `table` from the latest matching sweep(s). Raises SummaryError when a
    table that needs runs has none."""
    notes = notes if notes is not None else []
    results: dict[str, ConfigResult] = {}
    if sweep:
        found = find_parent(tracker, sweep=sweep, include_smoke=True)
        if found is None:
            raise SummaryError(f"no sweep named {sweep!r} in {tracker.uri}")
        sources = [(table, found)]
    else:
        sources = []
        for t in SOURCES.get(table, (table,)):
            found = find_parent(tracker, table=t, include_smoke=include_smoke)
            if found is not None:
                sources.append((t, found))
        if not sources and table not in NO_RUNS_OK:
            smoke = "" if include_smoke else " (smoke sweeps are skipped without --include-smoke)"
            raise SummaryError(f"no sweep for Table {table} in {tracker.uri}{smoke}; run "
                               f"`fdp-sweep run sweeps/{SWEEP_FILES.get(table, '?')}.yaml` first")
    for t, found in sources:
        key_table = table if table not in SOURCES else t
        smoke = " [smoke]" if found.parent.data.tags.get("fdp.smoke") == "true" else ""
        notes.append(f"sweep {found.name}{smoke}: parent run {found.parent.info.run_id}, "
                     f"{len(found.children)} job run(s)")
        for k, res in collect(tracker, found, key_table, with_params=(t == 10), notes=notes).items():
            if k in set(row_keys(table)):
                results.setdefault(k, res)
    return TableInput(results)


def render_summary(table: int, tracking_uri: str, sweep: str | None = None, fmt: str = "md",
                   include_smoke: bool = False) -> tuple[str, list[str]]:
    """(rendered table, notes) for `fdp-sweep summarize --table N`."""
    from orchestrator.tables import render_table

    tracker = SweepTracker(tracking_uri)
    notes: list[str] = []
    ours = table_input(tracker, table, sweep, include_smoke, notes)
    for k, r in ours.results.items():
        for m in r.missing:
            notes.append(f"missing: {k}: {m}")
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
    found = None
    if sweep:
        found = find_parent(tracker, sweep=sweep, include_smoke=True)
    else:
        for t in (14, 9):
            found = find_parent(tracker, table=t, include_smoke=include_smoke)
            if found is not None:
                break
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
    fig = Figure(figsize=(width, sum(heights) + 0.3 * len(images)), dpi=100)
    FigureCanvasAgg(fig)
    for i, (v, fold, img) in enumerate(images):
        ax = fig.add_subplot(len(images), 1, i + 1)
        ax.imshow(img)
        ax.set_axis_off()
        ax.set_title(f"{v} (fold {fold})", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
