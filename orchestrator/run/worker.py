"""What one fold job does on a worker -- the same for a sweep's LOSO/cross folds and a search's
objective folds: rebuild the config, log into the job's MLflow run (opened on the worker as the
job starts: `open_run`; `orchestrator.track.worker.RunLogger`), train the fold with
`fdp.runner.run_fold`, which runs the config's method (or `fdp.objective.objective_fold`) from its
checkpoint, log the result and
close the run. An exception inside the job (non-finite loss, bad data) is *caught* and reported as
a failed outcome with the run marked FAILED: retrying a deterministic failure is pointless, and
Ray's own retries are kept for dying worker processes."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdp.config import ExperimentConfig, from_dict

ORPHAN_EXIT = 70  # exit status of a worker that stopped because its raylet is gone
_parent: int | None = None  # pid of the raylet that started this worker process (set by `guard_parent`)
# told each training step of the job running in this process, when a driver runs jobs in its own
# process and shows their steps (`listening`); a Ray worker's steps are in its run's curves
_listener: Callable[[int, dict[str, float]], None] | None = None


def guard_parent() -> None:
    """Called in a Ray task before the job (the scheduler's task does): from now on the job stops
    at its next step if the raylet that started this worker is gone (`stop_if_orphaned`)."""
    global _parent
    _parent = os.getppid()


@contextmanager
def listening(fn: Callable[[int, dict[str, float]], None] | None) -> Iterator[None]:
    """While inside: `fn(step, loss terms)` after each step a job of this process logs."""
    global _listener
    before, _listener = _listener, fn
    try:
        yield
    finally:
        _listener = before


def stop_if_orphaned() -> None:
    """A Ray worker is its own process group, so killing a driver with its local cluster leaves the
    worker training on after its raylet died: nobody can collect its result, and the re-run of the
    same command resumes this job from its checkpoint -- training on would train the fold twice, at
    once, into one run. Exit now, writing nothing: the run stays as it is and the checkpoint resumes."""
    if _parent is not None and os.getppid() != _parent:
        os._exit(ORPHAN_EXIT)


@dataclass
class JobPayload:
    """Everything a worker needs, as plain data with absolute paths (workers run elsewhere)."""

    key: str
    label: str
    config_label: str
    fold: str
    cfg: dict[str, Any]  # to_dict of the runtime config
    run_id: str  # the MLflow run the driver created for this job
    tracking_uri: str
    checkpoint_path: str  # absolute; resumed from when it exists, removed on success
    git_commit: str = ""
    git_dirty: bool = False
    flush_every: int = 50  # buffered step metrics per log_batch
    # without run_id: the run is opened on the worker as the job starts (`open_run`), from these
    experiment_id: str = ""
    run_spec: dict[str, Any] = field(default_factory=dict)  # tags, name, dataset inputs
    # a search's objective fold (`fdp.objective`): {"val_subject", "search_subjects", "metric",
    # "step"}; empty for a LOSO/cross fold of a sweep
    objective: dict[str, Any] = field(default_factory=dict)


def open_run(payload: JobPayload) -> JobPayload:
    """Give the payload its MLflow run, opened now -- after the worker's imports, just before the
    job trains -- so the run's Duration in the UI is the job's own time, not its time in Ray's
    queue or a fresh worker's start. A retried attempt finds the run its predecessor opened."""
    if payload.run_id or not payload.run_spec:  # opened already, or an untracked job (tests, benches)
        return payload
    # a fresh worker's imports (torch; matplotlib for the run's figures) are its start-up, not the job
    import matplotlib.figure  # noqa: F401
    import fdp.runner  # noqa: F401
    from orchestrator.track.driver import open_job_run

    s = payload.run_spec
    payload.run_id = open_job_run(payload.tracking_uri, payload.experiment_id, s["tags"], s["name"], s["inputs"])
    return payload


@dataclass
class JobOutcome:
    """What a worker reports back; the MLflow run holds the full record."""

    key: str
    ok: bool
    error: str = ""  # one line when not ok
    wall_time_s: float = 0.0  # time inside the job, start to end (includes data loading)
    resumed_from_step: int = 0  # >0 when the job continued from a checkpoint
    metrics: dict[str, float] = field(default_factory=dict)
    pid: int = 0
    run_id: str = ""  # the run the job logged into (opened on the worker)
    value: float = float("nan")  # an objective fold's value (`payload.objective["metric"]`)
    train_subjects: list[str] = field(default_factory=list)  # an objective fold's training subjects
    val_subjects: list[str] = field(default_factory=list)  # ... and the subjects it evaluated


def run_job(payload: JobPayload) -> JobOutcome:
    """Train one fold into its MLflow run, resuming from its checkpoint; never raises for
    failures inside the job. A search's objective fold (`payload.objective`) trains on the other
    search subjects only and also logs its objective value (metric `objective_<metric>` at the
    fold's step) and the subjects it used."""
    from fdp.runner import run_fold
    from orchestrator.track.worker import RunLogger

    t0 = time.perf_counter()
    ckpt = Path(payload.checkpoint_path)
    resumed = _checkpoint_step(ckpt)
    log = RunLogger(payload.tracking_uri, payload.run_id, flush_every=payload.flush_every)
    obj = payload.objective
    value, train_subjects, val_subjects = float("nan"), [], []

    def on_step(step: int, terms: dict[str, float]) -> None:
        stop_if_orphaned()
        log.log_terms(step, terms)
        if _listener is not None:
            _listener(step, terms)

    try:
        cfg = from_dict(ExperimentConfig, payload.cfg)
        log.start(resumed_from_step=resumed)
        log.log_config(cfg, payload.git_commit, payload.git_dirty)
        if obj:
            from fdp.objective import fold_value, objective_fold

            result, train_subjects = objective_fold(cfg, obj["val_subject"], obj["search_subjects"],
                                                    callback=on_step, checkpoint_path=ckpt)
            value, val_subjects = fold_value(result, obj["metric"]), sorted(set(result.subjects))
        else:
            result = run_fold(cfg, payload.fold, callback=on_step, checkpoint_path=ckpt)
        stop_if_orphaned()  # before the result: a job nobody waits for must not finish its run
        log.log_result(result, cfg)
        if obj:
            log.log_objective(obj["metric"], value, int(obj["step"]), train_subjects, val_subjects)
        log.finish()
    except Exception as e:  # noqa: BLE001 - any failure inside the job is reported, not retried
        reason = _one_line(e)
        log.fail(reason, traceback.format_exc())
        return JobOutcome(payload.key, False, reason, time.perf_counter() - t0, resumed, pid=os.getpid())
    # only a finished, logged job gives up its checkpoint: anything earlier may still resume
    ckpt.unlink(missing_ok=True)
    return JobOutcome(payload.key, True, "", time.perf_counter() - t0, resumed, dict(result.metrics),
                      pid=os.getpid(), value=value, train_subjects=train_subjects, val_subjects=val_subjects)


def _checkpoint_step(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        import torch

        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"])
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is the trainer's to report
        return 0


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {text}"[:500]
