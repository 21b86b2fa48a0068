"""The fold trainer: determinism, resume, the test subject never reaching training, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fdp.config import ConfigError
from fdp.model import build_model
from fdp.fold import FoldResult, TrainingError, loso_splits, with_validation
from fdp.runner import fold_names, load_bank, make_split, run_fold
from fdp.train import batch_indices, evaluate, train_fold, train_step
from fdp.variants import build_config
from orchestrator.cli.train import SMOKE_OVERRIDES


def _cfg(cache, **over):
    o = dict(SMOKE_OVERRIDES)
    o.update({"data.cache_dir": str(cache), "train.steps": 6, "train.log_every": 1, "train.batch_size": 4,
              "train.checkpoint_every": 3})
    o.update(over)
    return build_config("fdp", o)


def test_loso_splits_never_share_a_subject():
    subjects = ["a", "a", "b", "c", "c", "c", "d"]
    splits = loso_splits(subjects)
    assert [s.fold for s in splits] == ["a", "b", "c", "d"]
    for s in splits:
        subj = np.asarray(subjects)
        assert set(subj[s.test]) == {s.fold}
        assert s.fold not in set(subj[s.train])
        assert len(s.train) + len(s.test) == len(subjects)


def test_validation_subjects_come_from_training_subjects():
    subjects = [s for s in "aabbccddeeff"]
    for split in loso_splits(subjects):
        v = with_validation(split, subjects, 2, seed=1)
        subj = np.asarray(subjects)
        val_subj = set(subj[v.val])
        assert len(val_subj) == 2 and split.fold not in val_subj
        assert not val_subj & set(subj[v.train])
        np.testing.assert_array_equal(v.test, split.test)


def test_batch_indices_cover_every_clip_each_epoch():
    seen = np.concatenate([batch_indices(10, 5, seed=3, step=s) for s in range(2)])
    assert sorted(seen.tolist()) == list(range(10))
    np.testing.assert_array_equal(batch_indices(10, 4, 3, 7), batch_indices(10, 4, 3, 7))


def test_same_seed_same_predictions(synth_cache):
    cfg = _cfg(synth_cache)
    fold = fold_names(cfg)[0]
    a, b = run_fold(cfg, fold), run_fold(cfg, fold)
    assert a.probs == b.probs and a.preds == b.preds and a.curves == b.curves
    c = run_fold(_cfg(synth_cache, **{"train.seed": 1}), fold)
    assert c.probs != a.probs


def test_resume_from_checkpoint_matches_uninterrupted_run(synth_cache, tmp_path):
    cfg = _cfg(synth_cache)
    fold = fold_names(cfg)[0]
    full = run_fold(cfg, fold)

    class Killed(Exception):
        pass

    def die_at_5(step, terms):
        if step == 5:  # after the checkpoint of step 3, before the end
            raise Killed

    ckpt = tmp_path / "job.pt"
    with pytest.raises(Killed):
        run_fold(cfg, fold, callback=die_at_5, checkpoint_path=ckpt)
    state = torch.load(ckpt, weights_only=True)  # checkpoints load with weights_only=True
    assert state["step"] == 3
    resumed = run_fold(cfg, fold, checkpoint_path=ckpt)
    assert resumed.probs == full.probs and resumed.di_mse == full.di_mse
    assert resumed.curves == full.curves


def test_test_subject_never_enters_training(synth_cache):
    """Poison every frame of the test subject: if any of them reached a training step, the
    per-step training losses would change. They must be identical, step for step."""
    cfg = _cfg(synth_cache)
    bank, sel = load_bank(cfg)
    fold = fold_names(cfg)[1]
    split = make_split(cfg, list(sel.subjects), fold)
    clean = train_fold(cfg, split, bank)

    poisoned = _poisoned_copy(bank, split.test)
    dirty = train_fold(cfg, split, poisoned)
    assert clean.curves == dirty.curves  # training saw exactly the same data
    assert clean.probs != dirty.probs  # but the test inputs did change


def _poisoned_copy(bank, test_idx):
    import copy

    b = copy.copy(bank)
    b.frames = bank.frames.clone()
    starts, lengths = bank.start[test_idx], bank.length[test_idx]
    for s, n in zip(starts.tolist(), lengths.tolist()):
        b.frames[s:s + n] = 255 - b.frames[s:s + n]  # inverted images: a very different clip
    return b


def test_non_finite_loss_names_step_and_term(synth_cache):
    cfg = _cfg(synth_cache, **{"train.lr": 1e12, "train.steps": 20})
    with pytest.raises(TrainingError, match=r"step \d+: loss term '\w+' is (nan|inf|-inf)"):
        run_fold(cfg, fold_names(cfg)[0])


def test_fold_result_roundtrip_and_fields(synth_cache):
    cfg = _cfg(synth_cache)
    res = run_fold(cfg, fold_names(cfg)[0])
    assert res.selection.startswith("model after the last step (6)")
    assert set(res.subjects) == {res.fold}
    assert len(res.labels) == len(res.preds) == len(res.probs) == len(res.di_mse) == len(res.clip_ids)
    assert np.allclose(np.sum(res.probs, axis=1), 1, atol=1e-5)
    assert set(res.curves) == {"mer", "dic", "rank", "total"} and len(res.curves["mer"]) == 6
    assert res.examples["frames"].dtype == np.uint8 and res.examples["gt_di"].shape[1:] == (1, 64, 64)
    back = FoldResult.from_json(res.to_json())
    assert back.probs == res.probs and back.curves == res.curves and back.metrics == res.metrics


def test_early_stopping_uses_validation_subjects(synth_cache):
    cfg = _cfg(synth_cache, **{"train.selection": "early_stop_val", "train.val_subjects": 1,
                                "train.eval_every": 2, "train.patience": 1})
    res = run_fold(cfg, fold_names(cfg)[0])
    assert res.selection.startswith("early stopping on 1 validation subjects")
    assert "val_score" in res.curves


def test_no_mer_variant_reports_only_di(synth_cache):
    o = dict(SMOKE_OVERRIDES)
    o.update({"data.cache_dir": str(synth_cache), "train.steps": 2})
    cfg = build_config("no_mer", o)
    res = run_fold(cfg, fold_names(cfg)[0])
    assert res.preds is None and set(res.metrics) == {"di_mse"}


def test_train_cli_out_keeps_finished_folds_and_resumes(synth_cache, tmp_path):
    from click.testing import CliRunner

    from orchestrator.cli.train import train_cmd

    out = tmp_path / "out"
    argv = ["--smoke", "--cache", str(synth_cache), "--folds", "2", "--steps", "6", "--set", "train.batch_size=4",
            "--set", "train.checkpoint_every=3", "--out", str(out)]
    first = CliRunner().invoke(train_cmd, argv)
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "fold-01.json", "fold-02.json"]  # no checkpoints left
    saved = FoldResult.from_json((out / "fold-02.json").read_text())
    assert saved.fold == "02" and len(saved.preds) == 5 and saved.steps == 6
    assert "train loss, last 10% of steps: mer=" in first.output
    pooled = [ln for ln in first.output.splitlines() if ln.startswith("pooled over 2 folds")]
    assert len(pooled) == 1

    # fold 02 killed at step 5, after its checkpoint of step 3: the rerun reads fold 01 back, resumes 02
    (out / "fold-02.json").unlink()
    cfg = _cfg(synth_cache, **{"train.batch_size": 4})

    def die_at_5(step, terms):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fold(cfg, "02", callback=die_at_5, checkpoint_path=out / "fold-02.ckpt")
    again = CliRunner().invoke(train_cmd, argv)
    assert again.exit_code == 0, again.output
    assert f"[read back from {out / 'fold-01.json'}]" in again.output
    resumed = FoldResult.from_json((out / "fold-02.json").read_text())
    assert resumed.probs == saved.probs and resumed.curves == saved.curves
    assert not (out / "fold-02.ckpt").exists()
    assert pooled[0].split("  [")[0] in again.output  # same pooled metrics

    # another configuration into the same folder: refused, nothing written
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = CliRunner().invoke(train_cmd, [a if a != "6" else "7" for a in argv])
    assert other.exit_code == 2
    assert f"error: {out / 'config.json'}: holds results of another configuration (train.steps: 6 there, 7 now)" \
        in other.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cache_of_another_frame_size_is_refused(synth_cache):
    """data.aligned_size is the side of the cached frames the config was written for: a cache of
    another size (a crop of it sees another scale of the face) is one line naming both sizes."""
    cfg = _cfg(synth_cache, **{"data.aligned_size": 80, "data.crop": 64})
    line = (f"data.aligned_size=80: the cache {synth_cache} holds 72x72 frames; prepare it at 80 "
            "or set data.aligned_size=72")
    with pytest.raises(ConfigError) as e:
        load_bank(cfg)
    assert str(e.value) == line
    with pytest.raises(ConfigError) as e:
        run_fold(cfg, fold_names(cfg)[0])
    assert str(e.value) == line
    assert load_bank(_cfg(synth_cache))[0].size == 72  # the default matches the cache


def test_evaluation_is_deterministic_unaugmented_and_in_eval_mode(synth_cache):
    """`evaluate` on a model left in train mode (BN statistics moved by two steps, dropout 0.5):
    two calls under different global seeds give identical probabilities and DI errors, no
    parameter or BN buffer changes, every module runs in eval mode, the inputs are exactly the
    centre crops of the uniformly spaced frames (no offset jitter, no flip), and the batch size
    does not change a prediction (BN uses its running statistics, not the batch's)."""
    cfg = _cfg(synth_cache, **{"model.dropout": 0.5, "train.eval_batch_size": 2})
    bank, sel = load_bank(cfg)
    split = make_split(cfg, list(sel.subjects), fold_names(cfg)[0])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step in range(2):
        train_step(model, model, opt, cfg, bank, split.train, step)
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert any(not torch.all(m.running_var == 1) for m in bn)  # the statistics are not the initial ones
    before = {k: v.clone() for k, v in model.state_dict().items()}

    seen, modes = [], []

    def spy(module, args):
        seen.append(args[0].clone())
        modes.append(not any(m.training for m in module.modules()))

    hook = model.register_forward_pre_hook(spy)
    torch.manual_seed(1)
    a = evaluate(model, cfg, bank, split.test, bank.device)
    torch.manual_seed(2)
    b = evaluate(model, cfg, bank, split.test, bank.device)
    hook.remove()

    assert np.array_equal(a["probs"], b["probs"]) and np.array_equal(a["di_mse"], b["di_mse"])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats, counters, weights
    assert modes and all(modes) and not model.training

    # the clips the model saw: frame floor((k + 0.5) L / t) of each test clip, centre 64x64 crop
    t, crop = cfg.model.frames, cfg.data.crop
    o = (bank.size - crop) // 2
    first = torch.cat(seen[:len(seen) // 2])  # the first evaluation's batches, in clip order
    assert first.shape[0] == len(split.test)
    for j, i in enumerate(split.test.tolist()):
        n, s0 = int(bank.length[i]), int(bank.start[i])
        rows = [s0 + int((k + 0.5) * n // t) for k in range(t)]
        expected = bank.frames[rows][:, :, o:o + crop, o:o + crop].float() / 255.0
        assert torch.equal(first[j], expected), f"test clip {j} was augmented"

    whole = evaluate(model, _cfg(synth_cache, **{"model.dropout": 0.5, "train.eval_batch_size": 64}), bank,
                     split.test, bank.device)
    np.testing.assert_allclose(whole["probs"], a["probs"], rtol=0, atol=1e-5)
