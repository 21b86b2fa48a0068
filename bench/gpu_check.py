"""The one command to run on a GPU machine: `make gpu-check`.

Everything the GPU path still owes a measurement, in at most 8 minutes on one H100-class GPU,
every figure appended to bench/results.md with the device named:

  1. tests     the GPU-marked tests (`pytest -m gpu`: every variant on CUDA with bf16 +
               channels_last, inductor-compiled forward, the on-device clip bank)
  2. model     bench/model.py on CUDA: the Table 9 variants at batch 36, bf16 + channels_last,
               step time, TFLOP/s, peak memory beside fdp.memory's estimate
  3. loso      bench/loso.py: a short LOSO on the SAMM-sized benchmark (28 subjects, 136 clips;
               --loso-folds 16 folds x --steps 50) in-process, then as fold jobs packed 1 / 2 / 4 / 8
               per GPU; jobs/hour, peak per job beside the estimate
  4. table9    bench/table9.py: the Table 9 sweep (6 variants) at --folds folds through Ray + MLflow

Each step is a subprocess with its own time limit; one that fails or runs out of time is recorded
as such and the others still run. Exit status: 0 when every step passed.

    make gpu-check                          # = python bench/gpu_check.py
    python bench/gpu_check.py --quick       # its CPU form, run by the test suite: tiny sizes; the
                                            # GPU settings forced on CPU, the packing on a fake GPU
    python bench/gpu_check.py --results /tmp/r.md --only model,loso
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, RESULTS_ENV, append_results, md_table  # noqa: E402

TABLE9_VARIANTS = "fdp,no_dic,no_rank,no_local,no_global,no_local_global"


def steps(a: argparse.Namespace, work: Path) -> list[tuple[str, list[str], int]]:
    """(name, command, time limit in s) of each step; the limits add up to the 8-minute budget."""
    py = sys.executable
    common = ["--workdir", str(work)]
    if a.quick:  # CPU: the same scripts at their quick sizes, GPU settings forced, a fake GPU for packing
        return [
            ("tests", [py, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/test_runtime.py",
                       "tests/test_sampling.py"], 300),
            ("model", [py, "bench/model.py", "--quick", "--devices", "cpu", "--variants", "fdp",
                       "--precision", "bf16", "--channels-last", "true"], 300),
            ("loso", [py, "bench/loso.py", "--quick", "--jobs-per-gpu", "2", "--fake-gpus", "1", *common], 300),
            ("table9", [py, "bench/table9.py", "--quick", "--folds", "2", *common], 300),
        ]
    return [
        ("tests", [py, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"], 90),
        ("model", [py, "bench/model.py", "--devices", "cuda", "--variants", TABLE9_VARIANTS, "--steps", "10"], 60),
        ("loso", [py, "bench/loso.py", "--steps", str(a.steps), "--folds", str(a.loso_folds),
                  "--jobs-per-gpu", "1", "2", "4", "8", *common], 230),
        ("table9", [py, "bench/table9.py", "--steps", str(a.steps), "--folds", str(a.folds), *common], 100),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the CPU form: tiny sizes, seconds per step")
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="results file to append to (default: bench/results.md)")
    ap.add_argument("--steps", type=int, default=50, help="optimizer steps per fold in the LOSO and Table 9 steps")
    ap.add_argument("--folds", type=int, default=4, help="folds per variant in the Table 9 step")
    ap.add_argument("--loso-folds", type=int, default=16,
                    help="folds of the SAMM-sized LOSO step (of 28; each packing runs them all)")
    ap.add_argument("--only", default="", help="comma-separated steps to run (tests, model, loso, table9)")
    ap.add_argument("--workdir", type=Path, default=None, help="synthetic data and stores (default: a temp dir)")
    a = ap.parse_args()

    import torch

    if not a.quick and not torch.cuda.is_available():
        print("gpu-check: no CUDA device visible; `--quick` runs its CPU form", file=sys.stderr)
        return 2
    work = a.workdir or Path(tempfile.mkdtemp(prefix="fdp-gpu-check-"))
    env = dict(os.environ, **{RESULTS_ENV: str(a.results.resolve()), "MLFLOW_DISABLE_TELEMETRY": "true",
                              "RAY_USAGE_STATS_ENABLED": "0"})
    os.environ[RESULTS_ENV] = env[RESULTS_ENV]  # this script's own summary goes to the same file
    if a.quick:
        # tiny models gain nothing from a second intra-op thread, and on a loaded 2-core CI machine
        # its spin-waiting makes the CPU form several times slower (bench/results.md)
        env.setdefault("OMP_NUM_THREADS", "1")
    wanted = {s for s in a.only.split(",") if s}
    rows, failed, t_all = [], [], time.perf_counter()
    for name, cmd, limit in steps(a, work):
        if wanted and name not in wanted:
            continue
        print(f"gpu-check: {name}: {' '.join(cmd[1:])} (limit {limit} s)", flush=True)
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=limit).returncode
            status = "ok" if rc == 0 else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            status = f"stopped at its {limit} s limit"
        dt = time.perf_counter() - t0
        if status != "ok":
            failed.append(name)
        rows.append([name, f"`{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}`", status,
                     f"{dt:.0f}"])
        print(f"gpu-check: {name}: {status} in {dt:.0f} s", flush=True)
    total = time.perf_counter() - t_all
    form = "CPU form (--quick): tiny sizes, GPU settings forced on CPU, packing on a fake GPU" if a.quick else \
        f"{a.steps} steps per fold, LOSO at {a.loso_folds} of 28 folds, Table 9 at {a.folds} folds"
    append_results("bench/gpu_check.py" + (" --quick" if a.quick else ""),
                   md_table(["step", "command", "status", "wall s"], rows),
                   f"{form}; total {total:.0f} s (budget: 8 min on one H100-class GPU). The figures of each step "
                   "are the sections just above this one.")
    print(f"gpu-check: {len(rows) - len(failed)}/{len(rows)} steps ok in {total:.0f} s; results in {a.results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
