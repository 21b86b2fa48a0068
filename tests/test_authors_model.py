"""The variant `authors_code` (fdp/authors_model.py): the network of the authors' public code,
built from its facts (CYF-cuber/FDP@7ad36d9, fdp.py) -- its parameter count, its grey input, no
rank scorer and no global aggregators, one dense 3 x 3 conv per block, and the reshape before the
3-D convolution that mixes feature dimensions instead of frames."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fdp.authors_model import AuthorsFDP, ConvBlock, SegNet
from fdp.dynamic_image import dynamic_image
from fdp.losses import loss_terms
from fdp.model import build_model, count_parameters
from fdp.profiles import SMOKE
from fdp.variants import VARIANTS, build_config

# `sum(p.numel() for p in FDP().parameters())` of the authors' fdp.py at commit 7ad36d9 (their
# classes built in a scratch folder outside this repository, timm's DropPath / trunc_normal_ and
# einops stubbed: neither holds parameters): frame encoder 54,952,448 (of which the 768 -> 4096
# projection 3,149,824), CLS_Net 905,293, SegNet(8, 1) 29,446,465; 5 classes, hard-coded there
AUTHORS_PARAMS = 85_304_206
PARTS = {"encoder": 54_952_448, "temporal+mer": 905_293, "dic": 29_446_465}


def _smoke(**over):
    return build_config("authors_code", {**SMOKE, "model.num_classes": 5, **over})


def test_parameter_count_is_the_authors_codes():
    cfg = build_config("authors_code", {"model.num_classes": 5})
    with torch.device("meta"):
        model = build_model(cfg.model)
    n = count_parameters(model)
    assert abs(n - AUTHORS_PARAMS) <= 0.05 * AUTHORS_PARAMS  # the tolerance ...
    assert n == AUTHORS_PARAMS  # ... and in fact every weight
    assert count_parameters(model.encoder) == PARTS["encoder"]
    assert count_parameters(model.temporal) + count_parameters(model.mer) == PARTS["temporal+mer"]
    assert count_parameters(model.dic) == PARTS["dic"]
    assert VARIANTS["authors_code"].ref_params == AUTHORS_PARAMS


def test_their_structure():
    """Conv blocks only (their GFA never built), a dense 3 x 3 conv in each, no rank scorer, grey stem."""
    cfg = build_config("authors_code")
    with torch.device("meta"):
        model = build_model(cfg.model)
    assert isinstance(model, AuthorsFDP) and model.rank is None and not cfg.model.use_rank
    blocks = list(model.encoder.blocks)
    assert len(blocks) == sum(cfg.model.authors.depths) == 20 and all(isinstance(b, ConvBlock) for b in blocks)
    assert all(b.conv.groups == 1 and b.conv.kernel_size == (3, 3) for b in blocks)
    assert not any(isinstance(m, (nn.MultiheadAttention, nn.Linear)) for m in model.encoder.blocks.modules())
    assert model.encoder.stem[0][0].in_channels == 1  # grey
    assert model.temporal.kernel_size == (3, 3, cfg.model.frames) and model.temporal.in_channels == 1
    assert isinstance(model.dic, SegNet)


def test_the_reshape_mixes_feature_dimensions_not_frames():
    """Frame k's features all equal k: after their reshape, the axis the 3-D conv spans holds t
    consecutive features of ONE frame (a constant), never the t frames (0, 1, ..., t-1)."""
    cfg = _smoke().model
    model = AuthorsFDP(cfg).eval()
    b, t, s = 2, cfg.frames, cfg.authors.feature_side
    feats = torch.arange(t, dtype=torch.float32).view(1, t, 1).expand(b, t, s * s)
    model.encoder.forward = lambda x: feats.reshape(b * t, s * s)  # known features per frame
    seen = {}
    model.temporal.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    with torch.no_grad():
        model(torch.rand(b, t, 3, 64, 64))
    x = seen["x"]  # (B, 1, s, s, t)
    assert x.shape == (b, 1, s, s, t)
    assert torch.equal(x[0, 0, 0, 0], torch.zeros(t))  # the first row: t features of frame 0
    assert not torch.equal(x[0, 0, 0, 0], torch.arange(t, dtype=torch.float32))


def test_grey_input():
    """Two clips with the same luma everywhere give the same outputs, whatever their colours."""
    torch.manual_seed(0)
    model = AuthorsFDP(_smoke().model).eval()
    rgb = torch.rand(1, 8, 3, 64, 64) * 0.5
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 1, 3, 1, 1)).sum(2, keepdim=True)
    grey = luma.expand(-1, -1, 3, -1, -1)  # R = G = B = luma: the same grey frame
    with torch.no_grad():
        a, b = model(rgb), model(grey)
    torch.testing.assert_close(a["logits"], b["logits"])
    torch.testing.assert_close(a["di"], b["di"])


def test_forward_backward_at_the_smoke_sizes():
    torch.manual_seed(0)
    cfg = _smoke(**{"model.authors.drop_path": 0.0})  # every block's branch in this one step
    model = build_model(cfg.model).train()
    x = torch.rand(2, cfg.model.frames, 3, 64, 64)
    out = model(x)
    assert out["logits"].shape == (2, 5) and out["di"].shape == (2, 1, 64, 64) and out["rank_scores"] is None
    assert 0 < out["di"].min() and out["di"].max() < 1
    terms = loss_terms(out, torch.tensor([0, 3]), dynamic_image(x), cfg.loss, model)
    assert set(terms) == {"mer", "dic", "total"}  # no rank loss
    terms["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("over,line", [
    ({"model.authors.feature_side": 48}, "model.authors.feature_side=48: the DIC pools it 5 times; use a multiple of 32"),
    ({"model.authors.depths": [1, 1, 1]}, "model.authors.depths: 3 stages, but model.encoder.dims has 4 widths"),
])
def test_sizes_it_cannot_be_built_with_are_one_line(over, line):
    from fdp.config import ConfigError

    with pytest.raises(ConfigError) as e:
        _smoke(**over)
    assert str(e.value) == line


def test_listed_with_the_authors_figure_beside():
    from click.testing import CliRunner

    from orchestrator.cli.main import main

    out = CliRunner().invoke(main, ["list-variants"]).output
    line = next(x for x in out.splitlines() if x.startswith("authors_code"))
    assert "85,304,206" in line.split()[2] and "CYF-cuber/FDP@7ad36d9 fdp.py: 85,304,206" in line
