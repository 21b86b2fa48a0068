"""Sweep specs: one YAML file per experiment (docs/sweeps.md) -> validated `SweepSpec` -> the
list of `Configuration`s it asks for (variant x grid point x seed).

Configuration layers (STYLE.md): code defaults -> variant diff -> spec (`dataset`, `setting`,
`protocol`, `steps`, `overrides`, one grid point, the seed) -> `smoke` block (with `--smoke`) ->
CLI `--set`. Every configuration is built with `fdp.variants.build_config`, so a bad key or value
is reported by the same machinery (and with the same "did you mean") as everywhere else.

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
from fdp.variants import VARIANTS, build_config


class SpecError(ValueError):
    """A sweep spec with mistakes; `problems` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# Top-level keys, in the order docs/sweeps.md documents them.
TOP_KEYS = ("name", "table", "dataset", "setting", "protocol", "test_dataset", "variants", "grid",
            "overrides", "seeds", "steps", "folds", "resources", "retries", "tracking", "smoke", "search")
REQUIRED = ("name", "dataset", "setting", "variants")
RESOURCE_KEYS = ("cpus", "gpus")
TRACKING_KEYS = ("experiment",)
PROTOCOLS = ("loso", "cross")
# A name becomes a directory (checkpoints) and an MLflow tag: keep it path- and shell-safe.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Keys the spec sets through its own fields; a grid or override naming them would be ambiguous.
RESERVED_KEYS = {"train.seed": "seeds", "data.dataset": "dataset", "data.setting": "setting",
                 "data.test_dataset": "test_dataset", "variant": "variants"}
SEARCH_PARAM_TYPES = ("float", "int", "categorical")
# spec keys a smoke block may replace, so any table's sweep can smoke-test on the synthetic benchmark
SMOKE_TOP_KEYS = ("dataset", "setting", "protocol", "test_dataset", "seeds")


@dataclass(frozen=True)
class Resources:
    """What one fold job asks the Ray scheduler for."""

    cpus: float = 1.0  # CPU cores per job (Ray also sets OMP_NUM_THREADS from it)
    gpus: float = 0.0  # GPU fraction per job; fractions only do accounting, jobs share the device


@dataclass
class SweepSpec:
    """A validated sweep spec. `raw` is the parsed YAML, kept for the spec hash and the logs."""

    name: str
    dataset: str
    setting: str
    variants: list[str]
    table: str | None = None
    protocol: str = "loso"
    test_dataset: str = ""
    grid: dict[str, list[Any]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: int | None = None
    folds: int | list[str] | None = None  # None: all folds; N: the first N; list: those folds
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

    label: str  # human label, e.g. "fdp|lambda_d=10|seed0"
    variant: str
    point: dict[str, Any]  # the grid point (dotted key -> value)
    seed: int
    overrides: dict[str, Any]  # every override applied on top of the variant, in order
    cfg: ExperimentConfig


def spec_hash(raw: dict[str, Any], sets: dict[str, Any] | None = None, smoke: bool = False) -> str:
    """Order-independent hash (12 hex) of the spec content and the command-line layers."""
    blob = json.dumps({"spec": raw, "sets": sets or {}, "smoke": bool(smoke)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# loading and validation


def load_spec(path: str | Path, sets: dict[str, Any] | None = None, smoke: bool = False) -> SweepSpec:
    """Read and validate a spec file; raises SpecError with one line per mistake."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SpecError([f"{path}: cannot read the spec ({e.strerror or e})"]) from None
    try:
        raw = yaml.safe_load(text)
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
    if smoke and isinstance(raw.get("smoke"), dict):
        swap = {k: v for k, v in raw["smoke"].items() if k in SMOKE_TOP_KEYS}
        if swap:
            raw = {**raw, **swap}
            if swap.get("protocol") == "loso":
                raw.pop("test_dataset", None)
    for k in raw:
        if k not in TOP_KEYS:
            bad(f"unknown key {k!r}{suggest(str(k), list(TOP_KEYS))}")
    for k in REQUIRED:
        if k not in raw:
            bad(f"missing required key {k!r}")

    name = raw.get("name", "")
    if "name" in raw and (not isinstance(name, str) or not NAME_RE.match(name)):
        bad(f"name: expected a word of letters, digits, '_', '.', '-' (used in paths), got {name!r}")
    table = raw.get("table")
    if table is not None and not isinstance(table, (int, str)):
        bad(f"table: expected a table number, got {table!r}")

    datasets = _known_datasets()
    dataset = raw.get("dataset", "")
    if "dataset" in raw and dataset not in datasets:
        bad(f"dataset: unknown dataset {dataset!r}{suggest(str(dataset), datasets)}; known: {', '.join(datasets)}")
    protocol = raw.get("protocol", "loso")
    if protocol not in PROTOCOLS:
        bad(f"protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    test_dataset = raw.get("test_dataset", "")
    if protocol == "cross":
        if not test_dataset:
            bad("test_dataset: the cross protocol needs the dataset it tests on")
        elif test_dataset not in datasets:
            bad(f"test_dataset: unknown dataset {test_dataset!r}{suggest(str(test_dataset), datasets)}")
        elif test_dataset == dataset:
            bad(f"test_dataset: the cross protocol tests on another dataset than {dataset!r}")
    elif "test_dataset" in raw and protocol == "loso":
        bad("test_dataset: only with protocol: cross (LOSO tests on the subjects of `dataset`)")
    setting = raw.get("setting", "")
    if "setting" in raw:
        problems.extend(f"{source}: {m}" for m in _check_setting(setting, dataset, protocol))

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

    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        bad(f"seeds: expected a non-empty list of non-negative integers, got {raw.get('seeds')!r}")
        seeds = [0]
    elif len(set(seeds)) != len(seeds):
        bad("seeds: a seed is listed twice")
    steps = raw.get("steps")
    if steps is not None and not _pos_int(steps):
        bad(f"steps: expected a positive integer (optimizer steps per fold), got {steps!r}")
    folds = raw.get("folds")
    if folds is not None:
        problems.extend(f"{source}: folds: {m}" for m in _check_folds(folds))

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

    smoke_block = raw.get("smoke") or {}
    if not isinstance(smoke_block, dict):
        bad(f"smoke: expected a mapping of dotted config key -> value (and `folds`), got {smoke_block!r}")
        smoke_block = {}
    for k, v in smoke_block.items():
        if k in SMOKE_TOP_KEYS:
            continue  # checked as the spec's own key when --smoke applies it
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

    spec = SweepSpec(
        name=name if isinstance(name, str) else "", dataset=dataset, setting=setting,
        variants=[v for v in variants if isinstance(v, str)],
        table=str(table) if table is not None else None, protocol=protocol,
        test_dataset=test_dataset if protocol == "cross" else "", grid=grid, overrides=overrides,
        seeds=seeds, steps=steps if _pos_int(steps) else None, folds=folds, resources=resources,
        retries=retries, experiment=experiment if isinstance(experiment, str) else "",
        smoke=smoke_block, search=search, sets=sets, is_smoke=smoke, raw=raw, path=source,
    )
    if smoke:
        # --smoke is a CPU run by definition: no GPU request that would leave jobs pending forever
        # on a laptop, and the smoke block's fold limit replaces the spec's.
        spec.resources = Resources(spec.resources.cpus, 0.0)
        if "folds" in smoke_block:
            spec.folds = smoke_block["folds"]
    if not problems:
        # Only now are the pieces sound enough to build every configuration; that catches what
        # the key check cannot: bad value types and inconsistent combinations.
        try:
            configurations(spec)
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        raise SpecError(_unique(problems))
    return spec


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

    return sorted(READERS)


def _check_setting(setting: Any, dataset: Any, protocol: Any) -> list[str]:
    from fdp.data.settings import SETTINGS

    if not isinstance(setting, str) or setting not in SETTINGS:
        return [f"setting: unknown class setting {setting!r}{suggest(str(setting), list(SETTINGS))}; "
                f"known: {', '.join(SETTINGS)}"]
    s = SETTINGS[setting]
    out = []
    if protocol == "cross" and not setting.startswith("cross/"):
        out.append(f"setting: the cross protocol uses a cross/<dataset> setting, got {setting!r}")
    if protocol == "loso" and setting.startswith("cross/"):
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


def _pos_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


# ---------------------------------------------------------------------------------------------
# spec -> configurations


def base_overrides(spec: SweepSpec) -> dict[str, Any]:
    """The layer the spec's own fields contribute (data and step budget), before `overrides`."""
    over: dict[str, Any] = {"data.dataset": spec.dataset, "data.setting": spec.setting,
                            "data.test_dataset": spec.test_dataset}
    if spec.steps is not None:
        over["train.steps"] = spec.steps
    return over


def smoke_overrides(spec: SweepSpec) -> dict[str, Any]:
    """The smoke layer: CPU, then the spec's smoke block (its dotted keys; `folds` is not one)."""
    if not spec.is_smoke:
        return {}
    over: dict[str, Any] = {"train.device": "cpu"}
    over.update({k: v for k, v in spec.smoke.items() if k != "folds" and k not in SMOKE_TOP_KEYS})
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
    """Every configuration of the spec (variant x grid point x seed), each built and resolved.

    Raises SpecError listing every configuration that does not build (bad value, inconsistent
    variant/override combination)."""
    names = short_keys(list(spec.grid))
    out: list[Configuration] = []
    problems: list[str] = []
    for variant in spec.variants:
        for point in grid_points(spec.grid):
            for seed in spec.seeds:
                over = {**base_overrides(spec), **spec.overrides, **point, "train.seed": seed,
                        **smoke_overrides(spec), **spec.sets}
                label = config_label(variant, point, seed, names)
                try:
                    cfg = build_config(variant, over)
                except ConfigError as e:
                    problems.append(f"{spec.path}: {label}: {e}")
                    continue
                out.append(Configuration(label, variant, point, seed, over, cfg))
    if problems:
        raise SpecError(_unique(problems))
    return out
