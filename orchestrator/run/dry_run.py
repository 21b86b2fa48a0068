"""The dry-run table of a plan (`fdp-sweep run --dry-run`): one row per job, the resources the
sweep asks for, and each job's estimated peak memory beside the jobs that share one GPU."""

from __future__ import annotations

import json
import os
from typing import Any

from fdp.config import to_dict
from orchestrator.plan.jobs import Plan, runtime_config
from orchestrator.run.packing import jobs_per_gpu, node_fit


def format_plan(plan: Plan, cluster_cpus: float | None = None, cluster_gpus: float | None = None,
                gpu_mem_gb: float | None = None, memory: bool = True) -> str:
    """The dry-run table (rows per configuration when folds are unknown); with `memory`, the memory
    lines checked against `gpu_mem_gb` (default: the visible GPU's, else ASSUMED_GPU_GB)."""
    spec, res = plan.spec, plan.spec.resources
    lines = [f"sweep {spec.name} ({spec.path}), spec hash {spec.spec_hash}"
             + (" [smoke]" if spec.is_smoke else "")
             + (f": {len(spec.experiments)} experiment(s), " if spec.multi else ": ")
             + f"{len(plan.configurations)} configuration(s)"
             + (f", {len(plan.jobs)} job(s)" if plan.complete else "")]
    if spec.multi:
        lines += _experiment_rows(plan)
    lines += [f"note: {d}" for d in plan.duplicates + plan.notes]
    lines += [f"warning: {p}; showing configurations only" for p in plan.problems]
    if plan.complete:
        width = max((len(j.label) for j in plan.jobs), default=10)
        lines.append(f"{'#':>4}  {'job':<{width}}  {'job_key':<16}  {'steps':>6}  {'cpus':>4}  {'gpus':>4}")
        for i, j in enumerate(plan.jobs, 1):
            lines.append(f"{i:>4}  {j.label:<{width}}  {j.key:<16}  {_steps(j.cfg):>6}  "
                         f"{res.cpus:>4g}  {res.gpus:>4g}")
    else:
        width = max((len(c.label) for c in plan.configurations), default=10)
        lines.append(f"{'#':>4}  {'configuration':<{width}}  {'steps':>6}  {'device':<6}")
        for i, c in enumerate(plan.configurations, 1):
            lines.append(f"{i:>4}  {c.label:<{width}}  {_steps(c.cfg):>6}  {c.cfg.train.device:<6}")
    n = len(plan.jobs)
    total = (f"{n} job(s) -> {n * res.cpus:g} cpu-slots and {n * res.gpus:g} gpu-slots in total" if plan.complete
             else f"{len(plan.configurations)} configuration(s) x (number of folds, unknown without the cache) jobs")
    lines.append(f"resources: {res.cpus:g} cpu + {res.gpus:g} gpu per job; {total}; "
                 f"up to {spec.retries} retries per job on worker death")
    cpus = cluster_cpus if cluster_cpus is not None else float(os.cpu_count() or 1)
    gpus = (cluster_gpus if cluster_gpus is not None else _local_gpus()) if res.gpus else 0.0
    par = node_fit(res, cpus, gpus)  # GPU fractions counted per GPU, as Ray places them
    lines.append(f"parallel here: {par} job(s) at a time on {cpus:g} cpu(s)"
                 + (f" / {gpus:g} gpu(s)" if res.gpus else "")
                 + ("" if par else " -- this machine cannot run a job of this size"))
    if memory:
        lines += memory_lines(plan, gpu_mem_gb)
    return "\n".join(lines)


ASSUMED_GPU_GB = 80.0  # GPU memory assumed when no GPU is visible (an H100 80GB)


def memory_lines(plan: Plan, gpu_mem_gb: float | None = None) -> list[str]:
    """Estimated peak memory per job (each method's estimate, e.g. fdp.memory for the network; a
    method without one is not listed), one line per distinct model/batch/data, then how many jobs
    share one GPU and whether they fit its memory (a warning line when not)."""
    from fdp.memory import CUDA_CONTEXT_MB, bank_frames, jobs_fit
    from fdp.methods import get_method

    res = plan.spec.resources
    device = "cuda" if res.gpus > 0 else "cpu"
    frames_of: dict[tuple[str, ...], int | None] = {}
    rows: dict[str, tuple[str, Any]] = {}  # estimate key -> (label, estimate)
    for c in plan.configurations:
        cfg = runtime_config(c.cfg)
        d = cfg.data
        data_id = (d.dataset, d.setting, d.cache_dir, d.test_dataset, d.test_cache_dir)
        if data_id not in frames_of:
            frames_of[data_id] = bank_frames(cfg)
        key = json.dumps([cfg.method, to_dict(cfg.model), cfg.train.batch_size, cfg.train.precision, d.crop, data_id],
                         sort_keys=True)
        if key not in rows:
            label = "|".join(p for p in c.label.split("|") if not p.startswith("seed"))
            rows[key] = (label, get_method(cfg.method).memory(cfg, device, frames_of[data_id]))
    rows = {k: r for k, r in rows.items() if r[1] is not None}
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
    per_gpu = jobs_per_gpu(res)
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


def _steps(cfg) -> str:
    """Optimizer steps per fold of a job, as its method counts them (fdp.methods `Method.steps`)."""
    from fdp.methods import get_method

    return str(get_method(cfg.method).steps(cfg))
