"""Ground-truth dynamic images by approximate rank pooling (Bilen et al.; SPEC §3).

D = sum_t alpha_t I_t,  alpha_t = sum_{j=t..T} (2j - T - 1) / j,  t = 1..T.
The weights sum to 0, so a static clip has D = 0. A widely copied port uses (2j - T)/j, whose
weights sum to T and mix appearance into D; this module does not.
"""

from __future__ import annotations

import torch

# ITU-R BT.601 luma: the target is single-channel (grey)
_GREY = (0.299, 0.587, 0.114)


def arp_weights(T: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
    """alpha_1..alpha_T of approximate rank pooling, shape (T,)."""
    if T < 1:
        raise ValueError(f"arp_weights: T must be >= 1, got {T}")
    j = torch.arange(1, T + 1, dtype=torch.float64)
    terms = (2 * j - T - 1) / j  # (T,)
    # alpha_t = sum_{j >= t} terms_j : reversed cumulative sum
    alpha = torch.flip(torch.cumsum(torch.flip(terms, [0]), 0), [0])
    return alpha.to(dtype=dtype, device=device)


def to_grey(clip: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W) luma."""
    w = torch.tensor(_GREY, dtype=clip.dtype, device=clip.device).view(3, 1, 1)
    return (clip * w).sum(dim=-3, keepdim=True)


def dynamic_image(clip: torch.Tensor, rescale: bool = True, rtol: float = 1e-5) -> torch.Tensor:
    """Dynamic image of a batch of clips.

    clip: (B, T, 3, H, W) float frames (the same t sampled frames the model sees).
    Returns (B, 1, H, W): sum_t alpha_t grey(I_t), min-max rescaled per clip to [0, 1] when
    `rescale` (a clip with a constant D, e.g. a static clip, maps to all zeros, not NaN: a span
    below `rtol` x sum|alpha| x max|I| is float rounding of a zero image, not motion).
    Computed in float32 on the clip's device.
    """
    if clip.dim() != 5 or clip.shape[2] != 3:
        raise ValueError(f"dynamic_image: expected (B, T, 3, H, W), got {tuple(clip.shape)}")
    x = clip.float()
    alpha = arp_weights(x.shape[1], dtype=x.dtype, device=x.device)  # (T,)
    grey = to_grey(x)  # (B, T, 1, H, W)
    d = torch.einsum("t,btchw->bchw", alpha, grey)  # (B, 1, H, W)
    if not rescale:
        return d
    flat = d.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
    span = hi - lo
    scale = alpha.abs().sum() * grey.abs().flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
    tiny = rtol * scale + torch.finfo(x.dtype).tiny
    return torch.where(span > tiny, (d - lo) / span.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(d))
