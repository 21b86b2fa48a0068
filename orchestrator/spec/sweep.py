"""Sweep specs: one YAML file per paper table (docs/sweeps.md) -> validated `SweepSpec` -> the
list of `Configuration`s it asks for (experiment x variant x grid point x seed).

An *experiment* is one dataset / class setting / protocol (`Experiment`): a spec names one at the
top level (`dataset:`, `setting:`, ...) or several in an `experiments:` list (Tables 4-8 need six
settings, or both cross-dataset directions, from one file). Under `--smoke` the smoke block's
`dataset`/`setting`/`protocol`/`test_dataset` replace the data every experiment *trains on*, while
each experiment keeps its identity (`Experiment.key`): a smoke run of the state-of-the-art sweep
trains every setting on the synthetic benchmark and still fills every cell of Tables 4-7.

Configuration layers (STYLE.md): code defaults -> variant diff -> spec (its `profile` of
fdp.profiles, the experiment's data, `steps`, `overrides`, one grid point, the seed) -> `smoke` block
(with `--smoke`: its `profile`, then its own keys) -> CLI `--set`.
Every configuration is built with `fdp.variants.build_config`, so a bad key or value is reported
by the same machinery (and with the same "did you mean") as everywhere else.

Validation collects every mistake and reports one line each (`SpecError.problems`) instead of
stopping at the first: a user fixing a long spec should not need one run per typo.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import yaml

from fdp.config import ConfigError, ExperimentConfig
from fdp.profiles import PROFILES
from fdp.variants import build_config
from orchestrator.spec import errors, schema
from orchestrator.spec.schema import DATA_KEYS, Resources, SweepFile, experiment_key


class SpecError(ValueError):
    """A sweep spec with mistakes; `problems` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Experiment:
    """One dataset / class setting / protocol of a spec: the jobs behind one cell group of
    Tables 4-8. `key` names it in labels, job keys, the `fdp.experiment` tag and the tables."""

    key: str  # LOSO: the setting ("samm/3"); cross: "<dataset>-><test_dataset>" ("casme2->samm")
    dataset: str  # as the spec declares it (tagged on every job run)
    setting: str
    protocol: str
    test_dataset: str  # cross protocol only
    seeds: list[int]
    folds: int | list[str] | None  # None: all folds; N: the first N; list: those folds
    runs_on: dict[str, str]  # DATA_KEYS the jobs train on: the declared ones, or under --smoke the smoke block's
    # (e.g. synthetic casme2/5 for every experiment)
    index: int  # position in `experiments:` (0 for a top-level experiment)
    listed: bool  # whether it comes from an `experiments:` list (messages name it so)
    smoke: bool = False  # --smoke applied: `runs_on` and seeds/folds come from the smoke block

    @property
    def where(self) -> str:
        """How messages name it: "experiments[2] (samm/3)"; "" for a spec's top-level experiment."""
        return f"experiments[{self.index}] ({self.key})" if self.listed else ""


@dataclass
class SweepSpec:
    """A validated sweep spec. `raw` is the parsed YAML, kept for the spec hash and the logs. No field has a
    default of its own: `parse_spec` sets each one, from the schema's (orchestrator.spec.schema.SweepFile)."""

    name: str
    dataset: str  # single-experiment spec: the data its jobs train on (after --smoke); else ""
    setting: str
    variants: list[str]
    reference: str  # the variant the others are compared with (paired tests; if it is among `variants`)
    table: str | None  # "9", or "4,5,6,7" for a spec that fills several tables (tag fdp.table)
    protocol: str
    test_dataset: str
    experiments: list[Experiment]  # at least one; see `multi`
    multi: bool  # the spec lists `experiments:`: labels and job keys then name the experiment
    grid: dict[str, list[Any]]
    overrides: dict[str, Any]
    seeds: list[int]  # the default of every experiment
    steps: int | None
    profile: str  # a size profile of fdp.profiles, the layer under `steps` and `overrides` ("" = none)
    folds: int | list[str] | None  # default of every experiment: None (all), N, or names
    resources: Resources
    retries: int  # Ray retries of a job whose worker process died
    experiment: str  # MLflow experiment name (default: the sweep name)
    smoke: dict[str, Any]  # dotted overrides (+ `folds`) of --smoke
    search: dict[str, Any] | None  # Optuna search block, executed by the search command
    from_search: str  # the Optuna study whose best values and holdout folds it runs ("" = none)
    protocol_probe: dict[str, Any] | None  # {select_on_test: [metric], every: N}: the test-selected record, or None (off)
    sets: dict[str, Any]  # CLI --set overrides, applied last
    is_smoke: bool  # whether the smoke block is applied
    raw: dict[str, Any]
    path: str

    @property
    def spec_hash(self) -> str:
        """Identity of what this spec asks for: the parsed YAML plus --set and --smoke. Re-running
        the same command gives the same hash, which is how a re-run finds its sweep to resume.
        Order-independent: 12 hex of the sorted JSON."""
        blob = json.dumps({"spec": self.raw, "sets": self.sets, "smoke": self.is_smoke}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class Configuration:
    """One trained configuration: a variant at one grid point with one seed (all its folds)."""

    label: str  # human label, e.g. "fdp|lambda_d=10|seed0" ("samm/3|fdp|seed0" in an experiments list)
    variant: str
    point: dict[str, Any]  # the grid point (dotted key -> value)
    seed: int
    overrides: dict[str, Any]  # every override applied on top of the variant, in order
    cfg: ExperimentConfig
    experiment: Experiment | None = None  # the experiment whose data it trains on


# ---------------------------------------------------------------------------------------------
# loading and validation


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names one key twice (YAML keeps the last one without a word)."""

    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"key {key!r} given twice")
        self.key, self.first, self.second = key, first, second


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate mapping keys: a second `overrides:` block once
    silently dropped `train.steps: 3` and the jobs ran 500 steps."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], line)
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                continue
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_spec(path: str | Path, sets: dict[str, Any] | None = None, smoke: bool = False,
              resolve: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
              keys: dict[str, Any] | None = None) -> SweepSpec:
    """Read and validate a spec file; raises SpecError with one line per mistake. `resolve` turns
    a spec naming `from_search: <study>` into the study's best configuration on its holdout
    subjects -- `orchestrator.search.study.load_spec_from_search` passes it: the spec layer knows no study.
    `keys`: top-level keys of the file replaced before validation (`fdp-sweep demo --seed 1`:
    {"seeds": [1]}), so the spec, its hash and its jobs are those of a file saying so."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SpecError([f"{path}: cannot read the spec ({e.strerror or e})"]) from None
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKeyError as e:
        raise SpecError([f"{path}:{e.second}: key {e.key!r} given twice (first at {path}:{e.first}); "
                         f"YAML would keep only the last one: merge them"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise SpecError([f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})"]) from None
    if keys and isinstance(raw, dict):
        raw = {**raw, **keys}
    resolved = isinstance(raw, dict) and "from_search" in raw and resolve is not None
    if resolved:
        raw = resolve(raw)  # the study's best values and its never-searched holdout subjects (docs/search.md)
    return parse_spec(raw, sets=sets, smoke=smoke, source=str(p), resolved=resolved)


def parse_spec(raw: Any, sets: dict[str, Any] | None = None, smoke: bool = False,
               source: str = "<spec>", resolved: bool = False) -> SweepSpec:
    """Validate parsed YAML against the schema (orchestrator.spec.schema); collects all mistakes, then
    raises SpecError if there are any. `resolved`: its `from_search` study is already resolved into
    `overrides` and `folds` (`load_spec` with `resolve`), and the name stays for the record."""
    if not isinstance(raw, dict):
        raise SpecError([f"{source}: a sweep spec is a YAML mapping (name:, dataset:, variants:, ...)"])
    problems = [f"{source}: {line}" for line in errors.problems(SweepFile, raw)]
    if "from_search" in raw and not problems and not resolved:
        problems.append(f"{source}: from_search: a study is resolved when the file is read (`fdp-sweep run`, "
                        "orchestrator.search.study.load_spec_from_search)")
    sets = dict(sets or {})
    problems += [f"--set: {m}" for k, v in sets.items() for m in schema.config_problems(str(k), v)]
    if problems:
        raise SpecError(_unique(problems))
    f = SweepFile.model_validate(raw)
    multi = f.experiments is not None
    smoke_data = {k: getattr(f.smoke, k) for k in DATA_KEYS if k in (raw.get("smoke") or {})} if smoke else {}
    experiments = []
    for i, item in enumerate(f.experiments if multi else [f]):  # an item's own seeds/folds, else the spec's
        data = {"dataset": item.dataset, "setting": item.setting, "protocol": item.protocol,
                "test_dataset": item.test_dataset if item.protocol == "cross" else ""}
        exp = Experiment(experiment_key(**data), **data, seeds=list(f.seeds if item.seeds is None else item.seeds),
                         folds=f.folds if item.folds is None else item.folds, runs_on=dict(data), index=i, listed=multi)
        if smoke:
            problems += _smoke_map(exp, smoke_data, f.smoke, source)
        experiments.append(exp)
    one = None if multi else experiments[0]  # a single-experiment spec shows its data at the top level
    # --smoke is a CPU run of a tiny model by definition: no GPU request that would leave jobs pending forever
    # on a laptop, and one CPU a job, so a 2-core laptop runs two at once
    resources = f.resources.model_copy(update={"gpus": 0.0, "cpus": min(f.resources.cpus, 1.0)}) if smoke \
        else f.resources
    spec = SweepSpec(
        name=f.name, variants=list(f.variants), reference=f.reference, experiments=experiments, multi=multi,
        **(one.runs_on if one else {"dataset": "", "setting": "", "protocol": "loso", "test_dataset": ""}),
        table=",".join(map(str, f.table)) if isinstance(f.table, list) else None if f.table is None else str(f.table),
        grid=dict(f.grid), overrides=dict(f.overrides), steps=f.steps, profile=f.profile,
        seeds=one.seeds if one else list(f.seeds), folds=one.folds if one else f.folds,
        resources=resources, retries=f.retries,
        experiment=f.tracking.experiment or f.name, smoke=raw.get("smoke") or {}, search=raw.get("search"),
        from_search=f.from_search or "",
        protocol_probe=f.protocol_probe.model_dump() if f.protocol_probe is not None else None,
        sets=sets, is_smoke=smoke, raw=raw, path=source,
    )
    if not problems:
        # Only now are the pieces sound enough to build every configuration; that catches what
        # the key check cannot: bad value types and inconsistent combinations.
        try:
            confs = configurations(spec)
        except SpecError as e:
            problems.extend(e.problems)
        else:
            if spec.search is not None:
                problems.extend(_check_space_values(spec, confs))
    if problems:
        raise SpecError(_unique(problems))
    return spec


def _smoke_map(exp: Experiment, smoke_data: dict[str, Any], block: Any, source: str) -> list[str]:
    """Under --smoke: the smoke block's data, seeds and folds replace what `exp` runs on; its key
    (the table cell it fills) stays. `protocol: loso` there also drops the test dataset. The
    problems of data that cannot stand in for the experiment's, one line each."""
    exp.smoke = True
    data = {**exp.runs_on, **smoke_data}
    if data.get("protocol") == "loso":
        data["test_dataset"] = ""
    where = f"smoke: {exp.where}: " if exp.listed else "smoke: "
    checked = {k: v for k, v in data.items() if k != "test_dataset" or data.get("protocol") == "cross"}
    problems = [f"{source}: {where}{k}: {m}" for k, m in schema.data_problems(checked)]
    if not problems:
        exp.runs_on = {k: data[k] for k in DATA_KEYS}
    if block.seeds is not None:
        exp.seeds = list(block.seeds)
    if block.folds is not None:
        exp.folds = block.folds
    return problems


@dataclass
class SearchSettings:
    """The `search:` block as a search runs it (docs/search.md): the keys of `orchestrator.spec.schema.Search`,
    each declared there with its default and meaning, validated and then resolved against the spec around it
    (`parse_search`). Only what the resolution changes is said here."""

    space: dict[str, dict[str, Any]]  # as written, less the keys the smoke block or --set pin
    holdout: int | float | list[str]  # subject names as text
    trials: int  # --trials, else `smoke_trials` with --smoke, else `trials`
    parallel: int
    sampler: str
    seed: int
    startup_trials: int
    metric: str
    direction: str  # the metric's unless given
    holdout_seed: int
    folds: int | None
    p_threshold: float | None  # the pruner's; None: no pruning
    n_startup_steps: int  # the pruner's (2 without one)
    study: str  # default: the spec name; "-smoke" appended with --smoke
    storage: str
    enqueue: list[dict[str, Any]]  # less the pinned keys
    smoke_trials: int


def parse_search(spec: SweepSpec, trials: int | None = None) -> SearchSettings:
    """The search block of `spec` (validated against the schema), with what a search asks of the
    spec around it; raises SpecError with one line per mistake."""
    src, block = spec.path, spec.search
    if block is None:
        raise SpecError([f"{src}: no `search:` block; see docs/search.md"])
    if not isinstance(block, dict):
        raise SpecError([f"{src}: search: expected a mapping (space:, trials:, metric:, ...), got {block!r}"])
    problems = [f"{src}: search: {line}" for line in errors.problems(schema.Search, block)]

    def bad(msg: str) -> None:
        problems.append(f"{src}: search: {msg}")

    if spec.multi:
        bad(f"experiments: a search tunes one dataset/setting, the spec lists {len(spec.experiments)}; "
            "give dataset: and setting: at the top level")
    if len(spec.variants) != 1:
        bad(f"a search tunes one variant; the spec lists {len(spec.variants)} ({', '.join(spec.variants)})")
    if spec.grid:
        bad("grid: a search samples its `space`; drop the grid (or move its keys into the space)")
    if spec.protocol_probe:
        bad("protocol_probe: a search's folds evaluate its own validation subjects; record the published "
            "protocol in the sweep that reports the holdout subjects")
    if len(spec.seeds) != 1:
        bad("seeds: a search uses one seed")
    if spec.protocol != "loso":
        bad("the search's inner validation folds are leave-one-subject-out: use protocol: loso")
    if block.get("holdout") is None:
        bad("holdout: required -- the subjects a table will report, which the search never sees: "
            "a number (seeded choice) or a list of subject names")
    if problems:
        raise SpecError(_unique(problems))
    b = schema.Search.model_validate(block)
    # keys the smoke block or --set pin are not searched: a sampled value that the config then
    # replaces would be logged as a parameter it never was
    pinned = pinned_keys(spec)
    pruning = isinstance(b.pruner, schema.Pruner)
    pruner = b.pruner if pruning else schema.Pruner()  # `none`: no threshold; n_startup_steps its default
    same = {f.name: getattr(b, f.name) for f in fields(SearchSettings) if f.name in schema.Search.model_fields}
    return SearchSettings(**{
        **same, "space": {k: d for k, d in block["space"].items() if k not in pinned},
        "holdout": [str(s) for s in b.holdout] if isinstance(b.holdout, list) else b.holdout,
        "trials": trials if trials is not None else (b.smoke_trials if spec.is_smoke else b.trials),
        "direction": b.direction or schema.METRICS[b.metric],
        "p_threshold": pruner.p_threshold if pruning else None, "n_startup_steps": pruner.n_startup_steps,
        "study": (b.study or spec.name) + ("-smoke" if spec.is_smoke else ""),
        "enqueue": [{k: v for k, v in e.items() if k not in pinned} for e in block.get("enqueue") or []],
    })


def pinned_keys(spec: SweepSpec) -> set[str]:
    """Keys the search does not sample: --set and (with --smoke) the smoke block replace them."""
    return set(spec.sets) | set(smoke_overrides(spec))  # incl. the smoke profile's keys


def _check_space_values(spec: SweepSpec, confs: list[Configuration]) -> list[str]:
    """Each value the search can draw (every choice; a range's both ends), set on its own on top
    of each configuration as a trial sets it, builds: one that cannot would fail every trial
    that draws it. (Combinations of several keys are checked when a trial is asked.)"""
    out, pinned = [], pinned_keys(spec)
    for k, d in (spec.search.get("space") or {}).items():
        if k in pinned:
            continue
        values = d["choices"] if d["type"] == "categorical" else [d["low"], d["high"]]
        for conf in confs:
            for v in values:
                try:
                    build_config(conf.variant, {**conf.overrides, k: v})
                except ConfigError as e:
                    out.append(f"{spec.path}: search: space: {k}: {v!r} cannot be built: {e}")
    return _unique(out)


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


# ---------------------------------------------------------------------------------------------
# spec -> configurations


def base_overrides(spec: SweepSpec, exp: Experiment) -> dict[str, Any]:
    """The layer the spec's own fields contribute (an experiment's data and the step budget),
    before `overrides`."""
    data = exp.runs_on
    over: dict[str, Any] = {"data.dataset": data["dataset"], "data.setting": data["setting"],
                            "data.test_dataset": data["test_dataset"]}
    if data.get("protocol") == "leave-one-dataset-out":
        over["data.fold_by"] = "database"
    if spec.steps is not None:
        over["train.steps"] = spec.steps
    if spec.protocol_probe:  # asked for by name: the test-selected record beside the honest result
        over["protocol_probe.select_on_test"] = list(spec.protocol_probe["select_on_test"])
        over["protocol_probe.every"] = spec.protocol_probe["every"]
    return over


def smoke_overrides(spec: SweepSpec) -> dict[str, Any]:
    """The smoke layer: CPU, its profile, then the smoke block's dotted keys (its own fields -- data,
    seeds, folds, profile -- are not config keys)."""
    if not spec.is_smoke:
        return {}
    over: dict[str, Any] = {"train.device": "cpu"}
    if spec.smoke.get("profile") in PROFILES:
        over.update(PROFILES[spec.smoke["profile"]])
    over.update({k: v for k, v in spec.smoke.items() if k not in schema.Smoke.model_fields})
    return over


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of the grid, in the order the spec lists keys and values (no keys: one empty point)."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def short_keys(keys: list[str]) -> dict[str, str]:
    """Dotted key -> the shortest dotted suffix that is unique among `keys` (for labels)."""
    out = {}
    for k in keys:
        parts = k.split(".")
        for n in range(1, len(parts) + 1):
            cand = ".".join(parts[-n:])
            if sum(1 for o in keys if o == cand or o.endswith("." + cand)) == 1:
                out[k] = cand
                break
        else:
            out[k] = k
    return out


def format_value(v: Any) -> str:
    """Compact, stable text of a grid value for labels: 10.0 -> 10, [1, 2] -> 1,2."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, (list, tuple)):
        return ",".join(format_value(x) for x in v)
    return str(v)


def config_label(variant: str, point: dict[str, Any], seed: int, names: dict[str, str]) -> str:
    """'fdp|lambda_d=10|seed0': variant, grid point (short key=value, sorted by dotted key so that
    reordering the grid renames nothing), seed."""
    parts = [variant] + [f"{names[k]}={format_value(point[k])}" for k in sorted(point)] + [f"seed{seed}"]
    return "|".join(parts)


def configurations(spec: SweepSpec) -> list[Configuration]:
    """Every configuration of the spec (experiment x variant x grid point x seed), each built and
    resolved. In an `experiments:` spec each label starts with the experiment key ("samm/3|fdp|seed0").

    Raises SpecError listing every configuration that does not build (bad value, inconsistent
    variant/override combination)."""
    names = short_keys(list(spec.grid))
    out: list[Configuration] = []
    problems: list[str] = []
    for exp in spec.experiments:
        prefix = f"{exp.key}|" if spec.multi else ""
        for variant in spec.variants:
            for point in grid_points(spec.grid):
                for seed in exp.seeds:
                    over = {**PROFILES.get(spec.profile, {}), **base_overrides(spec, exp), **spec.overrides,
                            **point, "train.seed": seed,
                            **smoke_overrides(spec), **spec.sets}
                    label = prefix + config_label(variant, point, seed, names)
                    try:
                        cfg = build_config(variant, over)
                    except ConfigError as e:
                        problems.append(f"{spec.path}: {label}: {e}")
                        continue
                    out.append(Configuration(label, variant, point, seed, over, cfg, exp))
    if problems:
        raise SpecError(_unique(problems))
    return out
