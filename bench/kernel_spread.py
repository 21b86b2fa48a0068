"""How far do the demo's fold results move with the CPU kernels alone, beside how far they move
with the seed?

torch picks its ATen CPU kernels by instruction set; `ATEN_CPU_CAPABILITY=default|avx2|avx512`
caps the choice (read once, when torch loads: every cell below is its own process). The same
configuration, data and seed is trained under each capability available here, and under several
seeds at the native capability; per fold the table gives the UF1 under each, and the summary the
spread of per-fold UF1 and how many test predictions change -- between capabilities (same seed)
and between seeds (same capability).

    python bench/kernel_spread.py                       # the demo's benchmark and profile, 3 folds
    python bench/kernel_spread.py --folds 6 --seeds 0 1 2 --variants fdp fdp_shuffled
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import md_table, publish  # noqa: E402

# one process per (capability, seed, variant): train the given folds at the demo's profile and
# print their labels and predictions as one JSON line
CHILD = r"""
import json, sys
from fdp.profiles import profile
from fdp.runner import run_fold
from fdp.variants import build_config
from fdp.machine import machine_info
cache, variant, seed, folds, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","), int(sys.argv[5])
over = {**profile("laptop"), "data.dataset": "casme2", "data.setting": "casme2/5", "data.cache_dir": cache,
        "train.seed": seed}
if steps:
    over["train.steps"] = steps
cfg = build_config(variant, over)
out = {"kernels": machine_info()["torch_kernels"], "folds": {}}
for f in folds:
    r = run_fold(cfg, f)
    out["folds"][f] = {"labels": r.labels, "preds": r.preds, "uf1": r.metrics["uf1"]}
print("RESULT " + json.dumps(out))
"""


def available_capabilities() -> list[str]:
    """The ATen capabilities this CPU can run, lowest first (asking for more than the CPU has
    silently gives less: only those it reports back are kept)."""
    import torch

    native = torch.backends.cpu.get_cpu_capability().lower()
    order = ["default", "avx2", "avx512"]
    return order[:order.index(native) + 1] if native in order else ["default", native]


def run_cell(cache: str, variant: str, seed: int, folds: list[str], steps: int, capability: str) -> dict:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, cache, variant, str(seed), ",".join(folds), str(steps)],
                          env=env, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"{variant} seed {seed} under {capability} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(line[len("RESULT "):])
    if res["kernels"] != capability:
        raise SystemExit(f"asked for ATen capability {capability}, torch used {res['kernels']}")
    return res


def spread(cells: list[dict], fold: str) -> tuple[float, float]:
    """(max - min of the fold's UF1 over the cells, mean fraction of test predictions that differ
    between pairs of cells)."""
    uf1 = [c["folds"][fold]["uf1"] for c in cells]
    preds = [np.asarray(c["folds"][fold]["preds"]) for c in cells]
    pairs = list(itertools.combinations(preds, 2))
    changed = float(np.mean([np.mean(a != b) for a, b in pairs])) if pairs else 0.0
    return max(uf1) - min(uf1), changed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=None, help="a prepared casme2 cache (default: the demo's, prepared if needed)")
    ap.add_argument("--variants", nargs="+", default=["fdp", "fdp_shuffled"])
    ap.add_argument("--folds", type=int, default=3, help="the first N LOSO folds")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--capabilities", nargs="+", default=None, help="default: every one this CPU runs")
    ap.add_argument("--steps", type=int, default=0, help="steps per fold (0: the laptop profile's)")
    ap.add_argument("--parallel", type=int, default=2, help="processes at once (one core each)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    if args.cache is None:
        from orchestrator.cli.demo import prepare_demo_data

        root = Path(tempfile.gettempdir()) / "fdp-kernel-spread"
        cache = str(prepare_demo_data(root, echo=lambda s: print(s, file=sys.stderr)))
    else:
        cache = args.cache
    from fdp.data.cache import cache_fingerprint, load_cache

    subjects = sorted({c["subject"] for c in load_cache(cache).clips})
    folds = subjects[:args.folds]
    caps = args.capabilities or available_capabilities()
    native = caps[-1]
    jobs = [(v, args.seeds[0], c) for v in args.variants for c in caps]
    jobs += [(v, s, native) for v in args.variants for s in args.seeds[1:]]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.parallel) as pool:
        futs = {j: pool.submit(run_cell, cache, j[0], j[1], folds, args.steps, j[2]) for j in jobs}
        cells = {j: f.result() for j, f in futs.items()}
    wall = time.perf_counter() - t0

    rows, summary = [], []
    for v in args.variants:
        by_cap = [cells[(v, args.seeds[0], c)] for c in caps]
        by_seed = [cells[(v, s, native)] for s in args.seeds]
        cap_spreads, seed_spreads = [], []
        for f in folds:
            cs, ss = spread(by_cap, f), spread(by_seed, f)
            cap_spreads.append(cs)
            seed_spreads.append(ss)
            rows.append([v, f] + [f"{c['folds'][f]['uf1'] * 100:.1f}" for c in by_cap]
                        + [f"{c['folds'][f]['uf1'] * 100:.1f}" for c in by_seed[1:]]
                        + [f"{cs[0] * 100:.1f}", f"{cs[1] * 100:.0f} %", f"{ss[0] * 100:.1f}", f"{ss[1] * 100:.0f} %"])
        summary.append([v, f"{np.mean([s[0] for s in cap_spreads]) * 100:.1f}",
                        f"{np.mean([s[1] for s in cap_spreads]) * 100:.0f} %",
                        f"{np.mean([s[0] for s in seed_spreads]) * 100:.1f}",
                        f"{np.mean([s[1] for s in seed_spreads]) * 100:.0f} %"])
    header = (["variant", "fold"] + [f"UF1 {c} (seed {args.seeds[0]})" for c in caps]
              + [f"UF1 seed {s} ({native})" for s in args.seeds[1:]]
              + ["UF1 range over kernels (pp)", "preds changed over kernels", "UF1 range over seeds (pp)",
                 "preds changed over seeds"])
    table = md_table(header, rows) + "\n\n" + md_table(
        ["variant", "mean per-fold UF1 range over kernels (pp)", "preds changed over kernels",
         "mean per-fold UF1 range over seeds (pp)", "preds changed over seeds"], summary)
    note = (f"The demo's benchmark (cache fingerprint {cache_fingerprint(cache)}) at the laptop profile, "
            f"{args.steps or 'the profile'}'s steps per fold, folds {', '.join(folds)}; each cell a fresh process with "
            f"ATEN_CPU_CAPABILITY set and one thread. Kernels: same seed {args.seeds[0]}, capabilities {', '.join(caps)}; "
            f"seeds: {', '.join(map(str, args.seeds))} at {native}. 'preds changed': mean fraction of test clips whose "
            f"predicted class differs between two cells. Wall {wall:.0f} s with {args.parallel} processes at once.")
    publish("bench/kernel_spread.py", args, table, note)


if __name__ == "__main__":
    main()
