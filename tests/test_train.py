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


@pytest.fixture(scope="module")
def first_fold(synth_cache):
    """(config, fold, result) of the first fold at `_cfg`'s sizes, run once for the tests that
    compare another run of it with this one or read its fields."""
    cfg = _cfg(synth_cache)
    fold = fold_names(cfg)[0]
    return cfg, fold, run_fold(cfg, fold)


def test_same_seed_same_predictions(synth_cache, first_fold):
    cfg, fold, a = first_fold
    b = run_fold(cfg, fold)
    assert a.probs == b.probs and a.preds == b.preds and a.curves == b.curves
    c = run_fold(_cfg(synth_cache, **{"train.seed": 1}), fold)
    assert c.probs != a.probs


def test_resume_from_checkpoint_matches_uninterrupted_run(first_fold, tmp_path):
    cfg, fold, full = first_fold

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


def test_fold_result_roundtrip_and_fields(first_fold):
    res = first_fold[2]
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


def _store(root):
    from orchestrator.track.driver import SweepTracker

    tracker = SweepTracker(f"sqlite:///{root / 'mlflow.db'}", root)
    exp = tracker.client.get_experiment_by_name("train").experiment_id
    return tracker, exp, lambda: {r.data.tags["fdp.fold"]: r for r in tracker.search(exp, "tags.`fdp.role` = 'job'")}


def test_train_cli_runs_its_folds_as_a_sweep_and_resumes(synth_cache, tmp_path, monkeypatch):
    """`train` is a sweep of its own, run in this process: one MLflow run per fold under a parent
    with the pooled metrics. Ctrl-C in fold 02 after its checkpoint of step 2: the re-run skips
    fold 01 (finished), continues fold 02 in its run from step 2 to the uninterrupted result, and
    `summarize` reads the parent."""
    import fdp.runner
    from click.testing import CliRunner

    from fdp.pooling import pool_predictions
    from orchestrator.cli.train import train_cmd
    from orchestrator.report.summarize import render_summary

    out = tmp_path / "out"
    argv = ["--smoke", "--cache", str(synth_cache), "--folds", "2", "--steps", "4", "--set", "train.batch_size=4",
            "--set", "train.checkpoint_every=2", "--set", "train.log_every=1", "--out", str(out)]
    real = fdp.runner.run_fold

    def interrupted(cfg, fold, callback=None, checkpoint_path=None):
        def on_step(step, terms):
            callback(step, terms)
            if fold == "02" and step == 3:
                raise KeyboardInterrupt
        return real(cfg, fold, callback=on_step, checkpoint_path=checkpoint_path)

    monkeypatch.setattr(fdp.runner, "run_fold", interrupted)
    first = CliRunner().invoke(train_cmd, argv)
    assert first.exit_code == 1 and "Aborted!" in first.stderr, first.output  # click's answer to Ctrl-C
    assert "fdp|seed0|fold=02: step 3/4 mer=" in first.stderr  # the running fold's steps, here
    tracker, exp, job_runs = _store(out)
    runs = job_runs()
    assert {f: r.info.status for f, r in runs.items()} == {"01": "FINISHED", "02": "RUNNING"}
    ckpt = out / ".cache" / "checkpoints" / "train" / f"{runs['02'].data.tags['fdp.job_key']}.pt"
    assert torch.load(ckpt, weights_only=True)["step"] == 2

    monkeypatch.setattr(fdp.runner, "run_fold", real)
    again = CliRunner().invoke(train_cmd, argv)
    assert again.exit_code == 0, again.output
    lines = again.stdout.splitlines()
    assert lines[0].startswith("fold 01: acc=") and lines[0].endswith("  [finished earlier]")
    assert lines[1].startswith("fold 02: acc=") and "train loss, last 10% of steps: mer=" in lines[1]
    assert lines[2].startswith("pooled over 2 folds (10 clips): acc=")
    (parent,) = tracker.search(exp, "tags.`fdp.role` = 'parent'")
    assert lines[3] == f"recorded in sqlite:///{out / 'mlflow.db'}: experiment 'train', parent run " \
                       f"{parent.info.run_id} (resumed)"
    after = job_runs()
    assert {f: r.info.run_id for f, r in after.items()} == {f: r.info.run_id for f, r in runs.items()}
    assert after["02"].info.status == "FINISHED" and after["02"].data.tags["fdp.resumed_from_step"] == "2"
    assert not ckpt.exists()
    resumed = FoldResult.from_json(tracker.artifact_text(after["02"].info.run_id, "fold_result.json"))
    full = run_fold(_cfg(synth_cache, **{"train.steps": 4, "train.checkpoint_every": 2}), "02")
    assert resumed.probs == full.probs and resumed.curves == full.curves

    # the parent's pooled metrics are those of the two runs' predictions, and the tables read them
    pooled = pool_predictions([tracker.predictions(after[f].info.run_id) for f in ("01", "02")])
    assert parent.data.metrics["fdp/seed0/uf1"] == pooled["uf1"] and f"uf1={pooled['uf1']:.4f}" in lines[2]
    table, _ = render_summary(4, f"sqlite:///{out / 'mlflow.db'}", sweep=["train"], include_smoke=True)
    row = next(ln for ln in table.splitlines() if ln.startswith("| FDP (ours)"))
    assert f"| {100 * pooled['acc']:.2f} [" in row and f"| {100 * pooled['uf1']:.2f} [" in row


def test_train_jobs_are_those_of_the_same_sweep_file(synth_cache, tmp_path):
    """The keys of `train`'s jobs are those a sweep file with the same content gets (under any
    name); another configuration is another sweep instance (spec hash) with keys of its own, so
    its folds never read or pool another's runs."""
    from orchestrator.cli.train import train_spec
    from orchestrator.plan.jobs import expand
    from orchestrator.spec.sweep import load_spec

    sets = {"train.batch_size": 4}
    spec = train_spec("casme2", "casme2/5", "fdp", str(synth_cache), max_folds=2, steps=6, sets=sets, smoke=True)
    (tmp_path / "same.yaml").write_text(
        f"name: another\ndataset: casme2\nsetting: casme2/5\nvariants: [fdp]\nfolds: 2\n"
        f"overrides: {{data.cache_dir: {synth_cache}}}\nsmoke: {{profile: smoke, train.steps: 6}}\n")
    keys = [j.key for j in expand(spec).jobs]
    assert len(keys) == 2 and keys == [j.key for j in expand(load_spec(tmp_path / "same.yaml", sets, True)).jobs]
    assert expand(spec).jobs[0].cfg.train.steps == 6 and expand(spec).jobs[0].cfg.model.mer_hidden == 64

    other = train_spec("casme2", "casme2/5", "fdp", str(synth_cache), max_folds=2, steps=7, sets=sets, smoke=True)
    assert other.spec_hash != spec.spec_hash and not set(keys) & {j.key for j in expand(other).jobs}
    # without --smoke the step budget is the spec's own `steps:`
    assert train_spec("casme2", "casme2/5", "fdp", str(synth_cache), steps=6).raw["steps"] == 6


def test_train_cli_a_failed_fold_is_a_failed_run_and_one_error_line(synth_cache, tmp_path, monkeypatch):
    """A fold that diverges is a failed job, as in a sweep: exit 1, one error line with the
    reason (the last line on stderr), and its run in the project's store FAILED with that reason.
    Re-running tries it again in the same run."""
    import re

    from click.testing import CliRunner

    from orchestrator.cli.train import train_cmd

    monkeypatch.setenv("FDP_PROJECT_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    argv = ["--smoke", "--cache", str(synth_cache), "--fold", "01", "--steps", "4", "--set", "train.batch_size=2",
            "--set", "train.lr=1e10"]
    res = CliRunner().invoke(train_cmd, argv)
    assert res.exit_code == 1, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and res.stderr.splitlines()[-1] == errors[0]
    reason = errors[0].removeprefix("error: fold 01 failed: ")
    assert re.fullmatch(r"TrainingError: fold 01: step \d+: loss term '(mer|dic|rank|total)' is (nan|inf|-inf)",
                        reason), errors[0]
    _, _, job_runs = _store(tmp_path)
    run = job_runs()["01"]
    assert run.info.status == "FAILED" and run.data.tags["fdp.error"] == reason

    # the same command again tries the fold again, in its run; a bug shows its traceback above the line
    import fdp.runner

    def buggy(cfg, fold, callback=None, checkpoint_path=None):
        return {}["no such key"]

    monkeypatch.setattr(fdp.runner, "run_fold", buggy)
    again = CliRunner().invoke(train_cmd, argv)
    assert again.exit_code == 1, again.output
    lines = again.stderr.splitlines()
    assert lines[-1] == "error: fold 01 failed: KeyError: 'no such key'"
    tb = lines.index("Traceback (most recent call last):")
    assert "in buggy" in "\n".join(lines[tb:-1]) and lines[-2] == "KeyError: 'no such key'"
    rerun = job_runs()["01"]
    assert rerun.info.run_id == run.info.run_id and rerun.data.tags["fdp.error"] == "KeyError: 'no such key'"


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
