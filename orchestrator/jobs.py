"""Sweep spec -> fold jobs, and what one job does on a worker.

A job is one fold of one configuration (experiment x variant x grid point x seed x fold). Its
`job_key` is a hash of the resolved config, the fold and the content fingerprint of the data it
trains and tests on (and, in a spec that lists `experiments:`, the experiment key: under --smoke
every experiment trains on the same synthetic data, and two table cells must never share a job),
so it does not depend on the order of the spec, the grid or the variants, nor on where the cache
lies: re-running a spec finds the same keys, which is how finished jobs are skipped and
checkpoints are found again -- and re-preparing data that changed gives new keys, so the re-run
trains again instead of reporting the old data's numbers.

`run_job` is the worker side: it rebuilds the config, logs into the MLflow run the driver created
for it (`orchestrator.tracking.RunLogger`), trains the fold with `fdp.train.run_fold` from its
checkpoint, logs the result and closes the run. An exception inside the job (non-finite loss,
bad data) is *caught* and reported as a failed outcome with the run marked FAILED: retrying a
deterministic failure is pointless, and Ray's own retries are kept for dying worker processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdp.config import ExperimentConfig, apply_overrides, from_dict, to_dict
from orchestrator.spec import Configuration, Experiment, SweepSpec, configurations


@dataclass
class Job:
    """One fold of one configuration."""

    key: str  # job_key: hash of the resolved config + fold (+ the experiment key, when listed)
    label: str  # "fdp|lambda_d=10|seed0|fold=sub01" ("samm/3|fdp|seed0|fold=006" when listed)
    config_label: str  # "fdp|lambda_d=10|seed0"
    fold: str
    variant: str
    seed: int
    cfg: ExperimentConfig  # as the spec resolves it, cache paths pinned to the caches found
    experiment: Experiment | None = None  # the experiment it belongs to (tags fdp.experiment, ...)
    data: DataRef | None = None  # the cache it trains on (fingerprint: part of the key)
    test_data: DataRef | None = None  # cross protocol: the cache it tests on


@dataclass(frozen=True)
class DataRef:
    """The identity of a prepared cache a job reads (`fdp.data.cache.CacheInfo`, as plain data)."""

    dataset: str
    path: str  # absolute cache folder
    fingerprint: str  # content fingerprint (annotation rows, labels, frame bytes)
    root: str  # the dataset folder it was prepared from
    clips: int
    created: str
    synthetic: bool

    @classmethod
    def of(cls, path: Path) -> "DataRef":
        from fdp.data.cache import cache_info

        i = cache_info(path)
        return cls(i.dataset, str(path), i.fingerprint, i.root, i.clips, i.created, i.synthetic)


@dataclass
class Plan:
    """The expansion of a spec: its configurations and, where folds are known, their jobs."""

    spec: SweepSpec
    configurations: list[Configuration]
    jobs: list[Job]
    problems: list[str] = field(default_factory=list)  # e.g. a missing clip cache: no folds known
    # (one line per experiment, "experiments[2] (samm/3): no prepared clip cache for samm ...")
    duplicates: list[str] = field(default_factory=list)  # labels that resolve to an earlier config
    notes: list[str] = field(default_factory=list)  # e.g. which of several caches --smoke took

    @property
    def complete(self) -> bool:
        """Whether every configuration's folds are known (the caches exist)."""
        return not self.problems

    def jobs_of(self, config_label: str) -> list[Job]:
        return [j for j in self.jobs if j.config_label == config_label]


def job_key(cfg: ExperimentConfig, fold: str, experiment: str = "", data: str = "") -> str:
    """Order-independent identity of a job (16 hex): sorted-key JSON of config and fold, of the
    experiment key when given (specs with `experiments:`), and of `data`, the content
    fingerprint(s) of the caches it reads: with it the cache *paths* leave the key (the same data
    elsewhere is the same job; other data at the same path is not)."""
    conf = to_dict(cfg)
    if data:
        conf["data"] = {**conf["data"], "cache_dir": "", "test_cache_dir": ""}
    body: dict[str, Any] = {"config": conf, "fold": fold}
    if experiment:
        body["experiment"] = experiment
    if data:
        body["data"] = data
    blob = json.dumps(body, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_key(cfg: ExperimentConfig) -> str:
    blob = json.dumps(to_dict(cfg), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(cfg: ExperimentConfig, test: bool = False, newest: bool = False) -> tuple[Path | None, str | None]:
    """(absolute cache dir, None) or (None, one-line reason) for the training or test dataset.
    `newest`: of several caches none names, take the latest prepared (--smoke only)."""
    from fdp.data.cache import AmbiguousCacheError
    from fdp.train import cache_dir_for

    dataset = cfg.data.test_dataset if test else cfg.data.dataset
    explicit = cfg.data.test_cache_dir if test else cfg.data.cache_dir
    try:
        path = Path(cache_dir_for(dataset, explicit, newest=newest)).expanduser().resolve()
    except AmbiguousCacheError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - the lookup's own one-line reason is what we report
        return None, f"no prepared clip cache for {dataset}: {e}"
    if not path.exists():
        return None, (f"no prepared clip cache for {dataset} at {path} "
                      f"(run `fdp-sweep prepare {dataset} --root ...` first)")
    return path, None


def runtime_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config a worker runs: cache paths pinned to absolute paths resolved on the driver,
    because workers run in other directories (and on other machines, with a shared filesystem)."""
    over: dict[str, Any] = {}
    path, _ = cache_path(cfg)
    if path is not None:
        over["data.cache_dir"] = str(path)
    if cfg.data.test_dataset:
        tpath, _ = cache_path(cfg, test=True)
        if tpath is not None:
            over["data.test_cache_dir"] = str(tpath)
    return apply_overrides(cfg, over) if over else cfg


def select_folds(names: list[str], limit: int | list[str] | None) -> tuple[list[str], str | None]:
    """Apply the spec's `folds` limit: None (all), N (the first N), or explicit names."""
    if limit is None:
        return names, None
    if isinstance(limit, int):
        return names[:limit], None
    wanted = [str(f) for f in limit]
    unknown = [f for f in wanted if f not in names]
    if unknown:
        return [], f"folds: unknown fold(s) {', '.join(unknown)}; known: {', '.join(names)}"
    return [f for f in names if f in wanted], None


def expand(spec: SweepSpec) -> Plan:
    """Configurations and jobs of a spec. Folds come from the prepared cache
    (`fdp.train.fold_names`); where a cache is missing the plan records why, once per experiment,
    and has no jobs for that experiment's configurations (a dry run still shows them)."""
    from fdp.train import fold_names

    configs = configurations(spec)
    seen: dict[tuple[str, str], str] = {}
    kept, duplicates = [], []
    for c in configs:
        # e.g. a lambda_d grid on no_dic: resolve() zeroes lambda_d, so points collapse into one
        # config; running both would create two runs for one job key. Experiments of one spec
        # never collapse into each other (under --smoke they all train on the same data).
        k = (_exp_key(spec, c), config_key(c.cfg))
        if k in seen:
            duplicates.append(f"{c.label} resolves to the same config as {seen[k]}; run once")
            continue
        seen[k] = c.label
        kept.append(c)

    problems: list[str] = []
    notes: list[str] = []
    # data -> (folds, reasons, train cache, test cache)
    names_by_data: dict[tuple[str, ...], tuple[list[str], list[str], DataRef | None, DataRef | None]] = {}
    folds_of: dict[tuple[Any, ...], list[str] | None] = {}  # (experiment, data) -> selected folds
    jobs: list[Job] = []
    for c in kept:
        d = c.cfg.data
        data_id = (d.dataset, d.setting, d.cache_dir, d.test_dataset, d.test_cache_dir)
        if data_id not in names_by_data:
            # --smoke runs on the synthetic benchmark: of several of its caches the newest is
            # taken (and said); a real run refuses to choose (find_cache)
            train_path, why = cache_path(c.cfg, newest=spec.is_smoke)
            test_path, twhy = cache_path(c.cfg, test=True, newest=spec.is_smoke) if d.test_dataset else (None, None)
            reasons = [r for r in (why, twhy) if r]
            refs: list[DataRef | None] = [None, None]
            if not reasons:
                refs = [DataRef.of(train_path), DataRef.of(test_path) if test_path is not None else None]
                if spec.is_smoke:
                    notes.extend(_newest_note(r, explicit) for r, explicit in
                                 ((refs[0], d.cache_dir), (refs[1], d.test_cache_dir)) if r is not None)
            names_by_data[data_id] = ([] if reasons else fold_names(_pinned(c.cfg, *refs)), reasons, *refs)
        exp = c.experiment
        fk = (exp.index if exp else 0, data_id)
        if fk not in folds_of:
            folds_of[fk] = None
            names, reasons, _, _ = names_by_data[data_id]
            where = f"{exp.where}: " if exp is not None and exp.listed else ""
            if reasons:
                problems.extend(where + r for r in reasons)
            else:
                selected, why = select_folds(names, exp.folds if exp else spec.folds)
                if why:
                    problems.append(where + why)
                else:
                    folds_of[fk] = selected
        _, _, ref, tref = names_by_data[data_id]
        if ref is None:
            continue
        cfg = _pinned(c.cfg, ref, tref)
        fps = ref.fingerprint + (f"->{tref.fingerprint}" if tref is not None else "")
        for fold in folds_of[fk] or []:
            jobs.append(Job(job_key(cfg, fold, _exp_key(spec, c), data=fps), f"{c.label}|fold={fold}", c.label,
                            fold, c.variant, c.seed, cfg, exp, ref, tref))
    return Plan(spec, kept, jobs, list(dict.fromkeys(problems)), duplicates, list(dict.fromkeys(n for n in notes if n)))


def _pinned(cfg: ExperimentConfig, ref: DataRef | None, tref: DataRef | None) -> ExperimentConfig:
    """`cfg` reading exactly the caches found for it (absolute paths: workers run elsewhere)."""
    over = {"data.cache_dir": ref.path} if ref is not None else {}
    if tref is not None:
        over["data.test_cache_dir"] = tref.path
    return apply_overrides(cfg, over) if over else cfg


def _newest_note(ref: DataRef, explicit: str) -> str:
    """Under --smoke, when several caches of the dataset exist and none is named: which one runs."""
    from fdp.data.cache import default_cache_root

    if explicit:
        return ""
    try:
        n = len([d for d in default_cache_root().glob(f"{ref.dataset}-*") if (d / "index.json").is_file()])
    except Exception:  # noqa: BLE001 - only the note is lost
        return ""
    if n < 2:
        return ""
    return (f"--smoke: {n} caches of {ref.dataset}, none named: using the newest, {ref.path} (fingerprint "
            f"{ref.fingerprint}); name one with --set data.cache_dir=PATH")


def _exp_key(spec: SweepSpec, c: Configuration) -> str:
    """The experiment key that enters a job key: only in specs that list `experiments:`."""
    return c.experiment.key if spec.multi and c.experiment is not None else ""


def format_plan(plan: Plan, cluster_cpus: float | None = None, cluster_gpus: float | None = None,
                gpu_mem_gb: float | None = None, memory: bool = True) -> str:
    """The dry-run table: one row per job (or per configuration when folds are unknown), then
    the resources the sweep asks for and (`memory`) each job's estimated peak memory beside the
    jobs that share one GPU, checked against `gpu_mem_gb` (default: the visible GPU's, else
    ASSUMED_GPU_GB)."""
    spec, res = plan.spec, plan.spec.resources
    lines = [f"sweep {spec.name} ({spec.path}), spec hash {spec.spec_hash}"
             + (" [smoke]" if spec.is_smoke else "")
             + (f": {len(spec.experiments)} experiment(s), " if spec.multi else ": ")
             + f"{len(plan.configurations)} configuration(s)"
             + (f", {len(plan.jobs)} job(s)" if plan.complete else "")]
    if spec.multi:
        lines += _experiment_rows(plan)
    for d in plan.duplicates + plan.notes:
        lines.append(f"note: {d}")
    for p in plan.problems:
        lines.append(f"warning: {p}; showing configurations only")
    if plan.complete:
        width = max((len(j.label) for j in plan.jobs), default=10)
        lines.append(f"{'#':>4}  {'job':<{width}}  {'job_key':<16}  {'steps':>6}  {'cpus':>4}  {'gpus':>4}")
        for i, j in enumerate(plan.jobs, 1):
            lines.append(f"{i:>4}  {j.label:<{width}}  {j.key:<16}  {j.cfg.train.steps:>6}  "
                         f"{res.cpus:>4g}  {res.gpus:>4g}")
    else:
        width = max((len(c.label) for c in plan.configurations), default=10)
        lines.append(f"{'#':>4}  {'configuration':<{width}}  {'steps':>6}  {'device':<6}")
        for i, c in enumerate(plan.configurations, 1):
            lines.append(f"{i:>4}  {c.label:<{width}}  {c.cfg.train.steps:>6}  {c.cfg.train.device:<6}")
    per = f"resources: {res.cpus:g} cpu + {res.gpus:g} gpu per job"
    if plan.complete:
        n = len(plan.jobs)
        lines.append(f"{per}; {n} job(s) -> {n * res.cpus:g} cpu-slots and {n * res.gpus:g} gpu-slots in total; "
                     f"up to {spec.retries} retries per job on worker death")
    else:
        lines.append(f"{per}; {len(plan.configurations)} configuration(s) x (number of folds, unknown without "
                     f"the cache) jobs; up to {spec.retries} retries per job on worker death")
    cpus = cluster_cpus if cluster_cpus is not None else float(os.cpu_count() or 1)
    gpus = (cluster_gpus if cluster_gpus is not None else _local_gpus()) if res.gpus else 0.0
    par = res.fit(cpus, gpus)  # GPU fractions counted per GPU, as Ray places them
    lines.append(f"parallel here: {par} job(s) at a time on {cpus:g} cpu(s)"
                 + (f" / {gpus:g} gpu(s)" if res.gpus else "")
                 + ("" if par else " -- this machine cannot run a job of this size"))
    if memory:
        lines += memory_lines(plan, gpu_mem_gb)
    return "\n".join(lines)


ASSUMED_GPU_GB = 80.0  # GPU memory assumed when no GPU is visible (an H100 80GB)


def memory_lines(plan: Plan, gpu_mem_gb: float | None = None) -> list[str]:
    """Estimated peak memory per job (fdp.memory), one line per distinct model/batch/data, then
    how many jobs share one GPU and whether they fit its memory (a warning line when not)."""
    from fdp.memory import CUDA_CONTEXT_MB, bank_frames, estimate_memory, jobs_fit

    res = plan.spec.resources
    device = "cuda" if res.gpus > 0 else "cpu"
    frames_of: dict[tuple[str, ...], int | None] = {}
    rows: dict[str, tuple[str, Any]] = {}  # estimate key -> (label, estimate)
    for c in plan.configurations:
        cfg = runtime_config(c.cfg)
        if cfg.model.baseline:  # a regression on frames (fdp.baselines), no network: nothing to estimate
            continue
        d = cfg.data
        data_id = (d.dataset, d.setting, d.cache_dir, d.test_dataset, d.test_cache_dir)
        if data_id not in frames_of:
            frames_of[data_id] = bank_frames(cfg)
        key = json.dumps([to_dict(cfg.model), cfg.train.batch_size, cfg.train.precision, d.crop, data_id],
                         sort_keys=True)
        if key not in rows:
            label = "|".join(p for p in c.label.split("|") if not p.startswith("seed"))
            rows[key] = (label, estimate_memory(cfg, device, frames_of[data_id]))
    if not rows:
        return []
    width = max(len(label) for label, _ in rows.values())
    where = "GPU memory (torch max allocated)" if device == "cuda" else "CPU memory (no GPU asked for)"
    lines = [f"estimated peak {where} per job (fdp.memory: weights, grads, Adam, saved activations, batch, "
             "clip bank):"]
    lines += [f"  {label:<{width}}  {e.describe()}" for label, e in rows.values()]
    if device != "cuda":
        return lines
    gpu_gb, source = _gpu_memory(gpu_mem_gb)
    per_gpu = res.jobs_per_gpu()
    worst = max(e.total_mb for _, e in rows.values())
    share = f"gpus {res.gpus:g} per job -> {per_gpu} job(s) per GPU" if res.gpus < 1 else \
        f"gpus {res.gpus:g} per job -> 1 job per {res.gpus:g} GPU(s), trained on its first"
    need_gb = per_gpu * (worst + CUDA_CONTEXT_MB) / 1024
    lines.append(f"{share}: {per_gpu} x ({worst / 1024:.2f} GB + {CUDA_CONTEXT_MB / 1024:.1f} GB CUDA context) = "
                 f"{need_gb:.1f} GB of {gpu_gb:g} GB per GPU ({source})")
    for label, e in rows.values():
        if not jobs_fit(e.total_mb, per_gpu, gpu_gb * 1024):
            lines.append(f"warning: {per_gpu} job(s) of {label} on one GPU need about "
                         f"{per_gpu * (e.total_mb + CUDA_CONTEXT_MB) / 1024:.1f} GB, more than its {gpu_gb:g} GB: "
                         "raise resources.gpus (fewer jobs per GPU) or lower train.batch_size")
    return lines


def _gpu_memory(explicit_gb: float | None) -> tuple[float, str]:
    """(GB of one GPU, where the figure comes from)."""
    if explicit_gb is not None:
        return explicit_gb, "--gpu-mem"
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return round(props.total_memory / 2**30, 1), f"{props.name}, visible here"
    except Exception:  # noqa: BLE001 - no usable CUDA runtime: assume
        pass
    return ASSUMED_GPU_GB, "assumed: no GPU visible here; set --gpu-mem"


def _experiment_rows(plan: Plan) -> list[str]:
    """The experiments of a listed spec: declared data (what the tables file it under), seeds,
    folds and jobs; under --smoke also the data it actually trains on."""
    spec = plan.spec
    rows = []
    for e in spec.experiments:
        jobs = [j for j in plan.jobs if j.experiment is e]
        folds = len({j.fold for j in jobs}) if jobs else "?"
        row = [str(e.index), e.key, e.dataset, e.setting, e.protocol, e.test_dataset or "-",
               str(len(e.seeds)), str(folds), str(len(jobs)) if jobs else "?"]
        if spec.is_smoke:
            d = e.runs_on
            test = f" -> {d['test_dataset']}" if d["test_dataset"] else ""
            row.append(f"{d['setting']} on {d['dataset']}{test}")
        rows.append(row)
    head = ["[i]", "experiment", "dataset", "setting", "protocol", "test", "seeds", "folds", "jobs"]
    head += ["runs on (smoke)"] if spec.is_smoke else []
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return (["experiments (each job is tagged fdp.experiment = its key; Tables 4-8 read their cells by it):",
             line(head)] + [line(r) for r in rows])


def _local_gpus() -> float:
    try:
        import torch

        return float(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - no torch CUDA runtime: no GPUs
        return 0.0


# ---------------------------------------------------------------------------------------------
# the worker side


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
    import fdp.train  # noqa: F401
    from orchestrator.tracking import open_job_run

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
    from fdp.train import run_fold
    from orchestrator.tracking import RunLogger

    t0 = time.perf_counter()
    ckpt = Path(payload.checkpoint_path)
    resumed = _checkpoint_step(ckpt)
    log = RunLogger(payload.tracking_uri, payload.run_id, flush_every=payload.flush_every)
    obj = payload.objective
    value, train_subjects, val_subjects = float("nan"), [], []
    try:
        cfg = from_dict(ExperimentConfig, payload.cfg)
        log.start(resumed_from_step=resumed)
        log.log_config(cfg, payload.git_commit, payload.git_dirty)
        if obj:
            from fdp.objective import fold_value, objective_fold

            result, train_subjects = objective_fold(cfg, obj["val_subject"], obj["search_subjects"],
                                                    callback=log.log_terms, checkpoint_path=ckpt)
            value, val_subjects = fold_value(result, obj["metric"]), sorted(set(result.subjects))
        else:
            result = run_fold(cfg, payload.fold, callback=log.log_terms, checkpoint_path=ckpt)
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
