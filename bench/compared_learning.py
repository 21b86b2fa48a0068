"""Do the compared methods learn from motion on the synthetic benchmark? A full LOSO of STSTNet,
OFF-ApexNet (their CPU profiles) and LBP-TOP + SVM on the demo's draw (orchestrator/cli/demo.py
DEMO_DATA: 6 subjects x 25 clips, 5 classes, 36 x 36 cache), each with the true labels and with
the training labels shuffled within each fold (the control): pooled UF1 / UAR / Acc.

This is the check the CPU profiles of docs/methods.md were accepted on (the test subjects' scores
are reported here, nothing is selected on them).

    python bench/compared_learning.py                  # all three methods (slow: a CPU LOSO each)
    python bench/compared_learning.py --methods lbp_top
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch  # noqa: E402

from bench.common import md_table, publish  # noqa: E402
from fdp.data.cache import load_cache, prepare  # noqa: E402
from fdp.data.synth import CLASSES, write_synthetic  # noqa: E402
from fdp.features.store import load_features  # noqa: E402
from fdp.methods import lbp_top, off_apexnet, ststnet  # noqa: E402
from fdp.metrics import pooled_metrics  # noqa: E402
from fdp.profiles import LAPTOP_ALIGNED  # noqa: E402
from orchestrator.cli.demo import DEMO_DATA  # noqa: E402

METHODS = {"ststnet": ststnet, "off_apexnet": off_apexnet, "lbp_top": lbp_top}


def fit(name: str, x_tr, y_tr, x_te, seed: int):
    if name == "lbp_top":
        return lbp_top.fit_lbp_top(x_tr, y_tr, x_te, num_classes=len(CLASSES), seed=seed)
    fitter = ststnet.fit_ststnet if name == "ststnet" else off_apexnet.fit_off_apexnet
    return fitter(x_tr, y_tr, x_te, num_classes=len(CLASSES), profile=METHODS[name].CPU_PROFILE, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated, of " + ", ".join(METHODS))
    ap.add_argument("--workdir", type=Path, default=None, help="where the draw and its cache go (default: temp)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a fold job gets 1 CPU from Ray)")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = [m for m in a.methods.split(",") if m]
    work = a.workdir or Path(tempfile.mkdtemp())
    data = work / "demo-data"
    if not (data / "synthetic.json").is_file():
        write_synthetic(data, **DEMO_DATA)
    cache = load_cache(prepare("casme2", data, work / "cache", size=LAPTOP_ALIGNED))
    y = np.array([CLASSES.index(c["emotion"]) for c in cache.clips])
    subjects = np.array([c["subject"] for c in cache.clips])
    rows = []
    for name in names:
        x = load_features(cache, METHODS[name].FEATURE_KIND).values
        for control in (False, True):
            preds, t0 = np.empty_like(y), time.perf_counter()
            for k, s in enumerate(np.unique(subjects)):
                test = subjects == s
                y_tr = np.random.default_rng(k).permutation(y[~test]) if control else y[~test]
                preds[test] = fit(name, x[~test], y_tr, x[test], seed=0).probs.argmax(1)
            m = pooled_metrics(y, preds, len(CLASSES))
            rows.append([name, "shuffled labels" if control else "true labels", f"{m['uf1']:.3f}", f"{m['uar']:.3f}",
                         f"{m['acc']:.3f}", f"{time.perf_counter() - t0:.0f}"])
            print(rows[-1], flush=True)
    table = md_table(["method", "training labels", "UF1", "UAR", "Acc", "wall s (LOSO)"], rows)
    note = (f"Demo draw (DEMO_DATA, seed {DEMO_DATA['seed']}): {len(y)} clips, {len(np.unique(subjects))} subjects, "
            f"5 classes (chance UF1 ~ 0.2), cache {LAPTOP_ALIGNED} x {LAPTOP_ALIGNED}; full LOSO, one model per fold, "
            f"networks at their CPU_PROFILE (300 steps, batch 32, lr 1e-3, wd 1e-3), model after the last step; "
            f"shuffled: each fold's training labels permuted (seed = fold number). Wall time on a shared machine.")
    publish("bench/compared_learning.py", a, table, note)


if __name__ == "__main__":
    main()
