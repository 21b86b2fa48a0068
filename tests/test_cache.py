"""The clip cache: contents and order, idempotence, resume after interruption, bad frames, lookup."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from click.testing import CliRunner
from fixtures_data import frame_value, make_casme2

import fdp.data.cache as cache_mod
from fdp.data.cache import find_cache, load_cache, prepare
from fdp.data.samples import BadRowsError, DataError
from orchestrator.cli.data import prepare_cmd, synth_cmd

ROWS = [
    {"subject": "01", "filename": "EP02_01f", "onset": 8, "apex": 9, "offset": 11, "emotion": "happiness",
     "frames": range(1, 21)},
    {"subject": 2, "filename": "EP09_04", "onset": 97, "apex": "/", "offset": 102, "emotion": "repression"},
    {"subject": 2, "filename": "EP13_02", "onset": 1, "apex": 2, "offset": 3, "emotion": "surprise"},
]


def _grey(frames: np.ndarray) -> np.ndarray:
    """Mean level of each stored frame (the fake frames are uniform)."""
    return frames.reshape(len(frames), -1).mean(1)


def test_no_align_cache_holds_clips_in_frame_order(tmp_path):
    ds = make_casme2(tmp_path / "data", ROWS)
    path = prepare("casme2", ds.root, tmp_path / "cache", align=False)
    assert path.name.startswith("casme2-") and path.parent == tmp_path / "cache"
    c = load_cache(path)
    assert c.frames.shape == (4 + 6 + 3, 3, 72, 72) and c.frames.dtype == np.uint8
    assert [x["clip_id"] for x in c.clips] == ["sub01_EP02_01f", "sub02_EP09_04", "sub02_EP13_02"]
    assert [(x["start"], x["length"]) for x in c.clips] == [(0, 4), (4, 6), (10, 3)]
    first = c.clips[0]
    assert (first["subject"], first["emotion"], first["fps"], first["onset"], first["apex"], first["offset"]) == \
        ("01", "happiness", 200.0, 8, 9, 11)
    assert first["source"] == ds.source(0) and c.clips[1]["apex"] is None
    # frames onset..offset in numeric order (img8 .. img11, not img10 before img8), within JPEG error
    np.testing.assert_allclose(_grey(c.clip_frames(0)), [frame_value(n) for n in range(8, 12)], atol=2)
    np.testing.assert_allclose(_grey(c.clip_frames(1)), [frame_value(n) for n in range(97, 103)], atol=2)
    index = json.loads((path / "index.json").read_text())
    assert index["dataset"] == "casme2" and index["settings"]["align"] == "centre-square-resize"
    assert index["skipped"] == [] and c.clips[0]["align"] == "resize"


def test_idempotent_and_keyed_by_settings(tmp_path, monkeypatch):
    ds = make_casme2(tmp_path / "data", ROWS)
    a = prepare("casme2", ds.root, tmp_path / "cache", align=False)
    calls = []
    monkeypatch.setattr(cache_mod, "_process_clip", lambda *a, **k: calls.append(1))
    assert prepare("casme2", ds.root, tmp_path / "cache", align=False) == a and calls == []  # reused
    monkeypatch.undo()
    b = prepare("casme2", ds.root, tmp_path / "cache", align=True)  # other settings, other cache
    assert b != a and load_cache(b).settings["align"] == "haar-eyes-onset"
    # uniform fake frames have no face: the fallback is recorded per clip
    assert {x["align"] for x in load_cache(b).clips} == {"frame"}


def test_resume_after_interruption(tmp_path, monkeypatch):
    ds = make_casme2(tmp_path / "data", ROWS)
    real = cache_mod._process_clip
    done = []

    def crash_on_third(sample, align, size):
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(sample.clip_id)
        return real(sample, align, size)

    monkeypatch.setattr(cache_mod, "_process_clip", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        prepare("casme2", ds.root, tmp_path / "cache", align=False)
    # nothing that looks like a finished cache; two shards kept
    cache_root = tmp_path / "cache"
    assert [p.name.endswith(".partial") for p in cache_root.iterdir()] == [True]
    assert len(list(next(cache_root.iterdir()).glob("*.npy"))) == 2
    with pytest.raises(DataError, match="no prepared cache for casme2"):
        find_cache("casme2", cache_root)

    redone = []
    monkeypatch.setattr(cache_mod, "_process_clip", lambda s, a, z: (redone.append(s.clip_id), real(s, a, z))[1])
    path = prepare("casme2", ds.root, cache_root, align=False)
    assert redone == ["sub02_EP13_02"]  # only the clip the first run did not finish
    assert sorted(p.name for p in cache_root.iterdir()) == [path.name]  # .partial removed
    np.testing.assert_allclose(_grey(load_cache(path).clip_frames(2)), [frame_value(n) for n in (1, 2, 3)], atol=2)


def test_corrupt_frame_error_or_skip(tmp_path):
    ds = make_casme2(tmp_path / "data", ROWS)
    bad = ds.root / "CASME2_RAW_selected" / "sub02" / "EP09_04" / "img99.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"img99\.jpg: unreadable image"):
        prepare("casme2", ds.root, tmp_path / "cache", align=False)
    path = prepare("casme2", ds.root, tmp_path / "cache", align=False, skip_bad=True)
    c = load_cache(path)
    assert [x["clip_id"] for x in c.clips] == ["sub01_EP02_01f", "sub02_EP13_02"]
    assert len(c.skipped) == 1 and c.skipped[0]["source"] == ds.source(1)
    assert c.skipped[0]["clip_id"] == "sub02_EP09_04"
    assert "img99.jpg: unreadable image" in c.skipped[0]["reason"]
    assert c.frames.shape[0] == 4 + 3


def test_unreadable_frames_of_one_pass_are_reported_together_and_nothing_is_kept(tmp_path):
    ds = make_casme2(tmp_path / "data", ROWS)
    for clip, frame in (("sub01/EP02_01f", "img9.jpg"), ("sub02/EP13_02", "img2.jpg")):
        (ds.root / "CASME2_RAW_selected" / clip / frame).write_bytes(b"not a jpeg")
    with pytest.raises(BadRowsError) as err:
        prepare("casme2", ds.root, tmp_path / "cache", align=False)
    assert [(r["source"], r["clip_id"]) for r in err.value.rows] == [(ds.source(0), "sub01_EP02_01f"),
                                                                     (ds.source(2), "sub02_EP13_02")]
    assert all("unreadable image" in r["reason"] for r in err.value.rows)
    assert str(err.value).startswith("CASME2-coding-20190701.xlsx: 2 bad rows: row 2 (sub01_EP02_01f), "
                                     "row 4 (sub02_EP13_02); ")
    assert list((tmp_path / "cache").iterdir()) == []  # no shards, no cache


def test_index_records_annotation_repairs_and_source_frame_size(tmp_path):
    rows = [dict(ROWS[0], apex=30), *ROWS[1:]]  # apex after offset 11: repaired, not bad
    ds = make_casme2(tmp_path / "data", rows, frame_size=16)
    c = load_cache(prepare("casme2", ds.root, tmp_path / "cache", align=False))
    assert c.annotation == str(ds.annotation) and c.index["annotation"] == str(ds.annotation)
    assert c.repaired == [{"source": ds.source(0), "clip_id": "sub01_EP02_01f", "field": "apex", "original": 30,
                           "value": None, "reason": "apex 30 after offset 11: apex set to unknown"}]
    assert c.clips[0]["apex"] is None and c.clips[0]["length"] == 4
    assert {tuple(x["source_size"]) for x in c.clips} == {(16, 16)}


def test_find_cache_and_fast_load(tmp_path, monkeypatch):
    ds = make_casme2(tmp_path / "data", ROWS)
    monkeypatch.setenv("FDP_CACHE_DIR", str(tmp_path / "env-cache"))
    with pytest.raises(DataError) as e:
        find_cache("casme2")
    assert str(e.value) == (f"no prepared cache for casme2 under {tmp_path / 'env-cache'}: "
                            "run `fdp-sweep prepare casme2 --root ...`")
    path = prepare("casme2", ds.root, align=False)  # default root from $FDP_CACHE_DIR
    assert find_cache("casme2") == path and find_cache("casme2", root=ds.root) == path
    with pytest.raises(DataError, match="from /elsewhere"):
        find_cache("casme2", root="/elsewhere")
    t0 = time.perf_counter()
    c = load_cache(path)
    assert time.perf_counter() - t0 < 0.5 and isinstance(c.frames, np.memmap)


def test_cli_synth_prepare_and_errors(tmp_path):
    runner = CliRunner()
    r = runner.invoke(synth_cmd, ["--out", str(tmp_path / "s"), "--subjects", "2", "--clips-per-subject", "5",
                                  "--frames-per-clip", "12", "--size", "96"])
    assert r.exit_code == 0, r.output
    assert "wrote 10 clips of 2 subjects" in r.output
    r = runner.invoke(prepare_cmd, ["casme2", "--root", str(tmp_path / "s"), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "casme2: 10 clips, 2 subjects" in r.output and "skipped: 0" in r.output
    assert "happiness 2" in r.output and f"cache: {tmp_path / 'c'}" in r.output
    # a folder without annotations: one line, exit 2, no traceback
    (tmp_path / "empty").mkdir()
    r = runner.invoke(prepare_cmd, ["casme2", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_fingerprint_is_content_stored_once_and_found_by(tmp_path, monkeypatch):
    """The fingerprint names the content (annotation rows, labels, frame bytes): the same data
    from another folder has the same one, a changed label or a changed frame another; it is
    stored in the index (no re-hash per job) and computed lazily for an older cache."""
    from fdp.data.cache import AmbiguousCacheError, cache_fingerprint, content_fingerprint, resolve_cache_dir

    a = prepare("casme2", make_casme2(tmp_path / "a", ROWS).root, tmp_path / "c", align=False)
    b = prepare("casme2", make_casme2(tmp_path / "b", ROWS).root, tmp_path / "c", align=False)
    relabelled = [dict(r) for r in ROWS]
    relabelled[2]["emotion"] = "disgust"
    c = prepare("casme2", make_casme2(tmp_path / "r", relabelled).root, tmp_path / "c", align=False)
    index = json.loads((a / "index.json").read_text())
    fa, fb, fc = (json.loads((p / "index.json").read_text())["fingerprint"] for p in (a, b, c))
    assert a != b and fa == fb != fc and len(fa) == 16 and index["synthetic"] is False
    frames = np.load(a / "frames.npy").copy()
    assert content_fingerprint("casme2", index["clips"], frames) == fa
    frames[0, 0, 0, 0] ^= 1  # one bit of one frame
    assert content_fingerprint("casme2", index["clips"], frames) != fa
    # several caches, none named: refused with each listed; named (path, folder, fingerprint): found
    with pytest.raises(AmbiguousCacheError) as e:
        find_cache("casme2", tmp_path / "c")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"3 prepared caches of casme2 under {tmp_path / 'c'}, none named: ")
    for p, fp in ((a, fa), (c, fc)):
        assert f"{p} (fingerprint {fp}, from {tmp_path}/" in msg
    assert "--set data.cache_dir=PATH" in msg and "3 clips" in msg
    assert find_cache("casme2", tmp_path / "c", newest=True) == c
    assert find_cache("casme2", tmp_path / "c", fingerprint=fc[:8]) == c
    monkeypatch.setenv("FDP_CACHE_DIR", str(tmp_path / "c"))
    assert resolve_cache_dir("casme2", fc) == c and resolve_cache_dir("casme2", str(a)) == a
    with pytest.raises(AmbiguousCacheError):
        resolve_cache_dir("casme2", fa)  # two caches share that content: still a choice to make
    # an index from before fingerprints: computed on first use and written back
    del index["fingerprint"]
    (a / "index.json").write_text(json.dumps(index))
    assert cache_fingerprint(a) == fa and json.loads((a / "index.json").read_text())["fingerprint"] == fa


def test_cache_dir_env_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("FDP_CACHE_DIR", str(tmp_path / "f"))
    with pytest.raises(DataError, match=rf"^FDP_CACHE_DIR={tmp_path / 'f'}: is a file, not a folder"):
        find_cache("casme2")
