"""Named variants (paper Tables 9, 10, 14, and the controls): each is a diff of dotted config
overrides, timm's `register_model` for configs.

A variant switches parts off in the config; the model then does not build them (no dead
parameters). A variant names the method that runs it (config key `method`, fdp.methods; default:
the FDP network). Add one with `register(...)`; list with `list_variants()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fdp.config import ConfigError, ExperimentConfig, apply_overrides, suggest


@dataclass(frozen=True)
class Variant:
    name: str
    description: str  # one line, shown by `fdp-sweep list-variants`
    overrides: dict[str, Any] = field(default_factory=dict)
    paper: str = ""  # where the paper reports it
    ref_params: int | None = None  # a published parameter count of the same network (5 classes), if any
    ref_params_source: str = ""  # where `ref_params` comes from
    title: str = ""  # short name of what it runs, for a table row of ours (default: its method's title)

    @property
    def method(self) -> str:
        """The method that runs it (fdp.methods)."""
        return str(self.overrides.get("method", "network"))


VARIANTS: dict[str, Variant] = {}


def register(name: str, description: str, paper: str = "", ref_params: int | None = None, ref_params_source: str = "",
             title: str = "", **overrides: Any) -> Variant:
    v = Variant(name, description, {k.replace("__", "."): val for k, val in overrides.items()}, paper, ref_params,
                ref_params_source, title)
    VARIANTS[name] = v
    return v


register("fdp", "full FDP: multi-head conv local-global transformer, rank scorer, DIC, MER", "Tables 4-11")
register("no_dic", "FDP w/o L_DIC: no dynamic-image decoder, lambda_d = 0", "Table 9",
         model__use_dic=False, loss__lambda_d=0.0)
register("no_rank", "FDP w/o L_Rank: no rank scorer, lambda_r = 0", "Table 9",
         model__use_rank=False, loss__lambda_r=0.0)
register("no_local", "FDP w/o L: no local relational aggregators (N_L = 0)", "Tables 9, 14",
         model__encoder__n_local=0)
register("no_global", "FDP w/o G: no global relational aggregators (N_G = 0)", "Tables 9, 14",
         model__encoder__n_global=0)
register("no_local_global", "FDP w/o L&G: stem, patch embeddings and head only", "Tables 9, 14",
         model__encoder__n_local=0, model__encoder__n_global=0)
register("no_mer", "FDP w/o L_MER: dynamic-image construction only, no MER head", "Table 14",
         model__use_mer=False, loss__lambda_mer=0.0)
register("vit_base", "backbone ViT-Base (patch 8, 12 blocks, width 768) instead of ours", "Table 10",
         model__encoder__kind="vit")
register("resnet18", "backbone ResNet18 instead of ours", "Table 10",
         model__encoder__kind="resnet18")
register("conv_t", "C+T: one dense vanilla conv instead of the multi-head conv block", "Table 10",
         model__encoder__conv="single")
register("convbnpw_t", "C'+T: dense conv + BN + ReLU + pointwise conv instead of multi-head", "Table 10",
         model__encoder__conv="convbnpw")

register("authors_code", "the network of the authors' public code: grey input, conv-only encoder (no global "
         "aggregators built), one dense 3x3 conv as 'multi-head' conv, no rank scorer, a reshape that mixes feature "
         "dimensions before the 3-D conv, SegNet DIC (fdp/authors_model.py)", "the published numbers' network",
         ref_params=85_304_206, ref_params_source="authors' code CYF-cuber/FDP@7ad36d9 fdp.py",
         title="the network of the authors' FDP code",
         model__arch="authors_code", model__encoder__dims=[96, 192, 384, 768], model__use_rank=False,
         loss__lambda_r=0.0)
register("fdp_shuffled", "negative control: full FDP trained on permuted training labels (seeded; test "
         "labels untouched): must score chance", "control", train__shuffle_labels=True)
register("single_frame", "logistic regression on the apex frame: what no motion gets",
         "control", method="single_frame")
# the compared methods re-run here (docs/methods.md): their budget is `compared.budget` (the paper's by
# default; the smoke and laptop size profiles give their CPU profile)
register("ststnet", "STSTNet: three shallow conv streams on TV-L1 flow u, v + optical strain (onset -> apex, "
         "28 x 28)", "Table 7 (CAS(ME)^3); MEB's protocol table", method="ststnet")
register("off_apexnet", "OFF-ApexNet: one LeNet-like stream per flow component (u, v; onset -> apex, 28 x 28), "
         "two FC 1024", "Table 5", method="off_apexnet")
register("lbp_top", "LBP-TOP histograms (the MEGC2019 baseline's parameters) + linear SVM, C = 1 fixed",
         "Tables 6, 8; MEGC2019", method="lbp_top")
register("ststnet_shuffled", "negative control: STSTNet trained on permuted training labels (seeded; test labels "
         "untouched): must score chance", "control", method="ststnet", train__shuffle_labels=True)

def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant {name!r}{suggest(name, sorted(VARIANTS))}; "
                          f"known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def list_variants() -> list[Variant]:
    return list(VARIANTS.values())


def resolve(cfg: ExperimentConfig) -> ExperimentConfig:
    """Make the config self-consistent: a loss weight of 0 removes its module and vice versa; a
    combination the model or the data cannot run with is a ConfigError (`check_config`)."""
    over: dict[str, Any] = {}
    if cfg.loss.lambda_d == 0 and cfg.model.use_dic:
        over["model.use_dic"] = False
    if not cfg.model.use_dic and cfg.loss.lambda_d != 0:
        over["loss.lambda_d"] = 0.0
    if cfg.loss.lambda_r == 0 and cfg.model.use_rank:
        over["model.use_rank"] = False
    if not cfg.model.use_rank and cfg.loss.lambda_r != 0:
        over["loss.lambda_r"] = 0.0
    if cfg.loss.lambda_mer == 0 and cfg.model.use_mer:
        over["model.use_mer"] = False
    if not cfg.model.use_mer and cfg.loss.lambda_mer != 0:
        over["loss.lambda_mer"] = 0.0
    from fdp.data.settings import SETTINGS  # the class setting decides m, the number of logits

    if cfg.data.setting not in SETTINGS:
        raise ConfigError(f"data.setting: unknown class setting {cfg.data.setting!r}"
                          f"{suggest(cfg.data.setting, sorted(SETTINGS))}; known: {', '.join(SETTINGS)}")
    datasets = sorted({s.dataset for s in SETTINGS.values()})  # every reader and merged set has a setting
    if cfg.data.dataset not in datasets:
        raise ConfigError(f"data.dataset: unknown dataset {cfg.data.dataset!r}{suggest(cfg.data.dataset, datasets)}; "
                          f"known: {', '.join(datasets)}")
    if SETTINGS[cfg.data.setting].dataset != cfg.data.dataset:  # else the fold's data loading refuses it
        raise ConfigError(f"data.setting: {cfg.data.setting!r} is a setting of "
                          f"{SETTINGS[cfg.data.setting].dataset}, not of data.dataset {cfg.data.dataset!r}")
    n_classes = len(SETTINGS[cfg.data.setting].classes)
    if cfg.model.num_classes != n_classes:
        over["model.num_classes"] = n_classes
    if not (cfg.model.use_mer or cfg.model.use_dic):
        raise ConfigError("model: at least one of use_mer / use_dic must be on (nothing to train)")
    cfg = apply_overrides(cfg, over) if over else cfg
    from fdp.methods import get_method  # the method decides what it can run with

    get_method(cfg.method).check(cfg)
    return cfg


def build_config(variant: str = "fdp", overrides: dict[str, Any] | None = None,
                 base: ExperimentConfig | None = None) -> ExperimentConfig:
    """code defaults -> variant diff -> overrides (sweep YAML, then CLI), resolved."""
    v = get_variant(variant)
    cfg = apply_overrides(base or ExperimentConfig(), v.overrides)
    cfg = apply_overrides(cfg, overrides or {})
    cfg.variant = variant
    return resolve(cfg)
