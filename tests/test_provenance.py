"""Issue #13: every number says where it came from, and can never be stale or counted twice.

* stale results: two synthetic draws prepared in turn, the same sweep command after each: the
  second trains again (the data's content fingerprint is in the job keys) and `summarize` reports
  the second draw's numbers with its fingerprint; the first draw's runs stay in the store, apart;
  without --smoke, with both caches there and none named, `run` refuses in one line;
* one driver per sweep: two drivers started within one second, exactly one trains.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.run.scheduler import DriverOptions, SchedulerError, driving

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "sweeps" / "smoke.yaml")
FINAL = ("acc", "war", "uf1", "uar", "wall_time_s", "steps_per_s", "peak_mem_mb")


def _draw(tmp: Path, name: str, seed: int, cache_root: Path) -> Path:
    from fdp.data.cache import prepare
    from fdp.data.synth import write_synthetic

    data = write_synthetic(tmp / name, subjects=3, clips_per_subject=4, seed=seed)
    return prepare("casme2", data, out_dir=cache_root, contact_sheet=False)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setenv("FDP_PROJECT_ROOT", str(root))
    monkeypatch.setenv("FDP_CACHE_DIR", str(tmp_path / "caches"))
    monkeypatch.chdir(root)
    for var in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    return root


def _summary_line(output: str) -> str:
    return next(ln for ln in output.splitlines() if ln.startswith("sweep smoke: ") and " done, " in ln)


def _ours(csv_text: str) -> dict[str, tuple[str, str]]:
    rows = [r for r in csv.reader(io.StringIO(csv_text)) if r and not r[0].startswith("#")]
    head = rows[0]
    # a cell is "value [95 % interval]" (issue #14): the pooled value is what is compared
    return {r[0]: (r[head.index("Ours Acc")].split(" [")[0], r[head.index("Ours F1")].split(" [")[0]) for r in rows[1:]}


@pytest.mark.integration
def test_re_prepared_data_trains_again_and_tables_report_the_new_draw(project, tmp_path):
    from fdp.data.cache import cache_fingerprint
    from fdp.metrics import pooled_metrics
    from fdp.pooling import read_predictions
    from orchestrator.track.driver import SweepTracker

    uri = f"sqlite:///{project / 'mlflow.db'}"
    run = ["run", SMOKE, "--smoke", "--max-parallel", "2"]
    first = _draw(tmp_path, "draw1", 1, tmp_path / "caches")
    res1 = CliRunner().invoke(main, run)
    assert res1.exit_code == 0, res1.output
    assert "4 done, 0 skipped" in _summary_line(res1.output)

    second = _draw(tmp_path, "draw2", 2, tmp_path / "caches")  # the newer cache: --smoke takes it
    fp1, fp2 = cache_fingerprint(first), cache_fingerprint(second)
    assert fp1 != fp2
    res2 = CliRunner().invoke(main, run)
    assert res2.exit_code == 0, res2.output
    # the same command trains again: nothing "finished earlier" on other data
    assert "4 done, 0 skipped" in _summary_line(res2.output), res2.output
    assert f"using the newest, {second}" in res2.output  # and says which cache it took

    tracker = SweepTracker(uri)
    exp = tracker.client.get_experiment_by_name("fdp-smoke").experiment_id
    jobs = tracker.search(exp, "tags.`fdp.role` = 'job'")
    by_fp = {fp: [r for r in jobs if r.data.tags.get("fdp.data_fingerprint") == fp] for fp in (fp1, fp2)}
    assert len(by_fp[fp1]) == 4 and len(by_fp[fp2]) == 4  # the old runs stay, marked as the old data
    assert not {r.data.tags["fdp.job_key"] for r in by_fp[fp1]} & {r.data.tags["fdp.job_key"] for r in by_fp[fp2]}
    parents = {r.data.tags["mlflow.parentRunId"] for r in by_fp[fp2]}
    assert len(parents) == 1 and parents.isdisjoint({r.data.tags["mlflow.parentRunId"] for r in by_fp[fp1]})
    for r in by_fp[fp2]:
        assert r.data.tags["fdp.cache_dir"] == str(second) and r.data.tags["fdp.data_synthetic"] == "true"
        assert r.data.tags["fdp.data_root"] == str(tmp_path / "draw2")

    # summarize right after, without flags: the second draw's numbers, with its fingerprint
    res = CliRunner().invoke(main, ["summarize", "--table", "9", "--format", "csv"])
    assert res.exit_code == 0, res.output
    table = res.stdout
    assert f"fingerprint {fp2}" in table and fp1 not in table
    assert "smoke: yes" in table and "folds: 2 run of 2 expected" in table and "steps per fold: 4" in table
    ours = _ours(table)
    for variant, row in (("fdp", "FDP"), ("no_dic", "FDP w/o L_DIC")):
        preds = [read_predictions(Path(tracker.client.download_artifacts(r.info.run_id, "predictions.csv"))
                                  .read_text()) for r in by_fp[fp2] if r.data.tags["fdp.variant"] == variant]
        want = pooled_metrics([y for p in preds for y in p["labels"]], [y for p in preds for y in p["preds"]], 5)
        assert ours[row] == (f"{100 * want['acc']:.2f}", f"{100 * want['uf1']:.2f}")

    # outside --smoke, both caches there and none named: one line listing both, nothing started
    (tmp_path / "real.yaml").write_text("name: real\ndataset: casme2\nsetting: casme2/5\nvariants: [fdp]\nsteps: 1\n")
    before = sorted(p.name for p in project.iterdir())
    t0 = time.monotonic()
    res = CliRunner().invoke(main, ["run", str(tmp_path / "real.yaml")])
    assert res.exit_code == 2 and time.monotonic() - t0 < 15
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: 2 prepared caches of casme2"), res.stderr
    for path, fp in ((first, fp1), (second, fp2)):
        assert f"{path} (fingerprint {fp}, from " in lines[0]
    assert "--set data.cache_dir=PATH" in lines[0] and "prepared 20" in lines[0] and "12 clips" in lines[0]
    assert sorted(p.name for p in project.iterdir()) == before
    # naming one (by its fingerprint) is enough
    res = CliRunner().invoke(main, ["run", str(tmp_path / "real.yaml"), "--dry-run", "--set",
                                    f"data.cache_dir={fp1}"])
    assert res.exit_code == 0 and "warning" not in res.output, res.output


def _env(project: Path, cache_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env.update(FDP_PROJECT_ROOT=str(project), FDP_CACHE_DIR=str(cache_root), MLFLOW_DISABLE_TELEMETRY="true",
               RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.integration
def test_two_drivers_of_one_sweep_train_once(synth_cache, tmp_path):
    from orchestrator.track.driver import SweepTracker

    project = tmp_path / "project"
    project.mkdir()
    env = _env(project, Path(synth_cache).parent)
    argv = [sys.executable, "-m", "orchestrator.cli.main", "run", SMOKE, "--smoke", "--max-parallel", "2",
            "--set", "train.steps=2"]
    procs = []
    for _ in range(2):  # within one second of each other
        procs.append(subprocess.Popen(argv, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
        time.sleep(0.3)
    t_start = time.monotonic()
    ended: dict[int, float] = {}
    while len(ended) < 2 and time.monotonic() - t_start < 300:
        for i, p in enumerate(procs):
            if i not in ended and p.poll() is not None:
                ended[i] = time.monotonic() - t_start
        time.sleep(0.2)
    outs = [(p.returncode, *p.communicate(timeout=60)) for p in procs]
    codes = sorted(c for c, _, _ in outs)
    assert codes[0] == 0 and codes[1] != 0, outs
    loser = next(i for i, (c, _, _) in enumerate(outs) if c != 0)
    code, out, err = outs[loser]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: sweep smoke is already being run by pid "), err
    winner_pid = procs[1 - loser].pid
    assert f"pid {winner_pid} on host " in lines[0] and " since 20" in lines[0]
    assert ended[loser] < 30 and "sweep smoke:" not in out  # refused at once, trained nothing

    tracker = SweepTracker(f"sqlite:///{project / 'mlflow.db'}")
    exp = tracker.client.get_experiment_by_name("fdp-smoke")
    parents = tracker.search(exp.experiment_id, "tags.`fdp.role` = 'parent'")
    jobs = tracker.search(exp.experiment_id, "tags.`fdp.role` = 'job'")
    assert len(parents) == 1 and len(jobs) == 4
    keys = [r.data.tags["fdp.job_key"] for r in jobs]
    assert len(set(keys)) == 4 and all(r.info.status == "FINISHED" for r in jobs)
    for r in jobs:
        assert r.data.tags["fdp.host"] and r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        for m in FINAL:
            assert len(tracker.client.get_metric_history(r.info.run_id, m)) == 1, (m, r.info.run_name)
        steps = [m.step for m in tracker.client.get_metric_history(r.info.run_id, "train/total")]
        assert len(steps) == len(set(steps))
    pooled = tracker.client.get_run(parents[0].info.run_id).data.metrics
    for k in [k for k in pooled if k.endswith("/uf1")]:
        assert len(tracker.client.get_metric_history(parents[0].info.run_id, k)) == 1
    assert not any(k.startswith("fdp.driver.") for k in exp.tags)  # re-read: the lease is released
    exp = tracker.client.get_experiment(exp.experiment_id)
    assert not any(k.startswith("fdp.driver.") for k in exp.tags)


def test_lease_local_remote_expiry_and_wait(tmp_path, monkeypatch):
    """The lease's rules without a sweep: this host's lock refuses a second driver and names the
    first; a live lease from another host refuses too, an expired one (dead driver) or one left
    by this host (its lock is free: that driver is gone) is taken over; --wait waits."""
    import json
    import threading

    from orchestrator.run import lease as L
    from orchestrator.track.driver import SweepTracker

    monkeypatch.setattr(L, "SETTLE_S", 0.0)
    monkeypatch.setattr(L.tempfile, "gettempdir", lambda: str(tmp_path))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    a = L.DriverLease("s", "s|hash|fp", uri)
    a.acquire_local()
    b = L.DriverLease("s", "s|hash|fp", uri)
    with pytest.raises(L.DriverBusy, match=rf"^sweep s is already being run by pid {os.getpid()} on host "):
        b.acquire_local()
    L.DriverLease("s", "s|hash|other-data", uri).acquire_local()  # another instance: its own lock
    waited = L.DriverLease("s", "s|hash|fp", uri, wait=True)
    threading.Timer(0.5, a.release).start()
    t0 = time.monotonic()
    waited.acquire_local()  # blocks until a releases
    assert time.monotonic() - t0 >= 0.4
    waited.release()

    tracker = SweepTracker(uri)
    exp = tracker.experiment_id("e")
    c = L.DriverLease("s", "s|hash|fp", uri)
    other = {"host": "elsewhere", "pid": 7, "since": "2026-12-01T10:00:00Z", "token": "t", "heartbeat": time.time()}
    tracker.client.set_experiment_tag(exp, c.tag, json.dumps(other))
    with pytest.raises(L.DriverBusy, match="by pid 7 on host elsewhere since 2026-12-01T10:00:00Z"):
        c.acquire_remote(tracker, exp)
    tracker.client.set_experiment_tag(exp, c.tag, json.dumps({**other, "heartbeat": time.time() - L.TTL_S - 1}))
    c.acquire_remote(tracker, exp)  # expired: a dead driver's
    assert json.loads(tracker.client.get_experiment(exp).tags[c.tag])["token"] == c.token
    c.release()
    assert c.tag not in tracker.client.get_experiment(exp).tags
    tracker.client.set_experiment_tag(exp, c.tag, json.dumps({**other, "host": c.host, "pid": 999999}))
    d = L.DriverLease("s", "s|hash|fp", uri)
    d.acquire_local()
    d.acquire_remote(tracker, exp)  # this host's lock is free: whoever wrote that lease is dead
    d.release()

    monkeypatch.delenv(L.SETTLE_ENV, raising=False)
    assert L.settle_s() == L.SETTLE_S == 0.0  # the module's value unless the variable is set
    monkeypatch.setenv(L.SETTLE_ENV, "2.5")
    assert L.DriverLease("s", "k", uri).settle_s == 2.5
    for bad in ("soon", "-1", "nan", "90"):
        monkeypatch.setenv(L.SETTLE_ENV, bad)
        want = rf"^\$FDP_LEASE_SETTLE_S: expected seconds in \[0, 90\), got '{bad}'$"
        with pytest.raises(SchedulerError, match=want):
            with driving("s", "s|hash|fp", DriverOptions(tracking_uri=uri), tmp_path, io.StringIO()):
                pass  # refused before any lock or store is touched
