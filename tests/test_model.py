"""Model tests generated from the variant registry (STYLE.md): every variant builds, runs forward
and backward with a finite loss and gradients on every built parameter; switched-off modules own
no parameters; Table 10's parameter budget and ordering hold; eq. 5 and the 3-D temporal conv
behave as the paper says."""

import pytest
import torch

from fdp.config import ConfigError, feature_dim
from fdp.dynamic_image import dynamic_image
from fdp.losses import loss_terms, rank_loss
from fdp.model import (GlobalRelationalAggregator, LocalRelationalAggregator, MultiHeadSelfAttention, build_model,
                       count_parameters)
from fdp.variants import VARIANTS, build_config

# paper Table 10 (millions) and the relative tolerance our counts achieve (docs/model.md: fdp +2.7 %,
# resnet18 +2.7 %, vit_base -0.8 %, conv_t +1.5 %, convbnpw_t -3.8 %); a change of widths that moves
# a count by more than a few tenths of a percent fails here
TABLE10 = {"fdp": (14.82, 0.03), "resnet18": (13.27, 0.03), "vit_base": (88.39, 0.01),
           "conv_t": (28.71, 0.02), "convbnpw_t": (27.14, 0.04)}


def _params(name: str) -> float:
    return count_parameters(build_model(build_config(name, {"model.num_classes": 5}).model)) / 1e6


@pytest.mark.parametrize("name", sorted(TABLE10))
def test_parameter_count_matches_table10(name):
    target, tol = TABLE10[name]
    assert abs(_params(name) - target) <= tol * target, f"{name}: {_params(name):.2f}M vs paper {target}M"


def test_table10_tolerances_stay_within_five_percent():
    assert all(tol <= 0.05 for _, tol in TABLE10.values())


def test_attention_projection_is_full_width_as_documented():
    """docs/model.md: one Linear(dim, 3 dim) per GRA, 2,027,520 weights over the four stages, not
    eq. 1's per-head 3 dim^2 / h = 253,440."""
    model = build_model(build_config("fdp").model)
    attn = [m for m in model.modules() if isinstance(m, MultiHeadSelfAttention)]
    dims = build_config("fdp").model.encoder.dims
    assert [a.qkv.weight.shape for a in attn] == [torch.Size([3 * d, d]) for d in dims]
    full = sum(a.qkv.weight.numel() for a in attn)
    assert full == 3 * sum(d * d for d in dims) == 2_027_520
    per_head = sum(3 * a.qkv.in_features ** 2 // a.heads for a in attn)  # eq. 1's block-diagonal W_Qi, W_Ki, W_Vi
    assert per_head == 253_440
    assert count_parameters(model) - (full - per_head) == 13_441_158  # "13.44 M" in docs/model.md


@pytest.mark.parametrize("name", sorted(n for n in VARIANTS if VARIANTS[n].method == "network"
                                         and build_config(n).model.arch == "fdp"))  # the paper's network
def test_feature_width_and_map_side_are_the_configured_ones(name):
    """No silent substitute: the temporal map side is model.temporal_map, and `feature_dim` (what
    the config-time check reasons with) is the width the built encoder outputs."""
    cfg = build_config(name).model
    with torch.device("meta"):
        model = build_model(cfg)
    assert model.encoder.out_dim == feature_dim(cfg.encoder)
    assert model.temporal.map_side == cfg.temporal_map


@pytest.mark.parametrize("over,line", [
    ({"model.encoder.dims": [32, 64, 128, 384]},
     "model.encoder.dims: feature width 384 is not a multiple of model.temporal_map^2 = 256 "
     "(temporal pooling reshapes each frame feature to a 16x16 map)"),
    ({"model.temporal_map": 8},  # 768 = 12 x 8^2 reshapes, but the DIC cannot decode an 8 x 8 map
     "model.temporal_map=8: the DIC needs a map side that is a multiple of 16 (4 poolings) and divides "
     "model.image_size=64"),
    ({"model.encoder.kind": "resnet18", "model.temporal_map": 32, "loss.lambda_d": 0},
     "model.temporal_map: feature width 512 is not a multiple of model.temporal_map^2 = 1024 "
     "(temporal pooling reshapes each frame feature to a 32x32 map)"),
    ({"model.encoder.heads": 5}, "model.encoder.heads=5: stage width 64 is not divisible by it"),
    ({"model.encoder.dims": [64, 128, 256, 512, 512, 768]},
     "model.encoder.dims: 6 stages halve the 32x32 stem output of a 64x64 input below 1x1"),
    ({"data.crop": 48}, "data.crop=48: the model is built for model.image_size=64 inputs; set both"),
    ({"data.crop": 80, "model.image_size": 80, "model.temporal_map": 16},
     "data.crop=80: larger than the cached frames (data.aligned_size=72)"),
])
def test_impossible_combination_is_one_config_error(over, line):
    with pytest.raises(ConfigError) as e:
        build_config("fdp", over)
    assert str(e.value) == line


def test_model_refuses_an_impossible_width_itself():
    """Built directly from a ModelConfig (no resolve), the model raises the same line instead of
    falling back to another map side."""
    cfg = build_config("fdp").model
    cfg.encoder.dims = [32, 64, 128, 384]
    with pytest.raises(ConfigError, match=r"^model.encoder.dims: feature width 384 is not a multiple"):
        build_model(cfg)
    cfg.encoder.dims = [32, 64, 128, 512]  # 2 x 16 x 16: fine
    assert build_model(cfg).temporal.in_channels == 2


def test_parameter_ordering_matches_table10():
    p = {n: _params(n) for n in TABLE10}
    assert p["vit_base"] > p["conv_t"] > p["convbnpw_t"] > p["fdp"] > p["resnet18"]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "authors_code" else n
                                  for n in sorted(n for n in VARIANTS if VARIANTS[n].method == "network")])
def test_variant_forward_backward(name):
    """(authors_code at its 85 M parameters: a minute on 2 cores, so slow; at the smoke profile's
    sizes in tests/test_authors_model.py)"""
    torch.manual_seed(0)
    cfg = build_config(name, {"model.num_classes": 5})
    model = build_model(cfg.model).train()
    x = torch.rand(2, cfg.model.frames, 3, 64, 64)
    y = torch.tensor([0, 3])
    out = model(x)
    if cfg.model.use_mer:
        assert out["logits"].shape == (2, 5)
    else:
        assert out["logits"] is None
    if cfg.model.use_dic:
        assert out["di"].shape == (2, 1, 64, 64)
        assert out["di"].min() > 0 and out["di"].max() < 1  # sigmoid output
    terms = loss_terms(out, y, dynamic_image(x), cfg.loss, model)
    assert torch.isfinite(terms["total"])
    terms["total"].backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient in {pname}"


def _owns(model, cls) -> bool:
    return any(isinstance(m, cls) for m in model.modules())


@pytest.mark.parametrize("name,absent", [
    ("no_dic", "dic."), ("no_rank", "rank."), ("no_mer", "mer."),
])
def test_switched_off_head_owns_no_parameters(name, absent):
    model = build_model(build_config(name).model)
    assert not [n for n, _ in model.named_parameters() if n.startswith(absent)]
    assert getattr(model, absent.rstrip(".")) is None
    full = {n for n, _ in build_model(build_config("fdp").model).named_parameters()}
    assert any(n.startswith(absent) for n in full)  # the full model does have them


@pytest.mark.parametrize("name,local,global_", [
    ("fdp", True, True), ("no_local", False, True), ("no_global", True, False), ("no_local_global", False, False),
])
def test_aggregators_built_only_when_on(name, local, global_):
    model = build_model(build_config(name).model)
    assert _owns(model, LocalRelationalAggregator) == local
    assert _owns(model, GlobalRelationalAggregator) == global_
    n_lra = sum(isinstance(m, LocalRelationalAggregator) for m in model.modules())
    assert n_lra == (4 * 2 if local else 0)  # N_S = 4 stages x N_L = 2


def test_loss_weight_zero_removes_module():
    cfg = build_config("fdp", {"loss.lambda_d": 0})
    assert cfg.model.use_dic is False and build_model(cfg.model).dic is None


def test_multihead_conv_is_grouped():
    model = build_model(build_config("fdp").model)
    lra = next(m for m in model.modules() if isinstance(m, LocalRelationalAggregator))
    conv = lra.conv.body[0]
    assert conv.groups == 8 and isinstance(lra.conv.body[1], torch.nn.BatchNorm2d)
    dense = next(m for m in build_model(build_config("conv_t").model).modules()
                 if isinstance(m, LocalRelationalAggregator))
    assert dense.conv.body.groups == 1


def test_temporal_conv_runs_over_frames():
    """The 3-D conv's depth axis is time: with every kernel tap zeroed except time tap k, the
    dynamic representation depends on frame k's features and on no other frame."""
    torch.manual_seed(0)
    model = build_model(build_config("fdp").model).eval()
    tp = model.temporal
    t = model.cfg.frames
    assert tp.conv.weight.shape[2] == t  # kernel spans the t frames
    feats = torch.randn(1, t, model.encoder.out_dim)
    with torch.no_grad():
        tp.conv.weight[:, :, :3] = 0
        tp.conv.weight[:, :, 4:] = 0  # only frame 3 can contribute
        base = tp(feats)
        other = feats.clone()
        other[:, [0, 1, 2, 4, 5, 6, 7]] = torch.randn(1, 7, feats.shape[-1])
        assert torch.allclose(tp(other), base)  # changing other frames changes nothing
        moved = feats.clone()
        moved[:, 3] = torch.randn(feats.shape[-1])
        assert not torch.allclose(tp(moved), base)  # changing frame 3 does


def test_frame_order_matters_to_temporal_pooling():
    torch.manual_seed(0)
    tp = build_model(build_config("fdp").model).eval().temporal
    feats = torch.randn(2, 8, 768)
    with torch.no_grad():
        assert not torch.allclose(tp(feats), tp(feats.flip(1)), atol=1e-4)


def test_rank_loss_equals_hand_computation():
    scores = torch.tensor([[0.0, 1.5, 1.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    c = 2.0
    targets = c * torch.arange(4.0)  # K(k) = 2k: 0, 2, 4, 6
    # clip 1: |0-0| + |2-1.5| + |4-1| + |6-4| = 5.5 ; clip 2: 1 + 1 + 3 + 5 = 10 ; mean 7.75
    assert rank_loss(scores, targets).item() == pytest.approx(7.75)


def test_rank_slope_positive_and_used():
    model = build_model(build_config("fdp", {"model.rank_slope": 0.5}).model)
    assert model.rank.slope.item() == pytest.approx(0.5)
    assert model.rank.targets(4, torch.device("cpu")).tolist() == pytest.approx([0, 0.5, 1.0, 1.5])
    with torch.no_grad():
        model.rank.rho.fill_(-30.0)  # softplus keeps c > 0 however far rho goes
    assert model.rank.slope.item() > 0


def test_overrides_and_errors():
    cfg = build_config("fdp", {"loss.lambda_d": 10, "model.encoder.n_local": 3})
    assert cfg.loss.lambda_d == 10.0 and cfg.model.encoder.n_local == 3
    with pytest.raises(ConfigError, match="did you mean 'loss.lambda_d'"):
        build_config("fdp", {"loss.lamda_d": 10})
    with pytest.raises(ConfigError, match="expected an integer"):
        build_config("fdp", {"model.encoder.n_local": "two"})
    with pytest.raises(ConfigError, match="unknown variant 'fdpp'.*did you mean 'fdp'"):
        build_config("fdpp")


def test_exponent_without_dot_is_a_number():
    from fdp.config import parse_override

    key, value = parse_override("train.lr=1e-3")  # YAML 1.1 reads this as a string
    assert build_config("fdp", {key: value}).train.lr == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="train.lr: expected a number"):
        build_config("fdp", {"train.lr": "fast"})


@pytest.mark.parametrize("typed", ["123456", "012345", "1e5678"])
def test_a_text_key_keeps_the_digits_typed(typed):
    """A cache fingerprint prefix of digits is a valid --set data.cache_dir (README): YAML would
    read 123456 as an int and 012345 as octal 5349."""
    from fdp.config import parse_override

    assert parse_override(f"data.cache_dir={typed}") == ("data.cache_dir", typed)
    assert build_config("fdp", dict([parse_override(f"data.cache_dir={typed}")])).data.cache_dir == typed
    assert parse_override("train.steps=12") == ("train.steps", 12)  # a number key still reads a number
    assert parse_override("data.test_dataset=") == ("data.test_dataset", "")  # empty text, not None
