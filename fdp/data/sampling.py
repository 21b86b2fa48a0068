"""Choosing clips for a class setting, and assembling training/testing batches on the device.

`select` applies a class setting (SPEC §4.2) to a cache. `ClipBank` copies the selected clips'
uint8 frames to the device once; `ClipBank.batch` then builds a batch with tensor ops only
(index arithmetic + gathers; no DataLoader, no per-clip Python loop), following paper §4.1.3:
t frames uniformly spaced between onset and offset with a random offset in training, random
64 x 64 crop + horizontal flip per clip in training, centre crop in testing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fdp.data.cache import ClipCache
from fdp.data.samples import DataError


@dataclass
class Selection:
    """The clips of a cache that a class setting keeps, with their labels."""

    indices: np.ndarray  # (N,) int64 clip indices into cache.clips
    labels: np.ndarray  # (N,) int64 class index in `class_names`
    subjects: list[str]  # (N,) subject of each selected clip
    clip_ids: list[str]  # (N,) clip id of each selected clip
    class_names: list[str]  # class names in label order
    excluded: list[dict[str, Any]] = field(default_factory=list)  # clips the setting leaves out: clip_id, subject, emotion


def select(cache: ClipCache, setting: Any) -> Selection:
    """Keep the clips whose emotion `setting.label_of` maps to a class.

    `setting` is a `fdp.data.settings.ClassSetting`. A setting for another dataset, or a class of
    the setting without a single clip, is a DataError (a class with no samples would silently
    drop out of UAR/UF1).
    """
    if getattr(setting, "dataset", cache.dataset) != cache.dataset:
        raise DataError(f"{cache.path}: class setting {setting.name} is for {setting.dataset}, "
                        f"the cache holds {cache.dataset}")
    idx, labels, excluded = [], [], []
    for i, c in enumerate(cache.clips):
        label = setting.label_of(c["emotion"])
        if label is None:
            excluded.append({"clip_id": c["clip_id"], "subject": c["subject"], "emotion": c["emotion"]})
        else:
            idx.append(i)
            labels.append(label)
    classes = list(setting.classes)
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(classes))
    empty = [classes[k] for k in range(len(classes)) if counts[k] == 0]
    if empty:
        raise DataError(f"{cache.path}: class setting {setting.name}: no clips of class(es) {', '.join(empty)}")
    indices = np.asarray(idx, np.int64)
    return Selection(indices=indices, labels=np.asarray(labels, np.int64),
                     subjects=[cache.clips[i]["subject"] for i in idx],
                     clip_ids=[cache.clips[i]["clip_id"] for i in idx], class_names=classes, excluded=excluded)


class ClipBank:
    """The selected clips' frames as one uint8 tensor on `device`, plus their start/length.

    Clip k of the bank (0 <= k < len(bank)) is clip `clip_indices[k]` of the cache; batches are
    requested by bank position. Memory: 15.5 kB per frame (3 x 72 x 72 uint8).
    """

    def __init__(self, cache: ClipCache, clip_indices: np.ndarray | list[int], labels: np.ndarray | list[int],
                 device: torch.device | str = "cpu", class_names: list[str] | None = None) -> None:
        """`class_names` (label order) should come from the `Selection`; without it each label is named
        after the emotion(s) of its clips ("disgust+repression"), which is right for settings that map
        one emotion per class but not the setting's own names (e.g. "negative")."""
        clip_indices = np.asarray(clip_indices, np.int64)
        if len(clip_indices) != len(labels):
            raise ValueError(f"ClipBank: {len(clip_indices)} clips but {len(labels)} labels")
        if len(clip_indices) == 0:
            raise DataError(f"{cache.path}: ClipBank needs at least one clip")
        self.device = torch.device(device)
        starts, lengths = cache.starts[clip_indices], cache.lengths[clip_indices]
        # one contiguous host copy of just these clips (the cache itself is memory-mapped)
        rows = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
        host = np.ascontiguousarray(cache.frames[rows])
        self.frames = torch.from_numpy(host).to(self.device)  # (F_sel, 3, S, S) uint8
        self.length = torch.as_tensor(lengths, dtype=torch.long, device=self.device)  # (N,)
        self.start = torch.cumsum(self.length, 0) - self.length  # (N,) row of each clip in self.frames
        self.labels = torch.as_tensor(np.asarray(labels, np.int64), device=self.device)  # (N,)
        self.clip_indices = clip_indices
        self.clip_ids = [cache.clips[i]["clip_id"] for i in clip_indices]  # per bank position
        self.subjects = [cache.clips[i]["subject"] for i in clip_indices]  # per bank position
        if class_names is None:
            lab = np.asarray(labels, np.int64)
            class_names = ["+".join(sorted({cache.clips[i]["emotion"] for i in clip_indices[lab == k]}))
                           for k in range(int(lab.max()) + 1)]
        self.class_names = list(class_names)
        self.size = int(self.frames.shape[-1])

    def __len__(self) -> int:
        return int(self.length.numel())

    def positions(self, idx: torch.Tensor, t: int, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, t) frame offsets within each clip: floor((k + u) * L / t), k = 0..t-1, with u ~ U[0, 1)
        per clip in training and u = 0.5 in testing. Uniform spacing over the whole onset..offset
        span; a clip shorter than t frames gets some frames repeated (the floor maps several k to
        the same frame), which keeps the sampled frames in chronological order."""
        lengths = self.length[idx].unsqueeze(1).to(torch.float64)  # (B, 1)
        if train:
            u = torch.rand((idx.numel(), 1), generator=generator, device=self.device, dtype=torch.float64)
        else:
            u = torch.full((idx.numel(), 1), 0.5, device=self.device, dtype=torch.float64)
        k = torch.arange(t, device=self.device, dtype=torch.float64).unsqueeze(0)  # (1, t)
        pos = torch.floor((k + u) * lengths / t).long()
        return torch.minimum(pos, self.length[idx].unsqueeze(1) - 1)  # guards float rounding at k + u -> t

    def batch(self, idx: torch.Tensor, t: int, train: bool, generator: torch.Generator | None = None,
              crop: int = 64, flip: bool = True) -> torch.Tensor:
        """(B, t, 3, crop, crop) float32 in [0, 1] for bank positions `idx` (B,).

        Training: random temporal offset, one random crop and (if `flip`) one random horizontal
        flip per clip, shared by all its frames. Testing: fixed offset, centre crop, no flip.
        Random draws come from `generator` (on the bank's device) in a fixed order: temporal
        offset, crop y, crop x, flip — so equal generators give equal batches.
        """
        idx = idx.to(self.device, torch.long)
        b, s = idx.numel(), self.size
        if crop > s:
            raise ValueError(f"ClipBank.batch: crop {crop} larger than the stored frames ({s})")
        rows = self.start[idx].unsqueeze(1) + self.positions(idx, t, train, generator)  # (B, t)
        clips = self.frames[rows.reshape(-1)].view(b, t, 3, s, s)  # (B, t, 3, S, S) uint8
        if train:
            oy = torch.randint(0, s - crop + 1, (b,), generator=generator, device=self.device)
            ox = torch.randint(0, s - crop + 1, (b,), generator=generator, device=self.device)
            flips = (torch.rand((b,), generator=generator, device=self.device) < 0.5) if flip else \
                torch.zeros(b, dtype=torch.bool, device=self.device)
        else:
            oy = ox = torch.full((b,), (s - crop) // 2, dtype=torch.long, device=self.device)
            flips = torch.zeros(b, dtype=torch.bool, device=self.device)
        ar = torch.arange(crop, device=self.device)
        ys = oy.unsqueeze(1) + ar  # (B, crop)
        xs = ox.unsqueeze(1) + ar  # (B, crop)
        xs = torch.where(flips.unsqueeze(1), xs.flip(1), xs)  # a flip reads the columns backwards
        # one gather for crop + flip: index (B, H, W) of a (B, H, W, t, 3) view -> (B, crop, crop, t, 3)
        hw = clips.permute(0, 3, 4, 1, 2)
        bi = torch.arange(b, device=self.device).view(b, 1, 1)
        out = hw[bi, ys.unsqueeze(2), xs.unsqueeze(1)]  # (B, crop, crop, t, 3)
        return out.permute(0, 3, 4, 1, 2).float().div_(255.0)  # (B, t, 3, crop, crop)
