"""The compared methods (fdp.methods.ststnet, off_apexnet, lbp_top): the published architectures'
parameter counts and shapes, the trainer's determinism and its test-selection hook that changes
nothing, the SVM's outputs, and (integration) that each beats its shuffled-label control on the
synthetic benchmark, where only the motion carries the class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fdp.methods.fitting import TrainProfile, count_parameters, minmax_per_clip, train_net
from fdp.methods import lbp_top, off_apexnet, ststnet
from fdp.methods.lbp_top import fit_lbp_top
from fdp.methods.off_apexnet import OffApexNet, fit_off_apexnet
from fdp.methods.ststnet import STSTNet, fit_ststnet


@pytest.fixture
def one_thread():
    """Tiny networks run fastest on one thread (on a shared 2-core machine, much faster)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_ststnet_parameters_and_shape_at_28():
    """By hand, at 28 x 28: each stream's 3 x 3 conv on 3 channels has 27 weights + 1 bias per filter,
    28 x (3 + 5 + 8) = 448; batch norm has a scale and a shift per channel, 2 x 16 = 32; the padded
    conv gives 30 x 30, the 3 x 3 / 3 max-pool (pad 1) 10 x 10, the 2 x 2 average pool 5 x 5, so the
    classifier sees 16 x 5 x 5 = 400 inputs: 400 C + C. 3 classes: 448 + 32 + 1203 = 1683 (MEB's
    count); 5 classes: 448 + 32 + 2005 = 2485; without batch norm 1651 for 3 classes."""
    for classes, want in ((3, 1683), (5, 2485)):
        m = STSTNet(num_classes=classes)
        assert count_parameters(m) == want
        x = torch.zeros(4, 3, 28, 28)
        assert m.forward_features(x).shape == (4, 400) and m(x).shape == (4, classes)
    assert count_parameters(STSTNet(num_classes=3, batch_norm=False)) == 1651
    assert ststnet.parameter_count(3) == 1683


def test_off_apexnet_parameters_and_shape_at_28():
    """By hand: per stream conv 5 x 5 1 -> 6 (25 x 6 + 6 = 156) and 6 -> 16 (150 x 16 + 16 = 2416),
    two streams 5144; 'same' convs and two 2 x 2 pools leave 16 x 7 x 7 = 784 per stream, 1568
    together; FC 1568 -> 1024 (1,606,656), 1024 -> 1024 (1,049,600), 1024 -> C (1024 C + C).
    3 classes: 2,664,475; 5 classes: 2,666,525."""
    for classes, want in ((3, 2_664_475), (5, 2_666_525)):
        m = OffApexNet(num_classes=classes)
        assert count_parameters(m) == want
        x = torch.zeros(2, 2, 28, 28)
        assert m.forward_features(x).shape == (2, 1568) and m(x).shape == (2, classes)
        assert off_apexnet.parameter_count(classes) == want


def test_the_two_streams_see_one_flow_component_each():
    """Changing v changes only the vertical stream's features (the first 784 are u's)."""
    m = OffApexNet().eval()
    x = torch.rand(1, 2, 28, 28)
    y = x.clone()
    y[:, 1] = torch.rand(28, 28)
    a, b = m.forward_features(x), m.forward_features(y)
    assert torch.equal(a[:, :784], b[:, :784]) and not torch.equal(a[:, 784:], b[:, 784:])


def toy_flow(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, 28, 28) flow-like maps whose class is where a blob moves; labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(0, 0.3, (n, 3, 28, 28)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, c % 2, 4 + 6 * c:9 + 6 * c, 8:20] += 2.0
    return x, y


@pytest.mark.parametrize("fit", [fit_ststnet, fit_off_apexnet], ids=["ststnet", "off_apexnet"])
def test_last_step_predictions_are_bit_identical_with_and_without_test_evaluation(fit, one_thread):
    x, y = toy_flow(24, 3, seed=0)
    xt, _ = toy_flow(6, 3, seed=1)
    prof = TrainProfile(steps=6, batch_size=8, lr=1e-3, weight_decay=1e-3)
    seen = []
    plain = fit(x, y, xt, num_classes=3, profile=prof, seed=5)
    hooked = fit(x, y, xt, num_classes=3, profile=prof, seed=5, eval_every=2,
                 on_eval=lambda step, p: seen.append((step, p.shape)))
    assert seen == [(2, (6, 3)), (4, (6, 3)), (6, (6, 3))]
    assert np.array_equal(plain.probs, hooked.probs)
    np.testing.assert_allclose(plain.probs.sum(axis=1), 1.0, rtol=1e-6)
    assert plain.steps == 6 and plain.n_params == count_parameters(
        STSTNet(3) if fit is fit_ststnet else OffApexNet(3))
    assert plain.selection.startswith("model after the last step")
    other_seed = fit(x, y, xt, num_classes=3, profile=prof, seed=6)
    assert not np.array_equal(plain.probs, other_seed.probs)


def test_train_net_is_a_function_of_its_seed(one_thread):
    """Same seed and initial weights: the same predictions, whatever ran before in the process."""
    x, y = toy_flow(20, 2, seed=2)

    def run() -> np.ndarray:
        torch.manual_seed(0)
        model = STSTNet(num_classes=2)
        torch.rand(7)  # the caller's stream moves on; the training must not depend on it
        return train_net(model, minmax_per_clip(x), y, minmax_per_clip(x[:4]), steps=6, batch_size=8, lr=1e-3,
                         weight_decay=0.0, seed=1)

    a = run()
    torch.manual_seed(123)
    np.random.seed(7)
    assert np.array_equal(a, run())


def test_minmax_is_per_clip_and_channel():
    v = np.stack([np.stack([np.full((2, 2), 3.0), np.array([[0.0, 2.0], [4.0, 2.0]]), np.zeros((2, 2))])])
    out = minmax_per_clip(v)
    assert np.array_equal(out[0, 0], np.zeros((2, 2)))  # constant map -> 0
    assert np.array_equal(out[0, 1], np.array([[0.0, 0.5], [1.0, 0.5]]))


def test_lbp_top_svm_outputs():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 1125) * 0.5
    y = np.repeat(np.arange(3), 10)
    x = np.abs(centres[y] + rng.normal(0, 0.01, (30, 1125)))
    out = fit_lbp_top(x, y, centres, num_classes=3)
    assert out.probs.shape == (3, 3) and (out.probs.argmax(1) == [0, 1, 2]).all()
    assert out.n_params == 3 * 1125 + 3 == lbp_top.parameter_count(3) and out.steps == 0
    # classes 0 and 2 only among 5: one decision value; absent classes get probability 0
    two = fit_lbp_top(x[y != 1], y[y != 1], centres, num_classes=5)
    assert two.n_params == 1125 + 1
    assert (two.probs[:, [1, 3, 4]] == 0).all() and two.probs[0].argmax() == 0 and two.probs[2].argmax() == 2
    one = fit_lbp_top(x[y == 2], y[y == 2], centres, num_classes=3)
    assert (one.probs.argmax(1) == 2).all() and one.n_params == 0


@pytest.mark.integration
def test_flow_methods_and_lbp_top_beat_their_shuffled_control(tmp_path, one_thread):
    """LOSO over a small synthetic draw (4 subjects x 15 clips, 5 classes; only the change between
    frames carries the class): STSTNet on TV-L1 flow + strain and LBP-TOP + SVM each score a pooled
    UF1 well above the same method trained on shuffled labels (chance is 0.2)."""
    from fdp.data.cache import load_cache, prepare
    from fdp.data.synth import CLASSES, write_synthetic
    from fdp.features.store import load_features
    from fdp.metrics import pooled_metrics

    data = write_synthetic(tmp_path / "s", subjects=4, clips_per_subject=15, seed=1, size=64, frames_per_clip=12,
                           amplitude=0.12, difficulty=0.0)
    cache = load_cache(prepare("casme2", data, tmp_path / "cache", size=36, contact_sheet=False))
    y = np.array([CLASSES.index(c["emotion"]) for c in cache.clips])
    subjects = np.array([c["subject"] for c in cache.clips])
    feats = {"ststnet": load_features(cache, "flow").values, "lbp_top": load_features(cache, "lbp_top").values}
    prof = TrainProfile(steps=80, batch_size=32, lr=3e-3, weight_decay=1e-3)
    uf1 = {}
    for method, x in feats.items():
        for control in (False, True):
            preds = np.empty_like(y)
            for k, s in enumerate(np.unique(subjects)):
                test = subjects == s
                y_tr = y[~test]
                if control:  # the shuffled-label control: the training labels permuted within the fold
                    y_tr = np.random.default_rng(k).permutation(y_tr)
                if method == "ststnet":
                    out = fit_ststnet(x[~test], y_tr, x[test], num_classes=5, profile=prof, seed=0)
                else:
                    out = fit_lbp_top(x[~test], y_tr, x[test], num_classes=5)
                preds[test] = out.probs.argmax(1)
            uf1[method, control] = pooled_metrics(y, preds, 5)["uf1"]
    print({f"{m}{' shuffled' if c else ''}": round(v, 3) for (m, c), v in uf1.items()})
    for method in feats:
        assert uf1[method, False] >= uf1[method, True] + 0.15 and uf1[method, False] >= 0.3


# ---------------------------------------------------------------------------------------------
# through the method registry (fdp.methods): what the adapters give the fit functions and record


def _cfg(cache, variant: str, **over):
    from fdp.profiles import profile
    from fdp.variants import build_config

    return build_config(variant, {**profile("smoke"), "data.cache_dir": str(cache), "compared.steps": 5,
                                  "train.log_every": 2, **over})


def test_the_budget_comes_from_the_config_and_is_recorded():
    """Paper budget by default (MEB's epochs over the fold's training clips), the CPU profile under
    the smoke / laptop size profiles, `compared.steps` cutting either; the section enters the job
    key of a method that reads it only."""
    from fdp.config import key_dict
    from fdp.methods.fitting import budget, budget_steps
    from fdp.profiles import profile
    from fdp.variants import build_config
    from orchestrator.plan.jobs import job_key

    paper = build_config("ststnet")
    prof, words = budget(paper, ststnet, 436)
    assert (prof.steps, prof.batch_size, prof.lr, prof.weight_decay) == (500 * 14, 32, 5e-5, 1e-3)  # ceil(436/32) = 14
    assert words.startswith("budget paper (MEB's): 500 epochs x ceil(436 / 32) = 7,000 steps")
    assert budget(build_config("off_apexnet"), off_apexnet, 436)[0].steps == 3000 * 14
    assert budget_steps(paper, ststnet) == "500 ep"
    for name in ("smoke", "laptop"):
        cfg = build_config("off_apexnet", profile(name))
        assert cfg.compared.budget == "cpu" and budget(cfg, off_apexnet, 436)[0] == off_apexnet.CPU_PROFILE
    cut = build_config("ststnet", {**profile("smoke"), "compared.steps": 7})
    prof, words = budget(cut, ststnet, 30)
    assert prof.steps == 7 and prof.lr == ststnet.CPU_PROFILE.lr and "replaced by compared.steps = 7" in words
    # a network job's key is what it was before the section existed; a compared method's hashes it
    assert "compared" not in key_dict(build_config("fdp"), ()) and "compared" in key_dict(cut, ("compared",))
    assert job_key(build_config("fdp", profile("smoke")), "01") == job_key(
        build_config("fdp", {**profile("smoke"), "compared.budget": "paper"}), "01")
    assert job_key(cut, "01") != job_key(build_config("ststnet", {**profile("smoke"), "compared.steps": 8}), "01")


def test_a_fold_reads_the_feature_cache_and_the_folds_training_labels(synth_cache, tmp_path, monkeypatch):
    """lbp_top through the registry: the histograms are computed once per clip, by the first fold
    (a second fold, and a second sweep, read them); the fit sees the feature rows of the fold's
    training clips and the labels training may read -- the shuffled control's permutation included."""
    import shutil

    import fdp.methods.lbp_top as method
    from fdp.features import lbp_top as lbp_mod
    from fdp.features.store import load_features
    from fdp.runner import fold_inputs, fold_names, run

    cache = Path(shutil.copytree(synth_cache, tmp_path / "cache", ignore=shutil.ignore_patterns("features")))
    computed: list[int] = []
    real = lbp_mod.clip_lbp_top
    monkeypatch.setattr(lbp_mod, "clip_lbp_top", lambda c, i, p: computed.append(i) or real(c, i, p))
    seen = []
    real_fit = method.fit_lbp_top
    monkeypatch.setattr(method, "fit_lbp_top", lambda *a, **k: seen.append(a) or real_fit(*a, **k))
    for shuffle in (False, True):
        cfg = _cfg(cache, "lbp_top", **{"train.shuffle_labels": shuffle})
        for fold in fold_names(cfg)[:2]:
            inputs = fold_inputs(cfg, fold)
            res = run(inputs)
            x_tr, y_tr, x_te = seen[-1]
            rows = inputs.bank.clip_indices
            values = load_features(inputs.cache, "lbp_top").values
            assert np.array_equal(x_tr, values[rows[inputs.split.train]])
            assert np.array_equal(x_te, values[rows[inputs.split.test]])
            assert np.array_equal(y_tr, inputs.train_labels[torch.as_tensor(inputs.split.train)].numpy())
            assert shuffle == (not np.array_equal(y_tr, inputs.bank.labels[torch.as_tensor(inputs.split.train)].numpy()))
            assert res.n_params == 5 * 1125 + 5 and res.steps == 0
            assert res.selection.startswith("none: linear SVM (C=1.0, fixed)")
    assert sorted(computed) == list(range(20))  # once per clip of the cache, whatever ran after


def test_a_small_network_fold_records_both_protocols_from_one_training(synth_cache):
    """ststnet through the registry: the honest predictions are bit-identical with and without the
    test-selected record; the record holds every `every` steps and the last one (the honest step is
    a candidate); the result says what was fitted, the budget and the apex rule."""
    from fdp.runner import fold_names, run_fold

    cfg = _cfg(synth_cache, "ststnet")
    fold = fold_names(cfg)[0]
    plain = run_fold(cfg, fold)
    probed = run_fold(_cfg(synth_cache, "ststnet", **{"protocol_probe.select_on_test": ["acc", "uf1"],
                                                      "protocol_probe.every": 2}), fold)
    assert np.array_equal(np.asarray(plain.probs), np.asarray(probed.probs)) and plain.curves == probed.curves
    assert plain.test_selected == {}
    rec = probed.test_selected
    assert [c[0] for c in rec["curve"]] == [2, 4, 5] and set(rec["by"]) == {"acc", "uf1"}
    assert rec["curve"][-1][1:] == pytest.approx([plain.metrics["acc"], plain.metrics["uf1"]])
    assert plain.steps == 5 and plain.n_params == 2485 and [s for s, _ in plain.curves["loss"]] == [2, 4, 5]
    assert "budget cpu: the method's CPU profile, 300 steps, replaced by compared.steps = 5" in plain.selection
    assert plain.selection.startswith("model after the last step (5 steps, fixed)")
    assert "apex: annotated for 20 clips" in plain.selection  # the synthetic draw annotates every apex


@pytest.mark.integration
def test_flow_methods_beat_their_shuffled_control_through_the_registry(tmp_path, one_thread):
    """The same draw as above (only the motion carries the class), each LOSO fold through the fold
    runner and the registered variants at the laptop profile (the CPU budget, cut to 100 steps):
    STSTNet and OFF-ApexNet each score well above their shuffled-label control (chance is 0.2)."""
    from fdp.data.cache import prepare
    from fdp.data.synth import write_synthetic
    from fdp.metrics import pooled_metrics
    from fdp.profiles import profile
    from fdp.runner import fold_names, run_fold
    from fdp.variants import build_config

    data = write_synthetic(tmp_path / "s", subjects=4, clips_per_subject=10, seed=1, size=64, frames_per_clip=12,
                           amplitude=0.12, difficulty=0.0)
    cache = prepare("casme2", data, tmp_path / "cache", size=36, contact_sheet=False)
    uf1 = {}
    for variant, over in (("ststnet", {}), ("ststnet_shuffled", {}), ("off_apexnet", {}),
                          ("off_apexnet", {"train.shuffle_labels": True})):
        cfg = build_config(variant, {**profile("laptop"), "data.cache_dir": str(cache), "compared.steps": 100, **over})
        labels, preds = [], []
        for fold in fold_names(cfg):
            res = run_fold(cfg, fold)
            labels += res.labels
            preds += res.preds
        uf1[cfg.method, cfg.train.shuffle_labels] = pooled_metrics(labels, preds, 5)["uf1"]
    print({f"{m}{' shuffled' if c else ''}": round(v, 3) for (m, c), v in uf1.items()})
    for method in ("ststnet", "off_apexnet"):
        assert uf1[method, False] >= uf1[method, True] + 0.15 and uf1[method, False] >= 0.3
