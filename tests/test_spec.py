"""Sweep specs: validation (all mistakes, one line each), expansion into jobs, job keys, dry runs.
Every YAML in sweeps/ is parsed and dry-run, with and without --smoke."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.commands_run import run_cmd
from orchestrator.jobs import expand, format_plan, job_key
from orchestrator.spec import SpecError, load_spec, parse_spec, short_keys

SWEEPS = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))


def _raw(**extra):
    return {"name": "t", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], **extra}


@pytest.fixture
def cache_env(synth_cache, monkeypatch):
    """FDP_CACHE_DIR pointing at the session's synthetic cache (4 subjects -> 4 LOSO folds)."""
    monkeypatch.setenv("FDP_CACHE_DIR", str(Path(synth_cache).parent))
    return synth_cache


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
def test_every_sweep_file_dry_runs(path, smoke, cache_env):
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


def test_configurations_labels_and_layer_order():
    spec = parse_spec(_raw(variants=["fdp", "no_rank"], grid={"loss.lambda_d": [1, 10.0]}, seeds=[0, 1],
                           steps=30, overrides={"train.lr": 0.001, "train.steps": 40},
                           smoke={"train.steps": 3}), sets={"train.lr": 0.002})
    from orchestrator.spec import configurations

    configs = configurations(spec)
    assert [c.label for c in configs] == [
        "fdp|lambda_d=1|seed0", "fdp|lambda_d=1|seed1", "fdp|lambda_d=10|seed0", "fdp|lambda_d=10|seed1",
        "no_rank|lambda_d=1|seed0", "no_rank|lambda_d=1|seed1", "no_rank|lambda_d=10|seed0", "no_rank|lambda_d=10|seed1"]
    c = configs[3]
    assert (c.cfg.loss.lambda_d, c.cfg.train.seed, c.cfg.train.lr) == (10.0, 1, 0.002)  # --set wins
    assert c.cfg.train.steps == 40  # overrides come after `steps:`; no --smoke, no smoke block
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
    assert job.label == "fdp|lambda_r=0.1|lr=0.0001|seed0|fold=01"  # grid keys sorted in labels and job.key == job_key(job.cfg, "01")
    assert job_key(job.cfg, "02") != job.key


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
