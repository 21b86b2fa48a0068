"""The network of the authors' public code (github.com/CYF-cuber/FDP at commit 7ad36d9, `fdp.py`,
classes `FDP`, `Local_Global_Feature_Aware_Transformer`, `LFA`, `CLS_Net`, `SegNet`), written
here from the facts of that file (SPEC §8), so that the network behind the published numbers and
the paper's network (fdp.model) meet under one protocol. Built when `model.arch = authors_code`
(the variant `authors_code`); it differs from the paper's FDP in these ways, all theirs:

* grey input: each RGB frame becomes one luma channel (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, as
  torchvision's Grayscale that their data code applies);
* frame encoder: a 4-conv stem (stride 2 twice), then stages of convolutional blocks only ("LFA":
  patch embedding, a residual dense 3 x 3 conv -- their "multi-head convolutional attention" is one
  dense conv --, BN, a residual MLP of 1 x 1 convs); the global aggregators ("GFA") are listed in
  their stage plan but the loop builds only `depths[i]` blocks per stage, so none is ever built;
  stochastic depth 0 .. 0.1 over the blocks; BN, global average pooling and a linear layer to a
  feature of feature_side^2 (4096) per frame;
* no rank scorer and no rank loss;
* temporal pooling: the t frame features (B, t, s^2) are reshaped to (B, 1, s, s, t) -- memory
  order is (frame, feature), so the last axis runs over t consecutive FEATURE elements of one
  frame, not over frames -- and a Conv3d(1, 8, kernel (3, 3, t)) reduces that axis;
* MER: max-pool 3 x 3, flatten (8 x 21 x 21 = 3528 at s = 64), FC 256, ReLU, FC m;
* DIC: a SegNet (VGG-16 layout, 5 pooling stages with indices and unpooling) from the 8 maps to
  one, sigmoid.

At their sizes (widths 96-192-384-768, depths 3-4-10-3, stem 64-32-64, s = 64, t = 8, 5 classes)
this has exactly the parameters of their `FDP()`: 85,304,206 (tests/test_authors_model.py). Their
sizes are the defaults of `fdp.config.AuthorsConfig` and the variant's `model.encoder.dims`; the
size profiles shrink them like every other network's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fdp.config import ModelConfig, check_authors

NORM_EPS = 1e-5
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, torchvision's Grayscale


def make_divisible(v: float, divisor: int = 32) -> int:
    """Their `_make_divisible`: round to a multiple of `divisor`, never more than 10 % down."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a block's residual branch per sample with probability p
    (the kept ones scaled by 1 / (1 - p)); identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)


def conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout, eps=NORM_EPS),
                         nn.ReLU(inplace=True))


class PatchEmbed(nn.Module):
    """Stride 2: 2 x 2 average pool, 1 x 1 conv, BN; a change of width: 1 x 1 conv, BN; else nothing."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if stride == 2 or cin != cout:
            pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) if stride == 2 else nn.Identity()
            self.body = nn.Sequential(pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=NORM_EPS))
        else:
            self.body = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvBlock(nn.Module):
    """Their LFA: x = embed(x); x = x + conv3x3(x); x = x + MLP(BN(x)) (residuals with stochastic depth)."""

    def __init__(self, cin: int, cout: int, stride: int, drop_path: float, mlp_ratio: float) -> None:
        super().__init__()
        hidden = make_divisible(cout * mlp_ratio)
        self.embed = PatchEmbed(cin, cout, stride)
        self.conv = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)  # their "multi-head" conv: one dense conv
        self.norm = nn.BatchNorm2d(cout, eps=NORM_EPS)
        self.mlp = nn.Sequential(nn.Conv2d(cout, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, cout, 1))
        self.drop = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = x + self.drop(self.conv(x))
        return x + self.drop(self.mlp(self.norm(x)))


class FrameEncoder(nn.Module):
    """(N, 1, H, W) grey frames -> (N, s^2) features."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        a, dims = cfg.authors, cfg.encoder.dims
        s0, s1, s2 = a.stem
        self.stem = nn.Sequential(conv_bn_relu(1, s0, 2), conv_bn_relu(s0, s1, 1), conv_bn_relu(s1, s2, 1),
                                  conv_bn_relu(s2, s2, 2))
        n = sum(a.depths)
        rates = [a.drop_path * i / max(n - 1, 1) for i in range(n)]  # their decay rule: linspace(0, p, n)
        blocks, cin, k = [], s2, 0
        for stage, (depth, width) in enumerate(zip(a.depths, dims)):
            for i in range(depth):
                blocks.append(ConvBlock(cin, width, 2 if stage > 0 and i == 0 else 1, rates[k], a.mlp_ratio))
                cin, k = width, k + 1
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.BatchNorm2d(cin, eps=NORM_EPS)
        self.proj = nn.Linear(cin, a.feature_side ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.blocks(self.stem(x)))
        return self.proj(x.mean((2, 3)))


class SegNet(nn.Module):
    """Their DIC module: VGG-16-style encoder (2, 2, 3, 3, 3 conv+BN+ReLU per stage, max-pool with
    indices), mirrored decoder (unpool, conv+BN+ReLU), last conv to `cout` maps without BN."""

    LAYERS = (2, 2, 3, 3, 3)

    def __init__(self, cin: int, cout: int, widths: list[int]) -> None:
        super().__init__()

        def cbr(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o, momentum=0.1), nn.ReLU())

        enc, prev = [], cin
        for n, w in zip(self.LAYERS, widths):
            enc.append(nn.Sequential(*[cbr(prev if j == 0 else w, w) for j in range(n)]))
            prev = w
        self.enc = nn.ModuleList(enc)
        dec = []
        for s in reversed(range(len(widths))):  # stage s decodes to the width of stage s - 1
            n, w = self.LAYERS[s], widths[s]
            out = widths[s - 1] if s > 0 else widths[0]
            layers = [cbr(w, w) for _ in range(n - 1)]
            layers.append(cbr(w, out) if s > 0 else nn.Conv2d(w, cout, 3, padding=1))
            dec.append(nn.Sequential(*layers))
        self.dec = nn.ModuleList(dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        indices = []
        for stage in self.enc:
            x, idx = F.max_pool2d(stage(x), 2, 2, return_indices=True)
            indices.append(idx)
        for stage, idx in zip(self.dec, reversed(indices)):
            x = stage(F.max_unpool2d(x, idx, 2, 2))
        return x


class AuthorsFDP(nn.Module):
    """(B, T, 3, H, W) in [0, 1] -> {"logits" (B, m), "di" (B, 1, H, W) in (0, 1), "rank_scores": None}."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        check_authors(cfg)
        a, t, s = cfg.authors, cfg.frames, cfg.authors.feature_side
        self.cfg = cfg
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.encoder = FrameEncoder(cfg)
        self.rank = None  # no rank scorer in their code
        self.temporal = nn.Conv3d(1, a.temporal_channels, (3, 3, t), padding=(1, 1, 0))
        pooled = a.temporal_channels * (s // 3) ** 2
        self.mer = (nn.Sequential(nn.MaxPool3d((3, 3, 1)), nn.Flatten(), nn.Linear(pooled, a.mer_hidden), nn.ReLU(),
                                  nn.Linear(a.mer_hidden, cfg.num_classes)) if cfg.use_mer else None)
        self.dic = SegNet(a.temporal_channels, 1, a.dic_widths) if cfg.use_dic else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        b, t, _, h, w = x.shape
        if t != self.cfg.frames:
            raise ValueError(f"authors_code: expected {self.cfg.frames} frames, got {t}")
        grey = (x.flatten(0, 1) * self.luma).sum(1, keepdim=True)  # (B*T, 1, H, W)
        feats = self.encoder(grey).view(b, t, -1)  # (B, T, s^2)
        s = self.cfg.authors.feature_side
        y = self.temporal(feats.reshape(b, 1, s, s, t))  # their reshape: the last axis mixes features
        di = None
        if self.dic is not None:
            di = torch.sigmoid(self.dic(y[..., 0]))  # (B, 1, s, s)
            if di.shape[-2:] != (h, w):
                di = F.interpolate(di, size=(h, w), mode="bilinear", align_corners=False)
        return {"rank_scores": None, "logits": self.mer(y) if self.mer is not None else None, "di": di}

