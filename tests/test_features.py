"""The inputs of the compared methods (fdp.features): TV-L1 flow and optical strain, LBP-TOP and TIM,
the key frames, and the per-clip feature cache (computed once, read after; atomic; corrupt = one line)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fdp.data.cache import load_cache
from fdp.data.samples import DataError
from fdp.features import flow as flow_mod
from fdp.features import lbp_top as lbp_mod
from fdp.features.flow import FlowFeatureParams, flow_strain, optical_strain, tvl1_flow
from fdp.features.keyframes import APEX_RULE_ANNOTATED, APEX_RULE_MIDDLE, KeyFrames, key_frames
from fdp.features.lbp_top import LBPTOPParams, lbp_top_histograms, lbp_top_vector, tim_interpolate, uniform_mapping
from fdp.features.store import feature_path, load_features


def texture(side: int, seed: int = 0) -> np.ndarray:
    """(side, side) float32 smooth random texture in [0, 255]: something for the flow to track."""
    g = cv2.GaussianBlur(np.random.default_rng(seed).random((side, side)).astype(np.float32), (0, 0), 2.0)
    return (g - g.min()) / (g.max() - g.min()) * 255.0


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img moved by (dx, dy) pixels: out(x + dx, y + dy) = img(x, y)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


# --- flow and strain ---------------------------------------------------------------------------


@pytest.mark.parametrize("dx, dy", [(1.0, 0.0), (0.5, -1.0)])
def test_tvl1_recovers_a_translation(dx, dy):
    big = texture(96)
    a = big[16:80, 16:80]
    b = shifted(big, dx, dy)[16:80, 16:80]
    f = tvl1_flow(a.astype(np.uint8), b.astype(np.uint8))
    inner = f[8:-8, 8:-8]  # away from the border, where the content enters or leaves
    assert f.shape == (64, 64, 2) and f.dtype == np.float32
    assert abs(float(inner[..., 0].mean()) - dx) < 0.1 and abs(float(inner[..., 1].mean()) - dy) < 0.1


def test_flow_features_are_in_pixels_of_the_28_grid():
    """A 2-px move at 56 x 56 is a 1-px move on the 28 x 28 grid; a translation has ~no strain."""
    big = texture(96, seed=1)
    frames = [np.repeat(img[20:76, 20:76][None].astype(np.uint8), 3, axis=0) for img in (big, shifted(big, 2.0, 0.0))]
    uvs = flow_strain(frames[0], frames[1], FlowFeatureParams())
    assert uvs.shape == (3, 28, 28) and uvs.dtype == np.float32
    inner = uvs[:, 4:-4, 4:-4]
    assert abs(float(inner[0].mean()) - 1.0) < 0.1 and abs(float(inner[1].mean())) < 0.1
    assert float(inner[2].mean()) < 0.05


def test_strain_of_hand_made_fields():
    y, x = np.mgrid[0:12, 0:12].astype(np.float64)
    # a translation: every derivative is 0
    assert np.array_equal(optical_strain(np.full_like(x, 3.0), np.full_like(x, -2.0)), np.zeros_like(x))
    # a linear stretch u = a x: e_xx = a, nothing else -> strain a everywhere (central differences are exact on a line)
    np.testing.assert_allclose(optical_strain(0.2 * x, 0 * x), 0.2, atol=1e-12)
    # stretch in both directions u = a x, v = b y: sqrt(a^2 + b^2)
    np.testing.assert_allclose(optical_strain(0.3 * x, -0.4 * y), 0.5, atol=1e-12)
    # simple shear u = s y: e_xy = s / 2 -> sqrt(2 (s/2)^2) = s / sqrt(2)
    np.testing.assert_allclose(optical_strain(0.1 * y, 0 * x), 0.1 / np.sqrt(2), atol=1e-12)


# --- LBP-TOP -----------------------------------------------------------------------------------


def test_uniform_mapping_by_hand():
    # 4-bit codes: 5 = 0101 and 10 = 1010 have 4 transitions around the circle; the 14 others are
    # uniform, numbered in increasing order; the two share the last bin (4 * 3 + 3 = 15 bins)
    assert uniform_mapping(4).tolist() == [0, 1, 2, 3, 4, 14, 5, 6, 7, 8, 14, 9, 10, 11, 12, 13]
    assert uniform_mapping(8).max() == 58  # the familiar 59 bins of u2 with P = 8


def hand_volume() -> np.ndarray:
    """3 frames of 5 x 5, all 5, except frame 1 has a bright 9 at (y, x) = (2, 2) and a dark 1 at (1, 1)."""
    v = np.full((3, 5, 5), 5.0)
    v[1, 2, 2] = 9.0
    v[1, 1, 1] = 1.0
    return v


ONE = dict(radius_x=1, radius_y=1, radius_t=1, points_xy=4, points_xt=4, points_yt=4, tim_frames=0)


def test_lbp_top_histograms_equal_a_hand_computation():
    """Centres: t = 1, y and x in 1..3 (9 voxels). Bit p = neighbour p >= centre, neighbours
    XY (right, up, left, down), XT (right, earlier, left, later), YT (up, earlier, down, later):

        (1,1) dark 1: every neighbour >= 1                     XY 15  XT 15  YT 15
        (1,2) 5: left is the dark 1 (bit 2 off)                XY 11  XT 11  YT 15
        (2,1) 5: up is the dark 1 -> XY bit 1 off, YT bit 0 off XY 13  XT 15  YT 14
        (2,2) bright 9: every neighbour is 5 < 9               XY  0  XT  0  YT  0
        the 5 other centres: all neighbours >= 5               15 on every plane

    Bins of the uniform mapping: 0 -> 0, 11 -> 9, 13 -> 11, 14 -> 12, 15 -> 13."""
    h = lbp_top_histograms(hand_volume(), LBPTOPParams(rows=1, cols=1, **ONE))
    assert h.shape == (1, 3, 15)
    want = np.zeros((3, 15), dtype=np.int64)
    want[0, [13, 9, 11, 0]] = [6, 1, 1, 1]  # XY: 15 x 6, 11, 13, 0
    want[1, [13, 9, 0]] = [7, 1, 1]  # XT: 15 x 7, 11, 0
    want[2, [13, 12, 0]] = [7, 1, 1]  # YT: 15 x 7, 14, 0
    assert np.array_equal(h[0], want)


def test_lbp_top_blocks_split_the_centre_grid():
    """3 x 3 blocks on the 3 x 3 centres of the hand volume: one centre per block; the bright
    centre (block 4, the middle one) is the only code 0 (bin 0) on every plane."""
    h = lbp_top_histograms(hand_volume(), LBPTOPParams(rows=3, cols=3, **ONE))
    assert h.shape == (9, 3, 15) and (h.sum(axis=2) == 1).all()
    assert np.array_equal(np.nonzero(h[:, :, 0])[0], [4, 4, 4])


def test_lbp_top_vector_of_the_megc_parameters():
    """Guideline parameters on a 20-frame clip: TIM to 10 frames, 5 x 5 blocks x 3 planes x 15 bins,
    each block-plane histogram summing to 1."""
    vol = np.random.default_rng(0).integers(0, 256, (20, 36, 36))
    p = LBPTOPParams()
    vec = lbp_top_vector(vol, p)
    assert vec.shape == (p.length,) == (1125,)
    np.testing.assert_allclose(vec.reshape(25, 3, 15).sum(axis=2), 1.0, rtol=1e-6)


def test_tim_reproduces_the_frames_and_follows_the_curve():
    rng = np.random.default_rng(1)
    v = rng.random((7, 4, 4))
    np.testing.assert_allclose(tim_interpolate(v, 7), v, atol=1e-12)  # same count: the frames themselves
    np.testing.assert_allclose(tim_interpolate(np.full((5, 2, 2), 3.0), 10), 3.0, atol=1e-12)
    # a pixel that follows the first curve coordinate y_1(s) = cos(pi (2 s + 1) / 2n) is
    # interpolated along that cosine at the new positions s_j = j (n - 1) / 9
    n = 6
    curve = np.cos(np.pi * (2 * np.arange(n) + 1) / (2 * n))[:, None, None]
    s = np.linspace(0, n - 1, 10)
    np.testing.assert_allclose(tim_interpolate(curve, 10)[:, 0, 0], np.cos(np.pi * (2 * s + 1) / (2 * n)), atol=1e-12)


# --- key frames --------------------------------------------------------------------------------


def test_key_frames_annotated_unknown_and_subsampled():
    clip = {"onset": 100, "apex": 104, "offset": 120, "length": 21}
    assert key_frames(clip) == KeyFrames(0, 4, APEX_RULE_ANNOTATED)
    unknown = key_frames({**clip, "apex": None})
    assert (unknown.apex, unknown.apex_rule) == (10, APEX_RULE_MIDDLE)  # middle of 21 stored frames
    # 101 frames onset..offset kept as 11 (every 10th): apex 37 frames after the onset -> kept frame 4 (frame 40)
    sub = key_frames({"onset": 0, "apex": 37, "offset": 100, "length": 11, "subsampled_from": 101})
    assert (sub.apex, sub.apex_rule) == (4, APEX_RULE_ANNOTATED)


# --- the feature cache -------------------------------------------------------------------------


def tiny_cache(tmp_path, n_clips: int = 3, side: int = 32, frames: int = 12):
    """A prepared-cache folder written by hand: textures drifting right by 1/4 px per frame."""
    clips, rows, start = [], [], 0
    for i in range(n_clips):
        big = texture(side + 16, seed=10 + i)
        for t in range(frames):
            rows.append(np.repeat(shifted(big, 0.25 * t, 0.0)[8:8 + side, 8:8 + side][None], 3, axis=0))
        apex = 5 if i != 1 else None  # clip 1: apex unknown
        clips.append({"subject": f"s{i}", "clip_id": f"c{i}", "emotion": "happiness", "fps": 200.0, "start": start,
                      "length": frames, "onset": 1, "apex": apex if apex is None else 1 + apex, "offset": frames})
        start += frames
    path = tmp_path / "casme2-tiny"
    path.mkdir()
    np.save(path / "frames.npy", np.asarray(rows, dtype=np.uint8))
    (path / "index.json").write_text(json.dumps({"dataset": "casme2", "clips": clips, "fingerprint": "f" * 16}))
    return load_cache(path)


def test_features_are_computed_once_per_clip(tmp_path, monkeypatch):
    cache = tiny_cache(tmp_path)
    calls = []
    real = flow_mod.clip_flow_features

    def counting(c, i, params):
        calls.append(i)
        return real(c, i, params)

    monkeypatch.setattr(flow_mod, "clip_flow_features", counting)
    first = load_features(cache, "flow")
    assert calls == [0, 1, 2] and first.computed == 3 and first.path is not None and first.path.is_file()
    assert first.values.shape == (3, 3, 28, 28)
    assert first.apex_rules == [APEX_RULE_ANNOTATED, APEX_RULE_MIDDLE, APEX_RULE_ANNOTATED]
    # 5 frames of 1/4 px to the apex at 32 px -> u = 1.25 * 28 / 32 on the 28 grid
    assert abs(float(first.values[0, 0, 4:-4, 4:-4].mean()) - 1.25 * 28 / 32) < 0.1
    second = load_features(cache.path, "flow")  # another run, from the folder
    assert calls == [0, 1, 2] and second.computed == 0
    assert np.array_equal(second.values, first.values) and second.apex_rules == first.apex_rules
    # other parameters are another file, computed again
    third = load_features(cache, "flow", FlowFeatureParams(size=14))
    assert calls == [0, 1, 2] * 2 and third.values.shape == (3, 3, 14, 14) and third.path != first.path
    # nothing but the finished files is left in the folder (written to a temporary name, then renamed)
    assert sorted(p.name for p in first.path.parent.iterdir()) == sorted([first.path.name, third.path.name])


def test_lbp_top_features_are_cached_too(tmp_path, monkeypatch):
    cache = tiny_cache(tmp_path)
    calls = []
    real = lbp_mod.clip_lbp_top
    monkeypatch.setattr(lbp_mod, "clip_lbp_top", lambda c, i, p: calls.append(i) or real(c, i, p))
    a = load_features(cache, "lbp_top")
    b = load_features(cache, "lbp_top")
    assert calls == [0, 1, 2] and a.values.shape == (3, 1125) and np.array_equal(a.values, b.values)
    assert a.path == feature_path(cache.path, "lbp_top", json.loads(json.dumps(LBPTOPParams().to_dict())), "f" * 16)


def test_a_corrupt_feature_file_is_one_line(tmp_path):
    cache = tiny_cache(tmp_path, n_clips=2)
    fs = load_features(cache, "lbp_top")
    fs.path.write_bytes(fs.path.read_bytes()[:100])  # cut off
    with pytest.raises(DataError) as e:
        load_features(cache, "lbp_top")
    msg = str(e.value)
    assert "\n" not in msg and str(fs.path) in msg and "delete it" in msg


def test_a_read_only_cache_computes_in_memory(tmp_path):
    cache = tiny_cache(tmp_path, n_clips=2)
    (cache.path / "features").write_text("a file where the folder would go")  # the folder cannot be made
    fs = load_features(cache, "lbp_top")
    assert fs.path is None and fs.computed == 2 and fs.values.shape == (2, 1125)


def test_jobs_starting_together_compute_a_feature_file_once(tmp_path, monkeypatch):
    """Two fold jobs asking at once (threads here; processes take the same lock file): one
    computes, the other waits on the lock and reads; no lock file is left behind."""
    import threading
    import time

    cache = tiny_cache(tmp_path)
    calls = []
    real = lbp_mod.clip_lbp_top
    started = threading.Barrier(2)

    def slow(c, i, p):  # long enough that the other job asks while this one computes
        calls.append(i)
        time.sleep(0.05)
        return real(c, i, p)

    monkeypatch.setattr(lbp_mod, "clip_lbp_top", slow)
    out = []

    def job():
        started.wait()
        out.append(load_features(cache.path, "lbp_top"))

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == [0, 1, 2] and sorted(fs.computed for fs in out) == [0, 3]
    assert np.array_equal(out[0].values, out[1].values)
    assert [p.name for p in out[0].path.parent.iterdir()] == [out[0].path.name]
