"""Hyper-parameter search with Optuna over inner validation folds, run on Ray, tracked in MLflow.

A spec's `search:` block (docs/search.md) becomes one Optuna study, stored beside the MLflow
database (`sqlite:///<project root>/optuna.db`). The study is driven here with ask/tell (SPEC §7:
inside Ray Tune, Optuna pruners are ignored; standalone Optuna keeps real pruning).

Honesty (SPEC §5, "never select on the test subject"): the subjects of the dataset are split ONCE
into **holdout** subjects -- the ones a LOSO table fed with the search result will report -- and
**search** subjects. The objective of a trial is the mean, over inner leave-one-subject-out folds
of the search subjects only, of a validation metric: fold v trains on search subjects != v and
evaluates on v. Holdout subjects are neither trained on nor evaluated on by any trial
(`inner_split` whitelists search subjects; `objective_fold` re-checks what it got). The split is
recorded on the study (user attrs) and on the study's MLflow run; a study never changes its
split when resumed; `resolve_from_search` turns a LOSO spec's `from_search: <study>` into the best
configuration and restricts its folds to the holdout subjects.

Execution: `parallel` trials are asked at once; each trial's folds are Ray tasks (at most as many
in flight as the cluster fits, the oldest trial's folds first). As a fold finishes its value is
reported to Optuna with the fold's fixed index as the step (so WilcoxonPruner pairs the same
validation subject across trials); a trial the pruner calls clearly worse is told PRUNED and its
queued folds are dropped, its running ones stopped (`ray.cancel(force=True)`: the worker process
exits, so a fold interrupted inside an MLflow write cannot leave a SQLite transaction open; the
driver marks the fold's run KILLED).

MLflow layout: a study run (`fdp.role=study`) -> one run per trial (`fdp.role=trial`, params =
sampled values, metric = objective) -> one run per fold (`fdp.role=search_fold`, the full job
record of `orchestrator.tracking.RunLogger`). Search folds are never `fdp.role=job`, so tables
cannot mistake them for LOSO results.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from fdp.config import ConfigError, ExperimentConfig, from_dict, to_dict
from orchestrator.schema import METRICS  # noqa: F401 - the search block's schema, where callers found it
from orchestrator.spec import (SearchSettings, SpecError, SweepSpec, configurations, parse_search,  # noqa: F401
                               pinned_keys)

NLL_FLOOR = 1e-12  # probabilities are clipped here: a confident miss costs 27.6 nats, never inf


class SearchError(RuntimeError):
    """A search that cannot start or continue; one line."""


# ---------------------------------------------------------------------------------------------
# the honest split


@dataclass(frozen=True)
class SubjectSplit:
    """Who may feed the objective (search) and who is reported (holdout); disjoint, sorted."""

    search: tuple[str, ...]
    holdout: tuple[str, ...]


def split_subjects(subjects: Sequence[str], holdout: int | float | list[str], seed: int = 0) -> SubjectSplit:
    """Holdout = the named subjects, or `holdout` of them (a count, or a fraction rounded, at least
    one) chosen with `seed`; search = the rest."""
    subjects = sorted(set(subjects))
    if isinstance(holdout, list):
        unknown = [s for s in holdout if s not in subjects]
        if unknown:
            raise SearchError(f"search.holdout: unknown subject(s) {', '.join(unknown)}; known: {', '.join(subjects)}")
        held = sorted(holdout)
    else:
        n = holdout if isinstance(holdout, int) else max(1, round(holdout * len(subjects)))
        rng = np.random.default_rng(seed)
        held = sorted(rng.choice(subjects, size=min(n, len(subjects)), replace=False).tolist())
    search = [s for s in subjects if s not in held]
    if len(search) < 2:
        raise SearchError(f"search.holdout: {len(held)} of {len(subjects)} subjects held out leaves "
                          f"{len(search)} search subject(s); inner validation folds need at least 2")
    return SubjectSplit(tuple(search), tuple(held))


def inner_split(subjects: Sequence[str], val_subject: str, search_subjects: Sequence[str]):
    """Inner LOSO fold over the search subjects: train = search subjects other than
    `val_subject`, test (= validation) = `val_subject`. Defined by whitelist, so a subject that
    is not a search subject (the holdout, or one added to the data later) is never used."""
    from fdp.train import FoldSplit

    allowed = set(search_subjects)
    if val_subject not in allowed:
        raise SearchError(f"validation subject {val_subject!r} is not a search subject")
    subj = np.asarray(list(subjects))
    usable = np.isin(subj, sorted(allowed))
    return FoldSplit(f"val:{val_subject}", np.flatnonzero(usable & (subj != val_subject)),
                     np.flatnonzero(subj == val_subject))


def objective_fold(cfg: ExperimentConfig, val_subject: str, search_subjects: Sequence[str], bank=None):
    """Train on the other search subjects, evaluate on `val_subject`: one objective fold.
    Returns (FoldResult, sorted training subjects). `bank` defaults to the config's clips."""
    import copy

    from fdp.train import TrainingError, load_bank, train_fold, with_validation

    if bank is None:
        bank, _ = load_bank(cfg)
    subjects = list(bank.subjects)
    split = inner_split(subjects, val_subject, search_subjects)
    if cfg.train.selection == "early_stop_val":  # early-stopping subjects: drawn from split.train only
        split = with_validation(split, subjects, cfg.train.val_subjects, cfg.train.seed)
    used = {subjects[i] for part in (split.train, split.val, split.test) for i in part}
    if not used <= set(search_subjects):  # defence in depth: the whitelist above makes this unreachable
        raise TrainingError(f"objective fold {val_subject}: would use non-search subject(s) "
                            f"{', '.join(sorted(used - set(search_subjects)))}")
    if cfg.model.num_classes != len(bank.class_names):
        cfg = copy.deepcopy(cfg)
        cfg.model.num_classes = len(bank.class_names)
    result = train_fold(cfg, split, bank)
    return result, sorted({subjects[i] for i in split.train})


def fold_value(result, metric: str) -> float:
    """The objective's value on one fold."""
    if metric == "nll":
        if result.probs is None:
            raise SearchError("metric nll needs the MER head (this variant has none)")
        p = np.asarray(result.probs, dtype=np.float64)
        y = np.asarray(result.labels)
        return float(-np.log(np.clip(p[np.arange(len(y)), y], NLL_FLOOR, 1.0)).mean())
    if metric not in result.metrics:
        raise SearchError(f"metric {metric} is not produced by this variant (has {', '.join(result.metrics)})")
    return float(result.metrics[metric])


# ---------------------------------------------------------------------------------------------
# the worker side


@dataclass
class FoldPayload:
    """One objective fold of one trial, as plain data (workers run elsewhere)."""

    study: str
    trial: int
    step: int  # fold index in the sorted search subjects (Optuna step; pairs folds across trials)
    val_subject: str
    search_subjects: list[str]
    metric: str
    cfg: dict[str, Any]  # to_dict of the runtime config
    run_id: str  # the MLflow fold run the driver created
    tracking_uri: str
    git_commit: str = ""
    git_dirty: bool = False


@dataclass
class FoldOutcome:
    trial: int
    step: int
    ok: bool
    value: float = math.nan
    error: str = ""
    train_subjects: list[str] = field(default_factory=list)
    val_subjects: list[str] = field(default_factory=list)  # subjects whose clips were evaluated
    wall_time_s: float = 0.0


def run_search_fold(p: FoldPayload) -> FoldOutcome:
    """Train and evaluate one objective fold into its MLflow run; never raises for failures
    inside the fold. An interrupted fold marks its run KILLED and re-raises; a pruned trial's folds
    are force-cancelled and marked KILLED by the driver."""
    from mlflow.entities import Metric, RunTag

    from orchestrator.tracking import RunLogger, with_retry

    t0 = time.perf_counter()
    log = RunLogger(p.tracking_uri, p.run_id)
    try:
        cfg = from_dict(ExperimentConfig, p.cfg)
        log.start()
        log.log_config(cfg, p.git_commit, p.git_dirty)
        result, train_subjects = objective_fold(cfg, p.val_subject, p.search_subjects)
        value = fold_value(result, p.metric)
        log.log_result(result, cfg)
        with_retry(log.client.log_batch, p.run_id,
                   metrics=[Metric(f"objective_{p.metric}", value, int(time.time() * 1000), p.step)],
                   tags=[RunTag("fdp.train_subjects", ",".join(train_subjects)),
                         RunTag("fdp.val_subjects", ",".join(sorted(set(result.subjects))))])
        log.finish()
    except KeyboardInterrupt:  # Ctrl-C, or a non-force ray.cancel (the driver's cancel is forced)
        try:
            with_retry(log.client.set_terminated, p.run_id, "KILLED")
        finally:
            raise
    except Exception as e:  # noqa: BLE001 - reported to the driver, which fails the trial
        reason = f"{type(e).__name__}: {' '.join(str(e).split())}"[:500]
        log.fail(reason, traceback.format_exc())
        return FoldOutcome(p.trial, p.step, False, error=reason, wall_time_s=time.perf_counter() - t0)
    return FoldOutcome(p.trial, p.step, True, value, "", train_subjects, sorted(set(result.subjects)),
                       time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# Optuna


def default_storage(root: Path) -> str:
    return f"sqlite:///{root / 'optuna.db'}"


def resolve_storage(storage: str | None, root: Path) -> str:
    """An explicit URL, else $FDP_OPTUNA_STORAGE, else optuna.db beside mlflow.db. Relative
    sqlite paths are made absolute against the project root."""
    url = storage or os.environ.get("FDP_OPTUNA_STORAGE") or default_storage(root)
    m = re.match(r"^sqlite:///(?!/)(.+)$", url)
    if m:
        url = f"sqlite:///{(root / m.group(1)).resolve()}"
    return url


def _storage(url: str):
    import optuna

    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # one writer (the driver); a generous lock timeout for readers like optuna-dashboard
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 30}})
    return optuna.storages.RDBStorage(url)


def _encode_choices(choices: list[Any]) -> tuple[list[Any], bool]:
    """Optuna categoricals hold scalars only; list choices (e.g. encoder dims) go as JSON text."""
    if all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
        return list(choices), False
    return [json.dumps(c) for c in choices], True


def suggest(trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sample the space into dotted overrides."""
    out: dict[str, Any] = {}
    for key, d in space.items():
        t = d["type"]
        if t == "float":
            out[key] = trial.suggest_float(key, float(d["low"]), float(d["high"]), log=bool(d.get("log", False)),
                                           step=d.get("step"))
        elif t == "int":
            out[key] = trial.suggest_int(key, int(d["low"]), int(d["high"]), log=bool(d.get("log", False)),
                                         step=int(d.get("step", 1)))
        else:
            choices, encoded = _encode_choices(d["choices"])
            v = trial.suggest_categorical(key, choices)
            out[key] = json.loads(v) if encoded else v
    return out


def encode_params(overrides: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Dotted overrides -> Optuna params (list choices as their JSON text); for enqueue_trial."""
    out = {}
    for k, v in overrides.items():
        d = space.get(k, {})
        out[k] = json.dumps(v) if d.get("type") == "categorical" and _encode_choices(d["choices"])[1] else v
    return out


def decode_params(params: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Optuna's stored params -> dotted overrides (undoing the JSON text of list choices)."""
    out = {}
    for k, v in params.items():
        d = space.get(k, {})
        if d.get("type") == "categorical" and _encode_choices(d["choices"])[1]:
            v = json.loads(v)
        out[k] = v
    return out


def make_study(s: SearchSettings, storage_url: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if s.sampler == "tpe":
        # explicit, since Optuna 5 changed TPE defaults (SPEC §7): joint model of the space, and
        # the constant liar so that trials asked while others run do not all land in one spot
        sampler = optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=s.startup_trials, multivariate=True,
                                             constant_liar=True)
    else:
        sampler = optuna.samplers.RandomSampler(seed=s.seed)
    if s.p_threshold is None:
        pruner = optuna.pruners.NopPruner()
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            pruner = optuna.pruners.WilcoxonPruner(p_threshold=s.p_threshold, n_startup_steps=s.n_startup_steps)
    return optuna.create_study(study_name=s.study, storage=_storage(storage_url), sampler=sampler, pruner=pruner,
                               direction=s.direction, load_if_exists=True)


# ---------------------------------------------------------------------------------------------
# reading a study back: the best configuration and who may be reported


def _load(study_name: str, storage: str | None, root: Path | None = None):
    import optuna
    from orchestrator.tracking import project_root

    url = resolve_storage(storage, (root or project_root()).resolve())
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        # reading must not create an empty study database as a side effect
        raise SearchError(f"no Optuna study {study_name!r}: no study database at {url} "
                          "(run `fdp-sweep search` first)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=study_name, storage=_storage(url))
    except KeyError:
        raise SearchError(f"no Optuna study {study_name!r} in {url} (run `fdp-sweep search` first)") from None


def best_overrides(study_name: str, storage: str | None = None, root: Path | None = None) -> dict[str, Any]:
    """The best trial's sampled values as dotted config overrides."""
    study = _load(study_name, storage, root)
    try:
        best = study.best_trial
    except ValueError:
        raise SearchError(f"study {study_name!r} has no completed trial yet") from None
    return decode_params(best.params, study.user_attrs.get("space", {}))


def reported_subjects(study_name: str, storage: str | None = None, root: Path | None = None) -> list[str]:
    """The holdout subjects: the only ones a table fed by this study may report."""
    return list(_load(study_name, storage, root).user_attrs["holdout_subjects"])


def resolve_from_search(raw: dict[str, Any], storage: str | None = None, root: Path | None = None
                        ) -> dict[str, Any]:
    """A LOSO spec (parsed YAML) with `from_search: <study>` -> the same spec with the study's best
    values in `overrides` and `folds` limited to the study's holdout subjects; checks that the
    spec trains what the study searched (dataset, setting, variant). Without `from_search` the
    spec is returned unchanged."""
    if "from_search" not in raw:
        return raw
    out = dict(raw)
    name = out.pop("from_search")
    try:
        study = _load(str(name), storage, root)
        best = best_overrides(str(name), storage, root)
    except SearchError as e:  # a spec naming a study that cannot feed it is a spec mistake
        raise SpecError([f"from_search: {e}"]) from None
    attrs = study.user_attrs
    problems = []
    for key, attr in (("dataset", "dataset"), ("setting", "setting")):
        if out.get(key) != attrs.get(attr):
            problems.append(f"from_search: study {name!r} searched {key} {attrs.get(attr)!r}, the spec has "
                            f"{out.get(key)!r}")
    variants = out.get("variants")
    variants = [variants] if isinstance(variants, str) else list(variants or [])
    if variants != [attrs.get("variant")]:
        problems.append(f"from_search: study {name!r} tuned variant {attrs.get('variant')!r}; the spec lists "
                        f"{variants}")
    clash = sorted(k for k in best if k in (out.get("overrides") or {}) and out["overrides"][k] != best[k])
    if clash:
        problems.append(f"from_search: the spec's overrides set searched key(s) {', '.join(clash)}")
    holdout = list(attrs["holdout_subjects"])
    folds = out.get("folds")
    if isinstance(folds, list):
        extra = [str(f) for f in folds if str(f) not in holdout]
        if extra:
            problems.append(f"from_search: fold(s) {', '.join(extra)} fed the search's objective; report only "
                            f"holdout subjects ({', '.join(holdout)})")
    elif folds is not None:
        problems.append("from_search: `folds` must be omitted or list holdout subjects")
    if problems:
        raise SpecError(problems)
    out["overrides"] = {**(out.get("overrides") or {}), **best}
    out["folds"] = [str(f) for f in folds] if isinstance(folds, list) else holdout
    return out


def load_spec_from_search(path: str | Path, sets: dict[str, Any] | None = None, smoke: bool = False,
                          storage: str | None = None, root: Path | None = None) -> SweepSpec:
    """`orchestrator.spec.load_spec` for a spec that may name `from_search:` (until spec.py knows it)."""
    import yaml

    from orchestrator.spec import parse_spec

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SpecError([f"{path}: cannot read the spec ({e})"]) from None
    if isinstance(raw, dict):
        raw = resolve_from_search(raw, storage, root)
    return parse_spec(raw, sets=sets, smoke=smoke, source=str(path))


# ---------------------------------------------------------------------------------------------
# the driver


@dataclass
class SearchOptions:
    address: str | None = None  # Ray cluster (else $RAY_ADDRESS, else a local one)
    tracking_uri: str | None = None  # else $MLFLOW_TRACKING_URI, else sqlite in the project root
    root: Path | None = None  # project root
    num_cpus: int | None = None  # CPUs of a local cluster
    max_parallel: int | None = None  # cap on folds in flight
    storage: str | None = None  # Optuna storage URL (beats the spec's)
    fold_fn: Callable[[FoldPayload], FoldOutcome] = run_search_fold  # tests may swap it
    stream: TextIO | None = None  # progress lines (default stderr)


@dataclass
class TrialRecord:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    value: float | None  # objective (mean over folds) when COMPLETE; mean so far when PRUNED
    params: dict[str, Any]
    folds_done: int
    run_id: str
    error: str = ""


@dataclass
class SearchReport:
    study: str
    storage: str
    experiment_id: str
    study_run_id: str
    split: SubjectSplit
    trials: list[TrialRecord] = field(default_factory=list)  # finished in this invocation
    best_trial: int | None = None
    best_value: float | None = None
    best_overrides: dict[str, Any] = field(default_factory=dict)
    fold_subjects: list[tuple[list[str], list[str]]] = field(default_factory=list)  # (train, val) per fold
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.best_trial is None else 0


@dataclass
class _Active:
    trial: Any  # optuna.trial.Trial
    overrides: dict[str, Any]
    cfg: dict[str, Any]
    run_id: str
    queue: deque  # (step, subject) not yet submitted
    values: dict[int, float] = field(default_factory=dict)
    running: set = field(default_factory=set)  # object refs
    t0: float = field(default_factory=time.monotonic)


def run_search(spec: SweepSpec, settings: SearchSettings, opts: SearchOptions | None = None) -> SearchReport:
    """Create or resume the study, run trials until it has `settings.trials` finished ones."""
    import ray
    from mlflow.entities import Metric, Param, RunTag
    from optuna.trial import TrialState
    from ray.exceptions import RayError, TaskCancelledError

    from fdp.train import fold_names
    from fdp.variants import build_config
    from orchestrator.jobs import cache_path, runtime_config
    from orchestrator.scheduler import capacity, start_ray
    from orchestrator.tracking import SweepTracker, git_info, project_root, resolve_tracking_uri, with_retry

    opts = opts or SearchOptions()
    stream = opts.stream or sys.stderr
    root = (opts.root or project_root()).resolve()
    uri = resolve_tracking_uri(opts.tracking_uri, root)
    storage_url = resolve_storage(opts.storage or settings.storage, root)
    from orchestrator.tracking import StoreError, check_store

    try:
        check_store(uri, root)  # one line now, not minutes of the client's retries
    except StoreError as e:
        raise SearchError(str(e)) from None
    (conf,) = configurations(spec)
    base = runtime_config(conf.cfg)
    _, why = cache_path(base)
    if why:
        raise SearchError(why)
    split = split_subjects(fold_names(base), settings.holdout, settings.holdout_seed)
    val_subjects = list(split.search[:settings.folds] if settings.folds else split.search)
    if not base.model.use_mer and settings.metric != "di_mse":
        raise SearchError(f"metric {settings.metric} needs the MER head; variant {conf.variant} has none (use di_mse)")

    # --- the study: created once, its honest split fixed for life
    study = make_study(settings, storage_url)
    identity = {"holdout_subjects": list(split.holdout), "search_subjects": list(split.search),
                "validation_subjects": val_subjects, "metric": settings.metric, "dataset": spec.dataset,
                "setting": spec.setting, "variant": conf.variant}
    attrs = study.user_attrs
    if attrs:
        changed = [k for k, v in identity.items() if attrs.get(k) != v]
        if changed:
            raise SearchError(f"study {settings.study!r} in {storage_url} was run with other "
                              f"{', '.join(changed)} ({'; '.join(f'{k}={attrs.get(k)}' for k in changed)}); "
                              "a study never changes who feeds its objective: name a new `search.study`")
        if attrs.get("spec_hash") != spec.spec_hash:
            stream.write(f"note: study {settings.study!r} continues with a changed spec (hash "
                         f"{attrs.get('spec_hash')} -> {spec.spec_hash})\n")
    elif study.trials:
        raise SearchError(f"study {settings.study!r} in {storage_url} was not made by fdp-sweep search "
                          "(no subject split recorded); name a new `search.study`")
    else:
        for k, v in identity.items():
            study.set_user_attr(k, v)
        study.set_user_attr("space", settings.space)
        for params in settings.enqueue:
            study.enqueue_trial(encode_params(params, settings.space), skip_if_exists=True)
    study.set_user_attr("spec_hash", spec.spec_hash)

    # --- tracking: the study run first (SPEC §7: the driver creates runs, workers get ids)
    tracker = SweepTracker(uri, root)
    exp_id = tracker.experiment_id(spec.experiment)
    study_run = _study_run(tracker, exp_id, study, settings, split, storage_url, spec)
    commit, dirty = git_info(root)
    report = SearchReport(settings.study, storage_url, exp_id, study_run, split)

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # left by a driver that died (one driver per study): its folds are gone
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        rid = t.user_attrs.get("mlflow_run_id")
        if rid:
            with_retry(tracker.client.set_tag, rid, "fdp.trial_state", "FAIL")
            with_retry(tracker.client.set_terminated, rid, "KILLED")

    finished = lambda: len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    budget = max(settings.trials - finished(), 0)
    if budget == 0:
        stream.write(f"search {settings.study}: already has {finished()} finished trial(s) (asked for "
                     f"{settings.trials}); raise --trials to run more\n")
        _finish(report, study, tracker, study_run, settings)
        return report

    cluster = start_ray(opts.address, opts.num_cpus)
    slots = max(capacity(cluster, spec.resources, opts.max_parallel), 0)
    if slots < 1:
        raise SearchError(f"no node of the cluster ({cluster.cpus:g} cpus, {cluster.gpus:g} gpus) fits one fold "
                          f"({spec.resources.cpus:g} cpus, {spec.resources.gpus:g} gpus)")
    remote = ray.remote(opts.fold_fn).options(num_cpus=spec.resources.cpus, num_gpus=spec.resources.gpus,
                                              max_retries=spec.retries, retry_exceptions=False)
    stream.write(f"search {settings.study}: {budget} trial(s) to run ({finished()} done earlier), "
                 f"{len(val_subjects)} validation folds each over search subjects {','.join(split.search)}; "
                 f"holdout (never used) {','.join(split.holdout)}; objective mean {settings.metric} "
                 f"({settings.direction}); {settings.parallel} trial(s) / {slots} fold(s) at a time\n"
                 f"  optuna: {storage_url}  mlflow: {uri} (study run {study_run})\n")
    stream.flush()

    active: list[_Active] = []
    inflight: dict[Any, tuple[_Active, int, str, str]] = {}  # ref -> (trial, step, subject, fold run)
    orphans: dict[Any, str] = {}  # cancelled refs -> fold run (they still hold a slot until they stop)
    asked = 0
    t_start = time.monotonic()

    def ask() -> None:
        nonlocal asked
        trial = study.ask()
        asked += 1
        try:
            over = suggest(trial, settings.space)
            cfg = runtime_config(build_config(conf.variant, {**conf.overrides, **over}))
        except (ConfigError, ValueError) as e:
            study.tell(trial, state=TrialState.FAIL)
            report.trials.append(TrialRecord(trial.number, "FAIL", None, dict(trial.params), 0, "", str(e)))
            stream.write(f"trial {trial.number}: FAIL before training: {e}\n")
            return
        tags = {"mlflow.parentRunId": study_run, "fdp.role": "trial", "fdp.study": settings.study,
                "fdp.trial": str(trial.number), "fdp.variant": conf.variant, "fdp.metric": settings.metric,
                "fdp.selection": _selection_text(settings, split)}
        run = with_retry(tracker.client.create_run, exp_id, tags=tags, run_name=f"{settings.study}/trial{trial.number}")
        rid = run.info.run_id
        params = [Param(k, _text(v)) for k, v in over.items()]
        if params:
            with_retry(tracker.client.log_batch, rid, params=params)
        trial.set_user_attr("mlflow_run_id", rid)
        # WilcoxonPruner advice: shuffle the evaluation order per trial (steps stay the fold ids)
        order = np.random.default_rng([settings.seed, trial.number]).permutation(len(val_subjects))
        active.append(_Active(trial, over, to_dict(cfg), rid, deque((int(i), val_subjects[i]) for i in order)))

    def submit(a: _Active, step: int, subject: str) -> None:
        tags = {"mlflow.parentRunId": a.run_id, "fdp.role": "search_fold", "fdp.study": settings.study,
                "fdp.trial": str(a.trial.number), "fdp.fold": subject, "fdp.fold_step": str(step),
                "fdp.variant": conf.variant, "fdp.selection": a.cfg["train"]["selection"]}
        run = with_retry(tracker.client.create_run, exp_id, tags=tags,
                         run_name=f"trial{a.trial.number}|val={subject}")
        with_retry(tracker.client.update_run, run.info.run_id, status="SCHEDULED")
        payload = FoldPayload(settings.study, a.trial.number, step, subject, list(split.search), settings.metric,
                              a.cfg, run.info.run_id, uri, commit, dirty)
        ref = remote.remote(payload)
        a.running.add(ref)
        inflight[ref] = (a, step, subject, run.info.run_id)

    def close(a: _Active, state: str, error: str = "") -> None:
        active.remove(a)
        for ref in list(a.running):  # pruned or failed: stop what still runs
            # force: a KeyboardInterrupt (the default cancel) that lands inside the worker's MLflow
            # write can leave its SQLite write transaction open in a live worker, and every later
            # write waits on that lock until it times out (seen once in `make test`: 4 min of
            # "database is locked"); killing the process releases the lock, SQLite rolls back
            ray.cancel(ref, force=True)
            orphans[ref] = inflight.pop(ref)[3]
        a.queue.clear()
        mean = float(np.mean(list(a.values.values()))) if a.values else None
        if state == "COMPLETE":
            study.tell(a.trial, mean)
        else:
            study.tell(a.trial, state=TrialState.PRUNED if state == "PRUNED" else TrialState.FAIL)
        now = int(time.time() * 1000)
        ms = [Metric(f"fold_{settings.metric}", v, now, s) for s, v in sorted(a.values.items())]
        if mean is not None:
            ms.append(Metric(settings.metric if state == "COMPLETE" else f"{settings.metric}_so_far", mean, now, 0))
        tags = [RunTag("fdp.trial_state", state), RunTag("fdp.folds_done", str(len(a.values)))]
        if error:
            tags.append(RunTag("fdp.error", error[:5000]))
        with_retry(tracker.client.log_batch, a.run_id, metrics=ms, tags=tags)
        with_retry(tracker.client.set_terminated, a.run_id,
                   {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(state, "FAILED"))
        rec = TrialRecord(a.trial.number, state, mean, dict(a.overrides), len(a.values), a.run_id, error)
        report.trials.append(rec)
        stream.write(_trial_line(rec, study, settings, len(val_subjects), finished(), time.monotonic() - a.t0) + "\n")
        stream.flush()

    try:
        while True:
            while len(active) < settings.parallel and asked < budget:
                ask()
            for a in list(active):
                while a.queue and len(inflight) + len(orphans) < slots:
                    submit(a, *a.queue.popleft())
            if not inflight and not orphans:
                if not active and asked >= budget:
                    break
                continue
            ready, _ = ray.wait(list(inflight) + list(orphans), num_returns=1, timeout=1.0)
            for ref in ready:
                if ref in orphans:
                    rid = orphans.pop(ref)
                    try:
                        ray.get(ref)
                    except (TaskCancelledError, RayError):
                        pass
                    if with_retry(tracker.client.get_run, rid).info.status not in ("FINISHED", "KILLED"):
                        with_retry(tracker.client.set_terminated, rid, "KILLED")
                    continue
                a, step, subject, rid = inflight.pop(ref)
                a.running.discard(ref)
                try:
                    out = ray.get(ref)
                except RayError as e:
                    out = FoldOutcome(a.trial.number, step, False, error=f"{type(e).__name__}: {_first_line(e)}")
                    tracker.mark_failed(rid, out.error)
                if not out.ok:
                    close(a, "FAIL", f"fold {subject}: {out.error}")
                    continue
                report.fold_subjects.append((out.train_subjects, out.val_subjects))
                a.values[step] = out.value
                a.trial.report(out.value, step)
                if len(a.values) == len(val_subjects):
                    close(a, "COMPLETE")
                elif settings.p_threshold is not None and a.trial.should_prune():
                    close(a, "PRUNED")
    except BaseException:
        for a in list(active):  # Ctrl-C: do not leave RUNNING trials behind
            try:
                close(a, "FAIL", "search interrupted")
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        raise
    finally:
        report.wall_s = time.monotonic() - t_start
        if cluster.started_here:
            ray.shutdown()
    _finish(report, study, tracker, study_run, settings)
    return report


def _study_run(tracker, exp_id: str, study, s: SearchSettings, split: SubjectSplit, storage_url: str,
               spec: SweepSpec) -> str:
    """The MLflow run of the study: found again on resume (same store), else created."""
    from orchestrator.tracking import with_retry

    rid = study.user_attrs.get("mlflow_study_run_id")
    if rid and study.user_attrs.get("mlflow_tracking_uri") == tracker.uri:
        with_retry(tracker.client.update_run, rid, status="RUNNING")
        return rid
    tags = {"fdp.role": "study", "fdp.study": s.study, "fdp.optuna_storage": storage_url,
            "fdp.holdout_subjects": ",".join(split.holdout), "fdp.search_subjects": ",".join(split.search),
            "fdp.metric": s.metric, "fdp.direction": s.direction, "fdp.sampler": s.sampler,
            "fdp.pruner": "none" if s.p_threshold is None else
            f"wilcoxon(p_threshold={s.p_threshold}, n_startup_steps={s.n_startup_steps})",
            "fdp.selection": _selection_text(s, split), "fdp.spec_hash": spec.spec_hash, "fdp.sweep": spec.name,
            "fdp.smoke": str(spec.is_smoke).lower()}
    run = with_retry(tracker.client.create_run, exp_id, tags=tags, run_name=f"search {s.study}")
    rid = run.info.run_id
    import yaml

    with_retry(tracker.client.log_text, rid, yaml.safe_dump(spec.raw, sort_keys=False), "sweep.yaml")
    study.set_user_attr("mlflow_study_run_id", rid)
    study.set_user_attr("mlflow_tracking_uri", tracker.uri)
    study.set_user_attr("mlflow_experiment_id", exp_id)
    return rid


def _finish(report: SearchReport, study, tracker, study_run: str, s: SearchSettings) -> None:
    """Best trial -> the report, the study run (tags, metric, best.json) and stdout of the caller."""
    import yaml
    from mlflow.entities import Metric, RunTag

    from orchestrator.tracking import with_retry

    try:
        best = study.best_trial
    except ValueError:
        best = None
    if best is not None:
        report.best_trial, report.best_value = best.number, float(best.value)
        report.best_overrides = decode_params(best.params, s.space)
        n = len(study.trials)
        with_retry(tracker.client.log_batch, study_run,
                   metrics=[Metric(f"best_{s.metric}", report.best_value, int(time.time() * 1000), n)],
                   tags=[RunTag("fdp.best_trial", str(best.number)),
                         RunTag("fdp.best_run_id", best.user_attrs.get("mlflow_run_id", ""))])
        doc = {"study": s.study, "trial": best.number, "metric": s.metric, "value": report.best_value,
               "overrides": report.best_overrides, "report_only_subjects": list(report.split.holdout),
               "use": f"from_search: {s.study}   # in a LOSO sweep spec"}
        with_retry(tracker.client.log_dict, study_run, doc, "best.json")
        with_retry(tracker.client.log_text, study_run, yaml.safe_dump(report.best_overrides, sort_keys=True),
                   "best_overrides.yaml")
    with_retry(tracker.client.set_terminated, study_run, "FINISHED")


def _selection_text(s: SearchSettings, split: SubjectSplit) -> str:
    return (f"Optuna objective: mean validation {s.metric} over inner leave-one-subject-out folds of the search "
            f"subjects ({','.join(split.search)}); holdout subjects ({','.join(split.holdout)}) never trained on "
            "or evaluated by the search; each fold's model is the one after the last step")


def _trial_line(rec: TrialRecord, study, s: SearchSettings, k: int, n_finished: int, seconds: float) -> str:
    val = "-" if rec.value is None else f"{rec.value:.4f}"
    what = {"COMPLETE": f"{s.metric}={val}", "PRUNED": f"pruned after {rec.folds_done}/{k} folds ({s.metric} so far {val})",
            "FAIL": f"failed: {rec.error}"}[rec.state]
    try:
        best = study.best_trial
        best_txt = f"best: trial {best.number} {s.metric}={best.value:.4f}"
    except ValueError:
        best_txt = "best: -"
    params = " ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in rec.params.items())
    return f"trial {rec.number:>3} {rec.state:<8} {what} | {params} | {best_txt} | {n_finished}/{s.trials} finished, {seconds:.0f}s"


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else _text(v)


def _text(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:500]
