"""Soak (issue #7 item 4): a CPU sweep of tiny real fold jobs while a killer SIGKILLs the Ray
worker processes that are running them; afterwards every job has finished exactly once.

"Exactly once" is read from the MLflow store, not from the driver's report: one child run per job
key, FINISHED, no `fdp.error`, no run of another key; the parent's pooled metrics are those of the
children's `predictions.csv`; and a job that was killed and resumed from its checkpoint predicts
what the same fold trained without interruption predicts. The killer must actually have killed
workers in the middle of fold jobs, and some retries must have started from a checkpoint, or the
test proves nothing.

Retries: the killer hits each job at most once, so the spec's default `retries: 2` (Ray's
`max_retries` per job) is never exhausted; a job killed three times would (correctly) end FAILED.

    pytest tests/test_soak.py             # 24 jobs, 6 kills (CI)
    pytest tests/test_soak.py -m slow     # 200 jobs, 40 kills
"""

from __future__ import annotations

import io
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import ray
import torch
from fixtures_runs import descendants, processes

from fdp.runner import run_fold
from orchestrator.cli.train import SMOKE_OVERRIDES
from orchestrator.run.worker import JobOutcome, JobPayload, run_job
from orchestrator.plan.jobs import expand, runtime_config
from orchestrator.run.scheduler import SweepOptions, run_sweep
from orchestrator.spec.sweep import parse_spec
from orchestrator.track.driver import SweepTracker, metric_prefix

# Workers cannot import this test module: ship its functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TASK_TITLE = "ray::soak_job"  # a Ray worker's process title while it runs `soak_job`


def soak_job(payload: JobPayload) -> JobOutcome:
    """The real fold job, after noting which process runs which attempt and whether it found a
    checkpoint to resume from (one line per attempt, appended before the work starts)."""
    ckpt = Path(payload.checkpoint_path)
    with open(ckpt.parent.parent / "soak-attempts.log", "a") as f:
        f.write(f"{os.getpid()} {payload.key} {int(ckpt.exists())}\n")
    return run_job(payload)


def _children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every descendant of `pid` (Linux /proc): this test's Ray workers,
    never another process's."""
    procs = processes()
    return [(p, procs[p][1]) for p in sorted(descendants(pid, procs))]


def _dead(pid: int) -> bool:
    """Gone, or a zombie not yet reaped by its raylet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


class Killer(threading.Thread):
    """SIGKILLs `target` workers while they run fold jobs, spread over the sweep by its progress
    (kill i once i/(target+1) as many attempts as jobs have started), each time in a job not hit before. Every
    other kill waits for a job that has written a checkpoint (mid-training: its retry must resume);
    the others take any running job (often still starting: its retry starts over)."""

    def __init__(self, root: Path, jobs: int, target: int, seed: int = 0) -> None:
        super().__init__(daemon=True)
        self.log = root / ".cache" / "checkpoints" / "soak-attempts.log"
        self.ckpts = root / ".cache" / "checkpoints" / "soak"
        self.jobs, self.target = jobs, target
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.kills: list[tuple[int, str, bool]] = []  # (pid, job key, mid-training)

    def _attempts(self) -> list[list[str]]:
        try:
            return [ln.split() for ln in self.log.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def run(self) -> None:
        while len(self.kills) < self.target and not self.stop.wait(0.05):
            attempts = self._attempts()
            if len(attempts) < (len(self.kills) + 1) * self.jobs // (self.target + 1):
                continue
            mid = len(self.kills) % 2 == 1
            running = {int(pid): key for pid, key, *_ in attempts}  # a worker's latest attempt
            hit = {key for _, key, _ in self.kills}
            victims = [p for p, cmd in _children_of(os.getpid()) if cmd.startswith(TASK_TITLE)
                       and running.get(p) not in hit | {None}
                       and (not mid or (self.ckpts / f"{running[p]}.pt").exists())]
            if victims:
                pid = self.rng.choice(victims)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                # the job it died in: its last attempt once it is dead -- between the read above and
                # the kill it may have finished that job and started the next (seen once, fresh clone at 03ffc58)
                deadline = time.monotonic() + 5
                while not _dead(pid) and time.monotonic() < deadline:
                    time.sleep(0.01)
                key = [k for p, k, *_ in self._attempts() if int(p) == pid][-1]
                self.kills.append((pid, key, mid and key == running[pid]))


def _soak(cache: Path, root: Path, seeds: int, kills: int) -> None:
    over = {k: v for k, v in SMOKE_OVERRIDES.items() if k != "train.steps"}  # the spec's `steps` counts
    over.update({"data.cache_dir": str(cache), "train.batch_size": 4, "train.log_every": 1,
                 "train.checkpoint_every": 1})  # a checkpoint after every step: kills land between them
    spec = parse_spec({"name": "soak", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"],
                       "seeds": list(range(seeds)), "steps": 4, "overrides": over,
                       "resources": {"cpus": 1, "gpus": 0},  # default retries: 2
                       "tracking": {"experiment": "soak"}})
    plan = expand(spec)
    n = len(plan.jobs)
    assert all(j.cfg.train.steps == 4 for j in plan.jobs)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    killer = Killer(root, n, kills)
    killer.start()
    t0 = time.monotonic()
    try:
        report = run_sweep(plan, SweepOptions(root=root, tracking_uri=uri, num_cpus=2, job_fn=soak_job,
                                              stream=io.StringIO(), progress_interval=3600))
    finally:
        killer.stop.set()
        killer.join()
    wall = time.monotonic() - t0

    # the killer hit fold jobs: every retry is a kill's (a kill in the instant a job returns costs none)
    attempts = [ln.split() for ln in killer.log.read_text().splitlines()]
    per_key = Counter(key for _, key, *_ in attempts)
    resumed = {key for _, key, had_ckpt, *_ in attempts if had_ckpt == "1"}  # retries that found a checkpoint
    retries = len(attempts) - n
    print(f"\nsoak: {n} jobs, {len(killer.kills)} kills, {retries} retries, {len(resumed)} resumed from a "
          f"checkpoint, {wall:.0f}s")
    assert len(killer.kills) == kills, f"only {len(killer.kills)} of {kills} kills happened"
    assert set(per_key) == {j.key for j in plan.jobs}
    # each kill costs its job one retry (unless it lands in the instant the job returns: allow one),
    # and only killed jobs ran twice
    assert kills - 1 <= retries <= kills
    assert {k for k, c in per_key.items() if c > 1} <= {key for _, key, _ in killer.kills}
    mid = {key for _, key, was_mid in killer.kills if was_mid}
    assert len(mid & resumed) >= len(mid) - 1, "retries of mid-training kills did not find their checkpoint"

    # the driver's view
    assert report.failed == {} and report.exit_code == 0
    assert sorted(report.done) == sorted(j.label for j in plan.jobs)

    # the store's view: exactly one run per job key, FINISHED, under the one parent
    tracker = SweepTracker(uri, root)
    runs = tracker.search(report.experiment_id, "")
    (parent,) = [r for r in runs if r.data.tags.get("fdp.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("fdp.role") == "job"]
    assert len(runs) == n + 1 and parent.info.status == "FINISHED"
    by_key = Counter(r.data.tags["fdp.job_key"] for r in children)
    assert by_key == Counter({j.key: 1 for j in plan.jobs})  # no job lost, none twice
    for r in children:
        assert r.info.status == "FINISHED" and "fdp.error" not in r.data.tags, r.data.tags
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
    tagged = {r.data.tags["fdp.job_key"] for r in children if int(r.data.tags.get("fdp.resumed_from_step", 0))}
    assert resumed <= tagged  # the run says it resumed
    # every run's loss curve is complete, each step once, killed or not (log_every 1, 4 steps)
    for r in children:
        steps = sorted(m.step for m in tracker.client.get_metric_history(r.info.run_id, "train/total"))
        assert steps == [1, 2, 3, 4], (r.data.tags["fdp.job_key"], steps)

    # pooled metrics = metrics of the children's predictions, per configuration
    run_of = {r.data.tags["fdp.job_key"]: r.info.run_id for r in children}
    for c in plan.configurations:
        expected = tracker.pooled(run_of[j.key] for j in plan.jobs_of(c.label))
        assert report.pooled[c.label] == pytest.approx(expected)
        got = {k: parent.data.metrics[f"{metric_prefix(c.label)}/{k}"] for k in expected}
        assert got == pytest.approx(expected)

    # a killed job, resumed from its checkpoint, predicts what an uninterrupted fold predicts
    # (one thread, as in a 1-cpu Ray worker, so that float reductions run in the same order)
    jobs, threads = {j.key: j for j in plan.jobs}, torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for key in sorted(resumed)[:2]:
            job = jobs[key]
            clean = run_fold(runtime_config(job.cfg), job.fold)
            logged = tracker.predictions(run_of[key])
            assert logged["labels"] == list(clean.labels) and logged["preds"] == list(clean.preds), job.label
    finally:
        torch.set_num_threads(threads)

    # finished jobs drop their checkpoints (a kill's torn `.pt.tmp` included), then the sweep drops the folder
    assert not killer.ckpts.exists()


@pytest.mark.integration
def test_soak_short(ray_cluster, synth_cache, tmp_path):
    """24 jobs (4 folds x 6 seeds), 6 kills."""
    _soak(synth_cache, tmp_path, seeds=6, kills=6)


@pytest.mark.slow
@pytest.mark.integration
def test_soak_200_jobs(ray_cluster, synth_cache, tmp_path):
    """200 jobs (4 folds x 50 seeds), 40 kills."""
    _soak(synth_cache, tmp_path, seeds=50, kills=40)
