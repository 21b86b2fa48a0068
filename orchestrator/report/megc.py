"""`fdp-sweep summarize --table megc`: the MEGC2019 composite evaluation (CDE) from tracked runs.

One set of predictions gives every cell: the predictions of all folds of one configuration and
seed are concatenated, then UF1 / UAR (SPEC §5) are computed over all clips (composite) and over
the clips of each database (the clips' subjects read `<database>/<subject>`, `fdp.data.merged`).
Published numbers (orchestrator/report/reference/megc2019.yaml) are printed beside ours.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fdp.data.merged import database_of
from fdp.metrics import pooled_metrics
from fdp.stats import mean_std
from orchestrator.report.analysis import ConfigResult
from orchestrator.report.tables import MISSING, Table, TableInput, render, tidy_cell, tidy_csv, with_provenance
from fdp.pooling import concat_predictions

MEGC_COLUMNS = ("composite", "smic", "casme2", "samm")
_TITLES = {"composite": "Composite", "smic": "SMIC", "casme2": "CASME II", "samm": "SAMM"}
REFERENCE = Path(__file__).with_name("reference") / "megc2019.yaml"
EXPERIMENT = "composite/3"  # the experiment key (setting) composite runs are filed under


def per_database(predictions: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{"composite" | database: pooled metrics} from `read_predictions` dicts of one configuration
    and seed: concatenated first, then split by the database of each clip's subject."""
    c = concat_predictions(predictions)
    labels, preds, subjects, k = c["labels"], c["preds"], c["subjects"], c["num_classes"]
    out = {"composite": pooled_metrics(labels, preds, k)}
    for db in sorted({database_of(s) for s in subjects} - {""}):
        idx = [i for i, s in enumerate(subjects) if database_of(s) == db]
        out[db] = pooled_metrics([labels[i] for i in idx], [preds[i] for i in idx], k)
    return out


@dataclass
class MegcRow:
    label: str  # configuration label (variant, grid point, ...)
    variant: str = ""  # the variant it ran (a published method's `rerun:` names it)
    seeds: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # seed -> column -> metrics
    missing: list[str] = field(default_factory=list)
    source: dict[str, str] = field(default_factory=dict)  # `orchestrator.report.summarize.run_source`

    def cell(self, column: str, metric: str) -> str:
        vals = [m[column][metric] for m in self.seeds.values() if column in m]
        if not vals:
            return MISSING
        mean, std = mean_std([100 * v for v in vals])
        return f"{mean:.2f}" if len(vals) == 1 or not math.isfinite(std) else f"{mean:.2f} ± {std:.2f}"


RERUN_PROTOCOL = "re-run here: model after the last step"  # as tables.RERUN_PROTOCOL


def build_megc_table(rows: list[MegcRow], ref: dict[str, Any] | None = None) -> Table:
    """The published methods, each with its protocol and, right below it, the re-run of the same
    method where one ran here (`rerun:` in megc2019.yaml names the variant); then our other rows."""
    ref = ref or yaml.safe_load(REFERENCE.read_text())
    header = ["Method", "Protocol"] + [f"{_TITLES[c]} {m}" for c in MEGC_COLUMNS for m in ("UF1", "UAR")]

    def ours(r: MegcRow) -> list[str]:
        return [f"{r.label} (re-run here)", RERUN_PROTOCOL] + [r.cell(c, k) for c in MEGC_COLUMNS
                                                               for k in ("uf1", "uar")]

    body, placed = [], set()
    for m in ref["methods"]:
        body.append([m["method"], m.get("protocol", "as published (selection not stated)")]
                    + [f"{100 * m[k][c]:.2f}" if m[k].get(c) is not None else MISSING
                       for c in MEGC_COLUMNS for k in ("uf1", "uar")])
        for r in rows:
            if m.get("rerun") and r.variant == m["rerun"]:
                body.append(ours(r))
                placed.add(r.label)
    body += [ours(r) for r in rows if r.label not in placed]
    notes = [f"Published: {m['method']} from {m['source']}." for m in ref["methods"]]
    notes.append("Ours: predictions of all LOSO folds concatenated, then UF1 (macro F1 over negative / "
                 "positive / surprise) and UAR, over all clips and over each database's clips; "
                 "mean ± std over seeds where there are several; percent.")
    for r in rows:
        notes += [f"missing: {r.label}: {m}" for m in r.missing]
    return Table(number="MEGC2019", caption="Composite database evaluation (CASME II + SAMM + SMIC, 3 classes, "  # type: ignore[arg-type]
                 "LOSO over all subjects), UF1 / UAR %.", header=header, rows=body,
                 groups=[("", 2)] + [(_TITLES[c], 2) for c in MEGC_COLUMNS], notes=notes, n_text=2)


def megc_tidy(rows: list[MegcRow], ref: dict[str, Any] | None = None) -> list[dict[str, object]]:
    """The MEGC table as tidy rows (`tables.tidy_cell`, metric "uf1@samm"): the published methods'
    values as `published`, then ours, mean over seeds."""
    ref = ref or yaml.safe_load(REFERENCE.read_text())
    out = [tidy_cell("megc", m["method"], f"{k}@{c}", None, 100 * m[k][c])
           for m in ref["methods"] for c in MEGC_COLUMNS for k in ("uf1", "uar") if m[k].get(c) is not None]
    for r in rows:
        res = ConfigResult({f"{k}@{c}": [s[c][k] for s in r.seeds.values() if c in s]
                            for c in MEGC_COLUMNS for k in ("uf1", "uar")}, source=r.source)
        out += [tidy_cell("megc", r.label, m, res) for m in res.metrics]
    return out


def collect_megc(tracker: Any, children: list[Any]) -> list[MegcRow]:
    """MegcRows from the child runs of a composite sweep (FINISHED runs pooled per configuration
    and seed; the others listed as missing)."""
    from orchestrator.report.summarize import run_source

    by_label: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    rows: dict[str, MegcRow] = {}
    for r in children:
        t = r.data.tags
        if t.get("fdp.experiment", EXPERIMENT) != EXPERIMENT and r.data.params.get("data.dataset") != "composite":
            continue
        # one row per configuration; its seeds are the row's samples
        label = "|".join(p for p in t.get("fdp.config_label", t.get("fdp.variant", "?")).split("|")
                         if not p.startswith("seed")) or "?"
        row = rows.setdefault(label, MegcRow(label, t.get("fdp.variant", "")))
        if r.info.status == "FINISHED":
            by_label[label][t.get("fdp.seed", "0")].append(r)
        else:
            row.missing.append(f"seed {t.get('fdp.seed', '0')}, fold {t.get('fdp.fold', '?')}: {r.info.status}")
    for label, seeds in by_label.items():
        rows[label].source = run_source(sum(seeds.values(), []))
        for seed, runs in seeds.items():
            preds = [tracker.predictions(r.info.run_id) for r in runs]
            if preds and all(p["preds"] is not None for p in preds):
                rows[label].seeds[seed] = per_database(preds)
    return [rows[k] for k in sorted(rows)]


def render_megc(tracking_uri: str, sweep: str | None = None, fmt: str = "md",
                include_smoke: bool = False) -> tuple[str, list[str]]:
    """(rendered MEGC table, notes) from the latest composite sweep (`table: megc`), or `sweep`."""
    from orchestrator.report.summarize import SummaryError, find_parent, provenance
    from orchestrator.track.driver import SweepTracker

    tracker = SweepTracker(tracking_uri)
    notes: list[str] = []
    found = find_parent(tracker, table="megc", sweep=sweep, include_smoke=include_smoke, notes=notes)  # type: ignore[arg-type]
    if found is None:
        hint = "" if include_smoke else " (a --smoke sweep is read with --include-smoke)"
        raise SummaryError(f"no composite sweep tracked at {tracking_uri}{hint}: run "
                           "`fdp-sweep run sweeps/composite.yaml` first")
    rows = collect_megc(tracker, found.children)
    if not any(r.seeds for r in rows):
        raise SummaryError(f"sweep {found.name} (parent run {found.parent.info.run_id}) has no finished composite run")
    notes.append(f"sweep {found.name}, parent run {found.parent.info.run_id}"
                 + (" (smoke: a pipeline check, not a result)" if found.parent.data.tags.get("fdp.smoke") == "true" else ""))
    if fmt == "tidy":
        return tidy_csv(megc_tidy(rows)), notes + provenance([found])[0]
    lines, used = provenance([found])  # the same provenance lines as under the paper's tables
    table = with_provenance(build_megc_table(rows), TableInput(provenance=lines, data_used=used))
    return render(table, fmt), notes
