"""`fdp-sweep summarize --table protocol`: per method, the honest number beside what the published
protocol would report from the same training (MEB's Table 3 in structure; SPEC §9).

Honest: the predictions of the model after the last step of every fold, pooled (SPEC §5), with a
95 % interval from a bootstrap over test subjects. Test-selected (inflated): per fold, the
predictions of the step whose TEST-subject score was best by the named metric (fdp.test_selected;
recorded only when the sweep asked for it by name), pooled the same way; the paired difference
test-selected minus honest with its paired subject-bootstrap interval; and the number the authors'
FDP code prints: weighted F1 per fold at the selected step, averaged over folds. Published rows
(orchestrator/report/reference/protocol.yaml) are printed beside the re-run row of the same method.
Every test-selected cell, tidy row and header carries the label `fdp.test_selected.LABEL`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fdp.metrics import pooled_metrics, weighted_f1
from fdp.stats import SeedPredictions, mean_std, paired_subject_bootstrap, subject_bootstrap_ci
from fdp.test_selected import LABEL, METRIC_NAMES
from orchestrator.report.tables import MISSING, Table, TableInput, render, tidy_csv, with_provenance
from orchestrator.track.test_selected import ARTIFACT, PREFIX, read_predictions

REFERENCE = Path(__file__).with_name("reference") / "protocol.yaml"
N_BOOT = 1000  # subject-bootstrap resamples per interval
ALPHA = 0.05
TABLE = "protocol"  # the `table:` of a sweep file this summary reads (sweeps/protocol.yaml)


@dataclass
class ProtocolRow:
    """One configuration of ours (its label without the seed), over seeds."""

    label: str
    variant: str
    method: str = ""  # what fitted it (fdp.methods; tag fdp.method)
    num_classes: int = 0
    every: int = 0  # steps between the test evaluations ("" when none were recorded)
    honest: list[SeedPredictions] = field(default_factory=list)  # per seed, pooled over folds
    # selection metric -> per seed, the chosen steps' predictions, in the order of `honest`
    selected: dict[str, list[SeedPredictions]] = field(default_factory=dict)
    fold_mean: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # metric -> per seed {acc, wf1}
    missing: list[str] = field(default_factory=list)
    source: dict[str, str] = field(default_factory=dict)


def _metric_fn(metric: str, m: int):
    return lambda y, p: pooled_metrics(y, p, m)[metric]


def _cell(seeds: list[SeedPredictions], metric: str, m: int) -> str:
    """Mean over seeds in percent (± std from 2 seeds) and the 95 % subject-bootstrap interval."""
    if not seeds:
        return MISSING
    fn = _metric_fn(metric, m)
    vals = [100 * fn(sp.labels, sp.preds) for sp in seeds]
    mean, std = mean_std(vals)
    text = f"{mean:.2f}" if len(vals) == 1 else f"{mean:.2f} ± {std:.2f}"
    try:
        ci = subject_bootstrap_ci(seeds, fn, n_boot=N_BOOT, alpha=ALPHA)
    except ValueError:
        return text
    return f"{text} [{100 * ci.low:.2f}, {100 * ci.high:.2f}]"


def _diff(a: list[SeedPredictions], b: list[SeedPredictions], m: int) -> tuple[float, float, float] | None:
    """UF1(a) - UF1(b) in percentage points with its paired subject-bootstrap interval."""
    if not a or not b:
        return None
    try:
        ci = paired_subject_bootstrap(a, b, _metric_fn("uf1", m), n_boot=N_BOOT, alpha=ALPHA)
    except ValueError:
        return None
    return 100 * ci.estimate, 100 * ci.low, 100 * ci.high


def _protocols(row: ProtocolRow, metric: str | None) -> str:
    honest = f"honest: {_honest_selection(row.method)}"
    if metric is None:
        return honest + ("" if row.selected or row.every else "; no test-selected record")
    return f"{honest}; {LABEL}: step of the best test {METRIC_NAMES.get(metric, metric)}, every {row.every} steps"


def _honest_selection(method: str) -> str:
    """How a method's honest predictions are chosen, in words (fdp.methods `Method.selection`)."""
    from fdp.methods import METHODS

    return METHODS[method].selection if method in METHODS else "model after the last step"


def _ours(row: ProtocolRow) -> list[tuple[str | None, list[str], dict[str, Any]]]:
    """(selection metric, cells, tidy values) per printed row of ours: one per selection metric, or
    one with the honest cells only."""
    m = row.num_classes
    honest = [_cell(row.honest, "uf1", m), _cell(row.honest, "uar", m)]
    out = []
    for metric in sorted(row.selected) or [None]:
        sel = row.selected.get(metric, []) if metric else []
        d = _diff(sel, row.honest, m)
        fm = row.fold_mean.get(metric, []) if metric else []
        wf1 = MISSING if not fm else f"{100 * float(np.mean([f['wf1'] for f in fm])):.2f}"
        cells = honest + [_cell(sel, "uf1", m), _cell(sel, "uar", m),
                          MISSING if d is None else f"{d[0]:+.2f} [{d[1]:+.2f}, {d[2]:+.2f}]", wf1]
        out.append((metric, cells, {"diff": d, "wf1": fm}))
    return out


def load_reference(path: Path = REFERENCE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _published(ref: dict[str, Any], p: dict[str, Any]) -> list[str]:
    h, s = p["honest"]["uf1"]["composite"], p["test_selected"]["uf1"]["composite"]
    return [f"{p['method']} (published: MEB notebook)",
            f"honest: {p['honest']['protocol']} (cell {p['honest']['cell']}); {LABEL}: "
            f"{p['test_selected']['protocol']} (cell {p['test_selected']['cell']})",
            f"{100 * h:.2f}", MISSING, f"{100 * s:.2f}", MISSING, f"{100 * (s - h):+.2f}", MISSING]


HEADER = ["Method", "Protocol of the row", "UF1 honest", "UAR honest", f"UF1 {LABEL}", f"UAR {LABEL}",
          f"Δ UF1 {LABEL} − honest (pp)", f"Per-fold mean weighted F1, {LABEL}"]


def build_protocol_table(rows: list[ProtocolRow], ref: dict[str, Any] | None = None) -> Table:
    ref = ref or load_reference()
    published = {p["rerun"]: p for p in ref["methods"]}
    body: list[list[str]] = []
    placed: set[str] = set()
    for r in rows:
        for metric, cells, _ in _ours(r):
            body.append([f"{r.label} (re-run here)", _protocols(r, metric)] + cells)
        if r.variant in published and r.variant not in placed:
            body.append(_published(ref, published[r.variant]))
            placed.add(r.variant)
    body += [_published(ref, p) for k, p in published.items() if k not in placed]
    notes = [
        f"{LABEL}: per fold, the predictions of the step whose score on the TEST subject was best (earliest on "
        "ties), as the authors' FDP code (accuracy), HTNet (accuracy) and MEB's notebook (F1) choose their epoch; "
        "recorded beside the honest result from the same training (fdp.test_selected), never an estimate of "
        "performance on new subjects.",
        "UF1 / UAR: predictions of all folds pooled, then macro F1 / mean recall (SPEC §5), percent; mean ± std "
        f"over seeds where several; [a, b]: {100 * (1 - ALPHA):g} % interval from a bootstrap over test subjects "
        f"({N_BOOT} resamples).",
        f"Δ UF1: {LABEL} minus honest on the same clips, interval from a paired bootstrap over test subjects.",
        f"Per-fold mean weighted F1: the number the authors' FDP code prints (sklearn's weighted F1 of each fold "
        f"at its selected step, averaged over folds; mean over seeds), {LABEL}.",
        f"Published: {ref['source']} (commit {ref['commit']}); composite UF1 of the pooled predictions; "
        "per database (SMIC / CASME II / SAMM) in orchestrator/report/reference/protocol.yaml.",
    ]
    for r in rows:
        notes += [f"missing: {r.label}: {m}" for m in r.missing]
    return Table(number="Protocol", caption="The honest protocol beside the published one (test-selected, "  # type: ignore[arg-type]
                 "inflated), from the same trainings.", header=HEADER, rows=body, notes=notes, n_text=2)


def protocol_tidy(rows: list[ProtocolRow], ref: dict[str, Any] | None = None) -> list[dict[str, object]]:
    """One tidy row per number; a test-selected one names `LABEL` in its `selection` column and
    `test_selected_inflated/by_<metric>/...` as its metric."""
    ref = ref or load_reference()
    out: list[dict[str, object]] = []
    for r in rows:
        m = r.num_classes
        for metric in ("uf1", "uar"):
            out += _tidy_values(r, r.honest, metric, m, metric, f"honest: {_honest_selection(r.method)}")
        for by, seeds in sorted(r.selected.items()):
            sel = f"{LABEL} by {by}"
            for metric in ("uf1", "uar"):
                out += _tidy_values(r, seeds, metric, m, f"{PREFIX}/by_{by}/{metric}", sel)
            d = _diff(seeds, r.honest, m)
            if d is not None:
                out.append({"table": TABLE, "row": r.label, "metric": f"{PREFIX}/by_{by}/uf1_minus_honest", "unit": "pp",
                            "mean": d[0], "ci_low": d[1], "ci_high": d[2], "seeds": len(seeds), "selection": sel,
                            **r.source})
            fm = r.fold_mean.get(by, [])
            if fm:
                out.append({"table": TABLE, "row": r.label, "metric": f"{PREFIX}/by_{by}/fold_mean_weighted_f1",
                            "unit": "%", "mean": 100 * float(np.mean([f["wf1"] for f in fm])), "seeds": len(fm),
                            "selection": sel, **r.source})
    for p in ref["methods"]:
        for part in ("honest", "test_selected"):
            sel = "honest (published)" if part == "honest" else f"{LABEL} by {p[part]['selected_by']} (published)"
            name = "uf1" if part == "honest" else f"{PREFIX}/by_{p[part]['selected_by']}/uf1"
            out += [{"table": TABLE, "row": p["method"], "metric": name + ("" if db == "composite" else f"@{db}"),
                     "unit": "%", "published": 100 * v, "selection": sel}
                    for db, v in p[part]["uf1"].items()]
    return out


def _tidy_values(r: ProtocolRow, seeds: list[SeedPredictions], metric: str, m: int, name: str,
                 selection: str) -> list[dict[str, object]]:
    if not seeds:
        return []
    fn = _metric_fn(metric, m)
    mean, std = mean_std([100 * fn(sp.labels, sp.preds) for sp in seeds])
    row: dict[str, object] = {"table": TABLE, "row": r.label, "metric": name, "unit": "%", "mean": mean,
                              "std": std if len(seeds) > 1 else None, "seeds": len(seeds),
                              "subjects": len(set(seeds[0].subjects)), "clips": len(seeds[0].labels),
                              "selection": selection, **r.source}
    try:
        ci = subject_bootstrap_ci(seeds, fn, n_boot=N_BOOT, alpha=ALPHA)
        row.update(ci_low=100 * ci.low, ci_high=100 * ci.high)
    except ValueError:
        pass
    return [row]


# ---------------------------------------------------------------------------------------------
# from the tracked runs


def read_artifact(tracker: Any, run_id: str, name: str) -> str | None:
    """The text of artifact `name` of a run, or None when the run has none."""
    import tempfile

    from orchestrator.track.store import with_retry

    uri = with_retry(tracker.client.get_run, run_id).info.artifact_uri
    if uri.startswith("file:"):  # local store: read in place
        from urllib.parse import unquote, urlparse

        p = Path(unquote(urlparse(uri).path)) / name
        return p.read_text() if p.is_file() else None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return Path(with_retry(tracker.client.download_artifacts, run_id, name, tmp)).read_text()
        except Exception:  # noqa: BLE001 - no such artifact
            return None


def collect_protocol(tracker: Any, children: list[Any]) -> list[ProtocolRow]:
    """ProtocolRows from the child runs of a protocol sweep: FINISHED runs pooled per configuration
    (label less its seed) and seed, honest predictions and, where recorded, the test-selected ones."""
    from orchestrator.report.summarize import run_source

    by_label: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    rows: dict[str, ProtocolRow] = {}
    for r in children:
        t = r.data.tags
        label = "|".join(p for p in t.get("fdp.config_label", t.get("fdp.variant", "?")).split("|")
                         if not p.startswith("seed")) or "?"
        row = rows.setdefault(label, ProtocolRow(label, t.get("fdp.variant", "?"), t.get("fdp.method", "")))
        if r.info.status == "FINISHED":
            by_label[label][t.get("fdp.seed", "0")].append(r)
        else:
            row.missing.append(f"seed {t.get('fdp.seed', '0')}, fold {t.get('fdp.fold', '?')}: {r.info.status}")
    for label, seeds in by_label.items():
        row = rows[label]
        row.source = run_source(sum(seeds.values(), []))
        for seed in sorted(seeds, key=lambda s: int(s) if s.isdigit() else 0):
            runs = sorted(seeds[seed], key=lambda r: r.data.tags.get("fdp.fold", ""))
            _add_seed(tracker, row, runs)
    return [rows[k] for k in sorted(rows)]


def _add_seed(tracker: Any, row: ProtocolRow, runs: list[Any]) -> None:
    honest = [tracker.predictions(r.info.run_id) for r in runs]
    if any(p["preds"] is None for p in honest):
        return
    row.num_classes = max(row.num_classes, *(p["num_classes"] for p in honest))
    clip_ids = [c for p in honest for c in p["clip_ids"]]
    row.honest.append(SeedPredictions.of([y for p in honest for y in p["labels"]],
                                         [y for p in honest for y in p["preds"]], [s for p in honest for s in p["subjects"]]))
    texts = [read_artifact(tracker, r.info.run_id, ARTIFACT) for r in runs]
    if not all(texts):  # a fold without the record (none asked for, or a method fitted once): no column
        return
    records = [read_predictions(t) for t in texts]  # type: ignore[arg-type]
    row.every = int(runs[0].data.params.get("protocol_probe.every", 0) or 0)
    for metric in sorted(set.intersection(*(set(rec) for rec in records))):
        pos = {c: i for i, c in enumerate(c for rec in records for c in rec[metric]["clip_ids"])}
        if set(pos) != set(clip_ids):
            raise ValueError(f"{row.label}: the test-selected predictions ({ARTIFACT}) cover other clips than "
                             "predictions.csv")
        labels = [y for rec in records for y in rec[metric]["labels"]]
        preds = [y for rec in records for y in rec[metric]["preds"]]
        subjects = [s for rec in records for s in rec[metric]["subjects"]]
        order = [pos[c] for c in clip_ids]
        row.selected.setdefault(metric, []).append(SeedPredictions.of(
            [labels[i] for i in order], [preds[i] for i in order], [subjects[i] for i in order]))
        m = row.num_classes
        per = [(rec[metric]["labels"], rec[metric]["preds"]) for rec in records]
        row.fold_mean.setdefault(metric, []).append(
            {"acc": float(np.mean([pooled_metrics(y, p, m)["acc"] for y, p in per])),
             "wf1": float(np.mean([weighted_f1(y, p, m) for y, p in per]))})


def render_protocol(tracking_uri: str, sweep: str | None = None, fmt: str = "md",
                    include_smoke: bool = False) -> tuple[str, list[str]]:
    """(rendered protocol table, notes) from the latest sweep whose `table:` is protocol, or `sweep`."""
    from orchestrator.report.summarize import SummaryError, find_parent, provenance
    from orchestrator.track.driver import SweepTracker

    tracker = SweepTracker(tracking_uri)
    notes: list[str] = []
    found = find_parent(tracker, table=TABLE, sweep=sweep, include_smoke=include_smoke, notes=notes)  # type: ignore[arg-type]
    if found is None:
        hint = "" if include_smoke else " (a --smoke sweep is read with --include-smoke)"
        raise SummaryError(f"no protocol sweep tracked at {tracking_uri}{hint}: run "
                           "`fdp-sweep run sweeps/protocol.yaml` first")
    rows = collect_protocol(tracker, found.children)
    if not any(r.honest for r in rows):
        raise SummaryError(f"sweep {found.name} (parent run {found.parent.info.run_id}) has no finished run")
    lines, used = provenance([found])
    if any(r.selected for r in rows):  # the provenance of a table with inflated numbers says so
        lines = [f"{line} | {LABEL} columns: the step chosen on the test subject, recorded beside the honest one"
                 for line in lines]
    notes.append(f"sweep {found.name}, parent run {found.parent.info.run_id}"
                 + (" (smoke: a pipeline check, not a result)" if found.parent.data.tags.get("fdp.smoke") == "true" else ""))
    if fmt == "tidy":
        return tidy_csv(protocol_tidy(rows)), notes + lines
    table = with_provenance(build_protocol_table(rows), TableInput(provenance=lines, data_used=used))
    return render(table, fmt), notes
