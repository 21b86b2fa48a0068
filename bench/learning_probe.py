"""Does a configuration learn on a benchmark at all? A development probe, not a reported result.

Trains one model on all subjects but the last `--dev` ones (by sorted name) and prints, every
`--every` steps, the mean loss terms and accuracy / UF1 on the training clips and on the held-out
dev subjects (test-time sampling, eval mode). Used to find where the synthetic benchmark is
learnable at CPU size (docs/experiments/learnability.md). Nothing here selects anything for a LOSO number:
the LOSO figures come from `fdp-sweep train`, which evaluates the last step once per fold.

    python bench/learning_probe.py --cache .cache/clips/casme2-<key> --steps 600 --set train.lr=1e-3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fdp.metrics import pooled_metrics  # noqa: E402
from fdp.model import build_model  # noqa: E402
from fdp.profiles import PROFILES, profile  # noqa: E402
from fdp.runner import load_bank  # noqa: E402
from fdp.train import evaluate, train_step  # noqa: E402
from fdp.variants import build_config  # noqa: E402
from orchestrator.cli.tools import parse_sets  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True, help="prepared clip cache (casme2 layout, setting casme2/5)")
    ap.add_argument("--variant", default="fdp")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--dev", type=int, default=2, help="held-out dev subjects (the last ones by name)")
    ap.add_argument("--full-size", action="store_true", help="the paper-sized model instead of the profile's size")
    ap.add_argument("--profile", default="smoke", choices=sorted(PROFILES),
                    help="size profile (fdp/profiles.py); the probe's batch is 16 unless --set says otherwise")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    over = {} if a.full_size else profile(a.profile)
    over.update({"data.cache_dir": a.cache, "train.device": "cpu", "train.batch_size": 16})
    over.update(parse_sets(a.sets))
    cfg = build_config(a.variant, over)
    bank, sel = load_bank(cfg)
    cfg.model.num_classes = len(sel.class_names)
    subj = np.asarray(sel.subjects)
    held = sorted(set(subj))[-a.dev:]
    dev, tr = np.flatnonzero(np.isin(subj, held)), np.flatnonzero(~np.isin(subj, held))
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    print(f"{a.variant}: {len(tr)} training clips, {len(dev)} dev clips (subjects {', '.join(held)}), "
          f"lr {cfg.train.lr:g}, batch {cfg.train.batch_size}", flush=True)
    t0, sums = time.time(), {}
    for step in range(a.steps):
        model.train()
        terms = train_step(model, model, opt, cfg, bank, tr, step)  # exactly train_fold's step
        for k, v in terms.items():
            sums.setdefault(k, []).append(float(v.detach()))
        if (step + 1) % a.every == 0:
            cols = []
            for name, ids in (("train", tr), ("dev", dev)):
                probs = evaluate(model, cfg, bank, ids, torch.device("cpu"))["probs"]
                m = pooled_metrics(bank.labels[torch.as_tensor(ids)].numpy(), probs.argmax(1), cfg.model.num_classes)
                cols.append(f"{name} acc {m['acc']:.3f} uf1 {m['uf1']:.3f}")
            losses = " ".join(f"{k}={np.mean(v):.4f}" for k, v in sums.items())
            sums = {}
            print(f"step {step + 1} [{time.time() - t0:.0f} s] {losses} | {' | '.join(cols)}", flush=True)


if __name__ == "__main__":
    main()
