"""The FDP model (paper §3), built from `ModelConfig`.

forward, in named stages (Algorithm 1):
  encode frames  F_k = F(I_k)                       (local-global feature-aware transformer, §3.2)
  score ranks    S(F_k) = u^T F_k                   (rank scorer, eq. 4)
  pool over time F^(d) = Conv3d over (t, s, s)      (temporal pooling, §3.3)
  classify       logits = FC(FC(maxpool(F^(d))))    (MER module, §3.4.2)
  construct      D^ = sigmoid(EncDec(F^(d)))        (DIC module, §3.4.1)

Switched-off parts (config flags, decided in __init__) are not built: no dead parameters.
Widths and heads are ours (the paper gives none); docs/model.md says how they were chosen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fdp.config import ConfigError, EncoderConfig, ModelConfig, check_model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# local-global feature-aware transformer (paper §3.2)


class ConvBlock(nn.Module):
    """The "multi-head convolution block" of the aggregators, or a Table 10 replacement.

    multihead (C*): h heads, each its own conv -> BN -> ReLU (= grouped conv with per-group BN,
        BN being per-channel), concatenated, then a pointwise conv that lets heads interact.
    single (C): one dense vanilla conv.
    convbnpw (C'): dense conv to a reduced width -> BN -> ReLU -> pointwise conv back to the width
        (the paper credits C' with fewer output channels than C; we reduce to 3/4 of the width).
    """

    def __init__(self, dim: int, kind: str, heads: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        if kind == "multihead":
            if dim % heads:
                raise ConfigError(f"model.encoder.heads={heads}: stage width {dim} is not divisible by it")
            self.body = nn.Sequential(
                nn.Conv2d(dim, dim, kernel, padding=pad, groups=heads, bias=False),
                nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
                nn.Conv2d(dim, dim, 1),
            )
        elif kind == "single":
            self.body = nn.Conv2d(dim, dim, kernel, padding=pad)
        elif kind == "convbnpw":
            mid = dim * 3 // 4
            self.body = nn.Sequential(
                nn.Conv2d(dim, mid, kernel, padding=pad, bias=False),
                nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, dim, 1),
            )
        else:
            raise ConfigError(f"encoder.conv: unknown conv block {kind!r} (multihead | single | convbnpw)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvMLP(nn.Module):
    """Per-position MLP as 1x1 convs: BN -> 1x1 -> GELU -> 1x1."""

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = max(1, int(round(dim * ratio)))
        self.net = nn.Sequential(nn.BatchNorm2d(dim), nn.Conv2d(dim, hidden, 1), nn.GELU(),
                                 nn.Conv2d(hidden, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LocalRelationalAggregator(nn.Module):
    """LRA (§3.2.1): x + ConvBlock(x), then + MLP (two residuals)."""

    def __init__(self, dim: int, cfg: EncoderConfig) -> None:
        super().__init__()
        self.conv = ConvBlock(dim, cfg.conv, cfg.heads, cfg.kernel)
        self.mlp = ConvMLP(dim, cfg.mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        x = x + self.conv(x)
        return x + self.mlp(x)


class MultiHeadSelfAttention(nn.Module):
    """Eq. 1-3, with one full-width Q/K/V projection: each head's Q_i, K_i, V_i is projected from
    all `dim` channels (3 dim^2 weights), not, as eq. 1 writes, from the head's own channel slice
    X_i (3 dim^2 / h); docs/model.md gives the parameter effect. Per head softmax(Q_i K_i^T /
    sqrt(dim / h)) V_i (eq. 2), then an FC fusing the heads (eq. 3)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"model.encoder.heads={heads}: attention width {dim} is not divisible by it")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)  # W_Q, W_K, W_V of all heads, each from all channels (eq. 1)
        self.proj = nn.Linear(dim, dim)  # FC of eq. 3 fusing the heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        n, c, h, w = x.shape
        tokens = self.norm(x.flatten(2).transpose(1, 2))  # (N, HW, C)
        q, k, v = self.qkv(tokens).view(n, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)  # eq. 2, (N, heads, HW, C/heads)
        y = self.proj(a.transpose(1, 2).reshape(n, h * w, c))  # eq. 3
        return y.transpose(1, 2).reshape(n, c, h, w)


class GlobalRelationalAggregator(nn.Module):
    """GRA (§3.2.2): pointwise conv; + MHSA; + multi-head conv block; + MLP (three residuals)."""

    def __init__(self, dim: int, cfg: EncoderConfig) -> None:
        super().__init__()
        self.pw = nn.Conv2d(dim, dim, 1)
        self.attn = MultiHeadSelfAttention(dim, cfg.heads)
        self.conv = ConvBlock(dim, cfg.conv, cfg.heads, cfg.kernel)
        self.mlp = ConvMLP(dim, cfg.mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pw(x)
        x = x + self.attn(x)
        x = x + self.conv(x)
        return x + self.mlp(x)


class PatchEmbedding(nn.Module):
    """Downsampling patch embedding: 2x2 patches -> width (a stride-2 conv), BN."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 2, stride=2, bias=False)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class LocalGlobalTransformer(nn.Module):
    """Vanilla conv stem, N_S stages of [PE, N_L x LRA, N_G x GRA], head = BN + global avg pool.

    64x64 input: stem (stride 2) -> 32x32; stages -> 16, 8, 4, 2. Output (N, dims[-1]).
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, cfg.stem_channels, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(cfg.stem_channels), nn.ReLU(inplace=True))
        stages, cin = [], cfg.stem_channels
        for dim in cfg.dims:
            blocks: list[nn.Module] = [PatchEmbedding(cin, dim)]
            blocks += [LocalRelationalAggregator(dim, cfg) for _ in range(cfg.n_local)]
            blocks += [GlobalRelationalAggregator(dim, cfg) for _ in range(cfg.n_global)]
            stages.append(nn.Sequential(*blocks))
            cin = dim
        self.stages = nn.Sequential(*stages)
        self.head_norm = nn.BatchNorm2d(cin)
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, D)
        x = self.stages(self.stem(x))
        return self.head_norm(x).mean(dim=(2, 3))


# ---------------------------------------------------------------------------------------------
# backbone swaps of Table 10 (written here: there is no CPU torchvision build)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.down(x), inplace=True)


class ResNet18(nn.Module):
    """ResNet18 (He et al.), [2, 2, 2, 2] basic blocks, widths 64-512, no classifier. Output (N, 512)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for i, w in enumerate([64, 128, 256, 512]):
            layers += [BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.out_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x)).mean(dim=(2, 3))


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """ViT-Base (Dosovitskiy et al.): patch embedding, class token, learned positions, 12 blocks."""

    def __init__(self, cfg: EncoderConfig, image_size: int) -> None:
        super().__init__()
        if image_size % cfg.vit_patch:
            raise ConfigError(f"encoder.vit_patch={cfg.vit_patch} does not divide image size {image_size}")
        n = (image_size // cfg.vit_patch) ** 2
        self.patch = nn.Conv2d(3, cfg.vit_dim, cfg.vit_patch, cfg.vit_patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.vit_dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, cfg.vit_dim) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(cfg.vit_dim, cfg.vit_heads) for _ in range(cfg.vit_depth)])
        self.norm = nn.LayerNorm(cfg.vit_dim)
        self.out_dim = cfg.vit_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)  # (N, n, D)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1) + self.pos
        return self.norm(self.blocks(t))[:, 0]


def build_encoder(cfg: EncoderConfig, image_size: int) -> nn.Module:
    if cfg.kind == "lgfat":
        return LocalGlobalTransformer(cfg)
    if cfg.kind == "resnet18":
        return ResNet18()
    if cfg.kind == "vit":
        return ViT(cfg, image_size)
    raise ConfigError(f"encoder.kind: unknown backbone {cfg.kind!r} (lgfat | vit | resnet18)")


# ---------------------------------------------------------------------------------------------
# rank scorer, temporal pooling, MER, DIC (paper §3.3-3.4)


class RankScorer(nn.Module):
    """Eq. 4: S(F_k) = u^T F_k (linear, no bias); K(k) = c k with c > 0 for eq. 5."""

    def __init__(self, dim: int, slope: float, learn_slope: bool) -> None:
        super().__init__()
        self.u = nn.Linear(dim, 1, bias=False)
        # c = softplus(rho) keeps the proportionality constant positive while learned
        rho = math.log(math.expm1(slope))
        if learn_slope:
            self.rho = nn.Parameter(torch.tensor(rho))
        else:
            self.register_buffer("rho", torch.tensor(rho))

    @property
    def slope(self) -> torch.Tensor:
        return F.softplus(self.rho)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T)
        return self.u(feats).squeeze(-1)

    def targets(self, t: int, device: torch.device) -> torch.Tensor:
        """K(k) = c k, k = 0..t-1, shape (t,)."""
        return self.slope * torch.arange(t, device=device, dtype=torch.float32)


class TemporalPooling(nn.Module):
    """§3.3: each frame feature (D,) -> map (C', s, s); frames stacked on a time axis in order;
    a 3-D conv whose kernel spans all t frames (and 3x3 in space) pools time into F^(d)."""

    def __init__(self, dim: int, frames: int, map_side: int, out_channels: int) -> None:
        super().__init__()
        if dim % (map_side * map_side):
            raise ConfigError(f"model.temporal_map={map_side}: feature dim {dim} is not a multiple of {map_side}^2")
        self.map_side = map_side
        self.in_channels = dim // (map_side * map_side)
        self.conv = nn.Conv3d(self.in_channels, out_channels, kernel_size=(frames, 3, 3), padding=(0, 1, 1),
                              bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, C_t, s, s)
        b, t, _ = feats.shape
        s = self.map_side
        maps = feats.reshape(b, t, self.in_channels, s, s)  # each frame's own vector -> its own map
        vol = maps.transpose(1, 2)  # (B, C', T, s, s): time is the conv's depth axis
        return F.relu(self.norm(self.conv(vol).squeeze(2)))


class MERHead(nn.Module):
    """§3.4.2: max-pooling, then two fully-connected layers -> m logits."""

    def __init__(self, channels: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d(2)
        self.fc1 = nn.Linear(channels * 4, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, fd: torch.Tensor) -> torch.Tensor:
        x = self.pool(fd).flatten(1)
        return self.fc2(self.drop(F.relu(self.fc1(x))))


def _conv_bn_lrelu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2, inplace=True))


class DICModule(nn.Module):
    """§3.4.1, Fig. 3: fully convolutional encoder-decoder, 4 encoder blocks (conv+BN+LeakyReLU,
    max-pool), 4 decoder blocks (deconv x2, conv+BN+LeakyReLU), encoder features added to decoder
    features (skips), sigmoid. The paper does not say how F^(d) (s x s) reaches the image size; an
    output deconv upsamples by image_size / s before the 1-channel conv."""

    def __init__(self, cin: int, widths: list[int], map_side: int, image_size: int) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ConfigError(f"model.dic_channels: need 4 encoder widths, got {widths}")
        if map_side % 16 or image_size % map_side:
            raise ConfigError(f"DIC: map side {map_side} must be a multiple of 16 dividing {image_size}")
        self.enc = nn.ModuleList()
        c = cin
        for w in widths:
            self.enc.append(_conv_bn_lrelu(c, w))
            c = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        outs = list(reversed(widths))  # decoder block i is added to encoder block 3-i
        for w in outs:
            self.up.append(nn.ConvTranspose2d(c, w, 2, stride=2))
            self.dec.append(_conv_bn_lrelu(w, w))
            c = w
        f = image_size // map_side
        self.out = nn.Sequential(nn.ConvTranspose2d(c, c, f, stride=f) if f > 1 else nn.Identity(),
                                 nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, fd: torch.Tensor) -> torch.Tensor:  # (B, C_t, s, s) -> (B, 1, H, W)
        skips, x = [], fd
        for block in self.enc:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(up(x)) + skip
        return torch.sigmoid(self.out(x))


class FDP(nn.Module):
    """Fine-grained dynamic perception network. forward(x (B, T, 3, H, W)) -> dict of named outputs."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        check_model(cfg)  # an impossible combination is one ConfigError, never a silent substitute
        self.cfg = cfg
        self.encoder = build_encoder(cfg.encoder, cfg.image_size)
        dim = self.encoder.out_dim
        side = cfg.temporal_map
        self.rank = RankScorer(dim, cfg.rank_slope, cfg.learn_rank_slope) if cfg.use_rank else None
        self.temporal = TemporalPooling(dim, cfg.frames, side, cfg.temporal_channels)
        self.mer = (MERHead(cfg.temporal_channels, cfg.mer_hidden, cfg.num_classes, cfg.dropout)
                    if cfg.use_mer else None)
        self.dic = (DICModule(cfg.temporal_channels, cfg.dic_channels, side, cfg.image_size)
                    if cfg.use_dic else None)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> per-frame features (B, T, D)."""
        b, t = x.shape[:2]
        return self.encoder(x.flatten(0, 1)).view(b, t, -1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        if x.shape[1] != self.cfg.frames:
            raise ValueError(f"FDP: expected {self.cfg.frames} frames, got {x.shape[1]}")
        feats = self.forward_features(x)  # (B, T, D)
        fd = self.temporal(feats)  # (B, C_t, s, s)
        return {
            "rank_scores": self.rank(feats) if self.rank is not None else None,  # (B, T)
            "logits": self.mer(fd) if self.mer is not None else None,  # (B, m)
            "di": self.dic(fd) if self.dic is not None else None,  # (B, 1, H, W)
        }


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network `cfg.arch` names: the paper's FDP, or the network of the authors' code
    (fdp.authors_model); both return the same named outputs."""
    if cfg.arch == "authors_code":
        from fdp.authors_model import AuthorsFDP

        return AuthorsFDP(cfg)
    return FDP(cfg)
