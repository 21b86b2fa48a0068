"""Running fold jobs on Ray core tasks -- a sweep's plan (`run_sweep`) or a search's study
(`orchestrator.search.study.StudySource`), both through the one `Scheduler` loop -- with MLflow
bookkeeping, resume and fault handling.

Faults, and who handles them:
* a worker process dies (OOM kill, node loss, kill -9): Ray re-runs the task (`max_retries` =
  the spec's `retries`); the new attempt logs into the same MLflow run and continues from the
  job's checkpoint;
* the job itself fails (non-finite loss, bad data): `orchestrator.run.worker.run_job` catches it, the
  run is marked FAILED with `fdp.error`, and the sweep goes on (`retry_exceptions=False`: a
  deterministic failure would fail again);
* the driver dies: re-running the same command finds the parent run by spec hash, skips FINISHED
  jobs and re-submits the others into their existing runs, which resume from their checkpoints. A
  worker of a local cluster that died with its driver (Ray workers are their own process groups)
  stops at its next step (`run.worker.stop_if_orphaned`), so it never races the resumed job.

Concurrency is bounded on the driver (at most `capacity` tasks in flight, `ray.wait` for the next
to finish), so "running" in the progress display means running, not queued inside Ray.

The same loop runs jobs without Ray when asked (`in_process`: `fdp-sweep train`, `run --in-process`):
one at a time in the driver's own process, through the same worker function and the same outcome
handling, so breakpoints and tracebacks work and nothing starts but the job. A worker process that
dies is then the driver itself: there is nothing to retry (`retries` does not apply), and re-running
the command resumes the job from its checkpoint, as after a killed driver.
"""

from __future__ import annotations

import contextlib

import functools
import itertools
import logging
import os
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from fdp.config import to_dict
from orchestrator.run.worker import JobOutcome, JobPayload, guard_parent, listening, open_run, run_job
from orchestrator.plan.jobs import Plan, runtime_config
from orchestrator.run.progress import Progress
from orchestrator.spec.schema import Resources
from orchestrator.run.lease import DriverBusy, DriverLease
from orchestrator.run.packing import node_fit
from fdp.pooling import pool_predictions
from orchestrator.track.driver import SweepTracker, metric_prefix
from orchestrator.track.provenance import git_info
from orchestrator.track.store import StoreError, check_store, project_root, resolve_tracking_uri

JobFn = Callable[[JobPayload], JobOutcome]
StepFn = Callable[[JobPayload, int, dict[str, float]], None]  # (job, step, loss terms)
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"}


class SchedulerError(RuntimeError):
    """The cluster cannot run the sweep (e.g. no node has the resources one job asks for)."""


# ---------------------------------------------------------------------------------------------
# the Ray cluster


@dataclass
class Cluster:
    address: str
    cpus: float
    gpus: float
    log_dir: str  # where the workers' stdout/stderr files are (Ray's session dir)
    started_here: bool  # a local cluster this process started (and shuts down)
    nodes: list[tuple[float, float]] = field(default_factory=list)  # (cpus, gpus) of each alive node; [] = one node

    def stop(self) -> None:
        """Shut down a local cluster this process started; an attached one keeps running."""
        if self.started_here:
            import ray

            ray.shutdown()


def _alive_nodes() -> list[tuple[float, float]]:
    import ray

    return [(float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0)))
            for n in ray.nodes() if n.get("Alive")]


# Ray takes the node's address from this switch (meant for Windows/macOS, where Ray keeps single-
# node clusters on loopback); every server the node starts binds to that address.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _init_loopback(ray: Any, **kwargs: Any) -> Any:
    """`ray.init` of a local cluster whose GCS, raylet, object manager, workers and dashboard
    agent listen on 127.0.0.1 only: by default they bind the machine's network address, without
    authentication, so anyone who reaches the machine could run code in it."""
    from ray._private import ray_constants

    saved_env, saved_flag = os.environ.get(LOOPBACK_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOOPBACK_ENV] = "0"  # the node's processes read it at their start
    ray_constants.ENABLE_RAY_CLUSTER = False  # and this process, whose ray is already imported
    try:
        return ray.init(dashboard_host="127.0.0.1", **kwargs)
    finally:
        # only the cluster started here is loopback-only: attaching to a real one later must not be
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(LOOPBACK_ENV, None)
        else:
            os.environ[LOOPBACK_ENV] = saved_env


def start_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> Cluster:
    """Attach to `address` / $RAY_ADDRESS, or start a quiet local cluster listening on 127.0.0.1
    only. Worker output goes to files in Ray's session directory, not to this terminal. `num_gpus`
    declares a local cluster's GPUs (default: Ray's detection); declared GPUs that do not exist only
    do accounting, which is how the GPU scheduling is tested on machines without one."""
    import ray

    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)  # inherited by the local cluster's workers
    address = address or os.environ.get("RAY_ADDRESS") or None
    common: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    if ray.is_initialized():
        ctx = None
    elif address:
        ctx = ray.init(address=address, **common)
    else:
        ctx = _init_loopback(ray, num_cpus=num_cpus or os.cpu_count() or 1, num_gpus=num_gpus,
                             include_dashboard=False, **common)
    res = ray.cluster_resources()
    if ctx is not None:
        session = ctx.address_info.get("session_dir", "")
    else:
        session = getattr(getattr(ray._private.worker.global_worker, "node", None), "get_session_dir_path",
                          lambda: "")()
    return Cluster(address or "local", float(res.get("CPU", 0)), float(res.get("GPU", 0)),
                   str(Path(session) / "logs") if session else "", ctx is not None and not address, _alive_nodes())


def capacity(cluster: Cluster, res: Resources, max_parallel: int | None = None) -> int:
    """How many jobs of size `res` the cluster runs at once (bounded by --max-parallel): summed
    over its nodes, GPU fractions counted per GPU (`packing.node_fit`), so a job never waits inside
    Ray while the progress line calls it running, and a job no single node fits gives 0."""
    nodes = cluster.nodes or [(cluster.cpus, cluster.gpus)]
    n = sum(node_fit(res, c, g) for c, g in nodes)
    if max_parallel:
        n = min(n, max_parallel)
    return n


def fit(cluster: Cluster, res: Resources, max_parallel: int | None = None) -> int:
    """`capacity`, or SchedulerError (one line naming the biggest node) when no node fits one job;
    a local cluster started for nothing is shut down first."""
    par = capacity(cluster, res, max_parallel)
    if par >= 1:
        return par
    cluster.stop()
    nodes = cluster.nodes or [(cluster.cpus, cluster.gpus)]
    biggest = max(nodes, key=lambda n: (n[1], n[0]))
    raise SchedulerError(
        f"no node of the cluster ({cluster.cpus:g} cpus, {cluster.gpus:g} gpus"
        + (f" on {len(nodes)} nodes, at most {biggest[0]:g} cpus / {biggest[1]:g} gpus on one" if len(nodes) > 1
           else "") + f") fits one job ({res.cpus:g} cpus, {res.gpus:g} gpus); lower `resources:` in the spec")


class JobSource(ABC):
    """What feeds the scheduler: a sweep's static plan (`PlanSource`) or a search's Optuna study
    (`orchestrator.search.study.StudySource`). The scheduler asks for jobs while it has free slots and
    tells the source what became of each, then asks it which running jobs to cancel."""

    @abstractmethod
    def next_job(self) -> JobPayload | None:
        """A job to start now, or None (nothing ready: wait for a running job to finish)."""

    def started(self, payload: JobPayload) -> None:
        """`payload` was handed to Ray."""

    def done(self, payload: JobPayload, outcome: JobOutcome, seconds: float) -> None:
        """A job ended (ok or not)."""

    def to_cancel(self) -> list[str]:
        """Keys of running jobs to cancel now (e.g. the rest of a pruned trial); asked after
        the jobs of each round are handed out and the finished ones told."""
        return []

    def cancelled(self, payload: JobPayload) -> None:
        """A job cancelled on the source's request has stopped (its slot is free again)."""

    def exhausted(self) -> bool:
        """No job will come any more (checked when none is running)."""
        return True


class PlanSource(JobSource):
    """A sweep's unfinished jobs, in plan order; `on_done` is told each outcome."""

    def __init__(self, payloads: list[JobPayload], on_start: Callable[[JobPayload], None] | None = None,
                 on_done: Callable[[JobPayload, JobOutcome, float], None] | None = None) -> None:
        self.queue = deque(payloads)
        self.on_start, self.on_done = on_start, on_done

    def next_job(self) -> JobPayload | None:
        return self.queue.popleft() if self.queue else None

    def started(self, payload: JobPayload) -> None:
        if self.on_start:
            self.on_start(payload)

    def done(self, payload: JobPayload, outcome: JobOutcome, seconds: float) -> None:
        if self.on_done:
            self.on_done(payload, outcome, seconds)

    def exhausted(self) -> bool:
        return not self.queue


class Scheduler:
    """THE loop that runs fold jobs, for sweeps and searches alike: at most `parallel` in flight
    (cancelled jobs still count until they stop), a job that fails inside is reported, never
    retried. On Ray (the default) a worker that dies is retried by Ray (`max_retries`; the retry
    resumes from the job's checkpoint into the same run); `in_process`: one job at a time in this
    process (`InProcess`), with `on_step` told each training step of the running job. Never raises
    for a failed job."""

    def __init__(self, res: Resources, retries: int, parallel: int, job_fn: JobFn = run_job,
                 in_process: bool = False, on_step: StepFn | None = None) -> None:
        self.executor: Executor = InProcess(job_fn, on_step) if in_process else OnRay(res, retries, job_fn)
        self.parallel = 1 if in_process else parallel

    def run(self, source: JobSource | list[JobPayload], on_tick: Callable[[], None] | None = None,
            tick_s: float = 1.0) -> dict[str, JobOutcome]:
        if isinstance(source, list):
            source = PlanSource(source)
        ex = self.executor
        inflight: dict[Any, tuple[JobPayload, float]] = {}
        by_key: dict[str, Any] = {}
        orphans: dict[Any, JobPayload] = {}  # cancelled, not yet stopped: they hold their slot
        outcomes: dict[str, JobOutcome] = {}
        while True:
            while len(inflight) + len(orphans) < self.parallel:
                p = source.next_job()
                if p is None:
                    break
                handle = ex.submit(p)
                inflight[handle], by_key[p.key] = (p, time.monotonic()), handle
                source.started(p)
            for key in source.to_cancel():
                victim = by_key.pop(key, None)
                if victim is not None and victim in inflight:
                    ex.cancel(victim)
                    orphans[victim] = inflight.pop(victim)[0]
            if not inflight and not orphans:
                if source.exhausted():
                    return outcomes
                raise SchedulerError("the job source has jobs left but hands none out")  # a bug, not a hang
            for handle in ex.wait(list(inflight) + list(orphans), tick_s):
                if handle in orphans:
                    p = orphans.pop(handle)
                    ex.outcome(handle, p)  # whatever it says: the job was cancelled
                    source.cancelled(p)
                    continue
                p, t0 = inflight.pop(handle)
                by_key.pop(p.key, None)
                outcomes[p.key] = out = ex.outcome(handle, p)
                source.done(p, out, time.monotonic() - t0)
            if on_tick:
                on_tick()


class Executor(ABC):
    """Where the scheduler's jobs run: Ray tasks (`OnRay`) or this process (`InProcess`). A
    submitted job has a handle; `wait` returns the handles of finished (or cancelled) jobs."""

    @abstractmethod
    def submit(self, payload: JobPayload) -> Any:
        """Hand the job over; its handle."""

    @abstractmethod
    def wait(self, handles: list[Any], timeout_s: float) -> list[Any]:
        """Handles among `handles` whose jobs have ended (none when `timeout_s` passes first)."""

    @abstractmethod
    def outcome(self, handle: Any, payload: JobPayload) -> JobOutcome:
        """The ended job's outcome, also for a worker that died or a cancelled job."""

    @abstractmethod
    def cancel(self, handle: Any) -> None:
        """Stop the job (its handle still ends, through `wait`)."""


class OnRay(Executor):
    """Each job a Ray task of `res`'s size, retried by Ray when its worker process dies."""

    def __init__(self, res: Resources, retries: int, job_fn: JobFn) -> None:
        import ray

        def task(payload: JobPayload) -> JobOutcome:
            guard_parent()  # a worker whose raylet dies (its driver was killed) stops instead of training on
            payload = open_run(payload)  # on the worker, as the job starts
            out = job_fn(payload)
            out.run_id = out.run_id or payload.run_id
            return out

        task.__name__ = task.__qualname__ = getattr(job_fn, "__name__", "run_job")  # Ray's task name
        self.remote = ray.remote(task).options(num_cpus=res.cpus, num_gpus=res.gpus, max_retries=retries,
                                                 retry_exceptions=False)

    def submit(self, payload: JobPayload) -> Any:
        return self.remote.remote(payload)

    def wait(self, handles: list[Any], timeout_s: float) -> list[Any]:
        import ray

        return ray.wait(handles, num_returns=1, timeout=timeout_s)[0]

    def outcome(self, handle: Any, payload: JobPayload) -> JobOutcome:
        return _outcome(handle, payload)

    def cancel(self, handle: Any) -> None:
        import ray

        # force: a KeyboardInterrupt (the default cancel) landing inside the worker's MLflow write
        # can leave its SQLite write transaction open in a live worker (then every other writer
        # sees "database is locked" until it exits); killing the process releases the lock and SQLite rolls back
        ray.cancel(handle, force=True)


class InProcess(Executor):
    """Jobs run in this process, one at a time, when the scheduler waits for one: `submit` only
    queues, so a job cancelled before its turn never starts. The same steps as a Ray task has,
    less what only a separate worker process needs (the orphan guard): open the job's run, call
    `job_fn`, and an exception that escapes it becomes a failed outcome, as Ray reports one. A
    KeyboardInterrupt is not caught: it stops the driver, and the re-run resumes the job."""

    def __init__(self, job_fn: JobFn, on_step: StepFn | None = None) -> None:
        self.job_fn, self.on_step = job_fn, on_step
        self._queued: dict[int, JobPayload] = {}
        self._ended: dict[int, JobOutcome] = {}
        self._handles = itertools.count()

    def submit(self, payload: JobPayload) -> int:
        handle = next(self._handles)
        self._queued[handle] = payload
        return handle

    def wait(self, handles: list[Any], timeout_s: float) -> list[Any]:
        ended = [h for h in handles if h in self._ended]
        if ended:
            return ended
        handle = next(h for h in handles if h in self._queued)
        self._ended[handle] = self._run(self._queued.pop(handle))
        return [handle]

    def outcome(self, handle: Any, payload: JobPayload) -> JobOutcome:
        return self._ended.pop(handle)

    def cancel(self, handle: Any) -> None:
        p = self._queued.pop(handle, None)
        if p is not None:
            self._ended[handle] = JobOutcome(p.key, False, "cancelled before it started")

    def _run(self, payload: JobPayload) -> JobOutcome:
        try:
            payload = open_run(payload)
            with listening(None if self.on_step is None else functools.partial(self.on_step, payload)):
                out = self.job_fn(payload)
        except Exception as e:  # noqa: BLE001 - as Ray reports a job function that raises
            return JobOutcome(payload.key, False, f"{type(e).__name__}: {_first_line(e)}", pid=os.getpid(),
                              run_id=payload.run_id)
        out.run_id = out.run_id or payload.run_id
        return out


def _outcome(ref: Any, p: JobPayload) -> JobOutcome:
    """The job's outcome, also for a worker that died after all retries or a cancelled task."""
    import ray
    from ray.exceptions import RayError, RayTaskError, WorkerCrashedError

    try:
        return ray.get(ref)
    except WorkerCrashedError as e:
        return JobOutcome(p.key, False, f"worker died after all retries: {_first_line(e)}")
    except RayTaskError as e:
        # only a job function that raises gets here (run_job reports instead)
        cause = e.cause if e.cause is not None else e
        return JobOutcome(p.key, False, f"{type(cause).__name__}: {_first_line(cause)}")
    except RayError as e:
        return JobOutcome(p.key, False, f"{type(e).__name__}: {_first_line(e)}")


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:500]


# ---------------------------------------------------------------------------------------------
# a whole sweep


@dataclass
class DriverOptions:
    """How a driver -- `run_sweep`, or a search's `orchestrator.search.study.run_search` -- runs."""

    address: str | None = None  # Ray cluster to attach to (else $RAY_ADDRESS, else local)
    tracking_uri: str | None = None  # else $MLFLOW_TRACKING_URI, else sqlite in the project root
    root: Path | None = None  # project root (else $FDP_PROJECT_ROOT or cwd)
    num_cpus: int | None = None  # CPUs of a local cluster (default: all)
    max_parallel: int | None = None  # cap on jobs at once
    job_fn: JobFn = run_job  # what a task runs; tests swap or wrap it
    stream: TextIO | None = None  # progress/status output (default stderr)
    progress_interval: float = 10.0  # seconds between progress lines when not on a terminal
    wait: bool = False  # another driver runs this instance: wait for it instead of refusing


@dataclass
class SweepOptions(DriverOptions):
    fresh: bool = False  # start a new sweep instance even if one with this spec hash exists
    num_gpus: int | None = None  # GPUs of a local cluster (default: Ray's detection; tests declare fake ones)
    # no Ray: the jobs run one after another in this process (`InProcess`; debugging, `fdp-sweep train`)
    in_process: bool = False
    flush_every: int = 50  # buffered step metrics per log_batch
    # run inside the lease once the jobs are done and the parent is closed (the CLI passes the
    # significance logger, orchestrator.report.significance.log_sweep); returns lines for the summary
    on_finish: Callable[[Plan, "SweepReport", str], list[str]] | None = None


@dataclass
class SweepReport:
    sweep: str
    experiment_id: str
    parent_run_id: str
    instance: str
    resumed: bool
    done: list[str] = field(default_factory=list)  # job labels finished in this invocation
    skipped: list[str] = field(default_factory=list)  # FINISHED in an earlier invocation
    failed: dict[str, str] = field(default_factory=dict)  # label -> reason
    pooled: dict[str, dict[str, float]] = field(default_factory=dict)  # config label -> metrics
    job_seconds: dict[str, float] = field(default_factory=dict)  # label -> time inside the job
    wall_s: float = 0.0  # invocation time from Ray start to the last job
    cluster: Cluster | None = None
    finish_lines: list[str] = field(default_factory=list)  # what `SweepOptions.on_finish` said

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary_lines(self) -> list[str]:
        lines = [f"sweep {self.sweep}: {len(self.done)} done, {len(self.skipped)} skipped (finished earlier), "
                 f"{len(self.failed)} failed; parent run {self.parent_run_id}"
                 + (" (resumed)" if self.resumed else "")]
        for label, metrics in self.pooled.items():
            lines.append(f"  {label}: " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        for label, reason in self.failed.items():
            lines.append(f"  FAILED {label}: {reason}")
        return lines + self.finish_lines


def checkpoint_dir(root: Path, sweep: str) -> Path:
    return root / ".cache" / "checkpoints" / sweep


def drop_checkpoint_folder(ckpts: Path) -> None:
    """Remove a finished sweep's checkpoint folder if it is empty, in one step, and say nothing when
    it is not there: another instance of the sweep (another seed or store in the same project) may
    be using it at this moment, and its jobs recreate it when they checkpoint."""
    with contextlib.suppress(OSError):
        ckpts.rmdir()


@contextmanager
def driving(name: str, instance_key: str, opts: DriverOptions, root: Path, stream: TextIO,
            kind: str = "sweep") -> Iterator[tuple[str, DriverLease]]:
    """What a driver -- a sweep's or a search's -- does first and last: the store checked (a store
    that cannot record the runs is one line now, nothing written, not minutes of retries later),
    then one driver per instance: this host's lease taken before anything starts, released at the
    end (`acquire_remote` once the store is open). Yields (tracking URI, lease); a store or lease
    problem is a one-line SchedulerError."""
    def echo(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    uri = resolve_tracking_uri(opts.tracking_uri, root)
    try:
        lease = DriverLease(name, instance_key, uri, wait=opts.wait, echo=echo, kind=kind)
        check_store(uri, root)
        lease.acquire_local()
    except (StoreError, DriverBusy, ValueError) as e:
        raise SchedulerError(str(e)) from None
    try:
        yield uri, lease
    except DriverBusy as e:
        raise SchedulerError(str(e)) from None
    finally:
        lease.release()


def run_sweep(plan: Plan, opts: SweepOptions | None = None) -> SweepReport:
    """Create the sweep's runs, run its unfinished jobs on Ray, pool metrics per configuration."""
    opts = opts or SweepOptions()
    spec = plan.spec
    stream = opts.stream or sys.stderr
    if not plan.complete:
        raise SchedulerError("; ".join(plan.problems))
    root = (opts.root or project_root()).resolve()
    data = data_identity(plan)
    with driving(spec.name, f"{spec.name}|{spec.spec_hash}|{data}", opts, root, stream) as (uri, lease):
        return _run_leased(plan, opts, root, uri, data, lease, stream)


def data_identity(plan: Plan) -> str:
    """The content fingerprints of every cache the sweep's jobs read (sorted, comma-joined): part
    of the sweep instance's identity (tag `fdp.data` on its parent run)."""
    fps = {r.fingerprint for j in plan.jobs for r in (j.data, j.test_data) if r is not None}
    return ",".join(sorted(fps))


def experiment_description(spec: Any) -> str:
    """The MLflow experiment's description (its note in the UI)."""
    tables = f"Table {spec.table}" if spec.table else "no paper table"
    exps = ", ".join(e.key for e in spec.experiments)
    return (f"fdp-sweep sweep `{spec.name}` ({spec.path}; {tables}; experiments {exps}). One parent run per "
            f"sweep instance, one child run per LOSO fold job, named `fold=<fold> <configuration>`. The Dataset "
            f"column names the data each job read: `dataset/setting`, digest = the content fingerprint of its clip "
            f"cache (annotation rows, labels, frame bytes), source = the dataset folder. Tables: "
            f"`fdp-sweep summarize --table N` (their footer repeats this provenance).")


def _run_leased(plan: Plan, opts: SweepOptions, root: Path, uri: str, data: str, lease: DriverLease,
                stream: TextIO) -> SweepReport:
    spec = plan.spec
    # --- resources first: a sweep whose jobs no node can run creates no store, run or checkpoint
    cluster = start_ray(opts.address, opts.num_cpus, opts.num_gpus) if plan.jobs and not opts.in_process else None
    par = fit(cluster, spec.resources, opts.max_parallel) if cluster else 1

    # --- tracking: everything a worker needs exists before the first worker starts (SPEC §7)
    tracker = SweepTracker(uri, root)
    exp_id = tracker.experiment_id(spec.experiment, experiment_description(spec))
    try:
        lease.acquire_remote(tracker, exp_id)  # a driver on another host that shares this store
    except DriverBusy:
        if cluster is not None:
            cluster.stop()
        raise
    n_folds = len({(j.experiment.index if j.experiment else 0, j.fold) for j in plan.jobs})
    parent = tracker.open_parent(exp_id, spec, fresh=opts.fresh, data=data, extra_tags={
        "fdp.jobs_expected": str(len(plan.jobs)), "fdp.folds_expected": str(n_folds),
        "fdp.data_synthetic": str(any(j.data is not None and j.data.synthetic for j in plan.jobs)).lower()})
    tracker.log_parent_inputs(parent.run_id, plan.jobs)
    existing = tracker.children(exp_id, parent.run_id) if parent.reused else {}
    report = SweepReport(spec.name, exp_id, parent.run_id, parent.instance, parent.reused)
    ckpts = checkpoint_dir(root, spec.name)
    ckpts.mkdir(parents=True, exist_ok=True)
    commit, dirty = git_info()
    run_ids: dict[str, str] = {}
    finished: set[str] = set()
    payloads: list[JobPayload] = []
    for job in plan.jobs:
        ckpt = ckpts / f"{job.key}.pt"
        run = existing.get(job.key)
        # no run yet: opened by the worker as the job starts (`worker.open_run`), so its duration is its own
        rid = run_ids[job.key] = run.info.run_id if run is not None else ""
        if run is not None and run.info.status == "FINISHED":
            finished.add(job.key)
            report.skipped.append(job.label)
            continue
        if run is None:  # a new run starts from scratch: a checkpoint left by another instance is stale
            ckpt.unlink(missing_ok=True)
        elif "fdp.error" in run.data.tags:  # same instance: the same run continues, from its checkpoint
            tracker.client.delete_tag(rid, "fdp.error")
        payloads.append(JobPayload(job.key, job.label, job.config_label, job.fold,
                                   to_dict(runtime_config(job.cfg)), rid, uri, str(ckpt), commit, dirty,
                                   opts.flush_every, exp_id, tracker.child_run_spec(parent, job, spec.name)))
    parent_metrics = tracker.client.get_run(parent.run_id).data.metrics if parent.reused else {}

    def pool(config_label: str) -> None:
        jobs = plan.jobs_of(config_label)
        if all(j.key in finished for j in jobs):
            predictions = [tracker.predictions(run_ids[j.key]) for j in jobs]  # read once, for both
            metrics = pool_predictions(predictions)
            tracker.log_pooled(parent.run_id, config_label, metrics)
            tracker.log_pooled_figures(parent.run_id, config_label, [j.fold for j in jobs], predictions)
            report.pooled[config_label] = metrics
            progress.pooled(config_label, metrics)

    # --- run
    report.cluster = cluster
    progress = Progress(total=len(payloads), parallel=max(par, 1), skipped=len(report.skipped), stream=stream,
                        interval=opts.progress_interval)
    if cluster is not None or (opts.in_process and plan.jobs):
        if cluster is None:
            where = "one at a time in this process (no Ray)"
        else:
            kind = "local Ray cluster" if cluster.started_here else f"Ray cluster at {cluster.address}"
            where = (f"{par} at a time on a {kind} ({cluster.cpus:g} cpus, {cluster.gpus:g} gpus); worker logs in "
                     f"{cluster.log_dir or '(Ray session dir)'}")
        stream.write(f"sweep {spec.name}: {len(payloads)} job(s) to run, {len(report.skipped)} already finished; "
                     f"{where}\n"
                     f"tracking: {uri} (experiment {spec.experiment!r}, parent run {parent.run_id})\n")
        stream.flush()
    for c in plan.configurations:  # configurations completed by an earlier invocation
        prefix = metric_prefix(c.label) + "/"
        pooled_before = {k.rsplit("/", 1)[1]: v for k, v in parent_metrics.items() if k.startswith(prefix)}
        if pooled_before:
            report.pooled[c.label] = pooled_before
        elif plan.jobs_of(c.label):
            pool(c.label)

    def on_done(p: JobPayload, out: JobOutcome, seconds: float) -> None:
        if out.run_id:
            p.run_id = run_ids[p.key] = out.run_id
        elif not p.run_id:  # the worker died: the run it may have opened is found by its key
            run = tracker.children(exp_id, parent.run_id).get(p.key)
            p.run_id = run_ids[p.key] = run.info.run_id if run is not None else ""
        report.job_seconds[p.label] = out.wall_time_s
        if out.ok:
            finished.add(p.key)
            report.done.append(p.label)
            progress.finished(seconds, True)
            pool(p.config_label)
        else:
            # also when the worker did it: a worker that died cannot, and this is idempotent
            if p.run_id:
                tracker.mark_failed(p.run_id, out.error)
            report.failed[p.label] = out.error
            progress.finished(seconds, False)

    t0 = time.monotonic()
    try:
        if payloads:
            def on_step(p: JobPayload, step: int, terms: dict[str, float]) -> None:
                progress.step(p.label, step, int(p.cfg["train"]["steps"]), terms)

            Scheduler(spec.resources, spec.retries, par, opts.job_fn, in_process=opts.in_process,
                      on_step=on_step).run(
                PlanSource(payloads, on_start=lambda p: progress.started(), on_done=on_done), on_tick=progress.tick)
    finally:
        report.wall_s = time.monotonic() - t0
        if cluster is not None:
            cluster.stop()
    progress.close()
    tracker.close_parent(parent.run_id, not report.failed, {
        "done": report.done, "skipped": report.skipped, "failed": report.failed, "pooled": report.pooled})
    if not report.failed:
        drop_checkpoint_folder(ckpts)
    if opts.on_finish is not None:
        try:
            report.finish_lines = opts.on_finish(plan, report, uri)
        except Exception as e:  # noqa: BLE001 - the jobs' results are recorded; what follows them is redone by a re-run
            report.finish_lines = [f"after the jobs: {type(e).__name__}: {_first_line(e)}; re-running the same "
                                   f"command (every job is finished) does it again"]
    return report
