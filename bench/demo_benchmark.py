"""Linear baselines of a synthetic draw at the laptop frame size: a development check of a benchmark
variant for the demo, not a reported result. Synthesizes the draw (DEMO_DATA with the
given changes), prepares it at the laptop profile's aligned size, and prints the LOSO accuracy / UF1
of the logistic regression (fdp.readouts) on the apex frame, a random frame, and apex - onset (a
motion feature given the annotated key frames). A benchmark fit for the demo keeps single frames near
chance (<= 0.30) while the motion feature reads the class (well above chance).

    python bench/demo_benchmark.py --seed 10 --amplitude 0.12
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fdp.readouts import draw_readouts  # noqa: E402
from fdp.data.cache import load_cache, prepare  # noqa: E402
from fdp.data.synth import write_synthetic  # noqa: E402
from fdp.metrics import pooled_metrics  # noqa: E402
from fdp.profiles import LAPTOP, LAPTOP_ALIGNED  # noqa: E402
from orchestrator.cli.demo import DEMO_DATA  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True, help="the draw (a dev draw: not the demo's or the confirmation's)")
    ap.add_argument("--amplitude", type=float, default=DEMO_DATA.get("amplitude"))
    ap.add_argument("--difficulty", type=float, default=DEMO_DATA.get("difficulty", 0.5))
    ap.add_argument("--static-range", type=float, default=DEMO_DATA.get("static_range"))
    ap.add_argument("--subjects", type=int, default=DEMO_DATA["subjects"])
    ap.add_argument("--clips-per-subject", type=int, default=DEMO_DATA["clips_per_subject"])
    a = ap.parse_args()
    args = {**DEMO_DATA, "seed": a.seed, "amplitude": a.amplitude, "difficulty": a.difficulty,
            "subjects": a.subjects, "clips_per_subject": a.clips_per_subject}
    if a.static_range is not None:
        args["static_range"] = a.static_range
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic(Path(tmp) / "s", **args)
        cache = load_cache(prepare("casme2", root, Path(tmp) / "cache", size=LAPTOP_ALIGNED))
        preds, y, classes = draw_readouts(cache, LAPTOP["data.crop"])
    out = []
    for k, p in preds.items():
        m = pooled_metrics(y, p, len(classes))
        out.append(f"{k} acc {m['acc']:.3f} uf1 {m['uf1']:.3f}")
    print(f"{args}: " + " | ".join(out), flush=True)


if __name__ == "__main__":
    main()
