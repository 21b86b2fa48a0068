"""The synthetic benchmark: CASME II layout read by the real reader, determinism, balance, and the
honesty check of SPEC §4.4 (one frame ~ chance, motion clearly above)."""

from __future__ import annotations

import collections
import hashlib

import cv2
import numpy as np
import openpyxl
import pytest
from fdp.readouts import frame_features, loso_predictions

from fdp.data.cache import load_cache, prepare
from fdp.data.readers import read_dataset
from fdp.data.samples import DataError
from fdp.data.synth import ANNOTATION_NAME, CLASSES, FRAMES_DIR, HEADER, write_synthetic


def _digest(root) -> str:
    h = hashlib.sha1()
    for p in sorted(root.rglob("*.jpg")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_is_casme2_and_reader_reads_it(tmp_path):
    root = write_synthetic(tmp_path / "s", subjects=3, clips_per_subject=5, seed=3, size=96, frames_per_clip=20)
    ws = openpyxl.load_workbook(root / ANNOTATION_NAME).worksheets[0]
    header = [c.value for c in next(ws.iter_rows(min_row=1, max_row=1))]
    assert header == HEADER and header[2] is None and header[6] is None
    result = read_dataset("casme2", root)
    assert result.skipped == [] and len(result.samples) == 15
    assert sorted({s.subject for s in result.samples}) == ["01", "02", "03"]
    for s in result.samples:
        assert s.onset <= s.apex <= s.offset and s.onset > 1  # absolute numbering, never from 1
        assert len(s.frames) == s.offset - s.onset + 1
        assert f"/{FRAMES_DIR}/sub{s.subject}/" in s.frames[0] and s.frames[0].endswith(f"img{s.onset}.jpg")
        img = cv2.imread(s.frames[0])
        assert img.shape == (96, 96, 3)
    # the recording is longer than the annotated span (onset-apex-offset inside a longer clip)
    folder = (root / FRAMES_DIR / f"sub{result.samples[0].subject}")
    assert len(list(next(folder.iterdir()).glob("img*.jpg"))) == 20
    # per subject the five classes cycle: 5 clips -> one of each
    by_subject = collections.defaultdict(list)
    for s in result.samples:
        by_subject[s.subject].append(s.emotion)
    assert all(sorted(v) == sorted(CLASSES) for v in by_subject.values())


def test_deterministic_and_seed_dependent(tmp_path):
    kw = dict(subjects=2, clips_per_subject=2, size=64, frames_per_clip=10)
    a = _digest(write_synthetic(tmp_path / "a", seed=7, **kw))
    b = _digest(write_synthetic(tmp_path / "b", seed=7, **kw))
    c = _digest(write_synthetic(tmp_path / "c", seed=8, **kw))
    assert a == b and a != c


def test_amplitude_and_static_range_override_difficulty(tmp_path):
    """The two knobs replace what `difficulty` implies, are recorded, and change the frames; the
    defaults are the difficulty's (static range 4) so the default benchmark is unchanged."""
    import json

    kw = dict(subjects=2, clips_per_subject=2, size=64, frames_per_clip=10, seed=3)
    base = write_synthetic(tmp_path / "base", **kw)
    easy = write_synthetic(tmp_path / "easy", amplitude=0.12, static_range=0.5, **kw)
    p0 = json.loads((base / "synthetic.json").read_text())["params"]
    p1 = json.loads((easy / "synthetic.json").read_text())["params"]
    assert p0["static_range"] == 4.0 and p0["amplitude"] == pytest.approx(0.055)
    assert p1["static_range"] == 0.5 and p1["amplitude"] == 0.12
    assert {k: v for k, v in p0.items() if k not in ("amplitude", "static_range")} == \
        {k: v for k, v in p1.items() if k not in ("amplitude", "static_range")}
    assert _digest(base) != _digest(easy)
    assert p0["apex_range"] == [0.1, 0.25]  # the default: an early apex
    late = write_synthetic(tmp_path / "late", apex_range=(0.3, 0.6), **kw)
    assert json.loads((late / "synthetic.json").read_text())["params"]["apex_range"] == [0.3, 0.6]
    for root, (lo, hi) in ((base, (0.1, 0.25)), (late, (0.3, 0.6))):  # the apex sits where it was asked to
        for smp in read_dataset("casme2", root).samples:
            span = smp.offset - smp.onset
            assert lo * span - 0.5 <= smp.apex - smp.onset <= hi * span + 0.5
    with pytest.raises(DataError, match="apex_range"):
        write_synthetic(tmp_path / "bad3", apex_range=(0.6, 0.3), **kw)
    with pytest.raises(DataError, match="static_range"):
        write_synthetic(tmp_path / "bad", static_range=-1, **kw)
    with pytest.raises(DataError, match="amplitude"):
        write_synthetic(tmp_path / "bad2", amplitude=0.0, **kw)


def test_identities_differ_more_than_expressions(tmp_path):
    """Subjects are distinct faces; within a clip the expression is a small change."""
    root = write_synthetic(tmp_path / "s", subjects=3, clips_per_subject=2, seed=0, size=96, frames_per_clip=20)
    samples = read_dataset("casme2", root).samples

    def grey(p):
        return cv2.imread(p, cv2.IMREAD_GRAYSCALE).astype(np.float32)

    within = [np.abs(grey(s.frames[s.apex - s.onset]) - grey(s.frames[0])).mean() for s in samples]
    firsts = {s.subject: grey(s.frames[0]) for s in samples}
    between = [np.abs(firsts["01"] - firsts[k]).mean() for k in ("02", "03")]
    assert min(between) > 3 * max(within) and max(within) > 0.5


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="difficulty"):
        write_synthetic(tmp_path, difficulty=1.5)


def test_single_frame_near_chance_motion_above(tmp_path):
    """SPEC §4.4 honesty check on 8 subjects x 10 clips (the default benchmark), LOSO, logistic
    regression: one frame (apex or random) stays near chance (20 %), apex - onset does not."""
    root = write_synthetic(tmp_path / "s", subjects=8, clips_per_subject=10, seed=0)
    cache = load_cache(prepare("casme2", root, tmp_path / "cache", contact_sheet=False))
    y = np.array([CLASSES.index(c["emotion"]) for c in cache.clips])
    subjects = np.array([c["subject"] for c in cache.clips])
    feats = frame_features(cache)
    acc = {k: float((loso_predictions(v, y, subjects) == y).mean()) for k, v in feats.items()}
    print("LOSO accuracy (chance 0.20):", {k: round(v, 3) for k, v in acc.items()})
    assert acc["apex"] <= 0.30 and acc["random"] <= 0.30
    assert acc["motion"] >= 0.40 and acc["motion"] >= acc["apex"] + 0.15
