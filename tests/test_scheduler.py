"""Running sweeps on Ray: concurrency against one SQLite store, failures, resume, dying processes.

The tests on Ray share the suite's local Ray (`ray_cluster` in conftest.py). Tests
whose point is the orchestration use small job functions defined here (named `orchestration_*`)
that log through the real worker-side tracking code without training; the fault tests run the
real trainer on a tiny CPU config.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
import ray
from fixtures_runs import TINY, cli_driver, finished_runs, statuses_by_key

from fdp.fold import FoldResult
from orchestrator.run.worker import JobOutcome, JobPayload, run_job
from orchestrator.plan.jobs import expand
from orchestrator.run.progress import Progress, format_duration
from orchestrator.run.scheduler import Cluster, JobSource, Scheduler, SweepOptions, capacity, run_sweep
from orchestrator.spec.sweep import Resources, parse_spec
from orchestrator.track.driver import SweepTracker
from orchestrator.track.worker import RunLogger

# Workers cannot import this test module: ship its functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

REPO = Path(__file__).resolve().parents[1]


def _spec(cache: Path, name: str, variants: list[str], steps: int = 4, cpus: float = 1.0, **extra):
    raw = {"name": name, "dataset": "casme2", "setting": "casme2/5", "variants": variants, "steps": steps,
           "overrides": {**TINY, "data.cache_dir": str(cache)}, "resources": {"cpus": cpus, "gpus": 0},
           "retries": 2, "tracking": {"experiment": f"exp-{name}"}, **extra}
    return parse_spec(raw)


def _write_spec(path: Path, raw: dict) -> Path:
    """A sweep file for the CLI, written from the same dicts the in-process tests use."""
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _opts(root: Path, **kw) -> SweepOptions:
    kw.setdefault("stream", io.StringIO())
    return SweepOptions(root=root, tracking_uri=f"sqlite:///{root / 'mlflow.db'}", **kw)


def _result_for(payload: JobPayload) -> FoldResult:
    """Deterministic per-clip predictions for a job, so pooled metrics have known inputs."""
    n = 3
    labels = [(int(payload.key[:2], 16) + i) % 5 for i in range(n)]
    preds = [labels[0]] + [(y + 1) % 5 for y in labels[1:]]
    return FoldResult(fold=payload.fold, clip_ids=[f"{payload.fold}_{i}" for i in range(n)],
                      subjects=[payload.fold] * n, labels=labels, preds=preds,
                      probs=[[1.0 if c == p else 0.0 for c in range(5)] for p in preds],
                      class_names=["happiness", "disgust", "repression", "surprise", "others"], di_mse=None,
                      curves={}, steps=20, wall_time_s=0.1, steps_per_s=200.0, peak_mem_mb=1.0, selection="last",
                      metrics={"acc": 1 / 3})


def orchestration_logging_job(payload: JobPayload) -> JobOutcome:
    """Logs like a real job (config, 20 buffered steps, result artifacts) without training."""
    from fdp.config import ExperimentConfig, from_dict

    t0 = time.perf_counter()
    log = RunLogger(payload.tracking_uri, payload.run_id, flush_every=payload.flush_every)
    cfg = from_dict(ExperimentConfig, payload.cfg)
    log.start()
    log.log_config(cfg, payload.git_commit, payload.git_dirty)
    for step in range(1, 21):
        log.log_terms(step, {"mer": 1.0 / step, "total": 2.0 / step})
    log.log_result(_result_for(payload), cfg)
    log.finish()
    return JobOutcome(payload.key, True, wall_time_s=time.perf_counter() - t0, pid=os.getpid())


def orchestration_failing_job(payload: JobPayload) -> JobOutcome:
    """Raises for the first fold of no_dic until a `.fixed` marker exists; counts its attempts."""
    ckpt = Path(payload.checkpoint_path)
    if payload.label.startswith("no_dic") and payload.label.endswith("fold=01"):
        with open(ckpt.with_suffix(".attempts"), "a") as f:
            f.write("x\n")
        if not ckpt.with_suffix(".fixed").exists():
            raise ValueError("boom: a deterministic failure inside the job")
    return orchestration_logging_job(payload)


# ---------------------------------------------------------------------------------------------
# no Ray


def test_capacity_and_eta():
    c = Cluster("local", cpus=2, gpus=1, log_dir="", started_here=True)
    assert capacity(c, Resources(cpus=1, gpus=0)) == 2
    assert capacity(c, Resources(cpus=0.125, gpus=0)) == 16
    assert capacity(c, Resources(cpus=0.5, gpus=0.25)) == 4  # GPU fractions only do accounting: 4 share one GPU
    assert capacity(c, Resources(cpus=1, gpus=2)) == 0  # no node fits: the sweep stops with a message
    assert capacity(c, Resources(cpus=0.125, gpus=0), max_parallel=3) == 3
    out = io.StringIO()
    p = Progress(total=10, parallel=2, stream=out, tty=False, interval=3600)
    for _ in range(4):
        p.started()
    p.finished(30.0, True)
    p.finished(10.0, False)
    assert (p.done, p.failed, p.running, p.queued) == (1, 1, 2, 6)
    assert p.eta() == pytest.approx(30.0 * 8 / 2)  # 8 jobs left in waves of 2 at 30 s each
    p.pooled("fdp|seed0", {"acc": 0.5, "uf1": 0.25})
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # the first event, the finished configuration, the close; nothing in between
    assert "jobs 1/10 done, 2 running, 1 failed, 6 queued" in lines[-1] and "fdp|seed0: acc=0.500 uf1=0.250" in lines[-1]
    assert format_duration(125) == "2m05s" and format_duration(7300) == "2h01m"


def test_progress_redraws_in_place_on_a_terminal():
    out = io.StringIO()
    p = Progress(total=2, stream=out, tty=True)
    p.started()
    p.pooled("fdp|seed0", {"uf1": 0.5})
    p.close()
    text = out.getvalue()
    assert "\x1b[1F" in text or "\x1b[2F" in text  # cursor moved up over the previous block
    assert text.count("\n") >= 3


# ---------------------------------------------------------------------------------------------
# Ray, orchestration only


@pytest.mark.integration
def test_sixteen_jobs_log_at_once_into_a_fresh_store(ray_cluster, synth_cache, tmp_path):
    spec = _spec(synth_cache, "sixteen", ["fdp", "no_dic", "no_rank", "no_local"], cpus=0.125)
    plan = expand(spec)
    assert len(plan.jobs) == 16
    report = run_sweep(plan, _opts(tmp_path, job_fn=orchestration_logging_job, flush_every=5))
    assert report.failed == {} and len(report.done) == 16 and report.exit_code == 0
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    every = tracker.client.search_experiments()
    runs = [r for e in every for r in tracker.search(e.experiment_id, "")]
    assert {r.info.experiment_id for r in runs} == {report.experiment_id}  # nothing in Default
    children = [r for r in runs if r.data.tags.get("fdp.role") == "job"]
    assert len(children) == 16 and all(r.info.status == "FINISHED" for r in children)
    assert len({r.data.tags["fdp.job_key"] for r in children}) == 16
    assert all(r.data.tags["mlflow.parentRunId"] == report.parent_run_id for r in children)
    hist = tracker.client.get_metric_history(children[0].info.run_id, "train/total")
    assert sorted(m.step for m in hist) == list(range(1, 21))
    assert set(report.pooled) == {c.label for c in plan.configurations}
    parent = tracker.client.get_run(report.parent_run_id)
    assert parent.info.status == "FINISHED" and "fdp/seed0/acc" in parent.data.metrics


def orchestration_sleeping_job(payload: JobPayload) -> JobOutcome:
    """Sleeps for the seconds named in its fold; untracked."""
    time.sleep(float(payload.fold))
    return JobOutcome(payload.key, True)


class _CancelsWhileHandingOut(JobSource):
    """Hands out a long and a short job and, after the first round, names the long one for
    cancelling -- as a search does when a value it reads back prunes a trial with folds running."""

    def __init__(self, payloads: list[JobPayload]) -> None:
        self.queue, self.rounds, self.events = list(payloads), 0, []

    def next_job(self) -> JobPayload | None:
        return self.queue.pop(0) if self.queue else None

    def to_cancel(self) -> list[str]:
        self.rounds += 1
        return ["long"] if self.rounds == 1 else []

    def done(self, payload: JobPayload, outcome: JobOutcome, seconds: float) -> None:
        self.events.append(("done", payload.key, outcome.ok))

    def cancelled(self, payload: JobPayload) -> None:
        self.events.append(("cancelled", payload.key))


@pytest.mark.integration
def test_a_job_named_by_to_cancel_is_cancelled_at_once(ray_cluster, tmp_path):
    """The scheduler acts on `to_cancel` in the round it is named, not when some other job ends:
    the long job is cancelled (and reported so) before the short one finishes, and has no outcome."""
    payloads = [JobPayload(key, key, "c", fold, {}, "", "", str(tmp_path / f"{key}.pt"))
                for key, fold in (("long", "300"), ("short", "8"))]
    source = _CancelsWhileHandingOut(payloads)
    t0 = time.monotonic()
    out = Scheduler(Resources(cpus=1, gpus=0), retries=0, parallel=2, job_fn=orchestration_sleeping_job).run(source)
    assert source.events == [("cancelled", "long"), ("done", "short", True)]
    assert list(out) == ["short"] and time.monotonic() - t0 < 120


@pytest.mark.integration
def test_job_exception_is_not_retried_and_rerun_resumes(ray_cluster, synth_cache, tmp_path):
    spec = _spec(synth_cache, "faults", ["fdp", "no_dic"])
    plan = expand(spec)
    first = run_sweep(plan, _opts(tmp_path, job_fn=orchestration_failing_job))
    bad = "no_dic|seed0|fold=01"
    assert first.exit_code == 1 and list(first.failed) == [bad] and len(first.done) == 7
    assert first.failed[bad] == "ValueError: boom: a deterministic failure inside the job"
    ckpt = tmp_path / ".cache" / "checkpoints" / "faults" / f"{next(j.key for j in plan.jobs if j.label == bad)}.pt"
    assert ckpt.with_suffix(".attempts").read_text().count("x") == 1  # an exception is not retried
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    children = tracker.children(first.experiment_id, first.parent_run_id)
    failed_run = children[ckpt.stem]
    assert failed_run.info.status == "FAILED" and failed_run.data.tags["fdp.error"].startswith("ValueError: boom")
    assert "no_dic|seed0" not in first.pooled and "fdp|seed0" in first.pooled  # pooled only when all folds are done

    ckpt.with_suffix(".fixed").touch()
    second = run_sweep(plan, _opts(tmp_path, job_fn=orchestration_failing_job))
    assert second.resumed and second.parent_run_id == first.parent_run_id
    assert second.exit_code == 0 and second.done == [bad] and len(second.skipped) == 7
    after = tracker.children(first.experiment_id, first.parent_run_id)
    assert after[ckpt.stem].info.run_id == failed_run.info.run_id  # the same run continued
    assert after[ckpt.stem].info.status == "FINISHED" and "fdp.error" not in after[ckpt.stem].data.tags
    runs = tracker.search(first.experiment_id, f"tags.`mlflow.parentRunId` = '{first.parent_run_id}'")
    assert len(runs) == 8  # exactly one run per job key
    assert second.pooled["fdp|seed0"] == first.pooled["fdp|seed0"]
    assert set(second.pooled) == {"fdp|seed0", "no_dic|seed0"}


# ---------------------------------------------------------------------------------------------
# Ray + the real trainer


def orchestration_pid_recording_job(payload: JobPayload) -> JobOutcome:
    """The real job, after noting this attempt's pid and whether a checkpoint was there, so the
    test can kill the worker process and then see how the retry started."""
    ckpt = Path(payload.checkpoint_path)
    with open(ckpt.with_suffix(".attempts"), "a") as f:
        f.write(f"{os.getpid()} {int(ckpt.exists())}\n")
    return run_job(payload)


@pytest.mark.integration
def test_cli_smoke_sweep_with_a_diverging_configuration(ray_cluster, synth_cache, tmp_path, monkeypatch):
    """`run --smoke` end to end with the real trainer: the lr=1e12 configuration diverges (NaN):
    its jobs are FAILED with the reason, the other configuration finishes and is pooled; exit 1."""
    from click.testing import CliRunner

    from orchestrator.cli.run import run_cmd

    spec = _write_spec(tmp_path / "lr.yaml", {
        "name": "lr", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"],
        "grid": {"train.lr": [0.0001, 1.0e+12]}, "steps": 50, "overrides": {"data.cache_dir": str(synth_cache)},
        "resources": {"cpus": 1, "gpus": 0}, "tracking": {"experiment": "lr-exp"},
        "smoke": {"folds": 2, "train.steps": 4,
                  **{k: v for k, v in TINY.items() if k not in ("train.device", "train.checkpoint_every")}}})
    monkeypatch.setenv("FDP_PROJECT_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = CliRunner().invoke(run_cmd, [str(spec), "--smoke"])
    assert res.exit_code == 1, res.output
    assert "sweep lr: 2 done, 0 skipped (finished earlier), 2 failed" in res.output
    assert "FAILED fdp|lr=1000000000000|seed0|fold=01: TrainingError: fold 01: step 2: loss term" in res.output
    assert "fdp|lr=0.0001|seed0: acc=" in res.output
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    exp = tracker.client.get_experiment_by_name("lr-exp")
    assert exp.artifact_location == (tmp_path / "mlruns" / "lr-exp").as_uri()
    runs = tracker.search(exp.experiment_id, "tags.`fdp.role` = 'job'")
    status = {r.data.tags["fdp.config_label"] + "/" + r.data.tags["fdp.fold"]: r.info.status for r in runs}
    assert status == {"fdp|lr=0.0001|seed0/01": "FINISHED", "fdp|lr=0.0001|seed0/02": "FINISHED",
                      "fdp|lr=1000000000000|seed0/01": "FAILED", "fdp|lr=1000000000000|seed0/02": "FAILED"}
    ok = next(r for r in runs if r.info.status == "FINISHED")
    assert ok.data.params["train.steps"] == "4" and ok.data.params["train.device"] == "cpu"
    assert {"acc", "uf1", "uar", "di_mse", "train/total"} <= set(ok.data.metrics)
    assert not list((tmp_path / ".cache" / "checkpoints" / "lr").glob("*.pt"))  # finished jobs drop theirs


@pytest.mark.integration
def test_killed_worker_is_retried_from_its_checkpoint(ray_cluster, synth_cache, tmp_path):
    import threading

    spec = _spec(synth_cache, "killw", ["fdp"], steps=40, folds=1)
    plan = expand(spec)
    assert len(plan.jobs) == 1
    ckpt = tmp_path / ".cache" / "checkpoints" / "killw" / f"{plan.jobs[0].key}.pt"
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("report", run_sweep(
        plan, _opts(tmp_path, job_fn=orchestration_pid_recording_job))))
    t.start()
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ckpt.exists(), "no checkpoint appeared"
    pid = int(ckpt.with_suffix(".attempts").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    t.join(timeout=180)
    report = box["report"]
    assert report.exit_code == 0 and report.done == [plan.jobs[0].label]
    attempts = [line.split() for line in ckpt.with_suffix(".attempts").read_text().splitlines()]
    assert len(attempts) == 2 and attempts[0][1] == "0" and attempts[1][1] == "1"  # the retry found the checkpoint
    assert attempts[1][0] != attempts[0][0]
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    (run,) = tracker.children(report.experiment_id, report.parent_run_id).values()
    assert run.info.status == "FINISHED" and int(run.data.tags["fdp.resumed_from_step"]) > 0
    assert not ckpt.exists()  # removed once the job finished


DRIVER = "from orchestrator.cli.run import run_cmd; run_cmd()"


def _sweep_file(tmp: Path, cache: Path) -> Path:
    return _write_spec(tmp / "resume.yaml", {
        "name": "resume", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], "steps": 12,
        "overrides": {"data.cache_dir": str(cache), **TINY}, "resources": {"cpus": 1, "gpus": 0},
        "tracking": {"experiment": "resume-exp"}})


def _driver(root: Path, spec: Path) -> subprocess.Popen:
    return cli_driver(root, DRIVER, spec)


@pytest.mark.integration
def test_killed_driver_resumes_to_the_same_result(synth_cache, tmp_path):
    """SIGKILL the driver after some jobs finished; re-run: one FINISHED run per job key and the
    pooled metrics of an uninterrupted sweep (own Ray clusters, started by the drivers; the
    uninterrupted one runs meanwhile, on its own store and cluster: `ray.init` joins another
    local cluster only when `ray start` made it)."""
    from mlflow.tracking import MlflowClient

    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    spec_k, spec_c = _sweep_file(killed, synth_cache), _sweep_file(clean, synth_cache)

    proc = _driver(killed, spec_k)
    base = _driver(clean, spec_c)
    deadline, finished = time.monotonic() + 240, 0
    while time.monotonic() < deadline and proc.poll() is None and finished < 2:
        time.sleep(0.3)
        finished = finished_runs(killed / "mlflow.db", "job")
    assert proc.poll() is None and finished >= 2, proc.communicate()[0] if proc.poll() is not None else finished
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything its session started (Ray)
    proc.wait()

    again = _driver(killed, spec_k)
    out_k = again.communicate(timeout=300)[0]
    out_c = base.communicate(timeout=300)[0]
    assert again.returncode == 0, out_k
    assert base.returncode == 0, out_c
    assert "(resumed)" in out_k and "skipped (finished earlier)" in out_k

    def state(root: Path) -> tuple[dict[str, list[str]], dict[str, float]]:
        c = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
        exp = c.get_experiment_by_name("resume-exp")
        by_key = statuses_by_key(c.search_runs([exp.experiment_id], "tags.`fdp.role` = 'job'"))
        (parent,) = c.search_runs([exp.experiment_id], "tags.`fdp.role` = 'parent'")
        return by_key, parent.data.metrics

    keys_k, pooled_k = state(killed)
    keys_c, pooled_c = state(clean)
    assert keys_k == keys_c and len(keys_k) == 4
    assert all(v == ["FINISHED"] for v in keys_k.values())  # exactly one run per job key
    assert pooled_k == pooled_c and "fdp/seed0/uf1" in pooled_k


# ---------------------------------------------------------------------------------------------
# in-process: the same loop without Ray (fast tier: tests/conftest.py refuses Ray here)


class _HandsOutThree(JobSource):
    """Hands out a, b, c; names b for cancelling as soon as it is handed out."""

    def __init__(self, payloads: list[JobPayload]) -> None:
        self.queue, self.events, self.handed = list(payloads), [], []

    def next_job(self) -> JobPayload | None:
        return self.queue.pop(0) if self.queue else None

    def started(self, payload: JobPayload) -> None:
        self.handed.append(payload.key)

    def to_cancel(self) -> list[str]:
        return ["b"] if self.handed[-1:] == ["b"] else []

    def done(self, payload: JobPayload, outcome: JobOutcome, seconds: float) -> None:
        self.events.append(("done", payload.key, outcome.ok, outcome.error))

    def cancelled(self, payload: JobPayload) -> None:
        self.events.append(("cancelled", payload.key))


def test_in_process_runs_jobs_here_one_at_a_time():
    """In-process: each job runs in this process when the loop waits for it, one at a time; a job
    cancelled before its turn never runs; a job function that raises is a failed outcome, worded
    as Ray words a task that raised (`_outcome`)."""
    ran = []

    def job(p: JobPayload) -> JobOutcome:
        ran.append((p.key, os.getpid()))
        if p.key == "c":
            raise ValueError("boom\nsecond line")
        return JobOutcome(p.key, True)

    payloads = [JobPayload(k, k, "cfg", "01", {}, "", "", "") for k in "abc"]
    source = _HandsOutThree(payloads)
    out = Scheduler(Resources(cpus=1, gpus=0), retries=3, parallel=4, job_fn=job, in_process=True).run(source)
    assert ran == [("a", os.getpid()), ("c", os.getpid())]
    assert source.events == [("done", "a", True, ""), ("cancelled", "b"), ("done", "c", False, "ValueError: boom")]
    assert list(out) == ["a", "c"] and out["c"].run_id == ""


def test_in_process_job_exception_is_not_retried_and_rerun_resumes(synth_cache, tmp_path):
    """What the Ray test of the same name pins, in-process: a job that raises is FAILED with its
    reason and tried once; the re-run continues the same parent and the same run."""
    plan = expand(_spec(synth_cache, "faults", ["fdp", "no_dic"], folds=1))
    bad = "no_dic|seed0|fold=01"
    stream = io.StringIO()
    first = run_sweep(plan, _opts(tmp_path, job_fn=orchestration_failing_job, in_process=True, stream=stream))
    assert first.exit_code == 1 and first.failed == {bad: "ValueError: boom: a deterministic failure inside the job"}
    assert first.done == ["fdp|seed0|fold=01"] and first.cluster is None
    assert "sweep faults: 2 job(s) to run, 0 already finished; one at a time in this process (no Ray)" \
        in stream.getvalue()
    ckpt = tmp_path / ".cache" / "checkpoints" / "faults" / f"{next(j.key for j in plan.jobs if j.label == bad)}.pt"
    assert ckpt.with_suffix(".attempts").read_text() == "x\n"
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    failed_run = tracker.children(first.experiment_id, first.parent_run_id)[ckpt.stem]
    assert failed_run.info.status == "FAILED" and failed_run.data.tags["fdp.error"].startswith("ValueError: boom")
    assert set(first.pooled) == {"fdp|seed0"}

    ckpt.with_suffix(".fixed").touch()
    second = run_sweep(plan, _opts(tmp_path, job_fn=orchestration_failing_job, in_process=True))
    assert second.resumed and second.parent_run_id == first.parent_run_id
    assert second.exit_code == 0 and second.done == [bad] and second.skipped == ["fdp|seed0|fold=01"]
    after = tracker.children(first.experiment_id, first.parent_run_id)
    assert after[ckpt.stem].info.run_id == failed_run.info.run_id and after[ckpt.stem].info.status == "FINISHED"
    assert second.pooled["fdp|seed0"] == first.pooled["fdp|seed0"] and set(second.pooled) == {"fdp|seed0", "no_dic|seed0"}


def test_progress_shows_the_steps_of_a_job_running_here():
    """In a log: the running job's step line when it starts and at each fifth of its steps,
    whatever steps the trainer reports; on a terminal: one line of the redrawn block, gone when
    the job ends."""
    log = io.StringIO()
    p = Progress(total=1, stream=log, tty=False, interval=3600)
    p.started()
    for step in range(1, 101, 3):  # reported every 3rd step: 1, 4, ..., 100
        p.step("fdp|seed0|fold=01", step, 100, {"mer": 1.5})
    steps = [ln.split(" ")[2] for ln in log.getvalue().splitlines() if ln.startswith("fdp|seed0|fold=01: step ")]
    assert steps == ["1/100", "22/100", "40/100", "61/100", "82/100", "100/100"]

    import re

    term = io.StringIO()
    p = Progress(total=1, stream=term, tty=True)
    p.started()
    p.step("fdp|seed0|fold=01", 5, 20, {"mer": 1.5})
    p.close()  # drawn now, whenever the last draw was
    running = re.split(r"\x1b\[\d+F", term.getvalue())[-1]
    assert running.endswith("\x1b[2K  fdp|seed0|fold=01: step 5/20 mer=1.5000\n")
    p.finished(1.0, True)
    p.close()
    ended = re.split(r"\x1b\[\d+F", term.getvalue())[-1]
    assert "step" not in ended and ended.count("\n") == 1 and ended.endswith("\x1b[J")  # its line cleared


def test_cli_run_in_process(synth_cache, tmp_path, monkeypatch):
    """`run --in-process`: the sweep's jobs with the real trainer, its summary and records, and no
    Ray (tests/conftest.py fails this test if anything starts it); with --address: one line."""
    from click.testing import CliRunner

    from orchestrator.cli.run import run_cmd

    spec = _write_spec(tmp_path / "here.yaml", {
        "name": "here", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], "steps": 2, "folds": 1,
        "overrides": {**TINY, "data.cache_dir": str(synth_cache)}, "tracking": {"experiment": "here-exp"}})
    monkeypatch.setenv("FDP_PROJECT_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = CliRunner().invoke(run_cmd, [str(spec), "--in-process"])
    assert res.exit_code == 0, res.output
    assert "sweep here: 1 job(s) to run, 0 already finished; one at a time in this process (no Ray)" in res.stderr
    assert "sweep here: 1 done, 0 skipped (finished earlier), 0 failed" in res.stdout
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    exp = tracker.client.get_experiment_by_name("here-exp").experiment_id
    (job,) = tracker.search(exp, "tags.`fdp.role` = 'job'")
    assert job.info.status == "FINISHED" and job.data.params["train.steps"] == "2"
    assert int(job.data.tags["fdp.worker_pid"]) == os.getpid()  # the driver's own process ran it
    assert f"fdp|seed0: acc={job.data.metrics['acc']:.4f}" in res.stdout  # one fold: pooled = the fold's

    both = CliRunner().invoke(run_cmd, [str(spec), "--in-process", "--address", "auto"])
    assert both.exit_code == 2 and both.stderr.splitlines()[-1] == \
        "error: --in-process runs no Ray cluster: give --in-process or --address, not both"


def test_a_finished_sweep_drops_only_an_empty_checkpoint_folder(tmp_path):
    """Two instances of one sweep in one project (another seed, another store) share the folder
    `.cache/checkpoints/<sweep>`: the one that finishes first leaves it while the other's files are
    in it, and a folder the other removed already is no error (it once failed the second driver)."""
    from orchestrator.run.scheduler import checkpoint_dir, drop_checkpoint_folder

    ckpts = checkpoint_dir(tmp_path, "demo")
    ckpts.mkdir(parents=True)
    (ckpts / "other-instance-job.pt").write_bytes(b"x")
    drop_checkpoint_folder(ckpts)
    assert (ckpts / "other-instance-job.pt").read_bytes() == b"x"
    (ckpts / "other-instance-job.pt").unlink()
    drop_checkpoint_folder(ckpts)
    assert not ckpts.exists()
    drop_checkpoint_folder(ckpts)  # already gone: nothing to do, nothing raised
    assert not ckpts.exists() and ckpts.parent.is_dir()
