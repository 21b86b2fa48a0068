"""Cost of the compared methods' inputs and training (fdp.features, fdp.methods; docs/methods.md):

* per clip, at the laptop cache size (36 x 36) and the paper's (72 x 72): TV-L1 flow onset -> apex,
  optical strain + resize to 28 x 28, LBP-TOP (TIM to 10 frames + histograms), on synthetic clips
  of the default length (40-frame recordings, onset..offset 50-80 % of them);
* per LOSO fold on the CPU: STSTNet and OFF-ApexNet at their CPU profiles (training + one test
  evaluation), and the time per step, from which a fold at MEB's budget is estimated (not run);
  LBP-TOP + linear SVM on the composite's size (442 clips).

    python bench/compared_methods.py              # 4 subjects x 5 clips per size, the full CPU profiles
    python bench/compared_methods.py --quick      # 2 x 3 clips, 30 steps
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch  # noqa: E402

from bench.common import md_table, publish  # noqa: E402
from fdp.data.cache import load_cache, prepare  # noqa: E402
from fdp.data.synth import write_synthetic  # noqa: E402
from fdp.features.flow import FlowFeatureParams, grey, optical_strain, resize_map, tvl1_flow  # noqa: E402
from fdp.features.keyframes import key_frames  # noqa: E402
from fdp.features.lbp_top import LBPTOPParams, grey_volume, lbp_top_vector  # noqa: E402
from fdp.methods import lbp_top, off_apexnet, ststnet  # noqa: E402
from fdp.methods.fitting import TrainProfile  # noqa: E402

COMPOSITE_CLIPS = 442  # MEGC2019 composite: a fold trains on about 436 clips


def per_clip_costs(cache) -> dict[str, float]:
    """Median seconds per clip of each feature stage over the clips of `cache`."""
    t = {"flow": [], "strain": [], "lbp_top": []}
    fp, lp = FlowFeatureParams(), LBPTOPParams()
    for i, clip in enumerate(cache.clips):
        frames = np.asarray(cache.clip_frames(i))
        kf = key_frames(clip)
        t0 = time.perf_counter()
        f = tvl1_flow(grey(frames[kf.onset]), grey(frames[kf.apex]), fp.tvl1)
        t1 = time.perf_counter()
        s = optical_strain(f[..., 0], f[..., 1])
        [resize_map(m, fp.size) for m in (f[..., 0], f[..., 1], s)]
        t2 = time.perf_counter()
        lbp_top_vector(grey_volume(frames), lp)
        t3 = time.perf_counter()
        t["flow"].append(t1 - t0)
        t["strain"].append(t2 - t1)
        t["lbp_top"].append(t3 - t2)
    return {k: float(np.median(v)) for k, v in t.items()}


def fold_cost(fit, n_train: int, n_test: int, profile: TrainProfile, classes: int = 5) -> tuple[float, float]:
    """(seconds of one fold: fit + test evaluation, seconds per step) on random inputs of the real
    shape, after a 2-step warm-up (the first fit of a process pays one-time set-up)."""
    rng = np.random.default_rng(0)
    x = rng.random((n_train, 3, 28, 28), dtype=np.float32)
    y = np.arange(n_train) % classes
    fit(x, y, x[:n_test], num_classes=classes, profile=TrainProfile(2, profile.batch_size, profile.lr, 0.0), seed=0)
    out = fit(x, y, x[:n_test], num_classes=classes, profile=profile, seed=0)
    return out.wall_s, out.wall_s / profile.steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 subjects x 3 clips, 30 training steps")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a fold job gets 1 CPU from Ray)")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    subjects, per = (2, 3) if a.quick else (4, 5)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic(Path(tmp) / "s", subjects=subjects, clips_per_subject=per, seed=0)
        for size in (36, 72):
            cache = load_cache(prepare("casme2", data, Path(tmp) / "cache", size=size))
            c = per_clip_costs(cache)
            frames = float(np.mean([cl["length"] for cl in cache.clips]))
            rows.append([f"{size} x {size}", len(cache.clips), f"{frames:.1f}", f"{1e3 * c['flow']:.0f}",
                         f"{1e3 * c['strain']:.1f}", f"{1e3 * c['lbp_top']:.1f}",
                         f"{COMPOSITE_CLIPS * (c['flow'] + c['strain'] + c['lbp_top']):.0f}"])
    features = md_table(["cache frames", "clips", "mean frames/clip", "TV-L1 flow ms/clip",
                         "strain + resize ms/clip", "LBP-TOP ms/clip", "all features, 442 clips, s (est.)"], rows)

    n_train, n_test = 125, 25  # the demo's draw: 6 subjects x 25 clips, one subject held out
    train_rows = []
    for name, mod in (("ststnet", ststnet), ("off_apexnet", off_apexnet)):
        prof = mod.CPU_PROFILE if not a.quick else TrainProfile(30, 32, mod.CPU_PROFILE.lr, 1e-3)
        fit = ststnet.fit_ststnet if name == "ststnet" else off_apexnet.fit_off_apexnet
        wall, per_step = fold_cost(fit, n_train, n_test, prof)
        paper_steps = mod.paper_profile(COMPOSITE_CLIPS - 6).steps
        train_rows.append([name, mod.parameter_count(5), prof.steps, prof.batch_size, f"{wall:.1f}",
                           f"{1e3 * per_step:.1f}", paper_steps, f"{paper_steps * per_step / 60:.1f}"])
    rng = np.random.default_rng(0)
    x = rng.random((COMPOSITE_CLIPS, 1125)) / 15.0
    t0 = time.perf_counter()
    lbp_top.fit_lbp_top(x[:436], np.arange(436) % 3, x[436:], num_classes=3)
    train_rows.append(["lbp_top (SVM)", lbp_top.parameter_count(3), 0, "-", f"{time.perf_counter() - t0:.2f}",
                       "-", "-", "-"])
    training = md_table(["method", "params (5 classes; SVM: 3)", "steps", "batch", "s/fold (CPU profile)",
                         "ms/step", "steps at MEB's budget (436 train clips)", "min/fold at MEB's budget (est.)"],
                        train_rows)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "?"
    note = (f"Commit {commit}. Feature costs: median over the synthetic clips of one draw ({subjects} subjects x "
            f"{per} clips, 40-frame recordings), one process, TV-L1 at OpenCV's defaults; LBP-TOP includes the "
            f"TIM to 10 frames, so it grows with the clip's length. Training: {n_train} training / {n_test} test "
            f"clips of random 3 x 28 x 28 inputs (the cost does not depend on the values), torch threads "
            f"{a.threads}; 'at MEB's budget' multiplies the measured ms/step by MEB's step count (an estimate, not "
            f"run). LBP-TOP SVM: fit on 436 clips x 1125 values, 3 classes.")
    publish("bench/compared_methods.py", a, features + "\n\n" + training, note)


if __name__ == "__main__":
    main()
