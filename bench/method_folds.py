"""What a fold of each compared method costs through the method registry, as a sweep runs it: the
demo's cache (`orchestrator.cli.demo.prepare_demo_data`: 6 subjects x 25 clips at 36 x 36; --smoke:
4 x 10), the laptop size profile (so the CPU budget: 300 steps, lr 1e-3, one torch thread), each
LOSO fold through `fdp.runner.run_fold` -- features read from the feature cache, which the first
call computes once per clip (timed apart).

    python bench/method_folds.py                 # the full demo draw, every fold
    python bench/method_folds.py --smoke --folds 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import md_table, publish  # noqa: E402
from fdp.data.cache import load_cache  # noqa: E402
from fdp.features.store import load_features  # noqa: E402
from fdp.profiles import profile  # noqa: E402
from fdp.runner import fold_names, run_fold  # noqa: E402
from fdp.variants import build_config  # noqa: E402
from orchestrator.cli.demo import SMOKE_DATA, prepare_demo_data  # noqa: E402

METHODS = ("ststnet", "off_apexnet", "lbp_top")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="the demo's smoke draw (4 subjects x 10 clips)")
    ap.add_argument("--folds", type=int, default=0, help="first N LOSO folds (0: all)")
    ap.add_argument("--workdir", type=Path, default=None, help="project root of the draw and its cache (default: temp)")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    a = ap.parse_args()
    root = a.workdir or Path(tempfile.mkdtemp())
    cache_dir = prepare_demo_data(root, echo=lambda s: click.echo(s, err=True),
                                  data_args=SMOKE_DATA if a.smoke else None)
    cache = load_cache(cache_dir)
    features = []
    for kind in ("flow", "lbp_top"):
        t0 = time.perf_counter()
        fs = load_features(cache, kind)
        features.append(f"{kind}: {fs.computed} clips computed in {time.perf_counter() - t0:.1f} s")
    rows = []
    for variant in METHODS:
        cfg = build_config(variant, {**profile("laptop"), "data.cache_dir": str(cache_dir)})
        folds = fold_names(cfg)[:a.folds or None]
        times, steps = [], 0
        for fold in folds:
            t0 = time.perf_counter()
            res = run_fold(cfg, fold)
            times.append(time.perf_counter() - t0)
            steps = res.steps
        rows.append([variant, steps, len(folds), f"{statistics.median(times):.1f}", f"{max(times):.1f}",
                     f"{1000 * statistics.median(times) / steps:.1f}" if steps else "-", f"{sum(times):.0f}"])
        print(rows[-1], flush=True)
    table = md_table(["method", "steps", "folds", "median s/fold", "max s/fold", "ms/step (median fold)",
                      "total s"], rows)
    note = (f"Cache {cache_dir.name} ({len(cache.clips)} clips, {'smoke' if a.smoke else 'full'} demo draw); laptop "
            f"profile (compared.budget cpu, compared.threads 1); s/fold: fdp.runner.run_fold wall time, data loading "
            f"and evaluation included, features read from the feature cache. Features, first call: "
            + "; ".join(features) + ".")
    publish("bench/method_folds.py" + (" --smoke" if a.smoke else ""), a, table, note)


if __name__ == "__main__":
    main()
