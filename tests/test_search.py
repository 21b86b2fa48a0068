"""Optuna search: the holdout subjects never reach the objective, pruning works on real folds.

Honesty is proved two ways (docs/search.md):
* in-process: the objective folds of a configuration run on a cache whose holdout subjects are
  poisoned (noise frames, rotated labels) behind a bank that raises if a holdout clip is ever
  batched, and give exactly the values of the clean cache;
* end to end: a whole search on Ray runs on the poisoned cache; every fold run in MLflow trained
  and validated on search subjects only, and its values equal the clean in-process ones.
"""

from __future__ import annotations

import io
import json
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
import torch
from click.testing import CliRunner
from fixtures_runs import TINY

from fdp.objective import ObjectiveError, SubjectSplit, fold_value, inner_split, objective_fold, split_subjects
from orchestrator.search.study import (SearchError, SearchOptions, best_overrides, decode_params, encode_params, parse_search, reported_subjects, resolve_from_search, run_search, suggest)
from orchestrator.plan.jobs import expand
from orchestrator.spec.sweep import SpecError, parse_spec

HOLDOUT = ["03", "06"]  # the subjects a table would report
NO_CKPT = {**TINY, "train.checkpoint_every": 0}  # in-process objective folds resume nothing


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """(clean, poisoned) caches of 8 synthetic subjects x 4 clips; in the poisoned one the
    holdout subjects' frames are noise and their emotions rotated to another class."""
    from fdp.data.cache import prepare
    from fdp.data.synth import CLASSES, write_synthetic

    root = tmp_path_factory.mktemp("search")
    data = write_synthetic(root / "data", subjects=8, clips_per_subject=4, seed=0)
    clean = prepare("casme2", data, out_dir=root / "cache", contact_sheet=False)
    poisoned = root / "poisoned"
    shutil.copytree(clean, poisoned)
    index = json.loads((poisoned / "index.json").read_text())
    frames = np.load(poisoned / "frames.npy", mmap_mode="r+")
    rng = np.random.default_rng(1)
    touched = 0
    for c in index["clips"]:
        if c["subject"] in HOLDOUT:
            span = slice(c["start"], c["start"] + c["length"])
            frames[span] = rng.integers(0, 256, frames[span].shape, dtype=np.uint8)
            c["emotion"] = CLASSES[(CLASSES.index(c["emotion"]) + 1) % len(CLASSES)]
            touched += 1
    frames.flush()
    del frames
    (poisoned / "index.json").write_text(json.dumps(index))
    assert touched == 8
    return clean, poisoned


def _raw(cache: Path, **search) -> dict:
    block = {"space": {"train.lr": {"type": "float", "low": 1e-9, "high": 1.0, "log": True}},
             "holdout": list(HOLDOUT), "metric": "nll", "trials": 2, "parallel": 1, "sampler": "tpe",
             "pruner": {"p_threshold": 0.1, "n_startup_steps": 2}, "study": "honest"}
    block.update(search)
    return {"name": "search-test", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], "steps": 4,
            "overrides": {**NO_CKPT, "data.cache_dir": str(cache)}, "resources": {"cpus": 1, "gpus": 0},
            "tracking": {"experiment": "search-test"}, "search": block}


class GuardBank:
    """A ClipBank that raises as soon as a batch would contain a clip of a forbidden subject."""

    def __init__(self, bank, forbidden):
        self._bank = bank
        self._forbidden = {i for i, s in enumerate(bank.subjects) if s in forbidden}
        self.batched: set[str] = set()

    def __getattr__(self, name):
        return getattr(self._bank, name)

    def batch(self, idx, *args, **kwargs):
        ids = set(torch.as_tensor(idx).cpu().tolist())
        assert not ids & self._forbidden, "a holdout clip reached the objective"
        self.batched |= {self._bank.subjects[i] for i in ids}
        return self._bank.batch(idx, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# no training


def test_search_block_problems(tmp_path):
    spec = parse_spec({**_raw(tmp_path), "variants": ["fdp", "no_dic"]})
    spec.search = {"space": {"train.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "metric": "f1",
                   "samplr": "tpe", "enqueue": [{"loss.lambda_d": 1}], "pruner": {"p": 0.1}}
    with pytest.raises(SpecError) as e:
        parse_search(spec)
    text = "\n".join(e.value.problems)
    for needle in ("unknown key 'samplr' (did you mean 'sampler'?)", "tunes one variant", "low > 0",
                   "metric: expected one of", "holdout: required", "'loss.lambda_d' is not a key of the space",
                   "pruner: unknown key 'p'"):
        assert needle in text, needle
    assert all("\n" not in p for p in e.value.problems)


def test_space_value_the_model_cannot_build_is_refused_when_read(tmp_path):
    """A choice no trial could train (384 is not a multiple of the 16 x 16 temporal map) is one
    line when the spec is read -- by `run --dry-run` as by `search` -- not a wasted trial."""
    space = {"model.encoder.dims": {"type": "categorical", "choices": [[16, 32, 64, 256], [16, 32, 64, 384]]},
             "model.encoder.heads": {"type": "int", "low": 4, "high": 6}}
    with pytest.raises(SpecError) as e:
        parse_spec(_raw(tmp_path, space=space), source="s.yaml")
    assert e.value.problems == [
        "s.yaml: search: space: model.encoder.dims: [16, 32, 64, 384] cannot be built: model.encoder.dims: "
        "feature width 384 is not a multiple of model.temporal_map^2 = 256 (temporal pooling reshapes each "
        "frame feature to a 16x16 map)",
        "s.yaml: search: space: model.encoder.heads: 6 cannot be built: model.encoder.heads=6: stage width 16 "
        "is not divisible by it"]
    # a key --set pins is not searched, so its values are not checked either
    spec = parse_spec(_raw(tmp_path, space=space), sets={"model.encoder.dims": [16, 32, 64, 256],
                                                         "model.encoder.heads": 4})
    assert parse_search(spec).space == {}


def _space_points(space: dict) -> list[dict]:
    """Every combination of the space: each choice, every integer of an int range, both ends of a
    float range."""
    import itertools

    axes = {k: (d["choices"] if d["type"] == "categorical" else
                list(range(d["low"], d["high"] + 1, d.get("step", 1))) if d["type"] == "int" else
                [d["low"], d["high"]]) for k, d in space.items()}
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


@pytest.mark.parametrize("smoke", [False, True])
def test_every_combination_of_the_sweep_search_spaces_builds(smoke):
    from fdp.config import feature_dim, to_dict
    from fdp.model import build_model
    from fdp.variants import build_config
    from orchestrator.spec.sweep import configurations, load_spec

    sweeps = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))
    specs = [load_spec(p, smoke=smoke) for p in sweeps if load_spec(p).search is not None]
    assert specs
    n_models = 0
    for spec in specs:
        settings = parse_search(spec)
        conf = configurations(spec)[0]
        points = _space_points(settings.space)
        assert len(points) >= (3 * 4 * 3 if not smoke else 4 * 3)  # dims x n_local x n_global (dims pinned by smoke)
        models = {}
        for point in points:
            cfg = build_config(conf.variant, {**conf.overrides, **point})  # what a trial builds
            models[json.dumps(to_dict(cfg.model), sort_keys=True)] = cfg.model
        for mcfg in models.values():
            with torch.device("meta"):  # shapes only: no memory, no init
                model = build_model(mcfg)
            assert model.encoder.out_dim == feature_dim(mcfg.encoder)
            assert model.temporal.map_side == mcfg.temporal_map
        n_models += len(models)
    assert n_models >= (36 if not smoke else 12)


def test_subject_split_and_inner_folds():
    subjects = [f"{i:02d}" for i in range(1, 9)]
    s = split_subjects(subjects, HOLDOUT)
    assert s.holdout == ("03", "06") and set(s.search).isdisjoint(s.holdout) and len(s.search) == 6
    assert split_subjects(subjects, 0.25, seed=3) == split_subjects(subjects, 2, seed=3)  # seeded, fraction
    with pytest.raises(ObjectiveError, match="unknown subject"):
        split_subjects(subjects, ["99"])
    with pytest.raises(ObjectiveError, match="at least 2"):
        split_subjects(subjects, 7)
    clips = ["01", "03", "02", "06", "04", "01", "09"]  # "09": a subject in neither list
    f = inner_split(clips, "02", s.search)
    assert f.test.tolist() == [2] and f.train.tolist() == [0, 4, 5]  # holdout and unknown subjects: never
    with pytest.raises(ObjectiveError):
        inner_split(clips, "03", s.search)  # a holdout subject is never a validation fold


def test_space_sampling_round_trip():
    import optuna

    space = {"loss.lambda_d": {"type": "float", "low": 1, "high": 1000, "log": True},
             "model.encoder.n_local": {"type": "int", "low": 0, "high": 3},
             "model.encoder.dims": {"type": "categorical", "choices": [[16, 32, 64, 256], [8, 16, 32, 256]]}}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(encode_params({"model.encoder.dims": [8, 16, 32, 256]}, space))
    trial = study.ask()
    over = suggest(trial, space)
    assert over["model.encoder.dims"] == [8, 16, 32, 256]  # lists travel as JSON text inside Optuna
    assert trial.params["model.encoder.dims"] == "[8, 16, 32, 256]"  # stored as its JSON text
    assert over["loss.lambda_d"] == trial.params["loss.lambda_d"]  # numbers pass through unchanged
    assert over["model.encoder.n_local"] == trial.params["model.encoder.n_local"]
    from fdp.variants import build_config  # the sampled overrides are a runnable config (a 128-wide last
    # stage is not: 128 is no multiple of the 16 x 16 temporal map, refused since issue #17)

    cfg = build_config("fdp", over)
    assert cfg.model.encoder.dims == [8, 16, 32, 256] and cfg.loss.lambda_d == over["loss.lambda_d"]
    assert cfg.model.encoder.n_local == over["model.encoder.n_local"]
    assert decode_params(trial.params, space) == over


# ---------------------------------------------------------------------------------------------
# honesty, in-process


def test_objective_ignores_holdout_subjects(caches):
    """Poisoned holdout frames and labels, behind a bank that refuses to batch them: the objective
    values are bit-identical to the clean cache's."""
    from fdp.runner import load_bank
    from fdp.variants import build_config

    clean, poisoned = caches
    search = split_subjects([f"{i:02d}" for i in range(1, 9)], HOLDOUT).search
    vals = search[:3]
    values = {}
    for name, cache in (("clean", clean), ("poisoned", poisoned)):
        cfg = build_config("fdp", {**NO_CKPT, "data.cache_dir": str(cache), "train.steps": 3, "train.lr": 1e-3})
        bank = GuardBank(load_bank(cfg)[0], HOLDOUT)
        out = []
        for v in vals:
            result, train_subjects = objective_fold(cfg, v, search, bank=bank)
            assert set(train_subjects) == set(search) - {v} and set(result.subjects) == {v}
            out.append(fold_value(result, "nll"))
        assert bank.batched == set(search)  # every search subject was used, no other
        values[name] = out
    assert values["clean"] == values["poisoned"]
    assert all(np.isfinite(values["clean"]))


# ---------------------------------------------------------------------------------------------
# a search on Ray


@pytest.mark.integration
def test_search_prunes_and_never_uses_holdout(caches, tmp_path):
    """Two trials on the POISONED cache: the paper-like lr completes, lr = 1 (diverging) is pruned
    by WilcoxonPruner before its last fold. No fold run touched a holdout subject, and the fold
    values equal those computed on the clean cache."""
    import optuna
    from mlflow.tracking import MlflowClient

    from fdp.variants import build_config

    clean, poisoned = caches
    spec = parse_spec(_raw(poisoned, enqueue=[{"train.lr": 1e-3}, {"train.lr": 1.0}]))
    settings = parse_search(spec)
    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'optuna.db'}"
    out = io.StringIO()
    report = run_search(spec, settings, SearchOptions(root=tmp_path, tracking_uri=uri, storage=storage,
                                                      num_cpus=2, stream=out))
    log = out.getvalue()
    study = optuna.load_study(study_name="honest", storage=storage)
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "COMPLETE", 1: "PRUNED"}, log
    pruned = study.trials[1]
    assert 2 <= len(pruned.intermediate_values) < 6, log  # pruned before its sixth fold
    assert "PRUNED" in log and "best: trial 0" in log
    assert report.best_trial == 0 and report.best_overrides == {"train.lr": 1e-3}

    # the split is on the study and in MLflow
    assert study.user_attrs["holdout_subjects"] == HOLDOUT
    assert reported_subjects("honest", storage) == HOLDOUT
    assert best_overrides("honest", storage) == {"train.lr": 1e-3}
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("search-test")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    by_role: dict[str, list] = {}
    for r in runs:
        by_role.setdefault(r.data.tags.get("fdp.role"), []).append(r)
    (study_run,) = by_role["study"]
    assert study_run.data.tags["fdp.holdout_subjects"] == "03,06"
    assert study_run.data.tags["fdp.best_trial"] == "0"
    trial_runs = {r.data.tags["fdp.trial"]: r for r in by_role["trial"]}
    assert trial_runs["0"].info.status == "FINISHED" and trial_runs["1"].info.status == "KILLED"
    assert trial_runs["0"].data.params == {"train.lr": "0.001"}
    assert all(r.data.tags["mlflow.parentRunId"] == study_run.info.run_id for r in trial_runs.values())
    folds = [r for r in by_role["search_fold"] if r.info.status == "FINISHED"]
    assert len(folds) == 6 + len(pruned.intermediate_values)
    for r in folds:
        assert r.data.tags["mlflow.parentRunId"] == trial_runs[r.data.tags["fdp.trial"]].info.run_id
        used = set(r.data.tags["fdp.train_subjects"].split(",")) | set(r.data.tags["fdp.val_subjects"].split(","))
        assert used.isdisjoint(HOLDOUT), r.data.tags
    assert report.fold_subjects and all(set(t + v).isdisjoint(HOLDOUT) for t, v in report.fold_subjects)

    # the objective on Ray (poisoned holdout) equals the clean cache's, fold by fold
    search = list(study.user_attrs["search_subjects"])
    cfg = build_config("fdp", {**NO_CKPT, "data.cache_dir": str(clean), "train.steps": 4, "train.lr": 1e-3})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the Ray worker (1 cpu): the same float reduction order
    try:
        for step in (0, 3):
            result, _ = objective_fold(cfg, search[step], search)
            assert study.trials[0].intermediate_values[step] == pytest.approx(fold_value(result, "nll"), rel=1e-6)
    finally:
        torch.set_num_threads(threads)

    # feeding a LOSO sweep: best values in, folds = holdout only
    loso = {"name": "loso", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"],
            "overrides": {"train.steps": 4}, "from_search": "honest"}
    resolved = resolve_from_search(loso, storage)
    assert resolved["folds"] == HOLDOUT and resolved["overrides"]["train.lr"] == 1e-3
    fed = parse_spec({**resolved, "overrides": {**resolved["overrides"], "data.cache_dir": str(poisoned)}},
                     resolved=True)
    assert fed.folds == HOLDOUT and fed.from_search == "honest"  # the study stays named: tag and plan note
    assert {k: fed.overrides[k] for k in ("train.steps", "train.lr")} == {"train.steps": 4, "train.lr": 1e-3}
    assert expand(fed).notes == [f"from_search honest: overrides {', '.join(f'{k}={v}' for k, v in fed.overrides.items())}"
                                 f" (the study's best values among them) on folds {', '.join(HOLDOUT)} (its holdout subjects)"]
    with pytest.raises(SpecError, match="a study is resolved when the file is read"):
        parse_spec(resolved)  # a `from_search` nobody resolved is refused, not run on the spec's own values
    with pytest.raises(SpecError, match="fed the search's objective"):
        resolve_from_search({**loso, "folds": ["01", "03"]}, storage)

    # resuming: nothing left to do; a changed holdout is refused
    again = run_search(spec, settings, SearchOptions(root=tmp_path, tracking_uri=uri, storage=storage,
                                                     stream=io.StringIO()))
    assert again.trials == [] and again.best_trial == 0
    moved = parse_spec(_raw(poisoned, holdout=["03"]))
    with pytest.raises(SearchError, match="never changes who feeds its objective"):
        run_search(moved, parse_search(moved), SearchOptions(root=tmp_path, tracking_uri=uri, storage=storage,
                                                             stream=io.StringIO()))


def test_cli_errors_are_one_line(tmp_path):
    from orchestrator.cli.search import search_cmd

    bad = tmp_path / "s.yaml"
    bad.write_text("name: s\ndataset: casme2\nsetting: casme2/5\nvariants: [fdp]\n"
                   "search: {space: {train.lr: {type: float, low: 1.0e-5, high: 1.0e-3}}}\n")
    res = CliRunner().invoke(search_cmd, [str(bad)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"error: {bad}: search: holdout: required -- the subjects a table "
                                               "will report, which the search never sees: a number (seeded "
                                               "choice) or a list of subject names"]


@pytest.mark.parametrize("smoke", [False, True])
def test_every_sweep_search_block_parses(smoke):
    from orchestrator.spec.sweep import load_spec

    sweeps = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))
    with_search = [p for p in sweeps if load_spec(p).search is not None]
    assert with_search  # sweeps/search.yaml at least
    for p in with_search:
        s = parse_search(load_spec(p, smoke=smoke))
        assert s.holdout and s.space and (s.study.endswith("-smoke") == smoke)


def test_smoke_trials_are_the_files_and_run_under_smoke():
    """The file's smoke_trials is what --smoke runs and what the settings record (the record
    once kept the default 3 whatever the file said)."""
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "sweeps" / "search.yaml").read_text())
    raw["search"]["smoke_trials"], raw["search"]["trials"] = 5, 17
    for smoke, trials in ((False, 17), (True, 5)):
        s = parse_search(parse_spec(raw, smoke=smoke))
        assert (s.trials, s.smoke_trials) == (trials, 5)


class _FakeClient:
    """The few MLflow client calls a study source makes, kept in memory."""

    def __init__(self):
        self.runs, self.terminated = {}, {}

    def create_run(self, experiment_id, tags=None, run_name=None):
        rid = f"run{len(self.runs)}"
        self.runs[rid] = tags
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=rid))

    def log_batch(self, run_id, metrics=(), params=(), tags=()):
        pass

    def set_terminated(self, run_id, status):
        self.terminated[run_id] = status


def test_a_trial_pruned_on_a_value_read_back_cancels_its_running_folds(tmp_path):
    """A fold whose value is read back (trained earlier for the same parameters) can prune its
    trial while other folds of it run: those are named for cancelling as soon as the scheduler has
    the jobs handed out (not only when some other fold finishes), and a fold of the closed trial
    that finishes before its cancel lands is recorded, never reported to the finished trial
    (Optuna refuses that: UpdateFinishedTrialError ended the driver)."""
    import dataclasses

    import optuna

    from orchestrator.plan.jobs import DataRef
    from orchestrator.run.progress import Progress
    from orchestrator.run.worker import JobOutcome
    from orchestrator.search.study import SearchReport, StudySource
    from orchestrator.spec.sweep import configurations, load_spec

    spec = load_spec(Path(__file__).resolve().parents[1] / "sweeps" / "search.yaml", smoke=True)
    settings = dataclasses.replace(parse_search(spec), parallel=1, p_threshold=0.1)
    (conf,) = configurations(spec)
    split = SubjectSplit(search=("01", "02", "04"), holdout=("03",))
    study = optuna.create_study(direction=settings.direction, sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # any value > 0: pruned
    client = _FakeClient()
    tracker = types.SimpleNamespace(client=client, uri="sqlite:///x", runs_by_key=lambda *a: {},
                                    search=lambda *a, **k: [], mark_failed=lambda *a: None)
    data = DataRef("casme2", str(tmp_path), "f" * 16, str(tmp_path), 10, "now", True)
    report = SearchReport(settings.study, "mem", "0", "study-run", split)
    progress = Progress(total=0, stream=io.StringIO())
    source = StudySource(study, settings, conf, split, list(split.search), tracker, "0", "study-run", data,
                         tmp_path, "", False, 1, report, progress, io.StringIO())
    first, second = source.next_job(), source.next_job()  # two folds of trial 0 in flight
    source.started(first), source.started(second)
    (trial,) = source.active
    (_, third), = trial.queue
    source.values[source._key(trial, third)] = 1.0  # trained earlier for these parameters
    assert source.next_job() is None  # its value is read back: the trial is pruned, nothing more to ask
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED and not source.active
    assert source.to_cancel() == sorted([first.key, second.key])  # both running folds, at once
    assert source.to_cancel() == []  # named once
    source.done(first, JobOutcome(first.key, True, value=0.5), 1.0)  # it finished before its cancel landed
    assert first.key in report.trained and source.values[first.key] == 0.5  # recorded for reuse
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED and len(report.trials) == 1
    source.done(second, JobOutcome(second.key, False, "boom"), 1.0)
    assert source.to_cancel() == [] and len(report.trials) == 1  # no second close, nothing more to cancel
    assert source.exhausted() and [t.state for t in report.trials] == ["PRUNED"]
    # the progress line ends with nothing running or queued: the read-back fold counts as skipped
    assert (progress.done, progress.failed, progress.skipped, progress.running, progress.queued) == (1, 1, 1, 0, 0)
    assert progress.total == 2 and "jobs 1/2 done, 0 running, 1 failed, 0 queued, 1 skipped" in progress.status_line()
