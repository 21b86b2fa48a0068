"""Do the demo's printed claims hold across CPU kernels and training seeds, and how far do its
numbers move with the kernels alone, beside how far they move with the seed?

torch picks its ATen CPU kernels by instruction set; `ATEN_CPU_CAPABILITY=default|avx2|avx512`
caps the choice (read once, when torch loads: every cell is its own `fdp-sweep demo` process, its
Ray workers inherit the variable). The demo runs once per cell -- every capability this CPU runs at
the first seed, the other seeds at the native capability -- each into its own MLflow store under
one project folder (the benchmark drawn, prepared and its features computed once; the data are the
same bytes under every capability). Then, from the stores:

* per claim (orchestrator/report/claims.py), its number in every cell and whether it held in all;
* per configuration and fold, the range of UF1 over the capabilities (same seed) and over the
  seeds (same capability), and the share of test clips whose predicted class changed;
* every cell's wall time (the demo's `elapsed`).

    python bench/demo_spread.py                              # draw 7 (the README's), seeds 0 1 2
    python bench/demo_spread.py --draw 10 --seeds 0 --capabilities avx512
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import md_table, publish  # noqa: E402


def available_capabilities() -> list[str]:
    """The ATen capabilities this CPU can run, lowest first (asking for more than the CPU has
    silently gives less: only those it reports back are kept)."""
    import torch

    native = torch.backends.cpu.get_cpu_capability().lower()
    order = ["default", "avx2", "avx512"]
    return order[:order.index(native) + 1] if native in order else ["default", native]


def run_cell(root: Path, capability: str, seed: int, draw: int | None) -> dict:
    """One `fdp-sweep demo` under `capability` with training seed `seed`; its store, claims,
    per-fold predictions and wall time. A cell whose store holds its finished run (cell.json,
    written when it finished) is read, not run again: an interrupted spread resumes."""
    store = root / f"{capability}-seed{seed}"
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    done = store / "cell.json"
    if done.exists():
        timing = json.loads(done.read_text())
        print(f"cell {capability}, seed {seed}: finished earlier, read from {store}", file=sys.stderr, flush=True)
        return {"capability": capability, "seed": seed, "uri": uri, **timing, **read_store(uri)}
    cmd = [sys.executable, "-m", "orchestrator.cli.main", "demo", "--seed", str(seed), "--tracking-uri", uri]
    if draw is not None:
        cmd += ["--draw", str(draw)]
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "FDP_PROJECT_ROOT": str(root)}
    print(f"cell {capability}, seed {seed}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
    wall = time.perf_counter() - t0
    load = os.getloadavg()[1]  # the 5-minute load average at the end: how shared the machine was
    (store / "demo.out").write_text(proc.stdout)
    (store / "demo.err").write_text(proc.stderr)
    if proc.returncode:
        raise SystemExit(f"cell {capability} seed {seed} failed (exit {proc.returncode}); its output: "
                         f"{store / 'demo.out'}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    elapsed = re.search(r"^elapsed: (\d+) s", proc.stdout, flags=re.M)
    timing = {"wall": wall, "elapsed": float(elapsed.group(1)) if elapsed else wall, "load": load}
    done.write_text(json.dumps(timing))
    cell = {"capability": capability, "seed": seed, "uri": uri, **timing, **read_store(uri)}
    print(f"cell {capability}, seed {seed}: {cell['claims_summary']} in {cell['elapsed']:.0f} s "
          f"(kernels {cell['kernels']})", file=sys.stderr, flush=True)
    return cell


def read_store(uri: str) -> dict:
    """The demo's parent run in a store: its claims, the kernels its jobs ran, and per
    configuration and fold the test labels and predictions."""
    from orchestrator.report.claims import JSON_NAME
    from orchestrator.report.protocol import read_artifact
    from orchestrator.report.summarize import find_parent
    from orchestrator.track.driver import SweepTracker

    tracker = SweepTracker(uri)
    found = find_parent(tracker, sweep="demo")
    if found is None:
        raise SystemExit(f"no demo sweep in {uri}")
    claims = json.loads(read_artifact(tracker, found.parent.info.run_id, JSON_NAME) or "{}")
    folds: dict[str, dict[str, dict]] = {}
    kernels = set()
    for r in found.children:
        t = r.data.tags
        kernels.add(t.get("fdp.torch_kernels", "?"))
        p = tracker.predictions(r.info.run_id)
        folds.setdefault(t["fdp.variant"], {})[t["fdp.fold"]] = {
            "uf1": r.data.metrics["uf1"], "preds": list(p["preds"]), "labels": list(p["labels"])}
    return {"claims": claims.get("claims", []), "claims_summary": claims.get("summary", "?"),
            "kernels": ", ".join(sorted(kernels)), "folds": folds}


def spread(cells: list[dict], variant: str, fold: str) -> tuple[float, float]:
    """(max - min of the fold's UF1 over the cells, mean share of the fold's test clips whose
    predicted class differs between two cells)."""
    uf1 = [c["folds"][variant][fold]["uf1"] for c in cells]
    preds = [np.asarray(c["folds"][variant][fold]["preds"]) for c in cells]
    pairs = list(itertools.combinations(preds, 2))
    return max(uf1) - min(uf1), float(np.mean([np.mean(a != b) for a, b in pairs])) if pairs else 0.0


def claim_number(c: dict) -> str:
    if c["holds"] is None:
        return "not measured"
    unit = (lambda v: f"{100 * v:+.1f}") if c["difference"] else (lambda v: f"{100 * v:.1f}")
    return f"{'yes' if c['holds'] else 'NO'} {unit(c['estimate'])} [{unit(c['low'])}, {unit(c['high'])}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draw", type=int, default=None, help="another synthetic draw (default: the demo's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--capabilities", nargs="+", default=None, help="default: every one this CPU runs")
    ap.add_argument("--root", default=None, help="project folder of the cells (default: a folder under the temp dir)")
    ap.add_argument("--parallel", type=int, default=1,
                    help="cells at once (each runs 2 fold jobs at a time; times are then of a shared machine)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    caps = args.capabilities or available_capabilities()
    native = caps[-1]
    root = Path(args.root or Path(tempfile.gettempdir()) / f"fdp-demo-spread-draw{args.draw or 'demo'}")
    grid = [(c, args.seeds[0]) for c in caps] + [(native, s) for s in args.seeds[1:]]
    from orchestrator.cli.demo import DEMO_DATA, prepare_demo_data

    # the benchmark drawn and prepared once, before the cells (each then finds it)
    prepare_demo_data(root, echo=lambda line: print(line, file=sys.stderr),
                      data_args=None if args.draw is None else {**DEMO_DATA, "seed": args.draw})
    with ThreadPoolExecutor(args.parallel) as pool:
        cells = list(pool.map(lambda cs: run_cell(root, cs[0], cs[1], args.draw), grid))
    for c, (cap, _) in zip(cells, grid):
        if c["kernels"] != cap:
            raise SystemExit(f"asked for ATen capability {cap}, the jobs ran {c['kernels']}")

    names = [f"{c['capability']}, seed {c['seed']}" for c in cells]
    claims = [cl["statement"] for cl in cells[0]["claims"]]
    rows = []
    for i, statement in enumerate(claims):
        per = [c["claims"][i] for c in cells]
        held = all(p["holds"] for p in per)
        rows.append([statement] + [claim_number(p) for p in per] + ["yes" if held else "**no**"])
    claims_table = md_table(["claim"] + names + ["holds in every cell"], rows)

    by_cap = [c for c in cells if c["seed"] == args.seeds[0]]
    by_seed = [c for c in cells if c["capability"] == native]
    fold_rows = []
    for v in sorted(cells[0]["folds"]):
        folds = sorted(cells[0]["folds"][v])
        ks = [spread(by_cap, v, f) for f in folds]
        ss = [spread(by_seed, v, f) for f in folds]
        pooled = [f"{100 * np.mean([c['folds'][v][f]['uf1'] for f in folds]):.1f}" for c in cells]
        fold_rows.append([v, " / ".join(pooled), f"{100 * np.mean([k[0] for k in ks]):.1f}",
                          f"{100 * max(k[0] for k in ks):.1f}", f"{100 * np.mean([k[1] for k in ks]):.0f} %",
                          f"{100 * np.mean([s[0] for s in ss]):.1f}", f"{100 * max(s[0] for s in ss):.1f}",
                          f"{100 * np.mean([s[1] for s in ss]):.0f} %"])
    fold_table = md_table(["configuration", "mean per-fold UF1 in each cell", "UF1 range over kernels: mean (pp)",
                           "max (pp)", "preds changed over kernels", "UF1 range over seeds: mean (pp)", "max (pp)",
                           "preds changed over seeds"], fold_rows)
    times = md_table(["cell", "demo elapsed (s)", "wall (s)", "load average (5 min) at its end"],
                     [[n, f"{c['elapsed']:.0f}", f"{c['wall']:.0f}", f"{c.get('load', float('nan')):.1f}"]
                      for n, c in zip(names, cells)])
    note = (f"`fdp-sweep demo` ({'draw ' + str(args.draw) if args.draw is not None else 'the demo draw'}), one "
            f"process per cell with ATEN_CPU_CAPABILITY set; kernels: seed {args.seeds[0]} under "
            f"{', '.join(caps)}; seeds: {', '.join(map(str, args.seeds))} under {native}. Ranges over the "
            f"{len(by_cap)} kernel cells and the {len(by_seed)} seed cells, per LOSO fold; 'preds changed': mean share "
            f"of a fold's test clips whose predicted class differs between two cells. Stores: {root}.")
    publish("bench/demo_spread.py", args, claims_table + "\n\n" + fold_table + "\n\n" + times, note)


if __name__ == "__main__":
    main()
