"""The sweep file, declared once as types (STYLE.md: "Declare a schema once"; docs/sweeps.md).

From these pydantic models come: the validation of a spec (`orchestrator.spec.errors.problems`: one
line per mistake, each naming its key path, all of them at once), the defaults `orchestrator.spec.sweep`
builds a `SweepSpec` from, the table of keys in docs/sweeps.md and the JSON Schema `fdp-sweep schema`
prints for editors (`orchestrator.spec.docs`).

A field declares what JSON Schema can say (types, ranges, the registries' names as enums) and, in
`Expect`, how a bad value is told; rules across fields, or that need the code (an override's value
type is `fdp.config`'s), are each model's `checks`. pydantic's own error text never reaches the
user: every error is translated to our line, found by the field it concerns (`spec/errors.py`).
"""

import dataclasses
import re
import typing
from typing import Annotated, Any, Callable, ClassVar, Iterator, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError, core_schema

from fdp.config import BOUNDS, CHOICES, ConfigError, ExperimentConfig, all_keys, apply_overrides, suggest
from fdp.data.readers import READERS
from fdp.data.settings import SETTINGS
from fdp.profiles import PROFILES
from fdp.variants import VARIANTS
from orchestrator.spec.errors import Expect, Problem, problems

PROTOCOLS = ("loso", "cross", "composite", "leave-one-dataset-out")
# merged datasets (fdp.data.merged) and the protocol each one is evaluated under
MERGED_PROTOCOL = {"composite": "composite", "lodo": "leave-one-dataset-out"}
DATASETS = tuple(sorted([*READERS, *MERGED_PROTOCOL]))
DATA_KEYS = ("dataset", "setting", "protocol", "test_dataset")
# A name becomes a directory (checkpoints) and an MLflow tag: keep it path- and shell-safe.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Keys the spec sets through its own fields; a grid or override naming them would be ambiguous.
RESERVED_KEYS = {"train.seed": "seeds", "data.dataset": "dataset", "data.setting": "setting",
                 "data.test_dataset": "test_dataset", "data.fold_by": "protocol", "variant": "variants",
                 "method": "variants", "protocol_probe.select_on_test": "protocol_probe"}
ALL_KEYS = all_keys()
CONFIG_KEYS = tuple(k for k in ALL_KEYS if k not in RESERVED_KEYS)  # what grid/overrides/smoke/space may name
METRICS = {"nll": "minimize", "di_mse": "minimize", "acc": "maximize", "uf1": "maximize", "uar": "maximize"}


# ---------------------------------------------------------------------------------------------
# how a bad value is told (the lines themselves: orchestrator.spec.errors)


def _unknown(what: str, known: tuple[str, ...], tail: str = "") -> Callable[[Any], str]:
    return lambda v: f"unknown {what} {v!r}{suggest(str(v), list(known))}{tail}"


def config_key_problem(key: Any) -> str:
    """Why `key` may not be named in grid/overrides/smoke/space/--set."""
    if key in RESERVED_KEYS:
        return f"{key}: set it with the spec's `{RESERVED_KEYS[key]}:` key"
    return f"unknown config key {key!r}{suggest(str(key), ALL_KEYS)}"


def config_problems(key: str, *values: Any) -> list[str]:
    """Problems with one dotted override: the key, then each value on its own (fdp.config decides
    types and bounds), so that every bad value gets its own line."""
    if key not in CONFIG_KEYS:
        return [config_key_problem(key)]
    out = []
    for v in values:
        try:
            apply_overrides(ExperimentConfig(), {key: v})
        except ConfigError as e:
            out.append(str(e))
    return out


class Unique:
    """Annotated marker: a list may not hold an item twice (JSON Schema `uniqueItems`)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        def check(v: Any) -> Any:
            if isinstance(v, list) and len({repr(x) for x in v}) != len(v):
                raise PydanticCustomError("spec", self.message)
            return v
        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        out = handler(schema)
        for branch in out.get("anyOf", [out]):
            if branch.get("type") == "array":
                branch["uniqueItems"] = True
        return out


def _none_is_empty(v: Any) -> Any:
    return {} if v is None else v  # `smoke:` with nothing under it is an empty block


# per-key JSON Schema of a config value, from fdp.config's field types, BOUNDS and CHOICES (the
# validator itself is fdp.config.apply_overrides: this only lets an editor say it early)
FLOAT_TEXT = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"  # YAML 1.1 reads 1e-3 as text; fdp.config takes it


def _value_schema(key: str, typ: Any) -> dict[str, Any]:
    if typ is bool:
        return {"type": "boolean"}
    if typ in (int, float):
        out: dict[str, Any] = {"type": "integer" if typ is int else "number"}
        if key in BOUNDS:
            low, inclusive = BOUNDS[key]
            out["minimum" if inclusive else "exclusiveMinimum"] = low
        return out if typ is int else {"anyOf": [out, {"type": "string", "pattern": FLOAT_TEXT}]}
    if typ is str:
        return {"type": "string", **({"enum": list(CHOICES[key])} if key in CHOICES else {})}
    if typing.get_origin(typ) is list:
        return {"type": "array", "items": _value_schema(key, typing.get_args(typ)[0])}
    if key == "train.channels_last":
        return {"enum": [True, False, "auto"]}
    return {"anyOf": [_value_schema(key, t) for t in typing.get_args(typ)]}


def _config_schemas(cls: type = ExperimentConfig, prefix: str = "") -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cls):
        typ, key = typing.get_type_hints(cls)[f.name], f"{prefix}{f.name}"
        if dataclasses.is_dataclass(typ):
            out.update(_config_schemas(typ, f"{key}."))
        elif key in CONFIG_KEYS:
            out[key] = _value_schema(key, typ)
    return out


VALUE_SCHEMAS = _config_schemas()


def _keyed(value: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    """json_schema_extra of a mapping of dotted config keys: one property per key, no others."""
    def extra(schema: dict[str, Any]) -> None:
        schema.pop("propertyNames", None)
        schema["properties"] = {**schema.get("properties", {}), **{k: value(s) for k, s in VALUE_SCHEMAS.items()}}
        schema["additionalProperties"] = False
    return extra


# ---------------------------------------------------------------------------------------------
# the types

ConfigKey = Literal[CONFIG_KEYS]
PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Seeds = Annotated[Union[NonNegInt, Annotated[list[NonNegInt], Field(min_length=1)]], Unique("a seed is listed twice"),
                  AfterValidator(lambda v: [v] if isinstance(v, int) else v),  # one seed: a list of one
                  Expect("a non-empty list of non-negative integers")]
Folds = Annotated[Union[PosInt, Annotated[list[Union[str, int]], Field(min_length=1)]],
                  Expect("a positive integer (the first N folds) or a list of fold names")]
Dataset = Annotated[Literal[DATASETS], Expect(_unknown("dataset", DATASETS, f"; known: {', '.join(DATASETS)}"))]
Setting = Annotated[Literal[tuple(SETTINGS)],
                    Expect(_unknown("class setting", tuple(SETTINGS), f"; known: {', '.join(SETTINGS)}"))]
Protocol = Annotated[Literal[PROTOCOLS], Expect(f"one of {', '.join(PROTOCOLS)}")]
TestDataset = Annotated[Literal[("", *DATASETS)], Expect(_unknown("dataset", DATASETS))]
Profile = Annotated[Literal[("", *PROFILES)],
                    Expect(_unknown("profile", tuple(PROFILES), f"; known: {', '.join(PROFILES)}"))]
D = Field  # a field's description (what it does) and constraints; its Expect says how a bad value is told


class Block(BaseModel):
    """A mapping of the sweep file. `SEP` joins its path to a field's name in messages."""

    model_config = ConfigDict(extra="forbid", strict=True)
    SEP: ClassVar[str] = "."

    @classmethod
    def checks(cls, raw: dict[str, Any], ok: dict[str, Any]) -> Iterator[Problem]:
        """Rules beyond the fields' types (`ok`: the given fields that are valid), one line each."""
        return iter(())


def data_problems(ok: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, message) for data whose keys are each valid but do not go together (`ok` holds the
    given, valid ones of dataset / setting / protocol / test_dataset)."""
    dataset, setting, test = ok.get("dataset"), ok.get("setting"), ok.get("test_dataset")
    protocol = ok.get("protocol", "loso")
    if protocol == "cross":
        if not test:
            yield "test_dataset", "the cross protocol needs the dataset it tests on"
        elif test == dataset:
            yield "test_dataset", f"the cross protocol tests on another dataset than {dataset!r}"
    elif "test_dataset" in ok:
        yield "test_dataset", "only with protocol: cross (LOSO tests on the subjects of `dataset`)"
    wanted = MERGED_PROTOCOL.get(dataset)
    if protocol in MERGED_PROTOCOL.values() and dataset and wanted != protocol:
        need = next(k for k, v in MERGED_PROTOCOL.items() if v == protocol)
        yield "dataset", f"protocol {protocol} runs on the merged dataset {need!r} (`fdp-sweep merge {need}`), got {dataset!r}"
    elif wanted and protocol != wanted:
        yield "protocol", f"the merged dataset {dataset!r} is evaluated with protocol: {wanted}"
    if setting:
        if protocol == "cross" and not setting.startswith("cross/"):
            yield "setting", f"the cross protocol uses a cross/<dataset> setting, got {setting!r}"
        if protocol != "cross" and setting.startswith("cross/"):
            yield "setting", f"{setting!r} is a cross-dataset setting; use protocol: cross"
        if dataset and SETTINGS[setting].dataset != dataset:
            yield "setting", f"{setting!r} is a setting of {SETTINGS[setting].dataset}, not of dataset {dataset!r}"


def _data_checks(raw: dict[str, Any], ok: dict[str, Any]) -> Iterator[Problem]:
    if "protocol" in raw and "protocol" not in ok:
        return  # an unknown protocol: nothing more to say about what goes with it
    yield from (((key,), f"{key}: {msg}", 2) for key, msg in data_problems(ok))


class Experiment(Block):
    """One item of `experiments:`: its data, and optionally its own seeds and folds."""

    dataset: Annotated[Dataset, D(description="reader name, or a merged set (`fdp-sweep merge`)")]
    setting: Annotated[Setting, D(description="class setting of `dataset` (fdp.data.settings)")]
    protocol: Annotated[Protocol, D(description="composite / leave-one-dataset-out: on the merged set")] = "loso"
    test_dataset: Annotated[TestDataset, D(description="cross protocol only: the dataset tested on")] = ""
    seeds: Annotated[Optional[Seeds], D(description="default: the top-level `seeds`")] = None
    folds: Annotated[Optional[Folds], D(description="default: the top-level `folds`")] = None

    @classmethod
    def checks(cls, raw: dict[str, Any], ok: dict[str, Any]) -> Iterator[Problem]:
        return _data_checks(raw, ok)


class Resources(Block):
    """What one fold job asks the Ray scheduler for (Ray also sets OMP_NUM_THREADS from `cpus`); how many
    fit on a node: `orchestrator.run.packing`."""

    cpus: Annotated[float, D(gt=0, description="CPU cores per job"), Expect("a positive number")] = 1.0
    gpus: Annotated[Union[Annotated[float, D(ge=0, le=1)], Annotated[float, D(ge=1, multiple_of=1)]],
                    D(description="GPUs per job; a fraction only does Ray's accounting (jobs share the GPU)"),
                    Expect("a fraction in [0, 1] or a whole number of GPUs")] = 0.0


class Tracking(Block):
    """Where the runs are recorded."""

    experiment: Annotated[Optional[str], D(pattern=r"\S", description="MLflow experiment (default: `name`)"),
                          Expect("a non-empty name")] = None


class Smoke(Block):
    """Applied with --smoke: the data every experiment trains on, seeds, folds, a profile, then
    any dotted config key as an override."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_keyed(lambda s: s))
    dataset: Annotated[Optional[Dataset], D(description="replaces what every experiment trains on")] = None
    setting: Annotated[Optional[Setting], D(description="(with dataset)")] = None
    protocol: Annotated[Optional[Protocol], D(description="`loso` also drops test_dataset")] = None
    test_dataset: Annotated[Optional[TestDataset], D(description="(cross protocol)")] = None
    seeds: Annotated[Optional[Seeds], D(description="replace every experiment's seeds")] = None
    folds: Annotated[Optional[Folds], D(description="replace every experiment's folds")] = None
    profile: Annotated[Profile, D(description="a size profile, under the smoke block's own keys")] = ""

    @classmethod
    def checks(cls, raw: dict[str, Any], ok: dict[str, Any]) -> Iterator[Problem]:
        # its data go with each experiment's: checked as --smoke applies them (orchestrator.spec.sweep)
        for k, v in raw.items():
            if k not in cls.model_fields:
                yield from (((k,), m, 2) for m in config_problems(str(k), v))


PROBE_METRICS = ("acc", "uf1")  # fdp.test_selected.METRICS
PROBE_REFUSAL = ("name the metric the test-selected protocol picks its step by, select_on_test: acc (the authors' "
                 "FDP code, HTNet) or uf1 (MEB), or both; its numbers are recorded beside the honest ones and "
                 "labelled test-selected (inflated)")


class ProtocolProbe(Block):
    """The published protocol, recorded beside the honest result (fdp.test_selected): never the
    default, and only with the metric named."""

    select_on_test: Annotated[Optional[list[Literal[PROBE_METRICS]]], Unique("a metric is listed twice"),
                              BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                              D(min_length=1, description="the metric(s) the best step is chosen by ON THE TEST "
                                                          "SUBJECT: acc (the authors' FDP code, HTNet) or uf1 (MEB)"),
                              Expect(f"some of {', '.join(PROBE_METRICS)}",
                                     each=_unknown("metric", PROBE_METRICS, f"; known: {', '.join(PROBE_METRICS)}"))
                              ] = None
    every: Annotated[PosInt, D(description="steps between evaluations of the test clips (no effect on training)"),
                     Expect("a positive integer (steps)")] = 20

    @classmethod
    def checks(cls, raw: dict[str, Any], ok: dict[str, Any]) -> Iterator[Problem]:
        if raw.get("select_on_test") is None:
            yield (), PROBE_REFUSAL, 2


class Pruner(Block):
    """WilcoxonPruner over paired folds."""

    p_threshold: Annotated[float, D(gt=0, lt=1, description="p-value below which a trial is pruned"),
                           Expect("a number in (0, 1)")] = 0.1
    n_startup_steps: Annotated[NonNegInt, D(description="folds before a trial may be pruned"),
                               Expect("a non-negative integer")] = 2


class Param(Block):
    """One searched key: `type: float | int` with `low < high`, or `categorical` with `choices`."""

    SEP: ClassVar[str] = ": "
    type: Annotated[Literal["float", "int", "categorical"], D(description="the distribution"),
                    Expect("one of float, int, categorical")]
    low: Annotated[Optional[float], D(description="float / int: the range"), Expect("a number")] = None
    high: Annotated[Optional[float], D(description="float / int: the range"), Expect("a number")] = None
    log: Annotated[bool, D(description="float: sample on a log scale (low > 0)"), Expect("true or false")] = False
    step: Annotated[Optional[float], D(description="float / int: the grid of values"), Expect("a number")] = None
    choices: Annotated[Optional[list[Any]], D(min_length=1, description="categorical: the values"),
                       Expect("a non-empty list")] = None

    @classmethod
    def checks(cls, raw: dict[str, Any], ok: dict[str, Any]) -> Iterator[Problem]:
        t, low, high = ok.get("type"), raw.get("low"), raw.get("high")
        if t == "categorical" and not ok.get("choices"):
            yield (), "a categorical parameter needs a non-empty `choices` list", 2
        elif t in ("float", "int"):
            if not (_number(low) and _number(high) and low < high):
                yield (), f"a {t} parameter needs numbers low < high, got {low!r}, {high!r}", 2
            if t == "int" and not all(isinstance(raw.get(x), int) for x in ("low", "high")):
                yield (), "an int parameter needs integer low/high", 2
            if t == "float" and ok.get("log") and _number(low) and low <= 0:
                yield (), "a log-scale range needs low > 0", 2


class Search(Block):
    """An Optuna search, run by `fdp-sweep search` (docs/search.md)."""

    SEP: ClassVar[str] = ": "
    space: Annotated[dict[ConfigKey, Param], D(min_length=1, description="dotted config key -> distribution"),
                     Expect("a mapping of dotted config key -> {type, low, high | choices}",
                            each="a mapping with type: float | int | categorical", key=config_key_problem)]
    trials: Annotated[PosInt, D(description="finished (complete or pruned) trials the study should reach"),
                      Expect("a positive integer")] = 20
    parallel: Annotated[PosInt, D(description="trials in flight at once"), Expect("an integer >= 1")] = 2
    sampler: Annotated[Literal["tpe", "random"], D(description="Optuna sampler"), Expect("one of tpe, random")] = "tpe"
    seed: Annotated[NonNegInt, D(description="sampler seed (and the per-trial fold order)"),
                    Expect("an integer >= 0")] = 0
    startup_trials: Annotated[NonNegInt, D(description="TPE: random trials first"), Expect("an integer >= 0")] = 10
    metric: Annotated[Literal[tuple(METRICS)], D(description="per-fold validation metric"),
                      Expect(f"one of {', '.join(METRICS)}")] = "nll"
    direction: Annotated[Optional[Literal["maximize", "minimize"]], D(description="default: the metric's"),
                         Expect("maximize or minimize")] = None
    holdout: Annotated[Optional[Union[PosInt, Annotated[float, D(gt=0, lt=1)],
                                      Annotated[list[Union[str, int]], D(min_length=1)]]],
                       Unique("a subject is listed twice"),
                       D(description="required by `fdp-sweep search`: the subjects a table reports, never searched: "
                                     "a count, a fraction (a seeded choice) or their names"),
                       Expect("a positive integer, a fraction in (0, 1) or a list of subject names")] = None
    holdout_seed: Annotated[NonNegInt, D(description="seed of the choice of holdout subjects"),
                            Expect("an integer >= 0")] = 0
    folds: Annotated[Optional[Annotated[int, D(ge=2)]], D(description="inner validation folds: all, or the first N"),
                     Expect("an integer >= 2 (inner validation folds)")] = None
    pruner: Annotated[Union[Pruner, Literal["none", False], None], D(description="`none`: no pruning"),
                      Expect("{p_threshold: p, n_startup_steps: n} or none")] = Pruner()
    study: Annotated[str, D(pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]*)?$",
                            description="Optuna study (default: `name`; -smoke appended with --smoke)"),
                     Expect("a word of letters, digits, '_', '.', '-'")] = ""
    storage: Annotated[str, D(description="Optuna storage URL (default: optuna.db in the project root)"),
                       Expect("an Optuna storage URL")] = ""
    enqueue: Annotated[list[dict[str, Any]], D(description="trials run first in a new study"),
                       Expect("a list of {dotted key: value} mappings")] = []
    smoke_trials: Annotated[PosInt, D(description="trials with --smoke"), Expect("an integer >= 1")] = 3

    @classmethod
    def checks(cls, raw: dict[str, Any], ok: dict[str, Any]) -> Iterator[Problem]:
        metric, direction = ok.get("metric", "nll"), ok.get("direction")
        if direction is not None and ("metric" in ok or "metric" not in raw) and direction != METRICS[metric]:
            yield ("direction",), f"direction: {metric} is to {METRICS[metric]}, not {direction}", 2
        space = _mapping(raw, "space")
        for e in ok.get("enqueue", []):
            yield from ((("enqueue",), f"enqueue: {k!r} is not a key of the space", 2) for k in e if k not in space)


class SweepFile(Block):
    """A sweep file: one experiment at the top level, or several under `experiments:`."""

    name: Annotated[str, D(pattern=NAME_RE.pattern, description="letters, digits, _ . - (used in paths and tags)"),
                    Expect("a word of letters, digits, '_', '.', '-' (used in paths)")]
    table: Annotated[Optional[Union[int, str, Annotated[list[Union[int, str]], D(min_length=1)]]],
                     D(description="the paper table(s) it fills (tag fdp.table, read by summarize)"),
                     Expect("a table number or a list of them")] = None
    dataset: Annotated[Optional[Dataset], D(description="required without `experiments:`; a reader name, or a "
                                                        "merged set (`fdp-sweep merge`)")] = None
    setting: Annotated[Optional[Setting], D(description="required without `experiments:`; a class setting of "
                                                        "`dataset` (fdp.data.settings)")] = None
    protocol: Annotated[Protocol, D(description="composite / leave-one-dataset-out: on the merged set")] = "loso"
    test_dataset: Annotated[TestDataset, D(description="cross protocol only: the dataset tested on")] = ""
    experiments: Annotated[Optional[list[Experiment]], D(min_length=1, description="several experiments, "
                                                                                   "instead of the top-level data"),
                           Expect("a non-empty list of mappings {dataset:, setting:, protocol:, test_dataset:, seeds:, "
                                  "folds:}", each="a mapping {dataset:, setting:, protocol:, test_dataset:, seeds:, "
                                                  "folds:}")] = None
    variants: Annotated[list[Literal[tuple(VARIANTS)]], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                        Unique("a variant is listed twice"),
                        D(min_length=1, description="registry names (`fdp-sweep list-variants`)"),
                        Expect("a non-empty list of variant names", each=_unknown(
                            "variant", tuple(sorted(VARIANTS)), "; list them with `fdp-sweep list-variants`"))]
    reference: Annotated[Literal[tuple(VARIANTS)],
                         D(description="the variant each other variant is compared with, at the same experiment and grid "
                                       "point (paired tests on the parent run, docs/tracking.md); ignored when not listed"),
                         Expect(_unknown("variant", tuple(sorted(VARIANTS)),
                                         "; list them with `fdp-sweep list-variants`"))] = "fdp"
    profile: Annotated[Profile, D(description="a size profile (fdp/profiles.py), the layer under steps/overrides")] = ""
    grid: Annotated[dict[ConfigKey, Annotated[list[Any], D(min_length=1)]], BeforeValidator(_none_is_empty),
                    D(description="dotted config key -> values; one configuration per point of the product",
                      json_schema_extra=_keyed(lambda s: {"type": "array", "minItems": 1, "items": s})),
                    Expect("a mapping of dotted config key -> list of values", each="a non-empty list of values",
                           key=config_key_problem)] = {}
    overrides: Annotated[dict[ConfigKey, Any], BeforeValidator(_none_is_empty),
                         D(description="dotted config key -> value, for every job", json_schema_extra=_keyed(
                             lambda s: s)),
                         Expect("a mapping of dotted config key -> value", key=config_key_problem)] = {}
    seeds: Annotated[Seeds, D(description="train.seed of each configuration (the default of every experiment)")] = [0]
    steps: Annotated[Optional[PosInt], D(description="optimizer steps per fold (train.steps)"),
                     Expect("a positive integer (optimizer steps per fold)")] = None
    folds: Annotated[Optional[Folds], D(description="all folds (default), the first N, or these fold names")] = None
    resources: Annotated[Resources, BeforeValidator(_none_is_empty), D(description="per job"),
                         Expect("a mapping {cpus: N, gpus: fraction}")] = Resources()
    retries: Annotated[NonNegInt, D(description="Ray re-runs of a job whose worker process died"),
                       Expect("a non-negative integer")] = 2
    tracking: Annotated[Tracking, BeforeValidator(_none_is_empty), D(description="where the runs are recorded"),
                        Expect("a mapping {experiment: name}")] = Tracking()
    smoke: Annotated[Smoke, BeforeValidator(_none_is_empty), D(description="applied with --smoke"),
                     Expect("a mapping of dotted config key -> value (and `folds`)")] = Smoke()
    search: Annotated[Optional[Search], D(description="an Optuna search, run by `fdp-sweep search` (docs/search.md)"),
                      Expect("a mapping (space:, trials:, metric:, ...)")] = None
    protocol_probe: Annotated[Optional[ProtocolProbe],
                              D(description="also record what the published protocol would report: the test subject "
                                            "evaluated every `every` steps, the best step's predictions by the named "
                                            "metric kept, labelled test-selected (inflated); never the honest result"),
                              Expect(lambda v: f"expected a mapping {{select_on_test: acc | uf1, every: N}}, got {v!r}; "
                                               + PROBE_REFUSAL)] = None
    from_search: Annotated[Optional[str], D(description="an Optuna study: its best values, on its holdout subjects "
                                                        "(resolved as the file is read)"),
                           Expect("the name of an Optuna study")] = None

    @classmethod
    def checks(cls, raw: dict[str, Any], ok: dict[str, Any]) -> Iterator[Problem]:
        if "reference" in ok and "variants" in ok and ok["reference"] not in ok["variants"]:
            yield (("reference",), f"reference: {ok['reference']!r} is not one of the sweep's variants "
                   f"({', '.join(ok['variants'])})", 2)
        if "experiments" in raw:
            yield from (((k,), f"{k}: with `experiments:`, give {k} in each experiment", 2) for k in DATA_KEYS if k in raw)
            seen: dict[str, int] = {}
            for i, item in enumerate(raw["experiments"] if isinstance(raw["experiments"], list) else []):
                if isinstance(item, dict) and not problems(Experiment, item):
                    key = experiment_key(item["dataset"], item["setting"], item.get("protocol", "loso"),
                                         item.get("test_dataset", ""))
                    if key in seen:
                        yield (("experiments", i), f"experiments[{i}]: the same experiment as experiments[{seen[key]}] "
                               f"({key}); list each dataset/setting once", 2)
                    seen.setdefault(key, i)
        else:
            yield from (((k,), f"missing required key {k!r}", 1) for k in ("dataset", "setting") if k not in raw)
            yield from _data_checks(raw, ok)
        for k, v in _mapping(raw, "grid").items():  # each value on its own, whatever else is wrong
            if k in CONFIG_KEYS and isinstance(v, list):
                yield from ((("grid", k), f"grid: {m}", 2) for m in config_problems(k, *v))
        over = _mapping(raw, "overrides")
        for k, v in over.items():
            if k in CONFIG_KEYS:
                yield from ((("overrides", k), f"overrides: {m}", 2) for m in config_problems(k, v))
        if ok.get("steps") is not None and "train.steps" in over:  # the overrides layer would silently win
            yield (("steps",), f"steps: {ok['steps']!r} and overrides: train.steps: {over['train.steps']!r} both set "
                   "the step budget; keep one", 2)


def experiment_key(dataset: str, setting: str, protocol: str, test_dataset: str) -> str:
    """An experiment's identity, as `orchestrator.report.tables.row_keys` reads it: the setting (LOSO)
    or the direction "<dataset>-><test_dataset>" (cross-dataset, Table 8)."""
    return f"{dataset}->{test_dataset}" if protocol == "cross" else setting


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return raw[key] if isinstance(raw.get(key), dict) else {}


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
