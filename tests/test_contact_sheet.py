"""The contact sheet `prepare` draws (every clip's aligned onset / apex / dynamic image by subject,
marked with how it was aligned) and the per-method counts `fdp-sweep datasets` prints."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fdp.data import cache as cache_mod
from fdp.data.align import Alignment
from fdp.data.cache import load_cache, prepare
from fdp.data.contact_sheet import METHOD_STYLE, sheet_layout, sheet_paths, write_contact_sheet
from orchestrator.cli.main import main


def _grouped(layout) -> None:
    """Every subject's tiles are consecutive in drawing order and below that subject's label."""
    order = [t.subject for t in layout.tiles]
    seen: list[str] = []
    for s in order:
        if not seen or seen[-1] != s:
            assert s not in seen, f"subject {s} split into two groups"
            seen.append(s)
    for t in layout.tiles:
        labels = [lb for lb in layout.labels if lb.subject == t.subject and lb.page == t.page]
        assert labels and min(lb.y for lb in labels) < t.y


def _no_overlap(layout) -> None:
    tw, th = layout.tile_size
    for p, (w, h) in enumerate(layout.pages):
        boxes = [(t.x, t.y) for t in layout.tiles if t.page == p]
        assert all(0 <= x and x + tw <= w and 0 <= y and y + th <= h for x, y in boxes)
        assert len(set(boxes)) == len(boxes)
        for i, (x, y) in enumerate(boxes):
            for x2, y2 in boxes[i + 1:]:
                assert abs(x - x2) >= tw or abs(y - y2) >= th


def test_prepare_writes_a_sheet_with_one_tile_per_clip_grouped_by_subject(synth_cache: Path, tmp_path: Path) -> None:
    pages = sheet_paths(synth_cache)
    assert [p.name for p in pages] == ["contact_sheet.png"]
    cache = load_cache(synth_cache)
    sheet = write_contact_sheet(cache, out_dir=tmp_path)
    layout = sheet.layout
    assert sorted(t.clip for t in layout.tiles) == list(range(len(cache.clips)))  # one tile per clip
    assert [t.clip_id for t in layout.tiles] == [cache.clips[t.clip]["clip_id"] for t in layout.tiles]
    assert layout.subjects_in_order() == sorted({c["subject"] for c in cache.clips})
    _grouped(layout)
    _no_overlap(layout)
    import matplotlib.image as mpimg

    img = mpimg.imread(sheet.paths[0])
    assert img.shape[:2] == (layout.pages[0][1], layout.pages[0][0])  # 1 layout px = 1 image px
    # the drawn sheet is the one prepare wrote
    assert np.array_equal(img, mpimg.imread(pages[0]))


def test_a_clip_forced_to_the_frame_fallback_is_marked_and_counted(tmp_path: Path, monkeypatch) -> None:
    from fdp.data.synth import write_synthetic

    data = write_synthetic(tmp_path / "data", subjects=2, clips_per_subject=2, seed=3, frames_per_clip=12)
    real = cache_mod.estimate
    calls = []

    def first_is_faceless(frame, size, method):
        calls.append(1)
        if len(calls) == 1:  # the first clip: as if no face were found
            h, w = frame.shape[:2]
            s = size / min(h, w)
            return Alignment(np.array([[s, 0, 0], [0, s, 0]], np.float64), "frame", None, 0.0)
        al = real(frame, size, method)
        return Alignment(al.matrix, "eyes", al.eyes, al.angle)

    monkeypatch.setattr(cache_mod, "estimate", first_is_faceless)
    path = prepare("casme2", data, out_dir=tmp_path / "cache")
    cache = load_cache(path)
    methods = [c["align"] for c in cache.clips]
    assert methods == ["frame", "eyes", "eyes", "eyes"]
    sheet = write_contact_sheet(cache, out_dir=tmp_path)
    tile = next(t for t in sheet.layout.tiles if t.clip == 0)
    assert tile.method == "frame"
    label = next(lb for lb in sheet.layout.labels if lb.subject == cache.clips[0]["subject"])
    assert "FRAME 1" in label.text
    other = next(lb for lb in sheet.layout.labels if lb.subject != cache.clips[0]["subject"])
    assert "FRAME" not in other.text
    # the frame drawn around each tile has its method's colour (thick red vs thin green)
    import matplotlib.image as mpimg

    img = (mpimg.imread(sheet.paths[0])[..., :3] * 255).round().astype(int)
    for t in sheet.layout.tiles:
        colour, _, width = METHOD_STYLE[t.method]
        assert tuple(img[t.y + width // 2 + 1, t.x + width // 2]) == colour
        assert tuple(img[t.y + 1 + width, t.x + 1 + width]) == (255, 255, 255)
    out = CliRunner().invoke(main, ["datasets", str(path)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(ln.startswith("alignment (haar (opencv ") and ln.endswith("): eyes 3, frame 1") for ln in lines), lines
    subject = cache.clips[0]["subject"]
    assert f'warning: subject {subject}: 1 of 2 clips fell back to "frame"' in out.output
    assert f"contact sheet: {path / 'contact_sheet.png'}" in lines


def test_large_caches_are_paginated_and_subjects_continue_with_a_label() -> None:
    clips = [{"subject": f"s{k}", "clip_id": f"c{k}_{i:02d}", "align": "eyes"}
             for k, n in ((1, 10), (2, 50), (10, 7)) for i in range(n)]
    layout = sheet_layout(clips, image_size=72, columns=6, tiles_per_page=36)
    assert sorted(t.clip for t in layout.tiles) == list(range(len(clips)))
    for p in range(len(layout.pages)):
        assert sum(t.page == p for t in layout.tiles) <= 36
    assert layout.subjects_in_order() == ["s1", "s2", "s10"]  # natural order
    s2_pages = sorted({t.page for t in layout.tiles if t.subject == "s2"})
    assert len(s2_pages) >= 2  # 50 tiles do not fit a 36-tile page
    assert [lb.text for lb in layout.labels if lb.subject == "s2"][1:] == ["s2 (cont.)"] * (len(s2_pages) - 1)
    _no_overlap(layout)
    # a page's size is bounded by the tile cap, whatever the cache holds
    tw, th = layout.tile_size
    assert max(h for _, h in layout.pages) < 48 + 6 * (th + 6) + 6 * 20 + 8 + 1


def test_bad_layout_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="columns"):
        sheet_layout([{"subject": "a", "clip_id": "x"}], columns=4, tiles_per_page=3)


def test_a_redrawn_sheet_with_fewer_pages_removes_the_old_pages(synth_cache: Path, tmp_path: Path) -> None:
    cache = load_cache(synth_cache)
    few = replace(cache, clips=cache.clips[:6])
    many = write_contact_sheet(few, out_dir=tmp_path, columns=2, tiles_per_page=4)
    assert len(many.paths) == 2 and sheet_paths(tmp_path) == many.paths
    one = write_contact_sheet(few, out_dir=tmp_path)
    assert sheet_paths(tmp_path) == one.paths == [tmp_path / "contact_sheet.png"]


def test_the_sheet_is_logged_once_beside_the_parents_dataset_input(synth_cache: Path, tmp_path: Path) -> None:
    import json

    from fdp.variants import build_config
    from orchestrator.plan.jobs import DataRef, Job, job_key
    from orchestrator.spec.sweep import parse_spec
    from orchestrator.track.driver import SweepTracker

    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", root=tmp_path)
    exp = tracker.experiment_id("sheet")
    parent = tracker.open_parent(exp, parse_spec({"name": "sheet", "dataset": "casme2", "setting": "casme2/5",
                                                  "variants": ["fdp"]}))
    ref = DataRef.of(synth_cache)
    assert ref.align.startswith("haar (opencv ")
    cfg = build_config("fdp", {"train.steps": 2})
    jobs = [Job(job_key(cfg, f), f"fdp|seed0|fold={f}", "fdp|seed0", f, "fdp", 0, cfg, data=ref) for f in ("01", "02")]
    tracker.log_parent_inputs(parent.run_id, jobs)
    tracker.log_parent_inputs(parent.run_id, jobs)  # a resumed sweep logs nothing twice
    where = f"data/casme2-{ref.fingerprint}"
    logged = [a.path for a in tracker.client.list_artifacts(parent.run_id, where)]
    assert logged == [f"{where}/contact_sheet.png"]
    inputs = tracker.client.get_run(parent.run_id).inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.digest == ref.fingerprint
    profile = json.loads(inputs[0].dataset.profile)
    assert profile["align"] == ref.align and where in profile["contact_sheet"]


def test_prepare_without_a_sheet_says_so_and_a_second_prepare_draws_it(tmp_path: Path) -> None:
    from fdp.data.synth import write_synthetic

    data = write_synthetic(tmp_path / "data", subjects=2, clips_per_subject=2, seed=3, frames_per_clip=12)
    args = ["prepare", "casme2", "--root", str(data), "--out", str(tmp_path / "cache"), "--no-align"]
    first = CliRunner().invoke(main, [*args, "--no-contact-sheet"])
    assert first.exit_code == 0, first.output
    path = Path(next(ln for ln in first.output.splitlines() if ln.startswith("cache: "))[len("cache: "):])
    assert sheet_paths(path) == []
    assert "contact sheet: none (`fdp-sweep prepare` without --no-contact-sheet draws it)" in first.output
    second = CliRunner().invoke(main, args)  # the same cache, reused as is, now with its sheet
    assert second.exit_code == 0, second.output
    assert f"cache: {path}" in second.output and sheet_paths(path) == [path / "contact_sheet.png"]
    assert f"contact sheet: {path / 'contact_sheet.png'}" in second.output
