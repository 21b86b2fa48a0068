"""The method registry (fdp.methods): every registered method runs a fold through the one fold
runner and the one worker, on the synthetic benchmark, and reports what it fitted; parameter
counts are exact; nothing outside the registry special-cases a method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fdp.config import ExperimentConfig, from_dict, key_dict, to_dict
from fdp.fold import FoldInputs, FoldResult, FoldSplit
from fdp.methods import METHODS, get_method
from fdp.runner import fold_inputs, fold_names, run, run_fold
from fdp.variants import VARIANTS, build_config
from orchestrator.cli.train import SMOKE_OVERRIDES

REPO = Path(__file__).resolve().parents[1]


def _first_variant(method: str) -> str:
    return next(v.name for v in VARIANTS.values() if v.method == method)


def _cfg(cache, variant: str, **over):
    o = {**SMOKE_OVERRIDES, "data.cache_dir": str(cache), "train.steps": 4, "compared.steps": 4,
         "train.log_every": 2, "train.batch_size": 4, "train.checkpoint_every": 0, **over}
    return build_config(variant, o)


def test_every_method_has_a_variant_and_every_variant_a_method():
    assert {v.method for v in VARIANTS.values()} == set(METHODS)
    for m in METHODS.values():
        assert m.paper and m.params_note


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_a_fold_through_the_worker(method, synth_cache, tmp_path):
    """The worker (orchestrator.run.worker.run_job, what every scheduled job runs) trains fold 1 of
    the method's first variant into a tracked run: the run's predictions are the fold runner's,
    clip for clip, and its `n_params` is what the method fitted."""
    from orchestrator.plan.jobs import Job, job_key
    from orchestrator.run.worker import JobPayload, run_job
    from orchestrator.spec.sweep import parse_spec
    from fdp.pooling import read_predictions
    from orchestrator.track.driver import SweepTracker

    cfg = _cfg(synth_cache, _first_variant(method))
    fold = fold_names(cfg)[0]
    direct = run_fold(cfg, fold)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker(uri, root=tmp_path)
    spec = parse_spec({"name": "methods", "dataset": "casme2", "setting": "casme2/5", "variants": [cfg.variant]})
    eid = tracker.experiment_id("methods")
    parent = tracker.open_parent(eid, spec)
    job = Job(job_key(cfg, fold), f"{cfg.variant}|fold={fold}", cfg.variant, fold, cfg.variant, 0, cfg)
    rid = tracker.create_child(eid, parent, job, "methods")
    out = run_job(JobPayload(job.key, job.label, job.config_label, fold, to_dict(cfg), rid, uri,
                             str(tmp_path / "ckpt.pt")))
    assert out.ok, out.error
    run = tracker.client.get_run(rid)
    assert run.data.tags["fdp.method"] == method
    logged = read_predictions(Path(run.info.artifact_uri.removeprefix("file://"), "predictions.csv").read_text())
    assert logged["clip_ids"] == direct.clip_ids and logged["preds"] == direct.preds
    assert run.data.metrics["n_params"] == direct.n_params > 0
    assert out.metrics["uf1"] == pytest.approx(direct.metrics["uf1"])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_methods_count_is_what_it_fits(method, synth_cache):
    """`Method.params(cfg)` (what list-variants prints) equals the fitted count when the training
    split holds every class."""
    cfg = _cfg(synth_cache, _first_variant(method))
    inputs = fold_inputs(cfg, fold_names(cfg)[0])
    classes = set(inputs.train_labels[torch.as_tensor(inputs.split.train)].tolist())
    assert len(classes) == inputs.cfg.model.num_classes  # the synthetic draw: all 5 classes in training
    assert run(inputs).n_params == get_method(cfg.method).params(inputs.cfg)


def test_single_frame_count_by_hand():
    cfg = build_config("single_frame", {"model.num_classes": 5})
    assert get_method("single_frame").params(cfg) == 5 * 257 + 512 == 1797
    two = build_config("single_frame", {"data.dataset": "casme2", "data.setting": "casme2/5"})
    two.model.num_classes = 2  # two classes: one row of weights (sklearn's binary form)
    assert get_method("single_frame").params(two) == 257 + 512


def test_a_variant_names_its_method_and_old_configs_read_back():
    assert build_config("single_frame").method == "single_frame" and build_config("fdp").method == "network"
    stored = to_dict(ExperimentConfig())
    stored.pop("method")
    stored["model"]["baseline"] = "single_frame"  # a config.yaml written before `method` was a key
    assert from_dict(ExperimentConfig, stored).method == "single_frame"


def test_job_keys_hash_the_method_where_it_was_named_before():
    """`method` enters a job key as the retired `model.baseline` did, so tracked jobs keep their keys
    (tests/data/sweep_keys.json pins them); an unused protocol probe leaves the key alone."""
    d = key_dict(build_config("single_frame"))
    assert d["model"]["baseline"] == "single_frame" and "method" not in d and "protocol_probe" not in d
    assert key_dict(build_config("fdp"))["model"]["baseline"] == ""
    probed = build_config("fdp", {"protocol_probe.select_on_test": ["acc"]})
    assert key_dict(probed)["protocol_probe"] == {"select_on_test": ["acc"], "every": 20}


def test_an_unknown_method_is_refused_in_one_line():
    from fdp.config import ConfigError

    with pytest.raises(ConfigError, match=r"^method: unknown method 'single_fram' \(did you mean 'single_frame'\?\)"):
        build_config("fdp", {"method": "single_fram"})


def test_the_runner_refuses_a_split_that_mixes_train_and_test(synth_cache):
    cfg = _cfg(synth_cache, "single_frame")
    inputs = fold_inputs(cfg, fold_names(cfg)[0])
    bad = FoldInputs(**{**inputs.__dict__, "split": FoldSplit("x", inputs.split.train, inputs.split.train[:2])})
    from fdp.fold import TrainingError

    with pytest.raises(TrainingError, match="test clips appear in the training set"):
        run(bad)


def test_a_fold_result_reads_back(synth_cache):
    cfg = _cfg(synth_cache, "single_frame")
    res = run_fold(cfg, fold_names(cfg)[0])
    back = FoldResult.from_json(res.to_json())
    assert back.preds == res.preds and back.n_params == res.n_params and back.test_selected == {}
    np.testing.assert_allclose(back.probs, res.probs)


def test_no_baseline_special_case_outside_the_registry():
    """Methods are dispatched through their registry: no code name (an attribute, a function, a
    key) carries the old special case outside fdp/config.py, which reads a stored config's old
    `model.baseline` key back as `method`. Prose about baselines (the MEGC2019 LBP-TOP baseline)
    is not a special case: comments, docstrings and other strings are not looked at."""
    import io
    import tokenize

    found = []
    for path in sorted([*(REPO / "fdp").rglob("*.py"), *(REPO / "orchestrator").rglob("*.py")]):
        if path.relative_to(REPO).as_posix() == "fdp/config.py":
            continue
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            # numpy's __cpu_baseline__ (an instruction-set level) is another library's name
            if tok.type == tokenize.NAME and "baseline" in tok.string.lower() and not tok.string.startswith("__"):
                found.append(f"{path.relative_to(REPO)}:{tok.start[0]}: {tok.string}")
    assert found == []


def test_list_methods_says_paper_input_and_exact_count():
    from click.testing import CliRunner

    from orchestrator.cli.main import main

    out = CliRunner().invoke(main, ["list-methods"]).output
    assert set(METHODS) == {line for line in out.splitlines() if not line.startswith(" ")}
    assert "params:   1,797 (" in out and "0.00" not in out  # small models in units
    assert "grey" in out.split("input of authors_code: ")[1].splitlines()[0]
