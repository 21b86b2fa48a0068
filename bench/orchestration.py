"""Orchestration overhead: a sweep of N tiny real fold jobs on a local Ray, wall time
against the jobs' own time. overhead = wall - sum(job seconds) / parallel slots.

    python bench/orchestration.py            # 100 jobs (10 subjects x 10 seeds), 2 steps each
    python bench/orchestration.py --quick    # 12 jobs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import md_table, publish, run_bench_sweep, synthetic_benchmark  # noqa: E402
from orchestrator.cli.train import SMOKE_OVERRIDES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-record", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.subjects, a.seeds = 4, 3
    root = Path(tempfile.mkdtemp(prefix="fdp-bench-orch-"))
    cache, _ = synthetic_benchmark(root, a.subjects, 3 * a.subjects)
    over = {k: v for k, v in SMOKE_OVERRIDES.items() if k != "train.steps"}  # the spec's `steps` (2) applies
    over.update({"data.cache_dir": str(cache), "train.batch_size": 4, "train.checkpoint_every": 0})
    raw = {"name": "bench-orchestration", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"],
           "seeds": list(range(a.seeds)), "steps": 2, "overrides": over, "resources": {"cpus": 1, "gpus": 0},
           "tracking": {"experiment": "bench-orchestration"}}
    t0 = time.perf_counter()
    rep, _ = run_bench_sweep(raw, root)
    n = len(rep.done) + len(rep.failed)
    total = time.perf_counter() - t0
    slots = os.cpu_count() or 1
    own = sum(rep.job_seconds.values())
    ideal = own / slots
    rows = [[n, slots, f"{total:.1f}", f"{rep.wall_s:.1f}", f"{own:.1f}", f"{ideal:.1f}",
             f"{(rep.wall_s - ideal) / n * 1e3:.0f}", len(rep.failed)]]
    table = md_table(["jobs", "slots", "total s (incl. Ray start, run creation)", "scheduling wall s",
                      "sum of job s", "ideal s (sum/slots)", "overhead ms/job", "failed"], rows)
    publish("bench/orchestration.py", a, table, "Tiny real fold jobs (2 steps, smoke-size model) through run_sweep: "
            "Ray tasks, MLflow child runs in a fresh SQLite store, predictions and artifacts logged per job.")


if __name__ == "__main__":
    main()
