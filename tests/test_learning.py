"""Issue #4's learning criterion: a full LOSO of `fdp` at CPU size on the synthetic benchmark
reaches a pooled UF1 clearly above chance and above the single-frame baseline (docs/experiments/learnability.md).

Slow (34 minutes on 2 CPU cores): `make test-slow`. The configuration is the one
`fdp-sweep train --smoke --steps 1200 --set train.batch_size=16 --set train.lr=3e-4` uses. The
budget was fixed on development subjects of the seed-0 benchmark (bench/learning_probe.py); lr 3e-4
replaced 1e-3 because with 1e-3 some folds' *training* loss never left ln 5, and it was accepted on
the training loss alone (every fold of the seed-2 benchmark, fold 01 of seed 1). This test runs it
on the seed-3 benchmark, which nothing was chosen on. The thresholds and the draw were written down
(docs/experiments/learnability.md) before the first run.

Met (docs/experiments/learnability.md): `fdp-sweep train` with exactly this data and configuration gave pooled
UF1 0.398 / Acc 0.381 (61 of 160) in 2119 s; apex-frame regression UF1 0.275, random frame 0.220.
"""

from __future__ import annotations

import numpy as np
import pytest
from fdp.readouts import frame_features, loso_predictions
from scipy.stats import binomtest

from fdp.data.cache import load_cache, prepare
from fdp.data.synth import CLASSES, write_synthetic
from fdp.metrics import pooled_metrics
from fdp.runner import fold_names, run_fold
from fdp.variants import build_config
from orchestrator.cli.train import SMOKE_OVERRIDES


@pytest.mark.slow
def test_full_loso_learns_from_motion(tmp_path):
    root = write_synthetic(tmp_path / "s", subjects=8, clips_per_subject=20, seed=3)  # generator defaults
    cache_dir = prepare("casme2", root, tmp_path / "cache")
    cache = load_cache(cache_dir)

    # the single-frame baseline on the same clips, under the same LOSO folds
    y = np.array([CLASSES.index(c["emotion"]) for c in cache.clips])
    subjects = np.array([c["subject"] for c in cache.clips])
    feats = frame_features(cache)
    apex = pooled_metrics(y, loso_predictions(feats["apex"], y, subjects), len(CLASSES))
    rand = pooled_metrics(y, loso_predictions(feats["random"], y, subjects), len(CLASSES))

    cfg = build_config("fdp", {**SMOKE_OVERRIDES, "data.dataset": "casme2", "data.setting": "casme2/5",
                               "data.cache_dir": str(cache_dir), "train.steps": 1200, "train.batch_size": 16,
                               "train.lr": 3e-4})
    folds = fold_names(cfg)
    assert len(folds) == 8
    labels, preds = [], []
    for f in folds:
        res = run_fold(cfg, f)
        assert res.selection.startswith("model after the last step")
        labels += res.labels
        preds += res.preds
    fdp = pooled_metrics(labels, preds, cfg.model.num_classes)
    hits = int(round(fdp["acc"] * len(labels)))
    p = binomtest(hits, len(labels), 1 / len(CLASSES), alternative="greater").pvalue
    print(f"fdp pooled {fdp}; {hits}/{len(labels)} right, p = {p:.2g}; "
          f"apex-frame LR {apex}; random-frame LR {rand}")
    assert len(labels) == 160
    assert fdp["uf1"] >= 0.30 and p < 1e-3  # chance: UF1 ~ 0.20, 32 of 160 right
    assert fdp["uf1"] >= apex["uf1"] + 0.05 and fdp["uf1"] >= rand["uf1"] + 0.05
