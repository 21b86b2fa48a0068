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

Execution: the search is a job source (`StudySource`) of the one fold scheduler that also runs
sweeps (`orchestrator.run.scheduler.Scheduler`): `parallel` trials are open at once; each trial's
folds are fold jobs (`orchestrator.run.worker.run_job`, the sweep's worker: checkpoints, curves,
predictions), at most as many in flight as the cluster fits, the oldest trial's first. As a fold
finishes its value is reported to Optuna with the fold's fixed index as the step (so
WilcoxonPruner pairs the same validation subject across trials); a trial the pruner calls clearly
worse is told PRUNED and its running folds are cancelled (forced: the worker process exits; the
fold run is marked KILLED). Faults as in a sweep: a killed worker is retried by Ray and resumes
from the fold's checkpoint; after a killed driver the same command continues the study -- trials
the dead driver left RUNNING are told FAIL and their parameters asked again, and the new trial's
folds (same config, fold and data: the same job keys) reuse the finished fold runs and resume the
others from their checkpoints, so no fold is trained twice.

MLflow layout: a study run (`fdp.role=study`) -> one run per trial (`fdp.role=trial`, params =
sampled values, metric = objective) -> one run per fold (`fdp.role=search_fold`, tag `fdp.job_key`,
the full job record of `orchestrator.track.worker.RunLogger` plus `objective_<metric>`). Search folds are never `fdp.role=job`, so tables
cannot mistake them for LOSO results.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from fdp.config import ConfigError, ExperimentConfig, to_dict
from fdp.objective import ObjectiveError, SubjectSplit, split_subjects
from orchestrator.run.worker import JobOutcome, JobPayload
from orchestrator.run.progress import Progress
from orchestrator.run.scheduler import (DriverOptions, JobSource, Scheduler, SchedulerError, checkpoint_dir, driving,
                                        fit, start_ray)
from orchestrator.spec.sweep import SearchSettings, SpecError, SweepSpec, configurations, parse_search  # noqa: F401
from orchestrator.track.provenance import git_info, source_tags
from orchestrator.track.store import absolute_sqlite, with_retry


class SearchError(RuntimeError):
    """A search that cannot start or continue; one line."""


# ---------------------------------------------------------------------------------------------
# Optuna


def default_storage(root: Path) -> str:
    return f"sqlite:///{root / 'optuna.db'}"


def resolve_storage(storage: str | None, root: Path) -> str:
    """An explicit URL, else $FDP_OPTUNA_STORAGE, else optuna.db beside mlflow.db. Relative
    sqlite paths are made absolute against the project root."""
    return absolute_sqlite(storage or os.environ.get("FDP_OPTUNA_STORAGE") or default_storage(root), root)


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


def _json_keys(space: dict[str, dict[str, Any]]) -> set[str]:
    """The categorical keys whose choices Optuna holds as JSON text (`_encode_choices`)."""
    return {k for k, d in space.items() if d.get("type") == "categorical" and _encode_choices(d["choices"])[1]}


def encode_params(overrides: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Dotted overrides -> Optuna params (list choices as their JSON text); for enqueue_trial."""
    text = _json_keys(space)
    return {k: json.dumps(v) if k in text else v for k, v in overrides.items()}


def decode_params(params: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Optuna's stored params -> dotted overrides (undoing the JSON text of list choices)."""
    text = _json_keys(space)
    return {k: json.loads(v) if k in text else v for k, v in params.items()}


def make_study(s: SearchSettings, storage_url: str):
    """Create or load the study. A resumed study's sampler is seeded with (seed, trials so far): a
    sampler re-created with the bare seed would replay the first run's draws and ask parameters
    that were tried already."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def sampler(seed: int):
        if s.sampler == "tpe":
            # explicit, since Optuna 5 changed TPE defaults (SPEC §7): joint model of the space, and
            # the constant liar so that trials asked while others run do not all land in one spot
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.startup_trials, multivariate=True,
                                              constant_liar=True)
        return optuna.samplers.RandomSampler(seed=seed)

    if s.p_threshold is None:
        pruner = optuna.pruners.NopPruner()
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            pruner = optuna.pruners.WilcoxonPruner(p_threshold=s.p_threshold, n_startup_steps=s.n_startup_steps)
    study = optuna.create_study(study_name=s.study, storage=_storage(storage_url), sampler=sampler(s.seed),
                                pruner=pruner, direction=s.direction, load_if_exists=True)
    n = len(study.trials)
    if n:
        study.sampler = sampler(int(np.random.SeedSequence([s.seed, n]).generate_state(1)[0]))
    return study


# ---------------------------------------------------------------------------------------------
# reading a study back: the best configuration and who may be reported


def _load(study_name: str, storage: str | None, root: Path | None = None):
    import optuna
    from orchestrator.track.store import project_root

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
    name = out["from_search"]  # kept: the sweep's parent run and plan name the study (fdp.from_search)
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
    """`orchestrator.spec.sweep.load_spec` that also resolves `from_search: <study>` (what the CLI reads with)."""
    from orchestrator.spec.sweep import load_spec

    return load_spec(path, sets, smoke, resolve=lambda raw: resolve_from_search(raw, storage, root))


# ---------------------------------------------------------------------------------------------
# the driver: a job source for the one scheduler (orchestrator.run.scheduler)


@dataclass
class SearchOptions(DriverOptions):
    storage: str | None = None  # Optuna storage URL (beats the spec's)


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
    trained: list[str] = field(default_factory=list)  # job keys of the folds trained in this invocation
    reused: list[str] = field(default_factory=list)  # job keys of folds finished earlier, values read back
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.best_trial is None else 0


@dataclass
class _Active:
    trial: Any  # optuna.trial.Trial
    overrides: dict[str, Any]
    cfg: dict[str, Any]  # to_dict of the runtime config
    key_cfg: ExperimentConfig
    run_id: str
    queue: deque  # (step, subject) not yet handed out
    values: dict[int, float] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)  # job keys in flight
    reused: int = 0  # folds whose value was read back from an earlier run of the same key
    t0: float = field(default_factory=time.monotonic)


REQUEUED = "requeued_trials"  # study user attr: trial numbers whose parameters were asked again


class StudySource(JobSource):
    """The search as a job source: asks Optuna for trials (at most `parallel` open), hands out
    each trial's objective folds as jobs (key: config + validation subject + data, so the same
    parameters find the same folds again), reports each finished fold to the trial (WilcoxonPruner
    may prune: the trial's running folds are cancelled), reads folds finished by an earlier driver
    back instead of training them again."""

    def __init__(self, study, settings: SearchSettings, conf, split: SubjectSplit, val_subjects: list[str],
                 tracker, exp_id: str, study_run: str, data, ckpt_dir: Path, commit: str, dirty: bool,
                 budget: int, report: SearchReport, progress: Progress, stream: TextIO) -> None:
        self.study, self.s, self.conf, self.split, self.vals = study, settings, conf, split, val_subjects
        self.tracker, self.exp_id, self.study_run, self.data = tracker, exp_id, study_run, data
        self.ckpt_dir, self.commit, self.dirty = ckpt_dir, commit, dirty
        self.budget, self.report, self.progress, self.stream = budget, report, progress, stream
        self.asked = 0
        self.active: list[_Active] = []
        self.of_key: dict[str, tuple[_Active, int, str]] = {}  # running job key -> (trial, step, subject)
        self.folds = self._fold_runs()  # job key -> run of an earlier attempt (FINISHED preferred)
        self.values: dict[str, float] = {}  # job key -> value, of the folds trained by this driver
        self.requeued = set(study.user_attrs.get(REQUEUED, []))  # trials whose parameters were asked again
        self.cancel: list[str] = []  # running folds of closed trials, for `to_cancel`

    # -- the scheduler's side

    def next_job(self) -> JobPayload | None:
        while True:
            for a in list(self.active):
                for _ in range(len(a.queue)):
                    if a not in self.active:  # closed by a value read back
                        break
                    step, subject = a.queue.popleft()
                    key = self._key(a, subject)
                    if key in self.of_key:  # this fold of these parameters runs for another trial: after it
                        a.queue.append((step, subject))
                        continue
                    job = self._fold(a, step, subject, key)
                    if job is not None:
                        return job
            if len(self.active) < self.s.parallel and self.asked < self.budget:
                self._ask()
                continue
            return None

    def started(self, payload: JobPayload) -> None:
        self.progress.started()

    def done(self, p: JobPayload, out: JobOutcome, seconds: float) -> None:
        a, step, subject = self.of_key.pop(p.key)
        a.running.discard(p.key)
        self.progress.finished(seconds, out.ok)
        open_ = a in self.active  # a trial pruned on a value read back takes no more values
        if not out.ok:
            rid = out.run_id or self._run_of(a, p.key)
            if rid:  # also when the worker did it: a worker that died cannot, and this is idempotent
                self.tracker.mark_failed(rid, out.error)
            if open_:
                self._close(a, "FAIL", f"fold {subject}: {out.error}")
            return
        self.report.trained.append(p.key)
        self.values[p.key] = out.value
        self.report.fold_subjects.append((out.train_subjects, out.val_subjects))
        if open_:
            self._value(a, step, out.value)

    def to_cancel(self) -> list[str]:
        cancel, self.cancel = [k for k in self.cancel if k in self.of_key], []  # those still running
        return cancel

    def cancelled(self, p: JobPayload) -> None:
        a, _, _ = self.of_key.pop(p.key)
        self.progress.withdrawn(running=True)
        rid = self._run_of(a, p.key)
        if rid and with_retry(self.tracker.client.get_run, rid).info.status not in ("FINISHED", "KILLED"):
            with_retry(self.tracker.client.set_terminated, rid, "KILLED")

    def exhausted(self) -> bool:
        return not self.active and self.asked >= self.budget

    # -- trials

    def _ask(self) -> None:
        from mlflow.entities import Param
        from optuna.trial import TrialState

        from fdp.variants import build_config
        from orchestrator.plan.jobs import runtime_config

        trial = self.study.ask()
        self.asked += 1
        try:
            over = suggest(trial, self.s.space)
            cfg = runtime_config(build_config(self.conf.variant, {**self.conf.overrides, **over}))
        except (ConfigError, ValueError) as e:
            self.study.tell(trial, state=TrialState.FAIL)
            self.report.trials.append(TrialRecord(trial.number, "FAIL", None, dict(trial.params), 0, "", str(e)))
            self.stream.write(f"trial {trial.number}: FAIL before training: {e}\n")
            return
        tags = {"mlflow.parentRunId": self.study_run, "fdp.role": "trial", "fdp.study": self.s.study,
                "fdp.trial": str(trial.number), "fdp.variant": self.conf.variant, "fdp.metric": self.s.metric,
                "fdp.selection": _selection_text(self.s, self.split)}
        again = trial.user_attrs.get("fdp_continues_trial")
        if again is not None:
            tags["fdp.continues_trial"] = str(again)
        run = with_retry(self.tracker.client.create_run, self.exp_id, tags=tags,
                         run_name=f"{self.s.study}/trial{trial.number}")
        rid = run.info.run_id
        if over:
            with_retry(self.tracker.client.log_batch, rid, params=[Param(k, _text(v)) for k, v in over.items()])
        trial.set_user_attr("mlflow_run_id", rid)
        # WilcoxonPruner advice: shuffle the evaluation order per trial (steps stay the fold ids)
        order = np.random.default_rng([self.s.seed, trial.number]).permutation(len(self.vals))
        self.active.append(_Active(trial, over, to_dict(cfg), cfg, rid,
                                   deque((int(i), self.vals[i]) for i in order)))
        self.progress.total += len(self.vals)

    def _key(self, a: _Active, subject: str) -> str:
        from orchestrator.plan.jobs import job_key

        return job_key(a.key_cfg, f"val:{subject}", f"search:{self.s.study}", data=self.data.fingerprint)

    def _fold(self, a: _Active, step: int, subject: str, key: str) -> JobPayload | None:
        """The job of one objective fold, or None when it was finished already -- by an earlier
        driver, or for an earlier trial of the same parameters -- and its value is reported now."""
        from orchestrator.plan.jobs import Job
        from orchestrator.track.driver import control_tags, data_tags

        if key in self.values:
            return self._reuse(a, step, key, self.values[key])
        run = self.folds.get(key)
        adopted = run is not None and int(run.data.tags.get("fdp.trial", -1)) in self.requeued
        if adopted:
            self._adopt(run, a)  # a fold of a trial whose driver died: the new trial carries it on
        if run is not None and run.info.status == "FINISHED" and f"objective_{self.s.metric}" in run.data.metrics:
            return self._reuse(a, step, key, float(run.data.metrics[f"objective_{self.s.metric}"]))
        job = Job(key, f"trial{a.trial.number}|val={subject}", f"trial{a.trial.number}", subject,
                  self.conf.variant, a.key_cfg.train.seed, a.key_cfg, data=self.data)
        tags = {"mlflow.parentRunId": a.run_id, "fdp.role": "search_fold", "fdp.study": self.s.study,
                "fdp.trial": str(a.trial.number), "fdp.fold": subject, "fdp.fold_step": str(step),
                "fdp.job_key": key, "fdp.variant": self.conf.variant,
                "fdp.selection": a.key_cfg.train.selection, **data_tags(job), **control_tags(a.key_cfg)}
        ckpt = self.ckpt_dir / f"{key}.pt"
        if run is None:
            ckpt.unlink(missing_ok=True)  # no run of this key: a checkpoint left behind is not one to resume
        # an adopted run continues (from its checkpoint); a fold of another trial that did not finish
        # (pruned, failed) keeps its run, this trial's attempt gets its own (its checkpoint, of the same
        # config, fold and data, is still the same training)
        rid = run.info.run_id if adopted else ""
        a.running.add(key)
        self.of_key[key] = (a, step, subject)
        return JobPayload(key, job.label, job.config_label, subject, a.cfg, rid,
                          self.tracker.uri, str(ckpt), self.commit, self.dirty, 50, self.exp_id,
                          {"tags": tags, "name": f"trial{a.trial.number}|val={subject}", "inputs": []},
                          {"val_subject": subject, "search_subjects": list(self.split.search),
                           "metric": self.s.metric, "step": step})

    def _reuse(self, a: _Active, step: int, key: str, value: float) -> None:
        """Report a fold finished earlier instead of training it (it may close the trial)."""
        self.report.reused.append(key)
        a.reused += 1
        self.progress.withdrawn(reused=True)
        self._value(a, step, value)

    def _adopt(self, run, a: _Active) -> None:
        """A fold run of a trial that was asked again now belongs to the new trial `a` (the same
        fold of the same parameters: continued, or its value reused); `fdp.first_trial` keeps
        where it began."""
        from mlflow.entities import RunTag

        rid = run.info.run_id
        tags = [RunTag("mlflow.parentRunId", a.run_id), RunTag("fdp.trial", str(a.trial.number))]
        if "fdp.first_trial" not in run.data.tags:
            tags.append(RunTag("fdp.first_trial", run.data.tags.get("fdp.trial", "")))
        with_retry(self.tracker.client.log_batch, rid, tags=tags)
        if run.info.status != "FINISHED" and "fdp.error" in run.data.tags:
            with_retry(self.tracker.client.delete_tag, rid, "fdp.error")

    def _value(self, a: _Active, step: int, value: float) -> None:
        a.values[step] = value
        a.trial.report(value, step)
        if len(a.values) == len(self.vals):
            self._close(a, "COMPLETE")
        elif self.s.p_threshold is not None and a.trial.should_prune():
            self._close(a, "PRUNED")

    def _close(self, a: _Active, state: str, error: str = "") -> None:
        """Tell Optuna and MLflow how trial `a` ended; its running folds are to be cancelled."""
        from mlflow.entities import Metric, RunTag
        from optuna.trial import TrialState

        self.active.remove(a)
        self.progress.withdrawn(len(a.queue))  # the folds it will not hand out (the running ones: `cancelled`)
        a.queue.clear()
        mean = float(np.mean(list(a.values.values()))) if a.values else None
        if state == "COMPLETE":
            self.study.tell(a.trial, mean)
        else:
            self.study.tell(a.trial, state=TrialState.PRUNED if state == "PRUNED" else TrialState.FAIL)
        now = int(time.time() * 1000)
        ms = [Metric(f"fold_{self.s.metric}", v, now, s) for s, v in sorted(a.values.items())]
        if mean is not None:
            ms.append(Metric(self.s.metric if state == "COMPLETE" else f"{self.s.metric}_so_far", mean, now, 0))
        tags = [RunTag("fdp.trial_state", state), RunTag("fdp.folds_done", str(len(a.values))),
                RunTag("fdp.folds_reused", str(a.reused))]
        if error:
            tags.append(RunTag("fdp.error", error[:5000]))
        with_retry(self.tracker.client.log_batch, a.run_id, metrics=ms, tags=tags)
        with_retry(self.tracker.client.set_terminated, a.run_id,
                   {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(state, "FAILED"))
        rec = TrialRecord(a.trial.number, state, mean, dict(a.overrides), len(a.values), a.run_id, error)
        self.report.trials.append(rec)
        self.stream.write(_trial_line(rec, self.study, self.s, len(self.vals), finished_trials(self.study),
                                      time.monotonic() - a.t0) + "\n")
        self.stream.flush()
        self.cancel += sorted(a.running)

    def interrupted(self) -> None:
        """Ctrl-C: the open trials end FAIL, their parameters are asked again by the next run
        (whose folds then find this run's finished folds and checkpoints by key)."""
        for a in list(self.active):
            try:
                self.active.remove(a)
                requeue(self.study, a.trial.number, a.trial.params, self.tracker, a.run_id, "search interrupted")
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass

    # -- the store

    def _fold_runs(self) -> dict[str, Any]:
        return self.tracker.runs_by_key(self.exp_id, f"tags.`fdp.role` = 'search_fold' and "
                                                     f"tags.`fdp.study` = '{self.s.study}'")

    def _run_of(self, a: _Active, key: str) -> str:
        """The fold run of `key` under trial `a`: adopted, or opened by a worker ("" if it never started)."""
        found = self.tracker.search(self.exp_id, f"tags.`mlflow.parentRunId` = '{a.run_id}' and "
                                                 f"tags.`fdp.job_key` = '{key}'", max_results=1)
        return found[0].info.run_id if found else ""


def finished_trials(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def requeue(study, number: int, params: dict[str, Any], tracker, run_id: str, reason: str) -> None:
    """End trial `number` FAIL (`reason`) and ask its parameters again as a new trial: Optuna
    cannot reopen a trial, and the new one's folds have the same job keys, so they find what
    this one finished (and its checkpoints)."""
    from mlflow.entities import RunTag
    from optuna.trial import TrialState

    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(params, user_attrs={"fdp_continues_trial": number})
    study.set_user_attr(REQUEUED, sorted({*study.user_attrs.get(REQUEUED, []), number}))
    if run_id:
        with_retry(tracker.client.log_batch, run_id, tags=[
            RunTag("fdp.trial_state", "FAIL"), RunTag("fdp.error", f"{reason}; its parameters were queued again")])
        with_retry(tracker.client.set_terminated, run_id, "KILLED")


def run_search(spec: SweepSpec, settings: SearchSettings, opts: SearchOptions | None = None) -> SearchReport:
    """Create or resume the study, run trials until it has `settings.trials` finished ones, on
    the one fold scheduler. Resumable like a sweep: a killed worker's fold resumes from its
    checkpoint; after a killed driver the same command continues (its open trials' parameters
    are asked again and find their finished folds by job key)."""
    from optuna.trial import TrialState

    from fdp.runner import fold_names
    from orchestrator.plan.jobs import DataRef, cache_path, runtime_config
    from orchestrator.track.driver import SweepTracker
    from orchestrator.track.store import project_root

    opts = opts or SearchOptions()
    stream = opts.stream or sys.stderr
    root = (opts.root or project_root()).resolve()
    storage_url = resolve_storage(opts.storage or settings.storage, root)
    (conf,) = configurations(spec)
    base = runtime_config(conf.cfg)
    path, why = cache_path(base)
    if why:
        raise SearchError(why)
    try:
        split = split_subjects(fold_names(base), settings.holdout, settings.holdout_seed)
    except ObjectiveError as e:
        raise SearchError(str(e)) from None
    val_subjects = list(split.search[:settings.folds] if settings.folds else split.search)
    if not base.model.use_mer and settings.metric != "di_mse":
        raise SearchError(f"metric {settings.metric} needs the MER head; variant {conf.variant} has none (use di_mse)")
    try:
        with driving(settings.study, f"search|{settings.study}|{storage_url}", opts, root, stream,
                     kind="search") as (uri, lease):
            # --- the study: created once, its honest split fixed for life
            study = make_study(settings, storage_url)
            _check_identity(study, settings, spec, conf, split, val_subjects, storage_url, stream)
            tracker = SweepTracker(uri, root)
            exp_id = tracker.experiment_id(spec.experiment)
            lease.acquire_remote(tracker, exp_id)  # a driver on another host that shares this store
            study_run = _study_run(tracker, exp_id, study, settings, split, storage_url, spec)
            report = SearchReport(settings.study, storage_url, exp_id, study_run, split)
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                # left by a driver that died (one driver per study): asked again, its folds found by key
                requeue(study, t.number, t.params, tracker, t.user_attrs.get("mlflow_run_id", ""), "its driver died")
                stream.write(f"note: trial {t.number} was left running by a driver that died; its parameters are "
                             "asked again (finished folds are reused, the others resume)\n")
            budget = max(settings.trials - finished_trials(study), 0)
            if budget == 0:
                stream.write(f"search {settings.study}: already has {finished_trials(study)} finished trial(s) "
                             f"(asked for {settings.trials}); raise --trials to run more\n")
                _finish(report, study, tracker, study_run, settings)
                return report
            cluster = start_ray(opts.address, opts.num_cpus)
            slots = fit(cluster, spec.resources, opts.max_parallel)
            stream.write(f"search {settings.study}: {budget} trial(s) to run ({finished_trials(study)} done "
                         f"earlier), {len(val_subjects)} validation folds each over search subjects "
                         f"{','.join(split.search)}; holdout (never used) {','.join(split.holdout)}; objective "
                         f"mean {settings.metric} ({settings.direction}); {settings.parallel} trial(s) / {slots} "
                         f"fold(s) at a time\n  optuna: {storage_url}  mlflow: {uri} (study run {study_run})\n")
            stream.flush()
            ckpts = checkpoint_dir(root, f"search-{settings.study}")
            ckpts.mkdir(parents=True, exist_ok=True)
            progress = Progress(total=0, parallel=slots, stream=stream, interval=opts.progress_interval,
                                name="search", unit="folds")
            source = StudySource(study, settings, conf, split, val_subjects, tracker, exp_id, study_run,
                                 DataRef.of(path), ckpts, *git_info(), budget, report, progress, stream)
            t0 = time.monotonic()
            try:
                Scheduler(spec.resources, spec.retries, slots, opts.job_fn).run(source, on_tick=progress.tick)
            except BaseException:
                source.interrupted()
                raise
            finally:
                report.wall_s = time.monotonic() - t0
                cluster.stop()
            progress.close()
            _finish(report, study, tracker, study_run, settings)
            return report
    except SchedulerError as e:
        raise SearchError(str(e)) from None


def _check_identity(study, s: SearchSettings, spec: SweepSpec, conf, split: SubjectSplit, val_subjects: list[str],
                    storage_url: str, stream: TextIO) -> None:
    """A study never changes who feeds its objective; a new one records its split and space."""
    identity = {"holdout_subjects": list(split.holdout), "search_subjects": list(split.search),
                "validation_subjects": val_subjects, "metric": s.metric, "dataset": spec.dataset,
                "setting": spec.setting, "variant": conf.variant}
    attrs = study.user_attrs
    if attrs:
        changed = [k for k, v in identity.items() if attrs.get(k) != v]
        if changed:
            raise SearchError(f"study {s.study!r} in {storage_url} was run with other "
                              f"{', '.join(changed)} ({'; '.join(f'{k}={attrs.get(k)}' for k in changed)}); "
                              "a study never changes who feeds its objective: name a new `search.study`")
        if attrs.get("spec_hash") != spec.spec_hash:
            stream.write(f"note: study {s.study!r} continues with a changed spec (hash "
                         f"{attrs.get('spec_hash')} -> {spec.spec_hash})\n")
    elif study.trials:
        raise SearchError(f"study {s.study!r} in {storage_url} was not made by fdp-sweep search "
                          "(no subject split recorded); name a new `search.study`")
    else:
        for k, v in identity.items():
            study.set_user_attr(k, v)
        study.set_user_attr("space", s.space)
        for params in s.enqueue:
            study.enqueue_trial(encode_params(params, s.space), skip_if_exists=True)
    study.set_user_attr("spec_hash", spec.spec_hash)


def _study_run(tracker, exp_id: str, study, s: SearchSettings, split: SubjectSplit, storage_url: str,
               spec: SweepSpec) -> str:
    """The MLflow run of the study: found again on resume (same store), else created."""
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
            "fdp.smoke": str(spec.is_smoke).lower(), **source_tags(spec.path, *git_info())}
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
