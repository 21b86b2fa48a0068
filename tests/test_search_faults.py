"""A search survives what a sweep survives (issue #17): its folds run on the sweep's scheduler and
worker, so a killed worker resumes its fold from the checkpoint, and a killed driver's study is
continued by the same command with no fold trained twice."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
import yaml
from fixtures_runs import TINY, cli_driver, finished_runs, statuses_by_key

from orchestrator.run.worker import JobOutcome, JobPayload, run_job
from orchestrator.search.study import SearchOptions, parse_search, run_search
from orchestrator.spec.sweep import parse_spec

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/


def _raw(cache: Path, study: str, steps: int, **search) -> dict:
    block = {"space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
             "holdout": ["04"], "metric": "nll", "trials": 1, "parallel": 1, "sampler": "random", "seed": 0,
             "study": study}
    block.update(search)
    return {"name": study, "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], "steps": steps,
            "overrides": {**TINY, "data.cache_dir": str(cache)}, "resources": {"cpus": 1, "gpus": 0},
            "retries": 2, "tracking": {"experiment": f"exp-{study}"}, "search": block}


def attempts_recording_job(payload: JobPayload) -> JobOutcome:
    """The real fold job, after noting this attempt's pid and whether its checkpoint was there."""
    ckpt = Path(payload.checkpoint_path)
    with open(ckpt.with_suffix(".attempts"), "a") as f:
        f.write(f"{os.getpid()} {int(ckpt.exists())}\n")
    return run_job(payload)


def _search(root: Path, raw: dict, **kw):
    spec = parse_spec(raw)
    opts = SearchOptions(root=root, tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                         storage=f"sqlite:///{root / 'optuna.db'}", stream=io.StringIO(), max_parallel=1, **kw)
    return run_search(spec, parse_search(spec), opts)


@pytest.mark.integration
def test_killed_worker_resumes_its_search_fold(ray_cluster, synth_cache, tmp_path):
    """kill -9 the worker of the first objective fold once it has checkpointed: Ray retries it,
    the retry resumes from the checkpoint, and the trial's fold values equal an uninterrupted
    search's, fold by fold."""
    import optuna
    from mlflow.tracking import MlflowClient

    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    raw = _raw(synth_cache, "killw", steps=24, folds=2)
    ckpt_dir = killed / ".cache" / "checkpoints" / "search-killw"
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("report", _search(killed, raw, job_fn=attempts_recording_job)))
    t.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not list(ckpt_dir.glob("*.pt")):
        time.sleep(0.05)
    (ckpt,) = list(ckpt_dir.glob("*.pt"))
    pid = int(ckpt.with_suffix(".attempts").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    t.join(timeout=300)
    report = box["report"]
    assert report.best_trial == 0 and [r.state for r in report.trials] == ["COMPLETE"]
    attempts = [line.split() for line in ckpt.with_suffix(".attempts").read_text().splitlines()]
    assert len(attempts) == 2 and attempts[0][1] == "0" and attempts[1][1] == "1", attempts  # resumed
    assert attempts[0][0] != attempts[1][0]
    assert not list(ckpt_dir.glob("*.pt"))  # a finished fold gives its checkpoint up

    # the killed fold's run: one run, FINISHED, resumed, with the sweep job's record (curves, predictions)
    c = MlflowClient(f"sqlite:///{killed / 'mlflow.db'}")
    exp = c.get_experiment_by_name("exp-killw")
    folds = c.search_runs([exp.experiment_id], "tags.`fdp.role` = 'search_fold'")
    assert len(folds) == 2 and all(r.info.status == "FINISHED" for r in folds)
    resumed = [r for r in folds if int(r.data.tags.get("fdp.resumed_from_step", 0)) > 0]
    assert len(resumed) == 1
    artifacts = {a.path for a in c.list_artifacts(resumed[0].info.run_id)}
    assert {"predictions.csv", "fold_result.json", "config.yaml"} <= artifacts
    steps = [m.step for m in c.get_metric_history(resumed[0].info.run_id, "train/total")]
    assert sorted(steps) == list(range(2, 25, 2))  # every logged step once, across the two attempts

    again = _search(clean, raw)
    assert again.best_trial == 0
    values = {}
    for root in (killed, clean):
        study = optuna.load_study(study_name="killw", storage=f"sqlite:///{root / 'optuna.db'}")
        values[root.name] = study.trials[0].intermediate_values
    assert len(values["killed"]) == 2
    assert values["killed"] == values["clean"]


DRIVER = "from orchestrator.cli.search import search_cmd; search_cmd()"


def _driver(root: Path, spec: Path) -> subprocess.Popen:
    return cli_driver(root, DRIVER, spec, "--max-parallel", "1")


def _finished_folds(db: Path) -> int:
    return finished_runs(db, "search_fold")


@pytest.mark.integration
def test_killed_search_driver_is_continued_by_the_same_command(synth_cache, tmp_path):
    """SIGKILL the search driver (and its Ray) in the middle of a trial; the same command then
    reaches the study's trial count, and every (trial parameters, fold) was trained to completion
    exactly once: the interrupted trial's parameters are asked again and its finished folds reused."""
    import optuna
    from mlflow.tracking import MlflowClient

    spec = tmp_path / "search.yaml"
    spec.write_text(yaml.safe_dump(_raw(synth_cache, "killd", steps=8, trials=2), sort_keys=False))
    proc = _driver(tmp_path, spec)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and _finished_folds(tmp_path / "mlflow.db") < 2:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray (each Ray worker is its own process group)
    proc.wait()
    done_before, stable_since = _finished_folds(tmp_path / "mlflow.db"), time.monotonic()
    while time.monotonic() - stable_since < 3:  # an orphaned worker stops at its next step (run.worker)
        time.sleep(0.2)
        if (n := _finished_folds(tmp_path / "mlflow.db")) != done_before:
            done_before, stable_since = n, time.monotonic()
    assert 2 <= done_before < 6  # killed in the middle of the study

    again = _driver(tmp_path, spec)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert "was left running by a driver that died" in out, out

    study = optuna.load_study(study_name="killd", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 2, states  # the trial count is reached
    assert states.count("FAIL") == 1  # the interrupted trial, whose parameters were asked again
    (failed,) = [t for t in study.trials if t.state.name == "FAIL"]
    (cont,) = [t for t in study.trials if t.user_attrs.get("fdp_continues_trial") == failed.number]
    assert cont.params == failed.params and cont.state.name == "COMPLETE"

    c = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = c.get_experiment_by_name("exp-killd")
    folds = c.search_runs([exp.experiment_id], "tags.`fdp.role` = 'search_fold'")
    by_key = statuses_by_key(folds)
    assert len(by_key) == 2 * 3  # 2 parameter sets x 3 validation folds
    assert all(v == ["FINISHED"] for v in by_key.values()), by_key  # each trained to completion once
    trained, reused = map(int, re.search(r"(\d+) fold\(s\) trained, (\d+) reused", out).groups())
    assert trained == 6 - done_before, out  # the re-run trained only what the killed driver had not finished
    assert reused == done_before % 3, out  # the interrupted trial's finished folds were read back
    trials = {r.data.tags["fdp.trial"]: r for r in
              c.search_runs([exp.experiment_id], "tags.`fdp.role` = 'trial'")}
    for r in folds:  # every fold hangs under a finished trial, the carried-over ones under the continuation
        assert trials[r.data.tags["fdp.trial"]].info.status == "FINISHED"
    assert trials[str(failed.number)].data.tags["fdp.trial_state"] == "FAIL"


ORPHAN = r"""
import os, sys, time
from pathlib import Path
out = Path(sys.argv[1])
if os.fork():  # the "raylet": gone once its worker is guarded
    while not (out / "guarded").exists():
        time.sleep(0.01)
    os._exit(0)
from orchestrator.run import worker  # the "worker"
worker.guard_parent()
(out / "guarded").write_text(str(os.getpid()))
for _ in range(600):  # a job's steps
    worker.stop_if_orphaned()
    time.sleep(0.01)
(out / "survived").write_text("trained on without its raylet")
"""


@pytest.mark.integration
def test_a_worker_whose_raylet_died_stops_at_its_next_step(tmp_path):
    """Killing a driver kills its local raylet, but a Ray worker is its own process group and would
    train on, finish its run, and race the re-run that resumes the same job: it stops instead."""
    import psutil

    subprocess.run([sys.executable, "-c", ORPHAN, str(tmp_path)], check=True, timeout=60, cwd=Path(__file__).parents[1])
    pid = int((tmp_path / "guarded").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the orphaned worker is still running")
    time.sleep(0.2)
    assert not (tmp_path / "survived").exists()
