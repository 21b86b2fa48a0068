"""The Table 9 sweep as a benchmark: the variants of `sweeps/ablation.yaml` (read from the file),
a full LOSO each on the synthetic benchmark sized like SAMM 5-class (28 subjects, 136 clips), at
the file's step budget, through the real `run_sweep` (Ray scheduling, MLflow tracking): total wall
time, fold jobs/hour, and the pooled UF1 / accuracy of each variant.

Resources per job are the file's (`resources:`; on a machine without a GPU: 1 CPU, no GPU), so
on one GPU the jobs pack as the file says (gpus 0.25: four at a time).

    python bench/table9.py                 # 6 variants x 28 folds x 500 steps, 1 seed
    python bench/table9.py --seeds 3       # the file's 3 seeds (504 jobs)
    python bench/table9.py --quick         # CPU-sized: 3 subjects, tiny model, 4 steps
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch  # noqa: E402

from bench.common import md_table, publish, run_bench_sweep, synthetic_benchmark  # noqa: E402
from orchestrator.cli.train import SMOKE_OVERRIDES  # noqa: E402

ABLATION = Path(__file__).resolve().parent.parent / "sweeps" / "ablation.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=28, help="SAMM 5-class: 28 subjects")
    ap.add_argument("--clips", type=int, default=136, help="SAMM 5-class: 136 clips")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per variant (the file lists 3)")
    ap.add_argument("--steps", type=int, default=None, help="steps per fold (default: the file's `steps:`)")
    ap.add_argument("--max-parallel", type=int, default=None, help="at most N jobs at once")
    ap.add_argument("--folds", type=int, default=0, help="only the first N LOSO folds of each variant (0: all)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where the synthetic data, its cache and the MLflow store go (default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="CPU-sized: 3 subjects x 3 clips, tiny model, 4 steps")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    a = ap.parse_args()
    ablation = yaml.safe_load(ABLATION.read_text())
    variants = list(ablation["variants"])
    steps = a.steps or int(ablation["steps"])
    size, frames = 128, 40
    over = {"train.device": "auto", "train.checkpoint_every": 0}
    res = dict(ablation.get("resources") or {})
    if a.quick:
        a.subjects, a.clips, steps, size, frames = 3, 9, 4, 64, 16
        over.update(SMOKE_OVERRIDES)
        over.update({"train.batch_size": 4, "train.checkpoint_every": 0, "train.log_every": 2})
        over.pop("train.steps")  # the spec's `steps:` sets the budget; an override would win over it
    if a.quick or not torch.cuda.is_available():
        res = {"cpus": 1, "gpus": 0}
    root = a.workdir or Path(tempfile.mkdtemp(prefix="fdp-bench-table9-"))
    cache, prep_s = synthetic_benchmark(root, a.subjects, a.clips, size=size, frames_per_clip=frames)
    print(f"synthetic benchmark: {a.subjects} subjects, {a.clips} clips, prepared in {prep_s:.0f} s; "
          f"variants from {ABLATION.name}: {', '.join(variants)}", flush=True)

    over["data.cache_dir"] = str(cache)
    raw = {"name": "bench-table9", "table": 9, "dataset": "casme2", "setting": "casme2/5", "variants": variants,
           "seeds": list(range(a.seeds)), "steps": steps, "overrides": over, "resources": res, "retries": 0}
    if a.folds:
        raw["folds"] = a.folds
    t0 = time.perf_counter()
    report, jobs = run_bench_sweep(raw, root, max_parallel=a.max_parallel)
    total = time.perf_counter() - t0
    n_jobs = len(report.done) + len(report.failed)
    peak = max((j.get("peak_mem_mb", math.nan) for j in jobs), default=math.nan)
    rate = sum(j.get("steps_per_s", 0.0) for j in jobs) / max(len(jobs), 1)
    cluster = report.cluster
    summary = md_table(
        ["variants", "seeds", "fold jobs", "failed", "steps/fold", "resources per job", "slots", "total s",
         "scheduling wall s", "fold jobs/h", "steps/s per job", "peak MB per job"],
        [[len(variants), a.seeds, n_jobs, len(report.failed), steps,
          f"{res.get('cpus', 1)} cpu + {res.get('gpus', 0)} gpu",
          f"{cluster.cpus:g} cpus, {cluster.gpus:g} gpus" if cluster else "", f"{total:.1f}",
          f"{report.wall_s:.1f}", f"{len(report.done) / report.wall_s * 3600:.0f}" if report.wall_s else "",
          f"{rate:.2f}", f"{peak:.0f}"]])
    per_variant = md_table(["configuration", "UF1", "Acc", "UAR"],
                           [[label.replace("|", ", "), f"{m.get('uf1', math.nan):.4f}", f"{m.get('acc', math.nan):.4f}",
                             f"{m.get('uar', math.nan):.4f}"] for label, m in report.pooled.items()])
    for label, reason in report.failed.items():
        print(f"FAILED {label}: {reason}")
    model = "tiny smoke model" if a.quick else "full model"
    note = (f"sweeps/ablation.yaml variants, {model}, {steps} steps per fold, "
            + (f"first {a.folds} folds, " if a.folds else "all folds, ") + "synthetic benchmark "
            f"{a.subjects} subjects / {a.clips} clips (casme2/5), through run_sweep: Ray tasks, MLflow runs in a "
            "fresh SQLite store. total s includes Ray start and run creation. Peak MB: CUDA max allocated per "
            "job; CPU: peak RSS of the (reused) worker process. UF1 / Acc / UAR pooled over the folds.")
    publish("bench/table9.py", a, summary + "\n\n" + per_variant, note)


if __name__ == "__main__":
    main()
