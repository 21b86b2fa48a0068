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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from fdp.config import ConfigError, ExperimentConfig, all_keys, apply_overrides, suggest
from fdp.profiles import PROFILES
from fdp.variants import VARIANTS, build_config


class SpecError(ValueError):
    """A sweep spec with mistakes; `problems` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# Top-level keys, in the order docs/sweeps.md documents them.
TOP_KEYS = ("name", "table", "dataset", "setting", "protocol", "test_dataset", "experiments", "variants",
            "profile", "grid", "overrides", "seeds", "steps", "folds", "resources", "retries", "tracking", "smoke",
            "search")
REQUIRED = ("name", "variants")  # and dataset + setting, unless the spec lists `experiments:`
# what selects the data of an experiment (top level, an `experiments:` item, or the smoke block)
DATA_KEYS = ("dataset", "setting", "protocol", "test_dataset")
# keys of one `experiments:` item: its data, and its own seeds / folds (default: the top-level ones)
EXPERIMENT_KEYS = DATA_KEYS + ("seeds", "folds")
RESOURCE_KEYS = ("cpus", "gpus")
TRACKING_KEYS = ("experiment",)
PROTOCOLS = ("loso", "cross", "composite", "leave-one-dataset-out")
# merged datasets (fdp.data.merged) and the protocol each one is evaluated under
MERGED_PROTOCOL = {"composite": "composite", "lodo": "leave-one-dataset-out"}
# A name becomes a directory (checkpoints) and an MLflow tag: keep it path- and shell-safe.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Keys the spec sets through its own fields; a grid or override naming them would be ambiguous.
RESERVED_KEYS = {"train.seed": "seeds", "data.dataset": "dataset", "data.setting": "setting",
                 "data.test_dataset": "test_dataset", "data.fold_by": "protocol", "variant": "variants"}
SEARCH_PARAM_TYPES = ("float", "int", "categorical")
# smoke-block keys that are not config overrides: the data every experiment trains on under
# --smoke (so any table's sweep smoke-tests on the synthetic benchmark), its seeds and folds
SMOKE_TOP_KEYS = DATA_KEYS + ("seeds", "folds", "profile")


@dataclass(frozen=True)
class Resources:
    """What one fold job asks the Ray scheduler for."""

    cpus: float = 1.0  # CPU cores per job (Ray also sets OMP_NUM_THREADS from it)
    gpus: float = 0.0  # GPU fraction per job; fractions only do accounting, jobs share the device

    def jobs_per_gpu(self) -> int:
        """Jobs that share one GPU: Ray places a fractional request on a single GPU, so fractions
        are counted per GPU, not over the node (0.4 on 2 GPUs: 2 per GPU = 4 jobs, not 2 // 0.4 = 5).
        Ray counts resources in units of 1e-4. 0 for a CPU-only job; 1 for whole GPUs."""
        if self.gpus <= 0:
            return 0
        if self.gpus >= 1:
            return 1
        return RAY_UNITS // max(1, round(self.gpus * RAY_UNITS))

    def fit(self, cpus: float, gpus: float) -> int:
        """How many such jobs one node with `cpus` CPUs and `gpus` GPUs runs at once."""
        n = int(cpus // self.cpus) if self.cpus > 0 else 10**6
        if self.gpus >= 1:
            n = min(n, int(gpus // self.gpus))
        elif self.gpus > 0:
            n = min(n, int(gpus) * self.jobs_per_gpu())
        return n


RAY_UNITS = 10_000  # Ray's fixed-point resolution of resource quantities (1e-4)


@dataclass
class Experiment:
    """One dataset / class setting / protocol of a spec: the jobs behind one cell group of
    Tables 4-8. `key` names it in labels, job keys, the `fdp.experiment` tag and the tables."""

    key: str  # LOSO: the setting ("samm/3"); cross: "<dataset>-><test_dataset>" ("casme2->samm")
    dataset: str  # as the spec declares it (tagged on every job run)
    setting: str
    protocol: str = "loso"
    test_dataset: str = ""  # cross protocol only
    seeds: list[int] = field(default_factory=lambda: [0])
    folds: int | list[str] | None = None  # None: all folds; N: the first N; list: those folds
    runs_on: dict[str, str] = field(default_factory=dict)  # DATA_KEYS the jobs train on: the
    # declared ones, or under --smoke the smoke block's (e.g. synthetic casme2/5 for every experiment)
    smoke: bool = False  # --smoke applied: `runs_on` and seeds/folds come from the smoke block
    index: int = 0  # position in `experiments:` (0 for a top-level experiment)
    listed: bool = False  # whether it comes from an `experiments:` list (messages name it so)

    @property
    def where(self) -> str:
        """How messages name it: "experiments[2] (samm/3)"; "" for a spec's top-level experiment."""
        return f"experiments[{self.index}] ({self.key})" if self.listed else ""


def experiment_key(dataset: str, setting: str, protocol: str, test_dataset: str) -> str:
    """An experiment's identity, as `orchestrator.tables.row_keys` reads it: the setting (LOSO)
    or the direction "<dataset>-><test_dataset>" (cross-dataset, Table 8)."""
    return f"{dataset}->{test_dataset}" if protocol == "cross" else setting


@dataclass
class SweepSpec:
    """A validated sweep spec. `raw` is the parsed YAML, kept for the spec hash and the logs."""

    name: str
    dataset: str  # single-experiment spec: the data its jobs train on (after --smoke); else ""
    setting: str
    variants: list[str]
    table: str | None = None  # "9", or "4,5,6,7" for a spec that fills several tables (tag fdp.table)
    protocol: str = "loso"
    test_dataset: str = ""
    experiments: list[Experiment] = field(default_factory=list)  # at least one; see `multi`
    multi: bool = False  # the spec lists `experiments:`: labels and job keys then name the experiment
    grid: dict[str, list[Any]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])  # the default of every experiment
    steps: int | None = None
    profile: str = ""  # a size profile of fdp.profiles, the layer under `steps` and `overrides` ("" = none)
    folds: int | list[str] | None = None  # default of every experiment: None (all), N, or names
    resources: Resources = field(default_factory=Resources)
    retries: int = 2  # Ray retries of a job whose worker process died
    experiment: str = ""  # MLflow experiment name (default: the sweep name)
    smoke: dict[str, Any] = field(default_factory=dict)  # dotted overrides (+ `folds`) of --smoke
    search: dict[str, Any] | None = None  # Optuna search block, executed by the search command
    sets: dict[str, Any] = field(default_factory=dict)  # CLI --set overrides, applied last
    is_smoke: bool = False  # whether the smoke block is applied
    raw: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def spec_hash(self) -> str:
        """Identity of what this spec asks for: the parsed YAML plus --set and --smoke. Re-running
        the same command gives the same hash, which is how a re-run finds its sweep to resume."""
        return spec_hash(self.raw, self.sets, self.is_smoke)


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


def spec_hash(raw: dict[str, Any], sets: dict[str, Any] | None = None, smoke: bool = False) -> str:
    """Order-independent hash (12 hex) of the spec content and the command-line layers."""
    blob = json.dumps({"spec": raw, "sets": sets or {}, "smoke": bool(smoke)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


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


def load_spec(path: str | Path, sets: dict[str, Any] | None = None, smoke: bool = False) -> SweepSpec:
    """Read and validate a spec file; raises SpecError with one line per mistake."""
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
    if isinstance(raw, dict) and "from_search" in raw:
        # the study's best values and its never-searched holdout subjects (docs/search.md)
        from orchestrator.search import resolve_from_search

        raw = resolve_from_search(raw)
    return parse_spec(raw, sets=sets, smoke=smoke, source=str(p))


def parse_spec(raw: Any, sets: dict[str, Any] | None = None, smoke: bool = False,
               source: str = "<spec>") -> SweepSpec:
    """Validate parsed YAML; collects all mistakes, then raises SpecError if there are any."""
    problems: list[str] = []

    def bad(msg: str) -> None:
        problems.append(f"{source}: {msg}")

    if not isinstance(raw, dict):
        raise SpecError([f"{source}: a sweep spec is a YAML mapping (name:, dataset:, variants:, ...)"])
    multi = "experiments" in raw
    for k in raw:
        if k not in TOP_KEYS:
            bad(f"unknown key {k!r}{suggest(str(k), list(TOP_KEYS))}")
    for k in REQUIRED + (() if multi else ("dataset", "setting")):
        if k not in raw:
            bad(f"missing required key {k!r}")

    name = raw.get("name", "")
    if "name" in raw and (not isinstance(name, str) or not NAME_RE.match(name)):
        bad(f"name: expected a word of letters, digits, '_', '.', '-' (used in paths), got {name!r}")
    table = raw.get("table")
    if isinstance(table, list) and table and all(isinstance(t, (int, str)) and not isinstance(t, bool)
                                                 for t in table):
        table = ",".join(str(t) for t in table)
    elif table is not None and (not isinstance(table, (int, str)) or isinstance(table, bool)):
        bad(f"table: expected a table number or a list of them, got {table!r}")
        table = None

    # seeds / folds: the spec's own (single form), or the default of every listed experiment
    seeds = _seeds(raw.get("seeds", [0]), "seeds", bad)
    folds = raw.get("folds")
    if folds is not None:
        problems.extend(f"{source}: folds: {m}" for m in _check_folds(folds))

    smoke_block = raw.get("smoke") or {}
    if not isinstance(smoke_block, dict):
        bad(f"smoke: expected a mapping of dotted config key -> value (and `folds`), got {smoke_block!r}")
        smoke_block = {}
    smoke_data = {k: v for k, v in smoke_block.items() if k in DATA_KEYS} if smoke else {}
    smoke_seeds = _seeds(smoke_block["seeds"], "smoke.seeds", bad) if smoke and "seeds" in smoke_block else None
    smoke_folds = smoke_block.get("folds") if smoke else None

    if multi:
        for k in DATA_KEYS:
            if k in raw:
                bad(f"{k}: with `experiments:`, give {k} in each experiment")
        items = raw.get("experiments")
        if not isinstance(items, list) or not items:
            bad("experiments: expected a non-empty list of mappings {dataset:, setting:, protocol:, "
                f"test_dataset:, seeds:, folds:}}, got {items!r}")
            items = []
    else:
        items = [{k: raw[k] for k in DATA_KEYS if k in raw}]
    experiments: list[Experiment] = []
    for i, item in enumerate(items):
        exp = _parse_experiment(item, i, multi, seeds, folds, bad)
        if exp is None:
            continue
        twin = next((e for e in experiments if e.key == exp.key), None)
        if twin is not None:
            bad(f"experiments[{i}]: the same experiment as experiments[{twin.index}] ({exp.key}); "
                "list each dataset/setting once")
            continue
        if smoke:
            _smoke_map(exp, smoke_data, smoke_seeds, smoke_folds, bad)
        experiments.append(exp)

    variants = raw.get("variants", [])
    if isinstance(variants, str):
        variants = [variants]
    if not isinstance(variants, list) or ("variants" in raw and not variants):
        bad(f"variants: expected a non-empty list of variant names, got {raw.get('variants')!r}")
        variants = []
    for v in variants:
        if not isinstance(v, str) or v not in VARIANTS:
            bad(f"variants: unknown variant {v!r}{suggest(str(v), sorted(VARIANTS))}; "
                f"list them with `fdp-sweep list-variants`")
    if len(set(map(str, variants))) != len(variants):
        bad("variants: a variant is listed twice")

    keys = all_keys()
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict):
        bad(f"grid: expected a mapping of dotted config key -> list of values, got {grid!r}")
        grid = {}
    for k, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            bad(f"grid: {k}: expected a non-empty list of values, got {vals!r}")
            vals = []
        problems.extend(f"{source}: grid: {m}" for m in _check_key(str(k), keys, *vals))
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        bad(f"overrides: expected a mapping of dotted config key -> value, got {overrides!r}")
        overrides = {}
    for k, v in overrides.items():
        problems.extend(f"{source}: overrides: {m}" for m in _check_key(str(k), keys, v))

    steps = raw.get("steps")
    if steps is not None and not _pos_int(steps):
        bad(f"steps: expected a positive integer (optimizer steps per fold), got {steps!r}")
    if steps is not None and "train.steps" in overrides:
        # the overrides layer would silently win; one budget, said once
        bad(f"steps: {steps!r} and overrides: train.steps: {overrides['train.steps']!r} both set the step budget; "
            "keep one")

    resources = Resources()
    res = _mapping(raw, "resources", RESOURCE_KEYS, "{cpus: N, gpus: fraction}", bad)
    cpus, gpus = res.get("cpus", 1.0), res.get("gpus", 0.0)
    if not _number(cpus) or cpus <= 0:
        bad(f"resources.cpus: expected a positive number, got {cpus!r}")
        cpus = 1.0
    if not _number(gpus) or gpus < 0 or (gpus > 1 and not float(gpus).is_integer()):
        bad(f"resources.gpus: expected a fraction in [0, 1] or a whole number of GPUs, got {gpus!r}")
        gpus = 0.0
    resources = Resources(float(cpus), float(gpus))
    retries = raw.get("retries", 2)
    if not (isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0):
        bad(f"retries: expected a non-negative integer, got {retries!r}")
        retries = 2

    tracking = _mapping(raw, "tracking", TRACKING_KEYS, "{experiment: name}", bad)
    experiment = tracking.get("experiment", name if isinstance(name, str) else "")
    if not isinstance(experiment, str) or not experiment.strip():
        bad(f"tracking.experiment: expected a non-empty name, got {experiment!r}")

    profile_name = raw.get("profile", "")
    for where, v in (("profile", profile_name), ("smoke.profile", smoke_block.get("profile", ""))):
        if v and (not isinstance(v, str) or v not in PROFILES):
            bad(f"{where}: unknown profile {v!r}{suggest(str(v), sorted(PROFILES))}; known: {', '.join(PROFILES)}")
    for k, v in smoke_block.items():
        if k in DATA_KEYS or k in ("seeds", "profile"):
            continue  # checked as the data / seeds of every experiment when --smoke applies them
        if k == "folds":
            problems.extend(f"{source}: smoke.folds: {m}" for m in _check_folds(v))
        else:
            problems.extend(f"{source}: smoke: {m}" for m in _check_key(str(k), keys, v))

    search = raw.get("search")
    if search is not None:
        problems.extend(f"{source}: search: {m}" for m in _check_search(search, keys))

    sets = dict(sets or {})
    for k, v in sets.items():
        problems.extend(f"--set: {m}" for m in _check_key(str(k), keys, v))

    # A single-experiment spec exposes the data it trains on as its own fields (the search
    # command and older callers read them); a listed spec has them per experiment only.
    first = experiments[0].runs_on if experiments and not multi else {}
    spec = SweepSpec(
        name=name if isinstance(name, str) else "", dataset=first.get("dataset", ""),
        setting=first.get("setting", ""), variants=[v for v in variants if isinstance(v, str)],
        table=str(table) if table is not None else None, protocol=first.get("protocol", "loso"),
        test_dataset=first.get("test_dataset", ""), experiments=experiments, multi=multi, grid=grid,
        overrides=overrides, seeds=experiments[0].seeds if experiments and not multi else seeds,
        steps=steps if _pos_int(steps) else None,
        folds=experiments[0].folds if experiments and not multi else folds, resources=resources,
        retries=retries, experiment=experiment if isinstance(experiment, str) else "",
        smoke=smoke_block, search=search, sets=sets, is_smoke=smoke, raw=raw, path=source,
        profile=profile_name if isinstance(profile_name, str) and profile_name in PROFILES else "",
    )
    if smoke:
        # --smoke is a CPU run by definition: no GPU request that would leave jobs pending forever
        # on a laptop.
        spec.resources = Resources(spec.resources.cpus, 0.0)
    if not problems:
        # Only now are the pieces sound enough to build every configuration; that catches what
        # the key check cannot: bad value types and inconsistent combinations.
        try:
            confs = configurations(spec)
        except SpecError as e:
            problems.extend(e.problems)
        else:
            if isinstance(search, dict):
                problems.extend(_check_space_values(spec, confs))
    if problems:
        raise SpecError(_unique(problems))
    return spec


def _seeds(seeds: Any, where: str, bad: Callable[[str], None]) -> list[int]:
    """A validated seed list (an int is a list of one); [0] after reporting a mistake."""
    original = seeds
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        bad(f"{where}: expected a non-empty list of non-negative integers, got {original!r}")
        return [0]
    if len(set(seeds)) != len(seeds):
        bad(f"{where}: a seed is listed twice")
    return seeds


def _check_data(data: dict[str, Any], where: str) -> list[str]:
    """Problems of one experiment's data (dataset, protocol, test_dataset, setting), each line
    starting with `where` + the key ("experiments[2].setting: ...", or "setting: ...")."""
    datasets = _known_datasets()
    out = []
    dataset = data.get("dataset", "")
    if "dataset" in data and dataset not in datasets:
        out.append(f"{where}dataset: unknown dataset {dataset!r}{suggest(str(dataset), datasets)}; "
                   f"known: {', '.join(datasets)}")
    protocol = data.get("protocol", "loso")
    if protocol not in PROTOCOLS:
        out.append(f"{where}protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    test_dataset = data.get("test_dataset", "")
    if protocol == "cross":
        if not test_dataset:
            out.append(f"{where}test_dataset: the cross protocol needs the dataset it tests on")
        elif test_dataset not in datasets:
            out.append(f"{where}test_dataset: unknown dataset {test_dataset!r}"
                       f"{suggest(str(test_dataset), datasets)}")
        elif test_dataset == dataset:
            out.append(f"{where}test_dataset: the cross protocol tests on another dataset than {dataset!r}")
    elif "test_dataset" in data and protocol != "cross":
        out.append(f"{where}test_dataset: only with protocol: cross (LOSO tests on the subjects of `dataset`)")
    wanted = MERGED_PROTOCOL.get(dataset)
    if protocol in MERGED_PROTOCOL.values() and dataset in datasets and wanted != protocol:
        need = next(k for k, v in MERGED_PROTOCOL.items() if v == protocol)
        out.append(f"{where}dataset: protocol {protocol} runs on the merged dataset {need!r} "
                   f"(`fdp-sweep merge {need}`), got {dataset!r}")
    elif wanted and protocol != wanted:
        out.append(f"{where}protocol: the merged dataset {dataset!r} is evaluated with protocol: {wanted}")
    if "setting" in data:  # (against an unknown dataset nothing more to say: one mistake, one line)
        known = dataset if dataset in datasets else ""
        out.extend(f"{where}{m}" for m in _check_setting(data["setting"], known, protocol))
    return out


def _parse_experiment(item: Any, index: int, listed: bool, seeds: list[int], folds: Any,
                      bad: Callable[[str], None]) -> Experiment | None:
    """One experiment (an `experiments:` item, or the spec's top-level data); None if it has
    mistakes (each reported through `bad`, prefixed "experiments[i]." when listed)."""
    at = f"experiments[{index}]"
    if not isinstance(item, dict):
        bad(f"{at}: expected a mapping {{dataset:, setting:, protocol:, test_dataset:, seeds:, folds:}}, "
            f"got {item!r}")
        return None
    problems: list[str] = []
    if listed:
        for k in item:
            if k not in EXPERIMENT_KEYS:
                problems.append(f"{at}: unknown key {k!r}{suggest(str(k), list(EXPERIMENT_KEYS))}")
        problems.extend(f"{at}: missing required key {k!r}" for k in ("dataset", "setting") if k not in item)
    problems.extend(_check_data(item, f"{at}." if listed else ""))
    if listed and "seeds" in item:
        seeds = _seeds(item["seeds"], f"{at}.seeds", problems.append)
    if listed and "folds" in item:
        folds = item["folds"]
        problems.extend(f"{at}.folds: {m}" for m in _check_folds(folds))
    for m in problems:
        bad(m)
    if problems or "dataset" not in item or "setting" not in item:
        return None
    protocol = item.get("protocol", "loso")
    data = {"dataset": item["dataset"], "setting": item["setting"], "protocol": protocol,
            "test_dataset": item.get("test_dataset", "") if protocol == "cross" else ""}
    return Experiment(experiment_key(**data), **data, seeds=list(seeds), folds=folds, runs_on=dict(data),
                      index=index, listed=listed)


def _smoke_map(exp: Experiment, smoke_data: dict[str, Any], seeds: list[int] | None, folds: Any,
               bad: Callable[[str], None]) -> None:
    """Under --smoke: the smoke block's data, seeds and folds replace what `exp` runs on; its key
    (the table cell it fills) stays. `protocol: loso` there also drops the test dataset."""
    exp.smoke = True
    data = {**exp.runs_on, **smoke_data}
    if data.get("protocol") == "loso":
        data["test_dataset"] = ""
    where = f"smoke: {exp.where}: " if exp.listed else "smoke: "
    checked = {k: v for k, v in data.items() if k != "test_dataset" or data.get("protocol") == "cross"}
    problems = _check_data(checked, "")
    for m in problems:
        bad(where + m)
    if not problems:
        exp.runs_on = {k: data[k] for k in DATA_KEYS}
    if seeds is not None:
        exp.seeds = list(seeds)
    if folds is not None:
        exp.folds = folds


def _mapping(raw: dict[str, Any], key: str, known: tuple[str, ...], example: str,
             bad: Callable[[str], None]) -> dict[str, Any]:
    """raw[key] as a mapping whose keys are all in `known`; each mistake reported through `bad`."""
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        bad(f"{key}: expected a mapping {example}, got {value!r}")
        return {}
    for k in value:
        if k not in known:
            bad(f"{key}: unknown key {k!r}{suggest(str(k), list(known))}")
    return value


def _known_datasets() -> list[str]:
    from fdp.data.readers import READERS

    return sorted([*READERS, *MERGED_PROTOCOL])


def _check_setting(setting: Any, dataset: Any, protocol: Any) -> list[str]:
    from fdp.data.settings import SETTINGS

    if not isinstance(setting, str) or setting not in SETTINGS:
        return [f"setting: unknown class setting {setting!r}{suggest(str(setting), list(SETTINGS))}; "
                f"known: {', '.join(SETTINGS)}"]
    s = SETTINGS[setting]
    out = []
    if protocol == "cross" and not setting.startswith("cross/"):
        out.append(f"setting: the cross protocol uses a cross/<dataset> setting, got {setting!r}")
    if protocol != "cross" and setting.startswith("cross/"):
        out.append(f"setting: {setting!r} is a cross-dataset setting; use protocol: cross")
    if isinstance(dataset, str) and dataset and s.dataset != dataset:
        out.append(f"setting: {setting!r} is a setting of {s.dataset}, not of dataset {dataset!r}")
    return out


def _check_key(key: str, keys: list[str], *values: Any) -> list[str]:
    """Problems with one dotted override: unknown or reserved key, or a value of the wrong type
    (each checked on its own so that every bad value gets its own line)."""
    if key in RESERVED_KEYS:
        return [f"{key}: set it with the spec's `{RESERVED_KEYS[key]}:` key"]
    if key not in keys:
        return [f"unknown config key {key!r}{suggest(key, keys)}"]
    out = []
    for v in values:
        try:
            apply_overrides(ExperimentConfig(), {key: v})
        except ConfigError as e:
            out.append(str(e))
    return out


def _check_folds(folds: Any) -> list[str]:
    if _pos_int(folds):
        return []
    if isinstance(folds, list) and folds and all(isinstance(f, (str, int)) and not isinstance(f, bool)
                                                 for f in folds):
        return []
    return [f"expected a positive integer (the first N folds) or a list of fold names, got {folds!r}"]


def _check_search(search: Any, keys: list[str]) -> list[str]:
    """Shape of the search block only; its meaning belongs to the search command."""
    if not isinstance(search, dict):
        return [f"expected a mapping (space:, trials:, metric:, ...), got {search!r}"]
    out = []
    space = search.get("space")
    if not isinstance(space, dict) or not space:
        out.append("space: expected a mapping of dotted config key -> {type, low, high | choices}")
        space = {}
    for k, d in space.items():
        out.extend(f"space: {m}" for m in _check_key(str(k), keys))
        if not isinstance(d, dict):
            out.append(f"space: {k}: expected a mapping with type: {' | '.join(SEARCH_PARAM_TYPES)}")
            continue
        t = d.get("type")
        if t not in SEARCH_PARAM_TYPES:
            out.append(f"space: {k}: type must be one of {', '.join(SEARCH_PARAM_TYPES)}, got {t!r}")
        elif t == "categorical":
            if not isinstance(d.get("choices"), list) or not d["choices"]:
                out.append(f"space: {k}: a categorical parameter needs a non-empty `choices` list")
        elif not (_number(d.get("low")) and _number(d.get("high")) and d["low"] < d["high"]):
            out.append(f"space: {k}: a {t} parameter needs numbers low < high, got {d.get('low')!r}, "
                       f"{d.get('high')!r}")
    if "trials" in search and not _pos_int(search["trials"]):
        out.append(f"trials: expected a positive integer, got {search['trials']!r}")
    if "direction" in search and search["direction"] not in ("maximize", "minimize"):
        out.append(f"direction: expected maximize or minimize, got {search['direction']!r}")
    return out


def pinned_keys(spec: SweepSpec) -> set[str]:
    """Keys the search does not sample: --set and (with --smoke) the smoke block replace them."""
    return set(spec.sets) | (set(smoke_overrides(spec)) if spec.is_smoke else set())  # incl. its profile's keys


def _check_space_values(spec: SweepSpec, confs: list[Configuration]) -> list[str]:
    """Each value the search can draw (every choice; a range's both ends), set on its own on top
    of each configuration as a trial sets it, builds: one that cannot would fail every trial
    that draws it. (Combinations of several keys are checked when a trial is asked.)"""
    out = []
    for k, d in (spec.search.get("space") or {}).items():
        if k in pinned_keys(spec):
            continue
        values = d["choices"] if d["type"] == "categorical" else [d["low"], d["high"]]
        for conf in confs:
            for v in values:
                try:
                    build_config(conf.variant, {**conf.overrides, k: v})
                except ConfigError as e:
                    out.append(f"{spec.path}: search: space: {k}: {v!r} cannot be built: {e}")
    return _unique(out)


def _pos_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


# ---------------------------------------------------------------------------------------------
# spec -> configurations


def base_overrides(spec: SweepSpec, exp: Experiment | None = None) -> dict[str, Any]:
    """The layer the spec's own fields contribute (an experiment's data and the step budget),
    before `overrides`. `exp` defaults to the spec's first (for a single-form spec: only) one."""
    exp = exp or spec.experiments[0]
    data = exp.runs_on
    over: dict[str, Any] = {"data.dataset": data["dataset"], "data.setting": data["setting"],
                            "data.test_dataset": data["test_dataset"]}
    if data.get("protocol") == "leave-one-dataset-out":
        over["data.fold_by"] = "database"
    if spec.steps is not None:
        over["train.steps"] = spec.steps
    return over


def smoke_overrides(spec: SweepSpec) -> dict[str, Any]:
    """The smoke layer: CPU, then the spec's smoke block (its dotted keys; `folds` is not one)."""
    if not spec.is_smoke:
        return {}
    over: dict[str, Any] = {"train.device": "cpu"}
    if spec.smoke.get("profile") in PROFILES:
        over.update(PROFILES[spec.smoke["profile"]])
    over.update({k: v for k, v in spec.smoke.items() if k not in SMOKE_TOP_KEYS})
    return over


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of the grid, in the order the spec lists keys and values."""
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


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
