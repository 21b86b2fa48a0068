"""Significance results on the parent run (orchestrator.report.significance): after a sweep the parent
holds per configuration the pooled metrics with subject-bootstrap intervals and per implied comparison
the paired statistics, equal to what `summarize` prints for the same runs; resuming logs nothing twice;
a configuration that failed is in no comparison, and the output says why; `summarize --log` records a
table on the parent runs it read."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from fdp.stats import mean_std, paper_rank_sum
from orchestrator.report.analysis import ConfigResult, comparisons, subject_interval
from orchestrator.report.significance import Cell, _rank_sum_part, cell_label, implied_pairs, sweep_markdown
from orchestrator.report.tables import fmt_p

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
# the demo's configurations, reference first (the sweep file is the one source: a redesign updates these tests)
DEMO_VARIANTS = yaml.safe_load((SWEEPS / "demo.yaml").read_text())["variants"]


# ---------------------------------------------------------------------------------------------
# no store


def test_configurations_and_the_comparisons_a_sweep_implies():
    assert cell_label("fdp|lambda_d=10|seed2") == "fdp|lambda_d=10"
    assert cell_label("samm/3|no_dic|seed0") == "samm/3|no_dic" and cell_label("fdp") == "fdp"
    cells = {c.label: c for c in [Cell("fdp|lambda_d=1", "fdp"), Cell("no_dic|lambda_d=1", "no_dic"),
                                  Cell("fdp|lambda_d=10", "fdp"), Cell("no_dic|lambda_d=10", "no_dic"),
                                  Cell("samm/3|no_rank", "no_rank"), Cell("samm/3|fdp", "fdp"),
                                  Cell("casme2/3|no_rank", "no_rank")]}
    pairs = [(a.label, b.label) for a, b in implied_pairs(cells, "fdp")]
    # each other variant against the reference at the same experiment and grid point; a configuration
    # whose experiment never ran the reference is compared with nothing
    assert pairs == [("fdp|lambda_d=1", "no_dic|lambda_d=1"), ("fdp|lambda_d=10", "no_dic|lambda_d=10"),
                     ("samm/3|fdp", "samm/3|no_rank")]
    assert [(a.label, b.label) for a, b in implied_pairs(cells, "no_dic")] == [
        ("no_dic|lambda_d=1", "fdp|lambda_d=1"), ("no_dic|lambda_d=10", "fdp|lambda_d=10")]
    assert cells["samm/3|no_rank"].prefix == "samm/3/no_rank" and cells["fdp|lambda_d=10"].prefix == "fdp/lambda_d:10"


def _result(uf1: float) -> ConfigResult:
    return ConfigResult(metrics={"uf1": [uf1, uf1 + 0.02]}, run_ids=[f"run-{uf1}"])


def test_table13_rank_sum_is_logged_only_with_every_variant_of_its_row():
    variants = {"fdp": 0.80, "no_dic": 0.70, "no_rank": 0.72, "no_local": 0.65, "no_global": 0.66,
                "no_local_global": 0.60}
    full = {k: _result(v) for k, v in variants.items()}
    part = _rank_sum_part(13, full, stats_only=True)
    # "Modules": our FDP's mean F1 (percent) against the five ablations' mean F1, the paper's rule
    want = paper_rank_sum(100 * (0.80 + 0.81) / 2, [100 * (v + v + 0.02) / 2 for k, v in variants.items() if k != "fdp"])
    assert part["values"] == {"table13/modules/rank_sum_z": want.statistic, "table13/modules/p": want.pvalue}
    assert part["rows"][0]["compared"] == ["no_dic", "no_rank", "no_local", "no_global", "no_local_global"]
    assert part["runs"] == sorted(f"run-{v}" for v in variants.values())
    assert part["not_logged"] == []  # the backbones row: nothing of ours, nothing to say after a sweep
    del full["no_global"]
    part = _rank_sum_part(13, full, stats_only=True)
    assert part["values"] == {} and part["not_logged"] == ["Table 13 Modules: no result of ours for no_global"]


def test_table12_rank_sum_against_the_published_f1_of_each_benchmark():
    from orchestrator.report.analysis import compared_f1
    from orchestrator.report.reference import reference

    part = _rank_sum_part(12, {"samm/5": _result(0.5)}, scope="summary/")
    tr = next(r for r in reference().tests[12].rows if r.key == "samm/5")
    want = paper_rank_sum(100 * 0.51, compared_f1(reference(), tr)[1])
    assert part["values"] == {"summary/table12/samm/5/rank_sum_z": want.statistic, "summary/table12/samm/5/p": want.pvalue}
    assert len(part["not_logged"]) == 5  # summarize --log names the benchmarks it has nothing of ours for


def test_markdown_shows_the_recorded_values():
    record = {"sweep": "s", "reference": "fdp", "alpha": 0.05, "resamples": 1000, "seed": 0, "power": 0.8,
              "family": 1, "method": {k: k for k in ("interval", "effect", "test", "adjustment", "mdd")},
              "configurations": {"fdp": {"prefix": "fdp", "seeds": 1, "folds": 6, "uf1": 0.5, "uf1_ci_low": 0.4,
                                         "uf1_ci_high": 0.6}},
              "comparisons": [{"configuration": "no_dic", "reference": "fdp", "prefix": "no_dic/vs_fdp", "n_folds": 6,
                               "n_seeds": 1, "uf1_delta": 0.125, "uf1_delta_ci_low": -0.01, "uf1_delta_ci_high": 0.2,
                               "signed_rank_w": 19.0, "p": 0.03125, "holm_p": 0.0625, "mdd": 0.3}],
              "tables": [], "not_logged": ["no_rank: 1 of 2 job(s) finished"]}
    md = sweep_markdown(record)
    assert "| fdp | fdp | 1 | 6 | 50.00 [40.00, 60.00] | — | — |" in md
    assert "| fdp vs no_dic | no_dic/vs_fdp | 6 | 1 | +12.50 [-1.00, +20.00] | 19.0 | 3.125e-2 | 6.250e-2 | 30.00 |" in md
    assert "- Not logged: no_rank: 1 of 2 job(s) finished" in md and md.startswith("### sweep s:")


# ---------------------------------------------------------------------------------------------
# a real sweep: the demo's, at CI's size


@pytest.fixture(scope="module")
def demo(synth_cache, tmp_path_factory):
    """sweeps/demo.yaml --smoke (its variants, DEMO_VARIANTS; 2 folds, a few steps) run for real through the CLI:
    (tracking URI, the CLI arguments, the run's output)."""
    from fdp.data.cache import prepare
    from fdp.profiles import LAPTOP_ALIGNED
    from orchestrator.cli.run import run_cmd

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("sig")
    mp.setenv("FDP_PROJECT_ROOT", str(root))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    cache = prepare("casme2", Path(synth_cache).parents[1] / "data", out_dir=root / "cache", size=LAPTOP_ALIGNED)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    args = [str(SWEEPS / "demo.yaml"), "--smoke", "--tracking-uri", uri, "--max-parallel", "2",
            "--set", f"data.cache_dir={cache}"]
    res = CliRunner().invoke(run_cmd, args)
    assert res.exit_code == 0, res.output
    yield uri, args, res.output
    mp.undo()


def _parent(uri: str):
    from orchestrator.report.summarize import find_parent
    from orchestrator.track.driver import SweepTracker

    tracker = SweepTracker(uri)
    return tracker, find_parent(tracker, sweep="demo")


def _artifact(tracker, run_id: str, path: str) -> str:
    return Path(tracker.client.download_artifacts(run_id, path)).read_text()


@pytest.mark.integration
def test_parent_holds_what_summarize_prints(demo):
    from orchestrator.cli.summarize import summarize_cmd
    from orchestrator.report.summarize import table_input
    from orchestrator.report.tables import row_keys

    uri, _, output = demo
    tracker, found = _parent(uri)
    pid = found.parent.info.run_id
    configs, others = DEMO_VARIANTS, DEMO_VARIANTS[1:]
    # each configuration x (UF1, UAR, Acc with their intervals) + each comparison x 8 (2 folds: no mdd)
    assert f"significance: complete: {len(configs)} configuration(s), {len(others)} comparison(s), Holm over the " \
           f"whole family; {len(configs) * 9 + len(others) * 8} metric(s) logged on parent run {pid}" in output
    metrics = found.parent.data.metrics
    # the same runs, read by summarize for Table 9
    ours = table_input(tracker, 9, sweep="demo")
    comps = {c.key: c for c in comparisons(ours.results, row_keys(9))}
    assert set(comps) == set(others)
    for key, c in comps.items():
        got = {k.rsplit("/", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{key}/vs_fdp/")}
        want = {"uf1_delta": c.diff, "uf1_delta_ci_low": c.low, "uf1_delta_ci_high": c.high,
                "signed_rank_w": c.wilcoxon.statistic, "p": c.wilcoxon.pvalue, "holm_p": c.holm_p,
                "n_folds": c.n_folds, "n_seeds": c.n_seeds}  # 2 folds: no detectable difference (no mdd)
        assert got == pytest.approx(want, abs=1e-12), key
    assert len({c.diff for c in comps.values()}) > 1  # not a degenerate case: the comparisons differ
    for key in configs:
        res = ours.get(key)
        for m in ("uf1", "uar", "acc"):
            assert metrics[f"{key}/{m}"] == pytest.approx(mean_std(res.values(m))[0], abs=1e-12)
            lo, hi = subject_interval(res, m)
            assert (metrics[f"{key}/{m}_ci_low"], metrics[f"{key}/{m}_ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
    # significance.json: the parent's values, with how they were made
    record = json.loads(_artifact(tracker, pid, "significance.json"))
    assert (record["alpha"], record["resamples"], record["seed"], record["reference"]) == (0.05, 1000, 0, "fdp")
    assert set(record["method"]) >= {"interval", "effect", "test", "adjustment", "mdd"}
    for c in record["comparisons"]:
        for k, v in c.items():
            if k not in ("configuration", "reference", "prefix"):
                assert metrics[f"{c['prefix']}/{k}"] == v, k
    assert sorted(record["configurations"]["fdp"]["runs"]) == sorted(
        r.info.run_id for r in found.children if r.data.tags["fdp.variant"] == "fdp")
    # and the printed table: summarize's subtable row of each comparison carries these numbers
    out = CliRunner().invoke(summarize_cmd, ["--table", "9", "--sweep", "demo", "--tracking-uri", uri])
    assert out.exit_code == 0, out.output
    from orchestrator.report.tables import variant_label

    rows = {key: f"| FDP vs {variant_label(key)} |" for key in others}
    for key, label in rows.items():
        row = next(ln for ln in out.output.splitlines() if ln.startswith(label) and "| 2 | 1 |" in ln)
        m = {k: metrics[f"{key}/vs_fdp/{k}"] for k in ("uf1_delta", "uf1_delta_ci_low", "uf1_delta_ci_high", "p",
                                                       "holm_p", "signed_rank_w")}
        assert row.split(" | ")[3:] == [f"{100 * m['uf1_delta']:+.2f}",
                                        f"[{100 * m['uf1_delta_ci_low']:+.2f}, {100 * m['uf1_delta_ci_high']:+.2f}]",
                                        f"{m['signed_rank_w']:.1f}", fmt_p(m["p"]), fmt_p(m["holm_p"]) + " |"], row
    md = _artifact(tracker, pid, "significance.md")
    assert "| fdp vs single_frame | single_frame/vs_fdp | 2 | 1 |" in md
    assert found.parent.data.tags["fdp.significance"].startswith("complete:")


@pytest.mark.integration
def test_resume_logs_nothing_twice(demo):
    from orchestrator.cli.run import run_cmd

    uri, args, _ = demo
    tracker, found = _parent(uri)
    pid = found.parent.info.run_id
    before = _artifact(tracker, pid, "significance.json")
    res = CliRunner().invoke(run_cmd, args)  # every job finished: the resumed sweep completes at once
    assert res.exit_code == 0, res.output
    assert f"significance: complete: {len(DEMO_VARIANTS)} configuration(s), {len(DEMO_VARIANTS) - 1} comparison(s), " \
           f"Holm over the whole family; nothing new for parent run {pid} (logged before)" in res.output
    for key in found.parent.data.metrics:
        if "/vs_fdp/" in key or key.endswith(("_ci_low", "_ci_high")):
            assert len(tracker.client.get_metric_history(pid, key)) == 1, key
    assert _artifact(tracker, pid, "significance.json") == before


@pytest.mark.integration
def test_summarize_log_records_the_table_on_the_parent(demo):
    from orchestrator.cli.summarize import summarize_cmd
    from orchestrator.report.summarize import table_input
    from orchestrator.report.tables import row_keys

    uri, _, _ = demo
    tracker, found = _parent(uri)
    pid = found.parent.info.run_id
    args = ["--table", "9", "--sweep", "demo", "--tracking-uri", uri, "--log"]
    out = CliRunner().invoke(summarize_cmd, args)
    assert out.exit_code == 0, out.output
    ours = table_input(tracker, 9, sweep="demo")
    runs = sorted(r.info.run_id for r in found.children)
    tag = tracker.client.get_run(pid).data.tags["fdp.summary.table9"]
    assert tag.startswith(f"{len(runs)} runs, sha256 ") and f"tag fdp.summary.table9 = {tag}" in out.stderr
    metrics = tracker.client.get_run(pid).data.metrics
    for c in comparisons(ours.results, row_keys(9)):
        assert metrics[f"summary/table9/{c.key}/vs_fdp/holm_p"] == pytest.approx(c.holm_p, abs=1e-12)
        assert metrics[f"summary/table9/{c.key}/vs_fdp/uf1_delta"] == pytest.approx(c.diff, abs=1e-12)
    record = json.loads(_artifact(tracker, pid, "summaries/table9.json"))
    assert record["runs"] == runs and record["parent_runs"] == [pid]
    assert _artifact(tracker, pid, "summaries/table9.md").startswith("**Table 9.**")
    again = CliRunner().invoke(summarize_cmd, args)
    assert again.exit_code == 0 and "already there (nothing logged twice)" in again.stderr, again.output
    assert len(tracker.client.get_metric_history(pid, "summary/table9/ststnet_shuffled/vs_fdp/p")) == 1


# ---------------------------------------------------------------------------------------------
# a configuration that fails


def failing_no_rank(payload):
    """The real job, except that no_rank fails until a `.fixed` marker sits beside its checkpoint."""
    from orchestrator.run.worker import run_job

    if payload.label.startswith("no_rank") and not Path(payload.checkpoint_path).with_suffix(".fixed").exists():
        raise ValueError("boom: no_rank fails on purpose")
    return run_job(payload)


@pytest.mark.integration
def test_a_failed_configuration_is_in_no_comparison_and_the_sweep_says_why(ray_cluster, synth_cache, tmp_path):
    import io

    import ray

    from orchestrator.plan.jobs import expand
    from orchestrator.report.significance import log_sweep
    from orchestrator.run.scheduler import SweepOptions, run_sweep
    from orchestrator.spec.sweep import parse_spec
    from orchestrator.track.driver import SweepTracker

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spec = parse_spec({"name": "withfail", "dataset": "casme2", "setting": "casme2/5",
                       "variants": ["fdp", "no_dic", "no_rank"], "profile": "smoke", "steps": 4, "folds": 2,
                       "overrides": {"data.cache_dir": str(synth_cache), "train.checkpoint_every": 2},
                       "resources": {"cpus": 1, "gpus": 0}, "retries": 0})
    plan = expand(spec)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    opts = SweepOptions(root=tmp_path, tracking_uri=uri, stream=io.StringIO(), job_fn=failing_no_rank,
                        on_finish=log_sweep, max_parallel=2)
    first = run_sweep(plan, opts)
    assert first.exit_code == 1 and len(first.failed) == 2
    lines = first.summary_lines()
    assert any(ln.startswith("significance: partial: 2 configuration(s) and 1 of 2 comparison(s) logged, no Holm yet")
               for ln in lines), lines
    assert "significance: not logged: no_rank: 0 of 2 job(s) finished (fold 01 seed 0: FAILED; fold 02 seed 0: " \
           "FAILED); its interval and every comparison with it wait for the rest" in lines
    assert "significance: not logged: no_rank vs fdp: a comparison needs both sides complete" in lines
    tracker = SweepTracker(uri)
    parent = tracker.client.get_run(first.parent_run_id)
    keys = set(parent.data.metrics)
    assert not any(k.startswith("no_rank/") and not k.startswith("no_rank/seed") for k in keys)
    assert {"no_dic/vs_fdp/p", "no_dic/vs_fdp/uf1_delta", "fdp/uf1_ci_low"} <= keys
    assert "no_dic/vs_fdp/holm_p" not in keys  # Holm is over the whole family: it waits for no_rank
    assert parent.data.tags["fdp.significance"].startswith("partial:")
    assert "not logged: no_rank vs fdp" in parent.data.tags["mlflow.note.content"]
    record = json.loads(Path(tracker.client.download_artifacts(first.parent_run_id, "significance.json")).read_text())
    assert [c["configuration"] for c in record["comparisons"]] == ["no_dic"] and "no_rank" not in record["configurations"]
    # fixed and resumed: what was missing is added, nothing is logged twice
    for j in plan.jobs:
        (tmp_path / ".cache" / "checkpoints" / "withfail" / f"{j.key}.fixed").touch()
    second = run_sweep(plan, opts)
    assert second.exit_code == 0
    parent = tracker.client.get_run(first.parent_run_id)
    assert {"no_rank/vs_fdp/p", "no_rank/vs_fdp/holm_p", "no_dic/vs_fdp/holm_p"} <= set(parent.data.metrics)
    assert len(tracker.client.get_metric_history(first.parent_run_id, "no_dic/vs_fdp/p")) == 1
    assert parent.data.tags["fdp.significance"].startswith("complete: 3 configuration(s), 2 comparison(s)")
    ps = [parent.data.metrics[f"{k}/vs_fdp/p"] for k in ("no_dic", "no_rank")]
    from fdp.stats import holm

    assert [parent.data.metrics[f"{k}/vs_fdp/holm_p"] for k in ("no_dic", "no_rank")] == pytest.approx(holm(ps))
    assert np.isfinite(parent.data.metrics["no_rank/uf1"])
