"""One full LOSO of a variant on the synthetic benchmark sized like SAMM 5-class (28 subjects,
136 clips) at the paper's budget (batch 36, t = 8, 500 steps per fold, fresh model per fold):
wall time, time per fold, steps/s, peak memory per job, pooled UF1 / accuracy.

Device chosen automatically (CUDA with bf16 autocast when present). The folds run one after the
other in this process; with `--jobs-per-gpu N ...` on a GPU the same LOSO also runs as a sweep of
fold jobs packed N at a time on one GPU (`run_sweep`: Ray + MLflow), to measure jobs/hour.

    python bench/loso.py                          # 28 subjects x 136 clips, 500 steps per fold
    python bench/loso.py --jobs-per-gpu 1 2 4 8   # GPU: + packed sweeps
    python bench/loso.py --quick                  # CPU-sized: 4 subjects, tiny model, 4 steps
    python bench/loso.py --quick --jobs-per-gpu 2 --fake-gpus 1   # the packed path on a CPU machine

Peak memory per job is shown beside its prediction (`fdp.memory.estimate_memory`, with the clip bank).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch  # noqa: E402

from bench.common import md_table, publish, run_bench_sweep, synthetic_benchmark  # noqa: E402
from orchestrator.cli.train import SMOKE_OVERRIDES  # noqa: E402

HEADER = ["run", "device", "precision", "folds", "clips", "steps/fold", "wall s", "s/fold", "steps/s per job",
          "peak MB per job", "estimated MB per job", "fold jobs/h", "UF1", "Acc"]


def estimated_mb(a: argparse.Namespace, cache: Path, device_type: str) -> str:
    """fdp.memory's prediction for one job of this LOSO on `device_type`, bank included."""
    from fdp.memory import bank_frames, estimate_memory
    from fdp.variants import build_config

    cfg = build_config(a.variant, overrides(a, cache))
    return f"{estimate_memory(cfg, device_type, bank_frames(cfg)).total_mb:.0f}"


def overrides(a: argparse.Namespace, cache: Path) -> dict:
    over = dict(SMOKE_OVERRIDES) if a.quick else {}
    over.update({"data.dataset": "casme2", "data.setting": "casme2/5", "data.cache_dir": str(cache),
                 "train.steps": a.steps, "train.batch_size": a.batch, "train.device": a.device,
                 "train.checkpoint_every": 0, "train.log_every": max(1, min(50, a.steps // 5))})
    return over


def in_process(a: argparse.Namespace, cache: Path) -> list[object]:
    """Every fold in this process, one after the other (what `fdp-sweep train` does)."""
    from fdp.metrics import pooled_metrics
    from fdp.runtime import resolve_runtime
    from fdp.runner import fold_names, run_fold
    from fdp.runtime import resolve_device
    from fdp.variants import build_config

    cfg = build_config(a.variant, overrides(a, cache))
    device = resolve_device(cfg.train.device)
    folds = fold_names(cfg)[:a.folds or None]
    labels, preds, rates, peaks = [], [], [], []
    t0 = time.perf_counter()
    for i, f in enumerate(folds, 1):
        res = run_fold(cfg, f)
        labels += res.labels
        preds += res.preds or []
        rates.append(res.steps_per_s)
        peaks.append(res.peak_mem_mb)
        print(f"fold {i}/{len(folds)} {f}: {res.wall_time_s:.1f} s, {res.steps_per_s:.2f} steps/s, "
              f"peak {res.peak_mem_mb:.0f} MB", flush=True)
    wall = time.perf_counter() - t0
    m = pooled_metrics(labels, preds, cfg.model.num_classes) if preds else {"uf1": math.nan, "acc": math.nan}
    rt = resolve_runtime(cfg.train, device)
    return ["in-process, sequential", device.type, rt.describe(), len(folds), len(labels), a.steps,
            f"{wall:.1f}", f"{wall / len(folds):.2f}", f"{sum(rates) / len(rates):.2f}", f"{max(peaks):.0f}",
            estimated_mb(a, cache, device.type), f"{len(folds) / wall * 3600:.0f}", f"{m['uf1']:.4f}", f"{m['acc']:.4f}"]


def packed(a: argparse.Namespace, cache: Path, root: Path, n: int) -> list[object]:
    """The same LOSO as a sweep of fold jobs, `n` at a time on one GPU (Ray + MLflow). With
    --fake-gpus on a CPU machine the GPU is declared, not real: the jobs train on the CPU, the
    scheduling is the GPU's."""
    from fdp.runtime import resolve_runtime
    from fdp.variants import build_config

    over = {k: v for k, v in overrides(a, cache).items() if k not in ("data.dataset", "data.setting", "train.steps")}
    cpus = max(1, (os.cpu_count() or 1) // n)
    raw = {"name": f"bench-loso-x{n}", "dataset": "casme2", "setting": "casme2/5", "variants": [a.variant],
           "seeds": [0], "steps": a.steps, "overrides": over, "resources": {"cpus": cpus, "gpus": 1 / n},
           "retries": 0}
    if a.folds:
        raw["folds"] = a.folds
    report, jobs = run_bench_sweep(raw, root, max_parallel=n, num_gpus=a.fake_gpus or None)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    rt = resolve_runtime(build_config(a.variant, overrides(a, cache)).train, torch.device(dev))
    if report.failed:
        print(f"x{n}: {len(report.failed)} failed job(s), e.g. {next(iter(report.failed.values()))}")
    pooled = next(iter(report.pooled.values()), {})
    done = len(report.done)
    peak = max((j.get("peak_mem_mb", math.nan) for j in jobs), default=math.nan)
    rate = sum(j.get("steps_per_s", 0.0) for j in jobs) / max(len(jobs), 1)
    where = dev if dev == "cuda" else f"cpu ({a.fake_gpus} fake GPU declared to Ray)"
    return [f"sweep, {n} job(s) per GPU ({cpus} cpus each)", where, rt.describe(), done, "", a.steps,
            f"{report.wall_s:.1f}", f"{report.wall_s / max(done, 1) * n:.2f}", f"{rate:.2f}", f"{peak:.0f}",
            estimated_mb(a, cache, dev), f"{done / report.wall_s * 3600:.0f}", f"{pooled.get('uf1', math.nan):.4f}",
            f"{pooled.get('acc', math.nan):.4f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="fdp")
    ap.add_argument("--subjects", type=int, default=28, help="SAMM 5-class: 28 subjects")
    ap.add_argument("--clips", type=int, default=136, help="SAMM 5-class: 136 clips")
    ap.add_argument("--steps", type=int, default=500, help="optimizer steps per fold (the authors' budget)")
    ap.add_argument("--batch", type=int, default=36)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--jobs-per-gpu", type=int, nargs="*", default=[],
                    help="GPU (or --fake-gpus): also run the LOSO as a sweep with N fold jobs per GPU, for each N")
    ap.add_argument("--fake-gpus", type=int, default=0,
                    help="no GPU here: declare this many GPUs to the local Ray so --jobs-per-gpu runs (on the CPU)")
    ap.add_argument("--folds", type=int, default=0, help="only the first N LOSO folds (0: all)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where the synthetic data and its cache go (reused when present; default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="CPU-sized: 4 subjects x 3 clips, tiny model, 4 steps")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    a = ap.parse_args()
    size, frames = 128, 40
    if a.quick:
        a.subjects, a.clips, a.steps, a.batch = 4, 12, 4, 8
        size, frames = 64, 16
    root = a.workdir or Path(tempfile.mkdtemp(prefix="fdp-bench-loso-"))
    cache, prep_s = synthetic_benchmark(root, a.subjects, a.clips, size=size, frames_per_clip=frames)
    print(f"synthetic benchmark: {a.subjects} subjects, {a.clips} clips ({size}px, {frames} frames per "
          f"recording) written and prepared in {prep_s:.0f} s: {cache}", flush=True)

    rows = [in_process(a, cache)]
    if a.jobs_per_gpu and not torch.cuda.is_available() and not a.fake_gpus:
        print("no GPU: --jobs-per-gpu ignored (--fake-gpus 1 runs it on the CPU)")
    elif a.jobs_per_gpu:
        for n in a.jobs_per_gpu:
            rows.append(packed(a, cache, root, n))
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
    table = md_table(HEADER, rows)
    model = "tiny smoke model (orchestrator.cli.train.SMOKE_OVERRIDES)" if a.quick else "full model"
    folds = f"first {a.folds} folds" if a.folds else "all folds"
    note = (f"{a.variant}, {model}, batch {a.batch}, t = 8, {a.steps} steps per fold, {folds}, fresh model per fold; "
            f"synthetic benchmark {a.subjects} subjects / {a.clips} clips (casme2/5). steps/s: training loop only; "
            "s/fold and jobs/h: wall clock incl. data loading and evaluation (sweeps: incl. MLflow logging; "
            "s/fold = wall / folds x jobs at once). Peak MB: CUDA max allocated per job; CPU: peak RSS of the "
            "process. Estimated MB: fdp.memory (weights, grads, Adam, saved activations, batch, clip bank; no CUDA "
            "context). UF1 / Acc pooled over the folds run.")
    publish("bench/loso.py", a, table, note)


if __name__ == "__main__":
    main()
