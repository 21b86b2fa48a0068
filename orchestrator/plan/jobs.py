"""Sweep spec -> fold jobs.

A job is one fold of one configuration (experiment x variant x grid point x seed x fold). Its
`job_key` is a hash of the resolved config, the fold and the content fingerprint of the data it
trains and tests on (and, in a spec that lists `experiments:`, the experiment key: under --smoke
every experiment trains on the same synthetic data, and two table cells must never share a job),
so it does not depend on the order of the spec, the grid or the variants, nor on where the cache
lies: re-running a spec finds the same keys, which is how finished jobs are skipped and
checkpoints are found again -- and re-preparing data that changed gives new keys, so the re-run
trains again instead of reporting the old data's numbers.

The worker that runs a job: `orchestrator.run.worker`; the dry-run table: `orchestrator.run.dry_run`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdp.config import ExperimentConfig, apply_overrides, key_dict
from orchestrator.spec.sweep import Configuration, Experiment, SweepSpec, configurations


@dataclass
class Job:
    """One fold of one configuration."""

    key: str  # job_key: hash of the resolved config + fold (+ the experiment key, when listed)
    label: str  # "fdp|lambda_d=10|seed0|fold=sub01" ("samm/3|fdp|seed0|fold=006" when listed)
    config_label: str  # "fdp|lambda_d=10|seed0"
    fold: str
    variant: str
    seed: int
    cfg: ExperimentConfig  # as the spec resolves it, cache paths pinned to the caches found
    experiment: Experiment | None = None  # the experiment it belongs to (tags fdp.experiment, ...)
    data: DataRef | None = None  # the cache it trains on (fingerprint: part of the key)
    test_data: DataRef | None = None  # cross protocol: the cache it tests on


@dataclass(frozen=True)
class DataRef:
    """The identity of a prepared cache a job reads (`fdp.data.cache.CacheInfo`, as plain data)."""

    dataset: str
    path: str  # absolute cache folder
    fingerprint: str  # content fingerprint (annotation rows, labels, frame bytes)
    root: str  # the dataset folder it was prepared from
    clips: int
    created: str
    synthetic: bool
    align: str = ""  # how its frames were aligned, with the aligner's version (`fdp.data.cache.alignment_label`)

    @classmethod
    def of(cls, path: Path) -> "DataRef":
        from fdp.data.cache import cache_info

        i = cache_info(path)
        return cls(i.dataset, str(path), i.fingerprint, i.root, i.clips, i.created, i.synthetic, i.align)


@dataclass
class Plan:
    """The expansion of a spec: its configurations and, where folds are known, their jobs."""

    spec: SweepSpec
    configurations: list[Configuration]
    jobs: list[Job]
    problems: list[str] = field(default_factory=list)  # e.g. a missing clip cache: no folds known
    # (one line per experiment, "experiments[2] (samm/3): no prepared clip cache for samm ...")
    duplicates: list[str] = field(default_factory=list)  # labels that resolve to an earlier config
    notes: list[str] = field(default_factory=list)  # e.g. which of several caches --smoke took

    @property
    def complete(self) -> bool:
        """Whether every configuration's folds are known (the caches exist)."""
        return not self.problems

    def jobs_of(self, config_label: str) -> list[Job]:
        return [j for j in self.jobs if j.config_label == config_label]


def job_key(cfg: ExperimentConfig, fold: str, experiment: str = "", data: str = "") -> str:
    """Order-independent identity of a job (16 hex): sorted-key JSON of config and fold, of the
    experiment key when given (specs with `experiments:`), and of `data`, the content
    fingerprint(s) of the caches it reads: with it the cache *paths* leave the key (the same data
    elsewhere is the same job; other data at the same path is not)."""
    conf = key_dict(cfg, _reads(cfg))
    if data:
        conf["data"] = {**conf["data"], "cache_dir": "", "test_cache_dir": ""}
    body: dict[str, Any] = {"config": conf, "fold": fold}
    if experiment:
        body["experiment"] = experiment
    if data:
        body["data"] = data
    blob = json.dumps(body, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _reads(cfg: ExperimentConfig) -> tuple[str, ...]:
    """The method-only config sections the config's method reads (fdp.methods `Method.reads`)."""
    from fdp.methods import get_method

    return get_method(cfg.method).reads


def config_key(cfg: ExperimentConfig) -> str:
    blob = json.dumps(key_dict(cfg, _reads(cfg)), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(cfg: ExperimentConfig, test: bool = False, newest: bool = False) -> tuple[Path | None, str | None]:
    """(absolute cache dir, None) or (None, one-line reason) for the training or test dataset.
    `newest`: of several caches none names, take the latest prepared (--smoke only)."""
    from fdp.data.cache import AmbiguousCacheError
    from fdp.runner import cache_dir_for

    dataset = cfg.data.test_dataset if test else cfg.data.dataset
    explicit = cfg.data.test_cache_dir if test else cfg.data.cache_dir
    try:
        path = Path(cache_dir_for(dataset, explicit, newest=newest)).expanduser().resolve()
    except AmbiguousCacheError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - the lookup's own one-line reason is what we report
        from fdp.data.synth import LAYOUTS

        synth = (f"; a --smoke run can train on the synthetic benchmark: `fdp-sweep synth --out data/synth-{dataset} "
                 f"--layout {dataset}`, then `fdp-sweep prepare {dataset} --root data/synth-{dataset}`"
                 if newest and dataset in LAYOUTS else "")
        return None, f"no prepared clip cache for {dataset}: {e}{synth}"
    if not path.exists():
        return None, (f"no prepared clip cache for {dataset} at {path} "
                      f"(run `fdp-sweep prepare {dataset} --root ...` first)")
    return path, None


def runtime_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config a worker runs: cache paths pinned to absolute paths resolved on the driver,
    because workers run in other directories (and on other machines, with a shared filesystem)."""
    over: dict[str, Any] = {}
    path, _ = cache_path(cfg)
    if path is not None:
        over["data.cache_dir"] = str(path)
    if cfg.data.test_dataset:
        tpath, _ = cache_path(cfg, test=True)
        if tpath is not None:
            over["data.test_cache_dir"] = str(tpath)
    return apply_overrides(cfg, over) if over else cfg


def select_folds(names: list[str], limit: int | list[str] | None) -> tuple[list[str], str | None]:
    """Apply the spec's `folds` limit: None (all), N (the first N), or explicit names."""
    if limit is None:
        return names, None
    if isinstance(limit, int):
        return names[:limit], None
    wanted = [str(f) for f in limit]
    unknown = [f for f in wanted if f not in names]
    if unknown:
        return [], f"folds: unknown fold(s) {', '.join(unknown)}; known: {', '.join(names)}"
    return [f for f in names if f in wanted], None


def expand(spec: SweepSpec) -> Plan:
    """Configurations and jobs of a spec. Folds come from the prepared cache
    (`fdp.runner.fold_names`); where a cache is missing the plan records why, once per experiment,
    and has no jobs for that experiment's configurations (a dry run still shows them)."""
    from fdp.runner import fold_names

    configs = configurations(spec)
    seen: dict[tuple[str, str], str] = {}
    kept, duplicates = [], []
    for c in configs:
        # e.g. a lambda_d grid on no_dic: resolve() zeroes lambda_d, so points collapse into one
        # config; running both would create two runs for one job key. Experiments of one spec
        # never collapse into each other (under --smoke they all train on the same data).
        k = (_exp_key(spec, c), config_key(c.cfg))
        if k in seen:
            duplicates.append(f"{c.label} resolves to the same config as {seen[k]}; run once")
            continue
        seen[k] = c.label
        kept.append(c)

    problems: list[str] = []
    notes: list[str] = []
    # data -> (folds, reasons, train cache, test cache)
    names_by_data: dict[tuple[str, ...], tuple[list[str], list[str], DataRef | None, DataRef | None]] = {}
    folds_of: dict[tuple[Any, ...], list[str] | None] = {}  # (experiment, data) -> selected folds
    jobs: list[Job] = []
    for c in kept:
        d = c.cfg.data
        data_id = (d.dataset, d.setting, d.cache_dir, d.test_dataset, d.test_cache_dir)
        if data_id not in names_by_data:
            # --smoke runs on the synthetic benchmark: of several of its caches the newest is
            # taken (and said); a real run refuses to choose (find_cache)
            train_path, why = cache_path(c.cfg, newest=spec.is_smoke)
            test_path, twhy = cache_path(c.cfg, test=True, newest=spec.is_smoke) if d.test_dataset else (None, None)
            reasons = [r for r in (why, twhy) if r]
            refs: list[DataRef | None] = [None, None]
            if not reasons:
                refs = [DataRef.of(train_path), DataRef.of(test_path) if test_path is not None else None]
                if spec.is_smoke:
                    notes.extend(_newest_note(r, explicit) for r, explicit in
                                 ((refs[0], d.cache_dir), (refs[1], d.test_cache_dir)) if r is not None)
            names_by_data[data_id] = ([] if reasons else fold_names(_pinned(c.cfg, *refs)), reasons, *refs)
        exp = c.experiment
        fk = (exp.index if exp else 0, data_id)
        if fk not in folds_of:
            folds_of[fk] = None
            names, reasons, _, _ = names_by_data[data_id]
            where = f"{exp.where}: " if exp is not None and exp.listed else ""
            if reasons:
                problems.extend(where + r for r in reasons)
            else:
                limit = exp.folds if exp else spec.folds
                selected, why = select_folds(names, limit)
                if why:
                    problems.append(where + why)
                else:
                    folds_of[fk] = selected
                if isinstance(limit, int) and limit > len(names):  # e.g. folds: 99 meant as "all"
                    notes.append(f"{where}folds: {limit} asked, the data has {len(names)}: all {len(names)} run")
        _, _, ref, tref = names_by_data[data_id]
        if ref is None:
            continue
        cfg = _pinned(c.cfg, ref, tref)
        fps = ref.fingerprint + (f"->{tref.fingerprint}" if tref is not None else "")
        for fold in folds_of[fk] or []:
            jobs.append(Job(job_key(cfg, fold, _exp_key(spec, c), data=fps), f"{c.label}|fold={fold}", c.label,
                            fold, c.variant, c.seed, cfg, exp, ref, tref))
    if spec.from_search:
        notes.append(f"from_search {spec.from_search}: overrides {_text(spec.overrides)} (the study's best values "
                     f"among them) on folds {', '.join(map(str, spec.folds or []))} (its holdout subjects)")
    return Plan(spec, kept, jobs, list(dict.fromkeys(problems)), duplicates, list(dict.fromkeys(n for n in notes if n)))


def _text(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "none"


def _pinned(cfg: ExperimentConfig, ref: DataRef | None, tref: DataRef | None) -> ExperimentConfig:
    """`cfg` reading exactly the caches found for it (absolute paths: workers run elsewhere)."""
    over = {"data.cache_dir": ref.path} if ref is not None else {}
    if tref is not None:
        over["data.test_cache_dir"] = tref.path
    return apply_overrides(cfg, over) if over else cfg


def _newest_note(ref: DataRef, explicit: str) -> str:
    """Under --smoke, when several caches of the dataset exist and none is named: which one runs."""
    from fdp.data.cache import default_cache_root

    if explicit:
        return ""
    try:
        n = len([d for d in default_cache_root().glob(f"{ref.dataset}-*") if (d / "index.json").is_file()])
    except Exception:  # noqa: BLE001 - only the note is lost
        return ""
    if n < 2:
        return ""
    return (f"--smoke: {n} caches of {ref.dataset}, none named: using the newest, {ref.path} (fingerprint "
            f"{ref.fingerprint}); name one with --set data.cache_dir=PATH")


def _exp_key(spec: SweepSpec, c: Configuration) -> str:
    """The experiment key that enters a job key: only in specs that list `experiments:`."""
    return c.experiment.key if spec.multi and c.experiment is not None else ""
