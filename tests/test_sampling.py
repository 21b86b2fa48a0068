"""Selection by class setting and on-device batch assembly (paper §4.1.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fdp.data.cache import ClipCache, load_cache
from fdp.data.samples import DataError
from fdp.data.sampling import ClipBank, select
from fdp.data.settings import SETTINGS


def _fake_cache(lengths=(20, 5, 8), emotions=("happiness", "disgust", "fear")) -> ClipCache:
    """Clip i, frame j has pixel value 10*i + j everywhere except a marker column x=0 (value 255)
    and a marker row y=0 (value 200), so order, crop and flip are visible in the batch."""
    frames, clips, start = [], [], 0
    for i, (n, emo) in enumerate(zip(lengths, emotions)):
        f = np.empty((n, 3, 72, 72), np.uint8)
        f[:] = (10 * i + np.arange(n)).reshape(n, 1, 1, 1)
        f[:, :, :, 0] = 255
        f[:, :, 0, :] = 200
        frames.append(f)
        clips.append({"subject": f"{i:02d}", "clip_id": f"c{i}", "emotion": emo, "fps": 200.0, "start": start,
                      "length": n, "onset": 1, "apex": 2, "offset": n, "source": f"x:row {i + 2}"})
        start += n
    return ClipCache(path=Path("/fake"), dataset="casme2", frames=np.concatenate(frames), clips=clips)


def _frame_ids(batch: torch.Tensor) -> np.ndarray:
    """(B, t) the 10*i + j value of each sampled frame, read at the crop's centre."""
    return np.rint(batch[:, :, 0, 32, 32].numpy() * 255).astype(int)


def test_select_labels_and_exclusions():
    cache = _fake_cache(emotions=("happiness", "disgust", "fear"))
    with pytest.raises(DataError, match=r"no clips of class\(es\) surprise$"):
        select(cache, SETTINGS["casme2/3"])  # positive, negative, surprise
    with pytest.raises(DataError, match="is for samm"):
        select(cache, SETTINGS["samm/5"])
    cache = _fake_cache(lengths=(3,) * 6, emotions=("happiness", "disgust", "repression", "surprise", "others", "fear"))
    sel = select(cache, SETTINGS["casme2/5"])
    assert sel.indices.tolist() == [0, 1, 2, 3, 4]
    assert [sel.class_names[k] for k in sel.labels] == ["happiness", "disgust", "repression", "surprise", "others"]
    assert sel.excluded == [{"clip_id": "c5", "subject": "05", "emotion": "fear"}]
    assert sel.subjects == ["00", "01", "02", "03", "04"] and sel.clip_ids[0] == "c0"
    sel3 = select(cache, SETTINGS["casme2/3"])
    # the paper's 3-class: repression and fear count as negative, others is left out
    assert sel3.indices.tolist() == [0, 1, 2, 3, 5] and sel3.labels.tolist() == [0, 1, 1, 2, 1]
    assert [e["emotion"] for e in sel3.excluded] == ["others"]


def test_test_batch_fixed_positions_and_centre_crop():
    bank = ClipBank(_fake_cache(), [0, 1, 2], [0, 1, 2], "cpu")
    x = bank.batch(torch.tensor([0, 1, 2]), t=8, train=False, generator=None)
    assert x.shape == (3, 8, 3, 64, 64) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    ids = _frame_ids(x)
    # L = 20: floor((k + 0.5) * 20 / 8) = 1, 3, 6, 8, 11, 13, 16, 18
    assert ids[0].tolist() == [1, 3, 6, 8, 11, 13, 16, 18]
    # L = 5 < t: frames repeat, in order: floor((k + 0.5) * 5 / 8) = 0, 0, 1, 2, 2, 3, 4, 4
    assert ids[1].tolist() == [10 + j for j in (0, 0, 1, 2, 2, 3, 4, 4)]
    assert ids[2].tolist() == [20 + j for j in range(8)]
    # centre crop (offset 4): the marker row/column at 0 are cut away
    assert (x[:, :, :, 0, :] * 255).round().max() < 200


def test_train_batch_random_but_deterministic():
    bank = ClipBank(_fake_cache(), [0, 1, 2], [0, 1, 2], "cpu")
    idx = torch.tensor([0, 0, 1, 2, 0, 1] * 6)  # batch 36
    a = bank.batch(idx, 8, True, torch.Generator().manual_seed(3))
    b = bank.batch(idx, 8, True, torch.Generator().manual_seed(3))
    c = bank.batch(idx, 8, True, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    ids = _frame_ids(a)
    for row, clip in zip(ids, idx.tolist()):
        j = row - 10 * clip
        lengths = (20, 5, 8)[clip]
        assert (np.diff(j) >= 0).all() and j.min() >= 0 and j.max() < lengths  # in order, inside the clip
        # exactly one frame per bin [k L / t, (k + 1) L / t) for the long clip
        if clip == 0:
            assert all(k * 20 / 8 - 1 < jj < (k + 1) * 20 / 8 for k, jj in enumerate(j))
    # random offsets differ between clips, crops and flips too; all frames of a clip share them
    assert len({tuple(r) for r in ids[idx.numpy() == 0]}) > 1
    marker_col = (a[:, :, 0] * 255).round() == 255  # (B, t, 64, 64)
    cols = marker_col.all(dim=2)  # column fully at the marker value: the x=0 column is in the crop
    per_clip = cols.any(dim=2)
    assert (per_clip == per_clip[:, :1]).all()  # same crop for every frame of a clip
    left = cols[:, 0, 0]
    right = cols[:, 0, 63]
    assert left.any() and right.any()  # x=0 shows up at the left edge (no flip) and the right edge (flip)


def test_bank_keeps_only_selected_clips_on_device():
    cache = _fake_cache()
    bank = ClipBank(cache, [2, 0], [1, 0], "cpu")
    assert bank.frames.shape == (8 + 20, 3, 72, 72) and bank.frames.dtype == torch.uint8
    assert bank.start.tolist() == [0, 8] and bank.length.tolist() == [8, 20] and bank.labels.tolist() == [1, 0]
    assert bank.clip_ids == ["c2", "c0"] and bank.subjects == ["02", "00"]
    assert bank.class_names == ["happiness", "fear"]  # named after the clips' emotions when not given
    assert ClipBank(cache, [2, 0], [1, 0], "cpu", class_names=["pos", "neg"]).class_names == ["pos", "neg"]
    ids = _frame_ids(bank.batch(torch.tensor([0, 1]), 4, False))
    assert ids[0].tolist() == [21, 23, 25, 27] and ids[1].tolist() == [2, 7, 12, 17]


def test_on_the_synthetic_cache(synth_cache):
    cache = load_cache(synth_cache)
    sel = select(cache, SETTINGS["casme2/5"])
    assert len(sel.indices) == 20 and sorted(set(sel.labels.tolist())) == [0, 1, 2, 3, 4]
    bank = ClipBank(cache, sel.indices, sel.labels, "cpu")
    x = bank.batch(torch.arange(len(bank)), 8, True, torch.Generator().manual_seed(0))
    assert x.shape == (20, 8, 3, 64, 64) and 0.2 < x.mean() < 0.8


@pytest.mark.gpu
def test_batch_on_cuda_matches_cpu():
    cache = _fake_cache()
    cpu = ClipBank(cache, [0, 1, 2], [0, 1, 2], "cpu").batch(torch.tensor([0, 1, 2]), 8, False)
    gpu = ClipBank(cache, [0, 1, 2], [0, 1, 2], "cuda").batch(torch.tensor([0, 1, 2]), 8, False)
    assert gpu.is_cuda and torch.equal(cpu, gpu.cpu())
