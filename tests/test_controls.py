"""The negative control and the single-frame method: the shuffled-label control never trains (or
validates) on unpermuted labels and never changes a test label; the single-frame regression runs
the same folds as the network, through the same fold runner."""

from __future__ import annotations

import numpy as np
import torch

import fdp.train as train_mod
from fdp.fold import training_labels
from fdp.runner import fold_names, load_bank, make_split, run_fold
from fdp.train import batch_indices
from fdp.variants import build_config
from orchestrator.cli.train import SMOKE_OVERRIDES
from orchestrator.track.driver import control_tags


def _cfg(cache, variant="fdp_shuffled", **over):
    o = dict(SMOKE_OVERRIDES)
    o.update({"data.cache_dir": str(cache), "train.steps": 5, "train.log_every": 1, "train.batch_size": 4,
              "train.checkpoint_every": 0})
    o.update(over)
    return build_config(variant, o)


def _split(cfg):
    bank, sel = load_bank(cfg)
    return bank, make_split(cfg, list(sel.subjects), fold_names(cfg)[0])


def test_shuffled_labels_permute_training_clips_only(synth_cache):
    cfg = _cfg(synth_cache)
    bank, split = _split(cfg)
    true = bank.labels.cpu().numpy()
    seen = training_labels(cfg, bank, split).cpu().numpy()
    np.testing.assert_array_equal(seen[split.test], true[split.test])  # test labels untouched
    assert sorted(seen[split.train]) == sorted(true[split.train])  # a permutation: class counts kept
    assert (seen[split.train] != true[split.train]).any()  # ...and not the identity
    again = training_labels(cfg, bank, split).cpu().numpy()
    other = training_labels(_cfg(synth_cache, **{"train.seed": 1}), bank, split).cpu().numpy()
    np.testing.assert_array_equal(again, seen)  # seeded
    assert (other != seen).any()
    plain = _cfg(synth_cache, variant="fdp")
    assert training_labels(plain, bank, split) is bank.labels  # no control: the real labels


def test_control_trains_only_on_permuted_labels_and_reports_true_test_labels(synth_cache, monkeypatch):
    cfg = _cfg(synth_cache)
    bank, split = _split(cfg)
    permuted = training_labels(cfg, bank, split)
    seen: list[torch.Tensor] = []
    real_loss_terms = train_mod.loss_terms

    def spy(out, labels, di, loss_cfg, model):
        seen.append(labels.clone())
        return real_loss_terms(out, labels, di, loss_cfg, model)

    monkeypatch.setattr(train_mod, "loss_terms", spy)
    res = run_fold(cfg, split.fold)
    assert len(seen) == cfg.train.steps
    differs = False
    for step, labels in enumerate(seen):  # what each step trained on: the permuted labels of its batch
        idx = torch.as_tensor(split.train[batch_indices(len(split.train), cfg.train.batch_size, cfg.train.seed, step)])
        assert torch.equal(labels, permuted[idx])
        differs |= not torch.equal(labels, bank.labels[idx])
    assert differs  # at least one batch's real labels were never shown
    np.testing.assert_array_equal(res.labels, bank.labels[torch.as_tensor(split.test)].cpu().numpy())
    assert res.subjects and set(res.subjects) == {split.fold}


def test_control_validates_on_permuted_labels(synth_cache, monkeypatch):
    cfg = _cfg(synth_cache, **{"train.selection": "early_stop_val", "train.val_subjects": 1, "train.eval_every": 2})
    bank, split = _split(cfg)
    permuted = training_labels(cfg, bank, split)
    got = []
    real = train_mod._val_score
    monkeypatch.setattr(train_mod, "_val_score",
                        lambda m, c, b, idx, d, labels=None: got.append(labels) or real(m, c, b, idx, d, labels))
    run_fold(cfg, split.fold)
    assert got and all(torch.equal(g, permuted) for g in got)  # never the bank's real labels


def test_single_frame_is_a_fold_of_the_same_split(synth_cache):
    from fdp.methods.single_frame import count

    cfg = _cfg(synth_cache, variant="single_frame")
    assert cfg.method == "single_frame"
    bank, split = _split(cfg)
    res = run_fold(cfg, split.fold)
    assert res.steps == 0 and res.di_mse is None and "logistic regression" in res.selection
    assert res.clip_ids == [bank.clip_ids[i] for i in split.test]
    np.testing.assert_array_equal(res.labels, bank.labels[torch.as_tensor(split.test)].cpu().numpy())
    assert len(res.preds) == len(split.test) and all(0 <= p < cfg.model.num_classes for p in res.preds)
    np.testing.assert_allclose(np.asarray(res.probs).sum(1), 1.0, atol=1e-6)
    # fitted numbers: 257 per class row (256 weights + intercept), 512 scaler statistics
    m = cfg.model.num_classes
    assert count(cfg) == 257 * m + 512
    assert res.n_params == 257 * len(set(bank.labels[torch.as_tensor(split.train)].tolist())) + 512


def test_runs_are_tagged_with_their_method_and_the_control(synth_cache):
    assert control_tags(_cfg(synth_cache)) == {"fdp.method": "network", "fdp.control": "shuffled_labels"}
    assert control_tags(_cfg(synth_cache, variant="single_frame")) == {"fdp.method": "single_frame"}
    assert control_tags(_cfg(synth_cache, variant="fdp")) == {"fdp.method": "network"}
