"""Sweep specs: validation (all mistakes, one line each), expansion into jobs, job keys, dry runs.
Every YAML in sweeps/ is parsed and dry-run, with and without --smoke."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli.run import run_cmd
from orchestrator.plan.jobs import expand, job_key
from orchestrator.run.dry_run import format_plan
from orchestrator.spec.sweep import SpecError, load_spec, parse_spec, short_keys

SWEEPS = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))


def _raw(**extra):
    return {"name": "t", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], **extra}


@pytest.fixture
def cache_env(synth_cache, monkeypatch):
    """FDP_CACHE_DIR pointing at the session's synthetic cache (4 subjects -> 4 LOSO folds)."""
    monkeypatch.setenv("FDP_CACHE_DIR", str(Path(synth_cache).parent))
    return synth_cache


@functools.lru_cache(maxsize=64)
def _params_only(model_json: str, precision: str, frames: int, crop: int) -> tuple[int, float, float]:
    """`fdp.memory._activation_fit` without its two forward passes: the model built (shapes only, on
    the meta device) and counted."""
    import torch

    from fdp.config import ModelConfig, from_dict
    from fdp.model import build_model, count_parameters

    with torch.device("meta"):
        return count_parameters(build_model(from_dict(ModelConfig, json.loads(model_json)))), 0.0, 0.0


@pytest.fixture
def built_not_measured(monkeypatch):
    """The dry run's memory estimate with every model of the file built and counted but its
    activations not measured (two forward passes per model at the paper's sizes, most of a dry
    run's time): the measurement is pinned by test_memory, the plan is what is checked here."""
    import fdp.memory

    monkeypatch.setattr(fdp.memory, "_activation_fit", _params_only)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
def test_every_sweep_file_dry_runs(path, smoke, cache_env, built_not_measured):
    args = [str(path), "--dry-run"] + (["--smoke"] if smoke else [])
    res = CliRunner().invoke(run_cmd, args)
    assert res.exit_code == 0, res.output
    spec = load_spec(path, smoke=smoke)
    plan = expand(spec)
    assert f"spec hash {spec.spec_hash}" in res.output
    if plan.complete:
        assert len(plan.jobs) == len(plan.configurations) * len({j.fold for j in plan.jobs})
        assert f"{len(plan.jobs)} job(s)" in res.output
    if smoke:
        assert spec.resources.gpus == 0 and all(c.cfg.train.device == "cpu" for c in plan.configurations)


def test_smoke_sweep_covers_two_variants_on_every_fold(cache_env):
    spec = load_spec(Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml")
    plan = expand(spec)
    assert len(spec.variants) >= 2 and spec.setting == "casme2/5"
    assert sorted({j.fold for j in plan.jobs}) == ["01", "02", "03", "04"]  # all LOSO folds
    assert len(plan.jobs) == 4 * len(spec.variants)
    smoke = expand(load_spec(Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml", smoke=True))
    assert sorted({j.fold for j in smoke.jobs}) == ["01", "02"]
    assert all(j.cfg.train.steps < spec.steps for j in smoke.jobs)


def test_all_mistakes_are_reported_one_line_each(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "name": "bad", "datset": "casme2", "setting": "samm/5", "variants": ["fdp", "no_dicc"],
        "grid": {"loss.lambda_dd": [1, 10]}, "overrides": {"train.steps": "many"}, "seeds": [0],
        "resources": {"cpus": 1, "gpu": 1}, "retries": -1,
    }))
    res = CliRunner().invoke(run_cmd, [str(bad), "--dry-run", "--set", "train.stepz=3"])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert lines == [
        f"error: {bad}: unknown key 'datset' (did you mean 'dataset'?)",
        f"error: {bad}: missing required key 'dataset'",
        f"error: {bad}: variants: unknown variant 'no_dicc' (did you mean 'no_dic'?); "
        "list them with `fdp-sweep list-variants`",
        f"error: {bad}: grid: unknown config key 'loss.lambda_dd' (did you mean 'loss.lambda_d'?)",
        f"error: {bad}: overrides: train.steps: expected an integer, got 'many'",
        f"error: {bad}: resources: unknown key 'gpu' (did you mean 'gpus'?)",
        f"error: {bad}: retries: expected a non-negative integer, got -1",
        "error: --set: unknown config key 'train.stepz' (did you mean 'train.steps'?)",
    ]


def test_more_validation_rules():
    cases = {
        "setting: 'samm/5' is a setting of samm, not of dataset 'casme2'": _raw(setting="samm/5"),
        "test_dataset: the cross protocol needs the dataset it tests on": _raw(protocol="cross", setting="cross/casme2"),
        "grid: train.seed: set it with the spec's `seeds:` key": _raw(grid={"train.seed": [1, 2]}),
        "grid: loss.lambda_d: expected a non-empty list of values, got 3": _raw(grid={"loss.lambda_d": 3}),
        "search: space: loss.lambda_d: a float parameter needs numbers low < high, got 10, 1":
            _raw(search={"space": {"loss.lambda_d": {"type": "float", "low": 10, "high": 1}}}),
        "smoke: model.encoder.dims: expected a list, got 5": _raw(smoke={"model.encoder.dims": 5}),
        "resources.gpus: expected a fraction in [0, 1] or a whole number of GPUs, got 1.5":
            _raw(resources={"gpus": 1.5}),
        "reference: 'no_dic' is not one of the sweep's variants (fdp)": _raw(reference="no_dic"),
        "reference: unknown variant 'fpd' (did you mean 'fdp'?); list them with `fdp-sweep list-variants`":
            _raw(reference="fpd"),
    }
    for line, raw in cases.items():
        with pytest.raises(SpecError) as e:
            parse_spec(raw, source="s.yaml")
        assert e.value.problems == [f"s.yaml: {line}"], line
    spec = parse_spec(_raw(protocol="cross", setting="cross/casme2", test_dataset="samm",
                           search={"space": {"loss.lambda_r": {"type": "float", "low": 0.01, "high": 10, "log": True}},
                                   "trials": 20, "sampler": "tpe"}))
    assert spec.search["sampler"] == "tpe"  # kept as data for the search command
    assert spec.test_dataset == "samm"
    # the reference of the paired comparisons: fdp unless named; a sweep without it compares nothing
    assert parse_spec(_raw()).reference == "fdp" and parse_spec(_raw(variants=["no_dic"])).reference == "fdp"
    assert parse_spec(_raw(variants=["fdp", "no_dic"], reference="no_dic")).reference == "no_dic"


def test_configurations_labels_and_layer_order():
    spec = parse_spec(_raw(variants=["fdp", "no_rank"], grid={"loss.lambda_d": [1, 10.0]}, seeds=[0, 1],
                           steps=30, overrides={"train.lr": 0.001},
                           smoke={"train.steps": 3}), sets={"train.lr": 0.002})
    from orchestrator.spec.sweep import configurations

    configs = configurations(spec)
    assert [c.label for c in configs] == [
        "fdp|lambda_d=1|seed0", "fdp|lambda_d=1|seed1", "fdp|lambda_d=10|seed0", "fdp|lambda_d=10|seed1",
        "no_rank|lambda_d=1|seed0", "no_rank|lambda_d=1|seed1", "no_rank|lambda_d=10|seed0", "no_rank|lambda_d=10|seed1"]
    c = configs[3]
    assert (c.cfg.loss.lambda_d, c.cfg.train.seed, c.cfg.train.lr) == (10.0, 1, 0.002)  # --set wins
    assert c.cfg.train.steps == 30  # `steps:`; no --smoke, no smoke block (overrides may not also set it)
    assert configs[4].cfg.model.use_rank is False and configs[4].cfg.loss.lambda_r == 0  # the variant diff
    smoke = configurations(parse_spec(spec.raw, smoke=True))
    assert smoke[0].cfg.train.steps == 3 and smoke[0].cfg.train.device == "cpu"
    assert short_keys(["model.dropout", "train.dropout", "loss.lambda_d"]) == {
        "model.dropout": "model.dropout", "train.dropout": "train.dropout", "loss.lambda_d": "lambda_d"}


def test_spec_hash_tracks_content_not_layout():
    a = parse_spec(_raw(grid={"loss.lambda_d": [1, 10]}, seeds=[0]))
    b = parse_spec(dict(reversed(list(_raw(grid={"loss.lambda_d": [1, 10]}, seeds=[0]).items()))))
    assert a.spec_hash == b.spec_hash
    assert parse_spec(a.raw, sets={"train.lr": 0.01}).spec_hash != a.spec_hash
    assert parse_spec(a.raw, smoke=True).spec_hash != a.spec_hash
    assert parse_spec({**a.raw, "steps": 9}).spec_hash != a.spec_hash


def test_job_keys_are_deterministic_and_order_independent(cache_env):
    one = expand(parse_spec(_raw(variants=["fdp", "no_dic"], grid={"loss.lambda_r": [0.1, 1.0], "train.lr": [1e-4]},
                                 overrides={"train.steps": 5, "train.batch_size": 4})))
    two = expand(parse_spec(_raw(variants=["no_dic", "fdp"], grid={"train.lr": [1e-4], "loss.lambda_r": [1.0, 0.1]},
                                 overrides={"train.batch_size": 4, "train.steps": 5})))
    assert len(one.jobs) == 2 * 2 * 4
    assert {j.key: j.label for j in one.jobs} == {j.key: j.label for j in two.jobs}
    assert len({j.key for j in one.jobs}) == len(one.jobs)
    job = one.jobs[0]
    assert job.label == "fdp|lambda_r=0.1|lr=0.0001|seed0|fold=01"  # grid keys sorted in labels
    fp = job.data.fingerprint
    assert job.key == job_key(job.cfg, "01", data=fp)
    assert job_key(job.cfg, "02", data=fp) != job.key
    # the data's content, not its path, is in the key: other data at the same path is another job
    from fdp.config import apply_overrides

    moved = apply_overrides(job.cfg, {"data.cache_dir": "/elsewhere/casme2-copy"})
    assert job_key(moved, "01", data=fp) == job.key != job_key(job.cfg, "01", data="0" * 16)


def test_configurations_that_resolve_alike_run_once(cache_env):
    # no_dic zeroes lambda_d whatever the grid says: both grid points are one configuration
    plan = expand(parse_spec(_raw(variants=["no_dic"], grid={"loss.lambda_d": [1, 10]})))
    assert [c.label for c in plan.configurations] == ["no_dic|lambda_d=1|seed0"]
    assert plan.duplicates == ["no_dic|lambda_d=10|seed0 resolves to the same config as no_dic|lambda_d=1|seed0; "
                               "run once"]


def test_dry_run_without_a_cache_shows_configurations(tmp_path, monkeypatch):
    monkeypatch.setenv("FDP_CACHE_DIR", str(tmp_path / "nothing"))
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(_raw(variants=["fdp", "no_rank"], resources={"cpus": 2, "gpus": 0.5})))
    res = CliRunner().invoke(run_cmd, [str(spec), "--dry-run"])
    assert res.exit_code == 0
    assert "warning: no prepared clip cache for casme2" in res.output and "showing configurations only" in res.output
    assert "   1  fdp|seed0" in res.output and "   2  no_rank|seed0" in res.output
    assert "resources: 2 cpu + 0.5 gpu per job; 2 configuration(s)" in res.output
    res = CliRunner().invoke(run_cmd, [str(spec)])  # a real run needs the cache: one line, exit 2
    assert res.exit_code == 2 and res.output.startswith("error: no prepared clip cache for casme2")


def test_dry_run_table_and_totals(cache_env, tmp_path):
    spec = parse_spec(_raw(variants=["fdp", "no_dic"], resources={"cpus": 1, "gpus": 0.25}, folds=["02", "04"]))
    plan = expand(spec)
    text = format_plan(plan, cluster_cpus=8, cluster_gpus=1)
    assert [j.label for j in plan.jobs] == ["fdp|seed0|fold=02", "fdp|seed0|fold=04", "no_dic|seed0|fold=02",
                                            "no_dic|seed0|fold=04"]
    assert "4 job(s) -> 4 cpu-slots and 1 gpu-slots in total" in text
    assert "parallel here: 4 job(s) at a time on 8 cpu(s) / 1 gpu(s)" in text
    bad = expand(parse_spec(_raw(folds=["99"])))
    assert bad.problems == ["folds: unknown fold(s) 99; known: 01, 02, 03, 04"]


# ---------------------------------------------------------------------------------------------
# several experiments in one spec (`experiments:`, issue #6)


def _multi(*items, **extra):
    return {"name": "m", "variants": ["fdp"], "experiments": list(items), **extra}


CASME2_5 = {"dataset": "casme2", "setting": "casme2/5"}
SAMM_3 = {"dataset": "samm", "setting": "samm/3", "seeds": [3, 4], "folds": 5}
C2S = {"dataset": "casme2", "setting": "cross/casme2", "protocol": "cross", "test_dataset": "samm"}
SYNTH = {"dataset": "casme2", "setting": "casme2/5", "protocol": "loso", "folds": 2, "seeds": [0]}


def test_experiments_list_parses_with_own_seeds_folds_and_labels():
    spec = parse_spec(_multi(CASME2_5, SAMM_3, C2S, seeds=[0, 1], folds=3, table=[4, 5, 8]))
    assert spec.multi and spec.table == "4,5,8"
    assert [e.key for e in spec.experiments] == ["casme2/5", "samm/3", "casme2->samm"]
    assert [(e.seeds, e.folds) for e in spec.experiments] == [([0, 1], 3), ([3, 4], 5), ([0, 1], 3)]
    cross = spec.experiments[2]
    assert (cross.dataset, cross.setting, cross.protocol, cross.test_dataset) == ("casme2", "cross/casme2",
                                                                                   "cross", "samm")
    from orchestrator.spec.sweep import configurations

    configs = configurations(spec)
    assert [c.label for c in configs] == [
        "casme2/5|fdp|seed0", "casme2/5|fdp|seed1", "samm/3|fdp|seed3", "samm/3|fdp|seed4",
        "casme2->samm|fdp|seed0", "casme2->samm|fdp|seed1"]
    assert [(c.cfg.data.dataset, c.cfg.data.setting, c.cfg.data.test_dataset) for c in configs[::2]] == [
        ("casme2", "casme2/5", ""), ("samm", "samm/3", ""), ("casme2", "cross/casme2", "samm")]
    # the single top-level form is unchanged: no prefix, the spec's own fields
    one = parse_spec(_raw())
    assert not one.multi and [e.key for e in one.experiments] == ["casme2/5"]
    assert [c.label for c in configurations(one)] == ["fdp|seed0"]


def test_experiment_mistakes_are_one_line_each_naming_the_key():
    raw = _multi(
        {"dataset": "casme2", "setting": "casme2/9"},
        {"dataset": "sam", "setting": "samm/5"},
        {"dataset": "casme2", "setting": "samm/5", "setings": 1},
        {"dataset": "casme2", "setting": "cross/casme2", "protocol": "cross"},
        {"dataset": "casme2", "setting": "casme2/5", "test_dataset": "samm", "seeds": [-1], "folds": 0},
        {"setting": "casme2/3", "protocol": "crossed"},
        "samm/5",
        dict(CASME2_5),
        dict(CASME2_5),
        dataset="casme2",
    )
    with pytest.raises(SpecError) as e:
        parse_spec(raw, source="s.yaml")
    from fdp.data.settings import SETTINGS

    known = ", ".join(SETTINGS)
    assert known.startswith("casme2/5, casme2/3, samm/5, samm/3, casme_sq/4, casme3/7, cross/casme2, cross/samm")
    assert e.value.problems == [
        "s.yaml: dataset: with `experiments:`, give dataset in each experiment",
        "s.yaml: experiments[0].setting: unknown class setting 'casme2/9' (did you mean 'casme2/5'?); "
        f"known: {known}",
        "s.yaml: experiments[1].dataset: unknown dataset 'sam' (did you mean 'samm'?); "
        "known: casme2, casme3, casme_sq, composite, fourd, lodo, mmew, samm, smic, smic_nir, smic_vis",
        "s.yaml: experiments[2]: unknown key 'setings' (did you mean 'setting'?)",
        "s.yaml: experiments[2].setting: 'samm/5' is a setting of samm, not of dataset 'casme2'",
        "s.yaml: experiments[3].test_dataset: the cross protocol needs the dataset it tests on",
        "s.yaml: experiments[4].test_dataset: only with protocol: cross (LOSO tests on the subjects of `dataset`)",
        "s.yaml: experiments[4].seeds: expected a non-empty list of non-negative integers, got [-1]",
        "s.yaml: experiments[4].folds: expected a positive integer (the first N folds) or a list of fold names, "
        "got 0",
        "s.yaml: experiments[5]: missing required key 'dataset'",
        "s.yaml: experiments[5].protocol: expected one of loso, cross, composite, leave-one-dataset-out, got 'crossed'",
        "s.yaml: experiments[6]: expected a mapping {dataset:, setting:, protocol:, test_dataset:, seeds:, folds:}, "
        "got 'samm/5'",
        "s.yaml: experiments[8]: the same experiment as experiments[7] (casme2/5); list each dataset/setting once",
    ]
    for bad, line in [([], "experiments: expected a non-empty list of mappings {dataset:, setting:, protocol:, "
                           "test_dataset:, seeds:, folds:}, got []"),
                      ("casme2/5", "experiments: expected a non-empty list of mappings {dataset:, setting:, "
                                   "protocol:, test_dataset:, seeds:, folds:}, got 'casme2/5'")]:
        with pytest.raises(SpecError) as e:
            parse_spec({"name": "m", "variants": ["fdp"], "experiments": bad}, source="s.yaml")
        assert e.value.problems == [f"s.yaml: {line}"]


def test_smoke_maps_every_experiment_onto_the_smoke_data_and_keeps_its_key():
    spec = parse_spec(_multi(CASME2_5, SAMM_3, C2S, smoke=dict(SYNTH)), smoke=True)
    assert [e.key for e in spec.experiments] == ["casme2/5", "samm/3", "casme2->samm"]
    assert all(e.runs_on == {"dataset": "casme2", "setting": "casme2/5", "protocol": "loso", "test_dataset": ""}
               and e.seeds == [0] and e.folds == 2 and e.smoke for e in spec.experiments)
    assert spec.experiments[2].test_dataset == "samm"  # declared, as tagged on the runs
    # smoke data that cannot replace a cross experiment's data: one line naming the experiment
    with pytest.raises(SpecError) as e:
        parse_spec(_multi(CASME2_5, C2S, smoke={"dataset": "casme2", "setting": "casme2/5"}), smoke=True,
                   source="s.yaml")
    assert e.value.problems == ["s.yaml: smoke: experiments[1] (casme2->samm): setting: the cross protocol uses "
                                "a cross/<dataset> setting, got 'casme2/5'"]
    from orchestrator.search.study import parse_search

    with pytest.raises(SpecError) as e:
        parse_search(parse_spec(_multi(CASME2_5, SAMM_3, search={"space": {"loss.lambda_d": {
            "type": "float", "low": 1, "high": 10}}}), source="s.yaml"))
    assert "s.yaml: search: experiments: a search tunes one dataset/setting, the spec lists 2; give dataset: " \
           "and setting: at the top level" in e.value.problems


def test_experiment_jobs_have_unique_keys_even_on_the_same_data(cache_env):
    # under --smoke all three experiments train on the same synthetic casme2/5: only the
    # experiment key in the job key keeps their jobs (and runs, checkpoints, resume) apart
    spec = parse_spec(_multi(CASME2_5, SAMM_3, C2S, variants=["fdp", "no_dic"], smoke={**SYNTH, "folds": 3}),
                      smoke=True)
    plan = expand(spec)
    assert plan.complete and not plan.duplicates
    assert len(plan.configurations) == 3 * 2 and len(plan.jobs) == 3 * 2 * 3
    assert len({j.key for j in plan.jobs}) == len(plan.jobs)
    assert len({j.config_label for j in plan.jobs}) == 6
    for j in plan.jobs:
        fp = j.data.fingerprint
        assert j.key == job_key(j.cfg, j.fold, j.experiment.key, data=fp) != job_key(j.cfg, j.fold, data=fp)
        assert j.label == f"{j.experiment.key}|{j.variant}|seed0|fold={j.fold}"
    assert {j.fold for j in plan.jobs} == {"01", "02", "03"}
    # without --smoke (own data, own seeds and folds): 2 seeds x 3 folds + 2 seeds x ... per experiment
    plan = expand(parse_spec(_multi(CASME2_5, {"dataset": "casme2", "setting": "casme2/3", "seeds": [7],
                                                "folds": ["02", "04"]}, seeds=[0, 1], folds=3)))
    assert [(j.experiment.key, j.seed, j.fold) for j in plan.jobs] == [
        ("casme2/5", 0, "01"), ("casme2/5", 0, "02"), ("casme2/5", 0, "03"),
        ("casme2/5", 1, "01"), ("casme2/5", 1, "02"), ("casme2/5", 1, "03"),
        ("casme2/3", 7, "02"), ("casme2/3", 7, "04")]
    # a single-form spec keeps the job keys it had before experiments existed
    single = expand(parse_spec(_raw(folds=1)))
    assert single.jobs[0].key == job_key(single.jobs[0].cfg, "01", data=single.jobs[0].data.fingerprint)


def test_dry_run_lists_each_experiment(cache_env, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(_multi(CASME2_5, SAMM_3, C2S, smoke=dict(SYNTH))))
    res = CliRunner().invoke(run_cmd, [str(path), "--dry-run", "--smoke"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].endswith("[smoke]: 3 experiment(s), 3 configuration(s), 6 job(s)")
    rows = [ln.split() for ln in lines[2:6]]
    assert rows == [
        ["[i]", "experiment", "dataset", "setting", "protocol", "test", "seeds", "folds", "jobs", "runs", "on",
         "(smoke)"],
        ["0", "casme2/5", "casme2", "casme2/5", "loso", "-", "1", "2", "2", "casme2/5", "on", "casme2"],
        ["1", "samm/3", "samm", "samm/3", "loso", "-", "1", "2", "2", "casme2/5", "on", "casme2"],
        ["2", "casme2->samm", "casme2", "cross/casme2", "cross", "samm", "1", "2", "2", "casme2/5", "on", "casme2"]]
    jobs = [ln.split()[1] for ln in lines[7:13]]
    assert jobs == ["casme2/5|fdp|seed0|fold=01", "casme2/5|fdp|seed0|fold=02", "samm/3|fdp|seed0|fold=01",
                    "samm/3|fdp|seed0|fold=02", "casme2->samm|fdp|seed0|fold=01", "casme2->samm|fdp|seed0|fold=02"]


def test_missing_cache_is_reported_per_experiment(cache_env, tmp_path):
    # the session cache holds casme2 only: the samm experiments have no folds, casme2's have
    plan = expand(parse_spec(_multi(CASME2_5, SAMM_3, {"dataset": "samm", "setting": "samm/5"})))
    assert not plan.complete
    assert [p.split(": no prepared clip cache for samm")[0] for p in plan.problems] == [
        "experiments[1] (samm/3)", "experiments[2] (samm/5)"]
    assert {j.experiment.key for j in plan.jobs} == {"casme2/5"} and len(plan.jobs) == 4
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(_multi(CASME2_5, SAMM_3)))
    res = CliRunner().invoke(run_cmd, [str(path)])  # a real run stops: one line per experiment
    assert res.exit_code == 2
    assert [ln.split(": no prepared")[0] for ln in res.output.strip().splitlines()] == [
        "error: experiments[1] (samm/3)"]


def test_more_folds_than_the_data_has_runs_all_and_says_so(cache_env):
    # the session cache has 4 subjects: `folds: 99` runs the 4, with a note instead of in silence
    plan = expand(parse_spec(_raw(folds=99)))
    assert plan.complete and sorted({j.fold for j in plan.jobs}) == ["01", "02", "03", "04"]
    assert plan.notes == ["folds: 99 asked, the data has 4: all 4 run"]
    listed = expand(parse_spec(_multi({**CASME2_5, "folds": 9})))
    assert listed.notes == ["experiments[0] (casme2/5): folds: 9 asked, the data has 4: all 4 run"]
    assert expand(parse_spec(_raw(folds=3))).notes == []  # a real limit says nothing
