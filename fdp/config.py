"""Typed configuration: one small dataclass per component, composed into `ExperimentConfig`.

Layers (STYLE.md): code defaults here -> variant diff (fdp.variants) -> sweep YAML -> CLI
overrides. Every layer is applied with `apply_overrides(cfg, {"dotted.key": value})`, which
type-checks each value against the field it replaces (and against `BOUNDS` / `CHOICES`), so a
typo, a wrong type or a value the code cannot run with fails with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml


class ConfigError(ValueError):
    """A bad configuration key or value; the message is one line naming the key."""


@dataclass
class EncoderConfig:
    """Frame encoder (paper §3.2). Widths/heads are ours; see docs/model.md for why."""

    kind: str = "lgfat"  # lgfat (local-global feature-aware transformer) | vit | resnet18
    conv: str = "multihead"  # lgfat conv block: multihead (C*) | single (C) | convbnpw (C')
    stem_channels: int = 64  # vanilla conv stem width (stride 1 at 64x64)
    dims: list[int] = field(default_factory=lambda: [64, 128, 256, 768])  # width of each stage (last = feature dim D)
    n_local: int = 2  # N_L local relational aggregators per stage (0 removes them)
    n_global: int = 1  # N_G global relational aggregators per stage (0 removes them)
    heads: int = 8  # heads of the multi-head conv and of self-attention
    mlp_ratio: float = 1.0  # hidden width of each MLP / width (1.0 lands Table 10 counts)
    kernel: int = 3  # kernel of the (multi-head) conv in the aggregators
    # ViT backbone (kind=vit): ViT-Base, patch 8 on 64x64 -> 64 tokens
    vit_dim: int = 768  # token width
    vit_depth: int = 12  # transformer blocks
    vit_heads: int = 12  # attention heads
    vit_patch: int = 8  # patch size in pixels


@dataclass
class AuthorsConfig:
    """The network of the authors' public code (fdp/authors_model.py), built with model.arch =
    authors_code; its stage widths are model.encoder.dims. Defaults: their values
    (CYF-cuber/FDP@7ad36d9, fdp.py)."""

    stem: list[int] = field(default_factory=lambda: [64, 32, 64])  # widths of the 4-conv stem (stride 2, 1, 1, 2; the last repeats the third)
    depths: list[int] = field(default_factory=lambda: [3, 4, 10, 3])  # conv blocks per stage (their global blocks are never built)
    mlp_ratio: float = 3.0  # hidden width of a block's MLP / its width (rounded to a multiple of 32)
    drop_path: float = 0.1  # stochastic depth of the last block (linear from 0 over the blocks)
    feature_side: int = 64  # per-frame feature of feature_side^2 (4096), reshaped with the t frames to (s, s, t)
    temporal_channels: int = 8  # maps out of the 3-D conv (kernel 3 x 3 x t)
    mer_hidden: int = 256  # hidden width of the MER head
    dic_widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])  # the SegNet's 5 stage widths


@dataclass
class ModelConfig:
    """The FDP model (paper §3): encoder -> rank scorer -> temporal pooling -> MER / DIC."""

    arch: str = "fdp"  # fdp: the paper's network (§3, fdp/model.py) | authors_code: the network of the authors' code (fdp/authors_model.py)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    num_classes: int = 5  # m, set from the class setting of the data
    frames: int = 8  # t, frames per clip
    image_size: int = 64  # input crop side
    use_rank: bool = True  # build the linear rank scorer u (eq. 4-5)
    learn_rank_slope: bool = False  # learn c in K(k) = c*k (softplus keeps c > 0); off: c = rank_slope, since a learned c can collapse to 0 with u
    rank_slope: float = 1.0  # c in K(k) = c*k (initial value when learned)
    temporal_channels: int = 256  # channels of the 3-D conv temporal pooling output F^(d)
    temporal_map: int = 16  # frame feature reshaped to (C', s, s); s*s*C' = feature dim
    use_mer: bool = True  # build the MER head (max-pool + 2 FC); False for Table 14's no_mer
    mer_hidden: int = 256  # hidden width of the MER MLP
    dropout: float = 0.0  # dropout before the last FC of the MER head
    use_dic: bool = True  # build the DIC encoder-decoder (paper §3.4.1)
    dic_channels: list[int] = field(default_factory=lambda: [64, 128, 128, 256])  # DIC encoder widths
    authors: AuthorsConfig = field(default_factory=AuthorsConfig)  # sizes of model.arch = authors_code


@dataclass
class LossConfig:
    """Eq. 8: L = L_MER + lambda_d L_DIC + lambda_r L_rank."""

    lambda_d: float = 100.0  # weight of the dynamic-image MSE (0 also removes the DIC module)
    lambda_r: float = 0.1  # weight of the rank loss (0 also removes the rank scorer)
    lambda_mer: float = 1.0  # weight of the cross-entropy (0 only for DIC-only runs)


@dataclass
class DataConfig:
    """Which prepared clips a run uses and how clips are sampled (paper §4.1.3)."""

    dataset: str = "casme2"  # reader name (casme2 | samm | casme_sq | casme3 | smic | mmew | fourd ...) or composite | lodo
    setting: str = "casme2/5"  # class setting, see fdp.data.settings
    cache_dir: str = ""  # prepared clip cache; empty: $FDP_CACHE_DIR or ./.cache/clips/<dataset>
    test_dataset: str = ""  # cross-dataset protocol: dataset tested on (empty: LOSO)
    test_cache_dir: str = ""  # cache of the test dataset in the cross protocol
    fold_by: str = "subject"  # subject: LOSO | database: leave-one-dataset-out (a merged `lodo` cache)
    aligned_size: int = 72  # side of the aligned, cached frames; a cache of another size is refused when a fold loads it
    crop: int = 64  # random (train) / centre (test) crop side
    flip: bool = True  # random horizontal flip in training


@dataclass
class TrainConfig:
    """Training of one fold (paper §4.1.3; the step budget is from the authors' code)."""

    steps: int = 500  # optimizer steps per fold
    batch_size: int = 36  # clips per step
    lr: float = 1e-4  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay
    seed: int = 0  # fixes sampling, augmentation and initialisation
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # GPU settings, each also applicable on CPU (fdp.runtime; recorded on every run):
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16 (CPU: ~0.75x step time; unchecked)
    channels_last: bool | str = "auto"  # 2-D convs in channels_last: auto (on CUDA only) | true | false
    compile: bool = False  # torch.compile the forward (CPU too); minutes of compilation, pays off for long runs
    compile_backend: str = "inductor"  # torch.compile backend; aot_eager traces without generating code (tests)
    eval_batch_size: int = 64  # clips per evaluation batch
    checkpoint_every: int = 100  # steps between checkpoints (0: none)
    log_every: int = 10  # steps between loss callbacks
    selection: str = "last"  # last | early_stop_val (validation subjects from training subjects)
    val_subjects: int = 0  # with early_stop_val: training subjects held out for validation
    eval_every: int = 50  # with early_stop_val: steps between validation evaluations
    patience: int = 4  # with early_stop_val: evaluations without improvement before stopping
    shuffle_labels: bool = False  # negative control: train on a seeded permutation of the training clips' labels (test labels untouched); a model then scores chance


@dataclass
class ProtocolProbeConfig:
    """The published protocol, recorded beside the honest result and labelled test-selected
    (inflated) wherever it is shown (fdp.test_selected); off unless a metric is named."""

    select_on_test: list[str] = field(default_factory=list)  # metrics a step is chosen by on the TEST subject: acc (authors' FDP code, HTNet) | uf1 (MEB); empty: off
    every: int = 20  # steps between evaluations of the test clips (one test pass each; no effect on training)


@dataclass
class ComparedConfig:
    """The compared methods that are not the FDP network (fdp.methods: ststnet, off_apexnet,
    lbp_top): the training budget of their small networks (docs/methods.md). Read by those methods
    only; a job of another method does not hash it (`key_dict`)."""

    budget: str = "paper"  # paper: MEB's (epochs x ceil(n_train / 32) steps, its lr and weight decay) | cpu: the method's CPU_PROFILE (300 steps, lr 1e-3; set by the smoke and laptop size profiles)
    steps: int = 0  # > 0: this many optimizer steps instead of the budget's (a pipeline check); 0: the budget's
    threads: int = 1  # torch CPU threads while a small network trains (1 is fastest at these sizes); 0: leave torch's


@dataclass
class ExperimentConfig:
    """One configuration of one fold job: everything needed to reproduce it."""

    variant: str = "fdp"  # registry name the config was built from (fdp.variants)
    method: str = "network"  # what fits and predicts a fold (fdp.methods): network (FDP and its variants) | single_frame | ...
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol_probe: ProtocolProbeConfig = field(default_factory=ProtocolProbeConfig)
    compared: ComparedConfig = field(default_factory=ComparedConfig)


# config sections only some methods read (fdp.methods: `Method.reads`); a job key hashes one only for
# a method that reads it (`key_dict`)
METHOD_SECTIONS = ("compared",)

# The dotted prefix of each section whose fields were ever renamed (RENAMED).
SECTIONS: dict[str, type] = {"train": TrainConfig}

# Values the code cannot run with, refused when an override sets them (before any run starts)
# instead of failing deep inside a fold: key -> (lowest allowed value, whether it is allowed itself).
# Combinations of values are checked by `check_config` when a config is resolved.
BOUNDS: dict[str, tuple[float, bool]] = {
    "train.steps": (1, True), "train.batch_size": (1, True), "train.eval_batch_size": (1, True),
    "train.log_every": (1, True), "train.eval_every": (1, True), "train.checkpoint_every": (0, True),
    "train.val_subjects": (0, True), "train.patience": (1, True), "train.seed": (0, True),
    "protocol_probe.every": (1, True), "compared.steps": (0, True), "compared.threads": (0, True),
    "train.lr": (0, False), "train.weight_decay": (0, True),
    "loss.lambda_d": (0, True), "loss.lambda_r": (0, True), "loss.lambda_mer": (0, True),
    "model.frames": (1, True), "model.dropout": (0, True), "model.rank_slope": (0, False),
    "model.encoder.n_local": (0, True), "model.encoder.n_global": (0, True), "model.encoder.heads": (1, True),
    "model.encoder.vit_patch": (1, True), "model.encoder.vit_heads": (1, True), "model.temporal_map": (1, True),
    "model.image_size": (1, True), "data.crop": (1, True), "data.aligned_size": (1, True),
    "model.authors.feature_side": (1, True), "model.authors.temporal_channels": (1, True),
    "model.authors.mer_hidden": (1, True), "model.authors.mlp_ratio": (0, False), "model.authors.drop_path": (0, True),
}
# Text fields with a fixed vocabulary (train.device is checked by DEVICE_RE).
CHOICES: dict[str, tuple[str, ...]] = {
    "model.arch": ("fdp", "authors_code"),
    "model.encoder.kind": ("lgfat", "vit", "resnet18"),
    "model.encoder.conv": ("multihead", "single", "convbnpw"),
    "train.selection": ("last", "early_stop_val"),
    "train.precision": ("auto", "fp32", "bf16"),
    "train.compile_backend": ("inductor", "aot_eager", "eager"),
    "data.fold_by": ("subject", "database"),
    "compared.budget": ("paper", "cpu"),
}
# Renamed keys: old name -> (new name, old value -> new value). Overrides and stored configs that
# use the old name keep working and mean what they meant (train.amp only ever applied on CUDA;
# model.baseline named the method when the network was the only other one).
RENAMED: dict[str, tuple[str, dict[Any, Any]]] = {
    "train.amp": ("train.precision", {True: "auto", False: "fp32"}),
    "model.baseline": ("method", {"": "network", "single_frame": "single_frame"}),
}
PROBE_METRICS = ("acc", "uf1")  # what protocol_probe.select_on_test may name (fdp.test_selected.METRICS)
DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_value(key: str, value: Any) -> None:
    """ConfigError when `value` (already of the field's type) is outside `BOUNDS` / `CHOICES`."""
    if key in BOUNDS and isinstance(value, (int, float)):
        low, inclusive = BOUNDS[key]
        if value < low or (value == low and not inclusive):
            kind = "an integer" if isinstance(value, int) else "a number"
            raise ConfigError(f"{key}: expected {kind} {'>=' if inclusive else '>'} {low:g}, got {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{key}: unknown value {value!r}{suggest(str(value), list(CHOICES[key]))}; "
                          f"known: {', '.join(CHOICES[key])}")
    if key == "protocol_probe.select_on_test":
        bad = [m for m in value if m not in PROBE_METRICS]
        if bad or len(set(value)) != len(value):
            raise ConfigError(f"{key}: expected a list of distinct metrics among {', '.join(PROBE_METRICS)}, "
                              f"got {value!r}")
    if key == "train.channels_last" and value not in (True, False, "auto"):
        raise ConfigError(f"train.channels_last: expected auto, true or false, got {value!r}")
    if key == "train.device" and not DEVICE_RE.fullmatch(str(value)):
        raise ConfigError(f"train.device: expected auto, cpu, mps, cuda or cuda:N, got {value!r}")


# ---------------------------------------------------------------------------------------------
# combinations the model cannot be built with (each value may be fine on its own)

RESNET18_WIDTH = 512  # feature width of fdp.model.ResNet18 (not configurable)


def feature_dim(enc: EncoderConfig) -> int:
    """Width D of the per-frame feature the encoder outputs (fdp.model's `encoder.out_dim`)."""
    if enc.kind == "vit":
        return enc.vit_dim
    if enc.kind == "resnet18":
        return RESNET18_WIDTH
    return enc.dims[-1]


def check_model(cfg: ModelConfig) -> None:
    """ConfigError, one line naming the key, for a combination `fdp.model.FDP` cannot build.

    Called when a config is resolved (so `--dry-run`, the search space check and a trial's
    config refuse it before any fold starts) and by `FDP.__init__` itself."""
    if cfg.arch == "authors_code":
        check_authors(cfg)
        return
    enc = cfg.encoder
    if enc.kind == "lgfat":
        if not enc.dims or min(enc.dims) < 1:
            raise ConfigError(f"model.encoder.dims: expected a non-empty list of positive stage widths, got {enc.dims}")
        side = (cfg.image_size + 1) // 2  # after the stride-2 stem; each stage then halves it
        if side >> len(enc.dims) < 1:
            raise ConfigError(f"model.encoder.dims: {len(enc.dims)} stages halve the {side}x{side} stem output "
                              f"of a {cfg.image_size}x{cfg.image_size} input below 1x1")
        if (enc.n_local and enc.conv == "multihead") or enc.n_global:
            bad = next((d for d in enc.dims if d % enc.heads), None)
            if bad is not None:
                raise ConfigError(f"model.encoder.heads={enc.heads}: stage width {bad} is not divisible by it")
    elif enc.kind == "vit":
        if cfg.image_size % enc.vit_patch:
            raise ConfigError(f"model.encoder.vit_patch={enc.vit_patch}: does not divide model.image_size={cfg.image_size}")
        if enc.vit_dim % enc.vit_heads:
            raise ConfigError(f"model.encoder.vit_heads={enc.vit_heads}: token width {enc.vit_dim} is not divisible by it")
    dim, s = feature_dim(enc), cfg.temporal_map
    if dim % (s * s):
        key = {"lgfat": "model.encoder.dims", "vit": "model.encoder.vit_dim"}.get(enc.kind, "model.temporal_map")
        raise ConfigError(f"{key}: feature width {dim} is not a multiple of model.temporal_map^2 = {s * s} "
                          f"(temporal pooling reshapes each frame feature to a {s}x{s} map)")
    if cfg.use_dic:
        if len(cfg.dic_channels) != 4:
            raise ConfigError(f"model.dic_channels: need 4 encoder widths, got {cfg.dic_channels}")
        if s % 16 or cfg.image_size % s:
            raise ConfigError(f"model.temporal_map={s}: the DIC needs a map side that is a multiple of 16 "
                              f"(4 poolings) and divides model.image_size={cfg.image_size}")


AUTHORS_DIC_POOLS = 5  # the authors' SegNet halves its input 5 times (fdp.authors_model.SegNet)


def check_authors(cfg: ModelConfig) -> None:
    """ConfigError, one line naming the key, for sizes the authors' network cannot be built with."""
    a = cfg.authors
    if len(a.depths) != len(cfg.encoder.dims):
        raise ConfigError(f"model.authors.depths: {len(a.depths)} stages, but model.encoder.dims has "
                          f"{len(cfg.encoder.dims)} widths")
    if len(a.stem) != 3:
        raise ConfigError(f"model.authors.stem: expected 3 widths, got {a.stem}")
    if len(a.dic_widths) != AUTHORS_DIC_POOLS:
        raise ConfigError(f"model.authors.dic_widths: expected {AUTHORS_DIC_POOLS} widths, got {a.dic_widths}")
    if a.feature_side % 2 ** AUTHORS_DIC_POOLS:
        raise ConfigError(f"model.authors.feature_side={a.feature_side}: the DIC pools it {AUTHORS_DIC_POOLS} times; "
                          f"use a multiple of {2 ** AUTHORS_DIC_POOLS}")


def check_config(cfg: ExperimentConfig) -> None:
    """`check_model`, and the crop against the model input and the cached frames."""
    check_model(cfg.model)
    if cfg.data.crop != cfg.model.image_size:
        raise ConfigError(f"data.crop={cfg.data.crop}: the model is built for model.image_size="
                          f"{cfg.model.image_size} inputs; set both")
    if cfg.data.crop > cfg.data.aligned_size:
        raise ConfigError(f"data.crop={cfg.data.crop}: larger than the cached frames (data.aligned_size="
                          f"{cfg.data.aligned_size})")


# ---------------------------------------------------------------------------------------------
# dotted overrides


def to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict (YAML/JSON-safe) of a config dataclass."""
    return dataclasses.asdict(cfg)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def all_keys(cfg: Any = None) -> list[str]:
    """Every dotted key an override may name."""
    return sorted(flatten(to_dict(cfg if cfg is not None else ExperimentConfig())))


def _coerce(key: str, value: Any, typ: Any) -> Any:
    origin = typing.get_origin(typ)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, str):
            # YAML 1.1 reads '1e-3' (no dot) as a string; accept any text float() accepts
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        else:
            number = float(value)
        if not math.isfinite(number):  # a nan / inf weight or rate only turns every loss into nan
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return number
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if origin is list:
        (item_t,) = typing.get_args(typ)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, item_t) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        errors = []
        for t in typing.get_args(typ):
            try:
                return _coerce(key, value, t)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    raise ConfigError(f"{key}: unsupported field type {typ}")


def parse_value(text: str) -> Any:
    """CLI text -> value: YAML scalars/lists (`10`, `1e-4`, `true`, `[1,2]`)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse value {text!r}: {e}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """'loss.lambda_d=10' -> ('loss.lambda_d', 10)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. loss.lambda_d=10")
    key, val = text.split("=", 1)
    key, value = key.strip(), parse_value(val)
    if not isinstance(value, str) and _field_type(key) is str:
        # a text key keeps what was typed: a cache fingerprint 123456 (or 012345, YAML's octal) is not a number
        value = val.strip()
    return key, value


def _field_type(key: str) -> Any:
    """The declared type of dotted config key `key`; None for an unknown key (apply_overrides says so)."""
    obj: Any = ExperimentConfig
    for part in key.split("."):
        hints = typing.get_type_hints(obj) if dataclasses.is_dataclass(obj) else {}
        if part not in hints:
            return None
        obj = hints[part]
    return obj


def suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A copy of `cfg` with dotted keys replaced; unknown keys and bad types raise ConfigError."""
    cfg = _deepcopy(cfg)
    for key, value in _renamed(overrides).items():
        parts = key.split(".")
        obj = cfg
        for i, part in enumerate(parts):
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(f"unknown config key {key!r}{suggest(key, all_keys(cfg))}")
            fields = {f.name: f for f in dataclasses.fields(obj)}
            if part not in fields:
                raise ConfigError(f"unknown config key {key!r}{suggest(key, all_keys(cfg))}")
            if i == len(parts) - 1:
                hints = typing.get_type_hints(type(obj))
                if dataclasses.is_dataclass(hints[part]):
                    raise ConfigError(f"{key}: is a section; set its fields, e.g. {key}.<field>=...")
                value = _coerce(key, value, hints[part])
                check_value(key, value)
                setattr(obj, part, value)
            else:
                obj = getattr(obj, part)
    return cfg


def _renamed(flat: dict[str, Any]) -> dict[str, Any]:
    """`flat` with renamed keys (RENAMED) under their new names, values translated."""
    out = {}
    for key, value in flat.items():
        if key in RENAMED:
            new, mapping = RENAMED[key]
            if value not in mapping:
                raise ConfigError(f"{key} (now {new}): expected one of {', '.join(map(str, mapping))}, got {value!r}")
            key, value = new, mapping[value]
        out[key] = value
    return out


def _deepcopy(cfg: Any) -> Any:
    return from_dict(type(cfg), to_dict(cfg))


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from `to_dict` output (unknown keys raise ConfigError)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    if cls is ExperimentConfig:  # a config stored before a key was renamed or moved
        data = _unflatten(_renamed(flatten(data)))
    section = {v: k for k, v in SECTIONS.items()}.get(cls)
    if section:  # a config stored before a rename reads back under the new names
        data = {k.split(".", 1)[1]: v for k, v in _renamed({f"{section}.{k}": v for k, v in data.items()}).items()}
    for k, v in data.items():
        if k not in names:
            raise ConfigError(f"unknown config key {k!r} in {cls.__name__}{suggest(k, sorted(names))}")
        t = hints[k]
        kwargs[k] = from_dict(t, v) if dataclasses.is_dataclass(t) else _coerce(k, v, t)
    return cls(**kwargs)


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


# ---------------------------------------------------------------------------------------------
# identity of a job


def key_dict(cfg: ExperimentConfig, reads: tuple[str, ...] = METHOD_SECTIONS) -> dict[str, Any]:
    """The config as a job key hashes it (orchestrator.plan.jobs.job_key): `to_dict`, except where
    the config grew after job keys were first pinned (tests/data/sweep_keys.json), so that tracked
    jobs keep their keys: a section that is off is left out (a job that does not use it is the job
    it was before the section existed), so is a section of `METHOD_SECTIONS` the config's method
    does not read (`reads`: its `Method.reads`), and `method` is hashed as `model.baseline`, where
    it was named before it was a key of its own ("" for the network)."""
    d = to_dict(cfg)
    for section in METHOD_SECTIONS:
        if section not in reads:
            del d[section]
    if not d["protocol_probe"]["select_on_test"]:
        del d["protocol_probe"]
    if d["model"]["arch"] == "fdp":  # the paper's network: the authors' sizes are not read
        del d["model"]["arch"], d["model"]["authors"]
    method = d.pop("method")
    d["model"]["baseline"] = "" if method == "network" else method
    return d


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
