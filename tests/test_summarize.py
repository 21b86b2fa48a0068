"""summarize: a tiny real sweep (sweeps/smoke.yaml --smoke) aggregated from MLflow equals the
metrics recomputed from the runs' own predictions.csv; missing jobs are reported; every format
renders; a table without a sweep fails in one line, Tables 12-13 included."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.summarize import summarize_cmd
from orchestrator.report.reference import reference
from orchestrator.report.summarize import collect, find_parent, table_input
from fdp.pooling import read_predictions
from orchestrator.track.driver import SweepTracker, pooled_artifact_dir
from fixtures_runs import run_smoke_sweep

@pytest.fixture(scope="module")
def swept(synth_cache, tmp_path_factory):
    """smoke.yaml --smoke (2 variants x 2 folds, 4 steps) run for real into a tmp project root."""
    mp = pytest.MonkeyPatch()
    yield run_smoke_sweep(synth_cache, tmp_path_factory.mktemp("proj"), mp)
    mp.undo()


def _recomputed(tracker, runs):
    from fdp.metrics import pooled_metrics

    labels, preds, n = [], [], 0
    for r in runs:
        local = tracker.client.download_artifacts(r.info.run_id, "predictions.csv")
        p = read_predictions(Path(local).read_text())
        labels += p["labels"]
        preds += p["preds"]
        n = max(n, p["num_classes"])
    return pooled_metrics(labels, preds, n)


def test_aggregation_equals_recomputed_predictions(swept):
    tracker = SweepTracker(swept)
    assert find_parent(tracker, table=9) is None  # smoke parents are skipped by default
    found = find_parent(tracker, table=9, include_smoke=True)
    assert found is not None and found.name == "smoke"
    results = collect(tracker, found, 9)
    assert set(results) == {"fdp", "no_dic"}
    for variant, res in results.items():
        runs = [r for r in found.children if r.data.tags["fdp.variant"] == variant]
        assert len(runs) == 2 and not res.missing
        want = _recomputed(tracker, runs)
        for m in ("acc", "uf1", "uar"):
            assert res.metrics[m] == [pytest.approx(want[m])]
        assert set(res.fold_metrics["uf1"]) == {r.data.tags["fdp.fold"] for r in runs}
    assert "di_mse" in results["fdp"].metrics and "di_mse" not in results["no_dic"].metrics


def test_tidy_csv_loads_in_pandas_with_the_pooled_values_and_their_source(swept):
    """--format tidy: one row per number, read by pandas as it stands; ours equal the metrics
    recomputed from the runs' predictions.csv, and each row names the sweep, data, fingerprint and
    commit of the runs behind it."""
    import io

    import pandas as pd

    res = CliRunner().invoke(summarize_cmd, ["--table", "9", "--include-smoke", "--format", "tidy",
                                             "--tracking-uri", swept])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.stdout), dtype={"commit": str, "data_fingerprint": str})
    assert list(df.columns[:6]) == ["table", "row", "metric", "unit", "mean", "std"]
    assert "provenance: data casme2/5 (synthetic)" in res.stderr  # the table's notes go to stderr
    tracker = SweepTracker(swept)
    found = find_parent(tracker, table=9, include_smoke=True)
    from orchestrator.track.provenance import code_version, git_info

    commit = git_info()[0][:12]  # the code's checkout (this repository's), whatever the project folder is
    assert found.parent.data.tags.get("mlflow.source.git.commit", "")[:12] == commit
    for variant in ("fdp", "no_dic"):
        runs = [r for r in found.children if r.data.tags["fdp.variant"] == variant]
        want = _recomputed(tracker, runs)
        mine = df[df["row"] == variant].set_index("metric")
        assert list(mine.index) == ["acc", "uf1"]  # Table 9's columns
        for m in ("acc", "uf1"):
            assert mine.loc[m, "mean"] == pytest.approx(100 * want[m])
            assert mine.loc[m, "ci_low"] <= mine.loc[m, "mean"] <= mine.loc[m, "ci_high"]
        assert (mine["unit"] == "%").all() and (mine["seeds"] == 1).all() and mine["std"].isna().all()
        assert (mine["folds"] == 2).all() and (mine["subjects"] == 2).all()
        fps = {r.data.tags["fdp.data_fingerprint"] for r in runs}
        assert set(mine["data_fingerprint"]) == fps and len(fps) == 1
        if commit:
            assert set(mine["commit"].str.removesuffix("-dirty")) == {commit}
        else:  # the tests ran from a copy without .git: no commit is claimed
            assert mine["commit"].isna().all()
        assert set(mine["version"]) == {code_version()}
        assert set(mine["sweep"]) == {"smoke"} and set(mine["data"]) == {"synthetic casme2/5"}
        assert mine["smoke"].tolist() == [True, True]
    assert df.loc[(df["row"] == "fdp") & (df["metric"] == "acc"), "published"].item() == pytest.approx(
        reference().tables[9].row("fdp").values[0])
    # rows the sweep did not run are there, without a value of ours
    no_rank = df[df["row"] == "no_rank"]
    assert no_rank["mean"].isna().all() and no_rank["published"].notna().all()


def test_parent_has_pooled_confusion_and_per_fold_charts(swept):
    """Each configuration's pooled confusion matrix and per-fold Acc/UF1 sit on the parent run,
    computed from the children's predictions."""
    import json

    import numpy as np

    from fdp.metrics import confusion, pooled_metrics

    tracker = SweepTracker(swept)
    found = find_parent(tracker, table=9, include_smoke=True)
    pid = found.parent.info.run_id
    for variant in ("fdp", "no_dic"):
        runs = [r for r in found.children if r.data.tags["fdp.variant"] == variant]
        label = pooled_artifact_dir(runs[0].data.tags["fdp.config_label"])
        files = {f.path for f in tracker.client.list_artifacts(pid, label)}
        assert {f"{label}/{n}" for n in ("confusion.json", "confusion.png", "per_fold.json",
                                                  "per_fold.png")} <= files
        cm = json.loads(Path(tracker.client.download_artifacts(pid, f"{label}/confusion.json")).read_text())
        folds = json.loads(Path(tracker.client.download_artifacts(pid, f"{label}/per_fold.json")).read_text())
        preds = {r.data.tags["fdp.fold"]: read_predictions(Path(tracker.client.download_artifacts(
            r.info.run_id, "predictions.csv")).read_text()) for r in runs}
        labels = [y for p in preds.values() for y in p["labels"]]
        predicted = [y for p in preds.values() for y in p["preds"]]
        assert cm["class_names"] == next(iter(preds.values()))["class_names"] and len(cm["class_names"]) == 5
        assert np.array_equal(np.array(cm["matrix"]), confusion(labels, predicted, 5))
        assert {f["fold"] for f in folds} == set(preds)
        for f in folds:
            p = preds[f["fold"]]
            want = pooled_metrics(p["labels"], p["preds"], 5)
            assert f["clips"] == len(p["labels"]) and f["uf1"] == pytest.approx(want["uf1"])


def test_missing_job_is_reported(swept):
    tracker = SweepTracker(swept)
    found = find_parent(tracker, sweep="smoke")
    victim = next(r for r in found.children if r.data.tags["fdp.variant"] == "no_dic")
    tracker.mark_failed(victim.info.run_id, "boom")
    try:
        res = CliRunner().invoke(summarize_cmd, ["--table", "9", "--sweep", "smoke", "--tracking-uri", swept])
        assert res.exit_code == 0, res.output
        assert "No L_DIC" in res.output or "no_dic" in res.output or "L_DIC" in res.output
        assert f"fold {victim.data.tags['fdp.fold']}: FAILED" in res.output
        ours = table_input(tracker, 9, sweep="smoke")
        assert len(ours.get("no_dic").missing) == 1 and len(ours.get("no_dic").metrics["acc"]) == 1
    finally:
        tracker.client.set_terminated(victim.info.run_id, "FINISHED")


@pytest.mark.parametrize("fmt", ["md", "latex", "csv"])
@pytest.mark.parametrize("table", [9, 13])
def test_all_formats_render(swept, fmt, table):
    res = CliRunner().invoke(summarize_cmd, ["--table", str(table), "--include-smoke", "--format", fmt,
                                             "--tracking-uri", swept])
    assert res.exit_code == 0, res.output
    assert res.output.strip()
    # provenance under the table in every format (md list item, LaTeX footnote, CSV comment line)
    prov = next(ln for ln in res.stdout.splitlines() if "provenance: data casme2/5 (synthetic), fingerprint " in ln)
    assert prov.startswith({"md": "- provenance:", "latex": r"\par", "csv": "# provenance:"}[fmt])
    for part in ("sweep smoke, parent run ", "smoke: yes", "steps per fold: 4", "folds: 2 run of 2 expected",
                 "seeds: 0", "git "):
        assert part in prov, prov
    from fdp.machine import machine_info, machine_summary

    here = machine_summary(machine_info())  # the jobs ran here, all on one machine: it is named
    assert f"| machine: {here}" in prov if fmt != "latex" else "| machine: " in prov, prov
    caption = res.stdout.splitlines()[0 if fmt == "md" else 2]
    if fmt != "csv":
        assert "synthetic casme2/5" in caption and "on SAMM" not in caption, caption


def test_summarize_without_flags_finds_a_smoke_sweep_and_says_so(swept):
    res = CliRunner().invoke(summarize_cmd, ["--table", "9", "--tracking-uri", swept])
    assert res.exit_code == 0, res.output
    assert "no full sweep for Table 9: showing a smoke sweep (a pipeline check, not a result)" in res.stderr
    assert "smoke: yes (a pipeline check, not a result)" in res.stdout


def test_no_sweep_is_one_line_error_12_and_13_too(tmp_path):
    """Tables 12-13 with nothing of ours behave like the others (issue #13): exit 2 and why; the
    paper's own significance numbers stay in `tables.render_table(12)` (tests/test_tables.py)."""
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    for t, sweep in (("10", "backbones"), ("12", "sota"), ("13", "ablation")):
        res = CliRunner().invoke(summarize_cmd, ["--table", t, "--tracking-uri", uri])
        assert res.exit_code == 2, res.output
        assert f"sweeps/{sweep}.yaml" in res.output and len(res.output.strip().splitlines()) == 1


def test_figure4(swept, tmp_path):
    out = tmp_path / "fig4.png"
    res = CliRunner().invoke(summarize_cmd, ["--figure", "4", "--include-smoke", "--tracking-uri", swept,
                                             "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and out.stat().st_size > 1000


def test_latest_complete_sweep_is_preferred(tmp_path):
    """Without --sweep: the latest FINISHED parent whose fdp.table lists the table; a newer
    incomplete one is named in a note; --sweep NAME takes the latest of that name."""
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'm.db'}")
    exp = tracker.client.create_experiment("t")
    ids = {}
    for i, (name, table, status) in enumerate([("old", "4,5,6,7", "FINISHED"), ("sota", "4,5,6,7", "FINISHED"),
                                               ("other", "9", "FINISHED"), ("new", "4,5", "FAILED")]):
        run = tracker.client.create_run(exp, start_time=1000 + i, tags={
            "fdp.role": "parent", "fdp.sweep": name, "fdp.table": table, "fdp.smoke": "false",
            "fdp.experiments": "casme2/5,samm/5"})
        tracker.client.set_terminated(run.info.run_id, status)
        ids[name] = run.info.run_id
    notes: list[str] = []
    found = find_parent(tracker, table=5, notes=notes)
    assert found.name == "sota" and found.experiments == ["casme2/5", "samm/5"]
    assert notes == [f"newer sweep new (parent run {ids['new']}, FAILED) skipped: not complete; "
                     "`--sweep new` reads it"]
    assert find_parent(tracker, table=6).name == "sota"
    assert find_parent(tracker, table=9).name == "other"
    assert find_parent(tracker, table=8) is None
    assert find_parent(tracker, sweep="new").parent.info.run_id == ids["new"]


def test_provenance_names_the_study_that_chose_a_tuned_sweeps_values():
    """A sweep fed by `from_search` reports on the study's holdout subjects with values the study
    picked: the table's provenance line says which study, so the folds are not read as all of LOSO."""
    from types import SimpleNamespace as NS

    from orchestrator.report.summarize import SweepRuns, provenance

    def run(tags, params=None, status="FINISHED"):
        return NS(info=NS(run_id="r1", status=status), data=NS(tags=tags, params=params or {}, metrics={}))

    child = run({"fdp.fold": "06", "fdp.seed": "0", "fdp.data_fingerprint": "ab" * 8},
                {"data.dataset": "casme2", "data.setting": "casme2/5", "train.steps": "20"})
    plain = {"fdp.sweep": "tuned", "fdp.folds_expected": "1", "fdp.smoke": "false"}
    (line,), _ = provenance([SweepRuns(run({**plain, "fdp.from_search": "search"}), "1", [child])], table=9)
    assert "folds: 1 run of 1 expected (the holdout subjects of Optuna study search, which chose its values)" in line
    (line,), _ = provenance([SweepRuns(run(plain), "1", [child])], table=9)
    assert "folds: 1 run of 1 expected | seeds: 0" in line and "Optuna" not in line


def test_provenance_says_when_the_runs_pooled_computed_on_other_machines():
    """Results of one configuration can move with the CPU kernels alone: a table that pools runs
    made with other kernels says which runs ran where; runs of one machine add nothing."""
    from types import SimpleNamespace as NS

    from orchestrator.report.summarize import SweepRuns, provenance

    def run(tags, params=None):
        return NS(info=NS(run_id="r1", status="FINISHED"), data=NS(tags=tags, params=params or {}, metrics={}))

    params = {"data.dataset": "casme2", "data.setting": "casme2/5", "train.steps": "20"}
    avx512, avx2 = "Xeon (avx512); torch 2.13.0 kernels avx512", "EPYC (avx2); torch 2.13.0 kernels avx2"
    kids = [run({"fdp.fold": f, "fdp.seed": "0", "fdp.machine": m}, params) for f, m in
            (("01", avx512), ("02", avx512), ("03", avx2))]
    plain = {"fdp.sweep": "a", "fdp.folds_expected": "3", "fdp.smoke": "false"}
    lines, _ = provenance([SweepRuns(run(plain), "1", kids)], table=9)
    assert lines[-1] == ("machines differ between the runs pooled here (results can move with CPU kernels alone): "
                         f"{avx512} (2 run(s) of sweep a); {avx2} (1 run(s) of sweep a)")
    lines, _ = provenance([SweepRuns(run(plain), "1", kids[:2])], table=9)
    assert len(lines) == 1 and "machines" not in lines[0]
    # two sweeps, each on one machine, pooled into one table: still said
    other = {**plain, "fdp.sweep": "b"}
    lines, _ = provenance([SweepRuns(run(plain), "a", kids[:2]), SweepRuns(run(other), "b", kids[2:])], table=9)
    assert lines[-1].endswith(f"{avx512} (2 run(s) of sweep a); {avx2} (1 run(s) of sweep b)")
