"""`fdp-sweep datasets` and the summary at the end of `fdp-sweep prepare` (issue #15): per-setting
counts beside the paper's, repairs and skipped rows with clip ids, clip lengths, notes; plain logs."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fixtures_data import (
    CASME3_BAD_CLIPS,
    frame_value,
    make_casme3,
    make_casme3_release,
    make_casme_sq,
    make_counts,
    make_samm_release,
)

from fdp.data.cache import load_cache, subsample
from fdp.data.progress import CountProgress
from fdp.data.settings import SETTINGS
from orchestrator.cli.main import main
from orchestrator.report.datasets import dataset_reference

DATASETS = ["casme2", "samm", "casme_sq", "casme3"]


def _prepare(root: Path, dataset: str, cache: Path, *extra: str):
    # no contact sheet: these tests read counts (tests/test_contact_sheet.py looks at sheets)
    res = CliRunner().invoke(main, ["prepare", dataset, "--root", str(root), "--out", str(cache), "--no-align",
                                    "--no-contact-sheet", *extra])
    assert res.exit_code == 0, res.output
    return res


def _count_rows(output: str, setting: str) -> dict[str, tuple[int, int | None]]:
    """{class: (ours, paper)} of one setting's block in a summary, 'total' included."""
    lines = output.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"  {setting} ("))
    rows = {}
    for ln in lines[start + 1:]:
        m = re.fullmatch(r"    (\S+) +(\d+) +(\d+|-)(?: +(?:\d+|-))?(?:   \([+-]\d+\))?", ln)
        if m is None:
            break
        rows[m.group(1)] = (int(m.group(2)), None if m.group(3) == "-" else int(m.group(3)))
    return rows


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each reader's fixture with the published per-emotion counts, prepared into one cache root."""
    base = tmp_path_factory.mktemp("published")
    for name in DATASETS:
        _prepare(make_counts(name, base / name).root, name, base / "cache")
    return base / "cache"


@pytest.mark.parametrize("dataset", DATASETS)
def test_datasets_prints_each_setting_beside_the_papers_counts(published: Path, dataset: str) -> None:
    res = CliRunner().invoke(main, ["datasets", dataset, "--cache-root", str(published)])
    assert res.exit_code == 0, res.output
    ref = dataset_reference()
    settings = [n for n, s in SETTINGS.items() if s.dataset == dataset]
    assert settings
    for name in settings:
        rows = _count_rows(res.output, name)
        paper = ref["settings"][name]["counts"]
        assert list(rows) == SETTINGS[name].classes + ["total"]
        assert rows == {**{c: (n, n) for c, n in paper.items()},
                        "total": (sum(paper.values()), sum(paper.values()))}, name
    notes = ref["datasets"][dataset]["notes"]
    for note in notes:
        assert f"  - {note}" in res.output
    assert f"source root: {published.parent / dataset}" in res.output
    assert "annotation file: " + str(published.parent / dataset) in res.output


def test_known_differences_are_notes_not_errors(published: Path) -> None:
    res = CliRunner().invoke(main, ["datasets", "casme_sq", "--cache-root", str(published)])
    assert res.exit_code == 0 and "error" not in res.output
    assert "casme_sq: 57 clips, 14 subjects" in res.output
    assert "paper (Table 3): 57 clips, 22 subjects, 30 fps" in res.output
    assert "LOSO has 14 folds, not 22" in res.output and "LOSO folds: 14" in res.output
    res = CliRunner().invoke(main, ["datasets", "casme3", "--cache-root", str(published)])
    assert "hold 860 (v2) and 921 (v1) ME rows" in res.output


def test_datasets_lists_every_cache_and_takes_a_cache_folder(published: Path) -> None:
    res = CliRunner().invoke(main, ["datasets", "--cache-root", str(published)])
    assert res.exit_code == 0, res.output
    listed = [ln.split()[0] for ln in res.output.splitlines() if ln.startswith("  ")]
    assert sorted(listed) == sorted(p.name for p in published.iterdir())
    assert [ln.split()[1] for ln in res.output.splitlines() if ln.startswith("  ")] == \
        [f"{json.loads((published / n / 'index.json').read_text())['dataset']}:" for n in listed]
    samm = next(p for p in published.iterdir() if p.name.startswith("samm-"))
    by_path = CliRunner().invoke(main, ["datasets", str(samm)])
    assert by_path.exit_code == 0 and f"cache: {samm}" in by_path.output
    assert _count_rows(by_path.output, "samm/5")["total"] == (136, 136)


def test_samm_release_prepare_counts_136_and_133_and_lists_the_two_repairs(tmp_path: Path) -> None:
    ds = make_samm_release(tmp_path / "SAMM", filename="SAMM_20181215_Micro_FACS_Codes_v2.xlsx")
    res = _prepare(ds.root, "samm", tmp_path / "cache")  # strict: the apex rows are repairs, not bad rows
    assert _count_rows(res.output, "samm/5")["total"] == (136, 136)
    assert _count_rows(res.output, "samm/3") == {"positive": (26, 26), "negative": (92, 92), "surprise": (15, 15),
                                                 "total": (133, 133)}
    name = "SAMM_20181215_Micro_FACS_Codes_v2.xlsx"
    assert "repaired: 2" in res.output and "skipped: 0" in res.output
    assert (f"  {name}:row 15: clip 028_4_1: apex 1143 after offset 1134: apex set to unknown (original apex 1143)"
            in res.output.splitlines())
    assert (f"  {name}:row 139: clip 032_3_1: apex 1930 before onset 4896: apex set to unknown (original apex 1930)"
            in res.output.splitlines())
    path = Path(res.output.split("cache: ")[1].split()[0])
    index = json.loads((path / "index.json").read_text())
    assert index["annotation"] == str(ds.root / name)
    assert [(r["clip_id"], r["field"], r["original"], r["value"]) for r in index["repaired"]] == [
        ("028_4_1", "apex", 1143, None), ("032_3_1", "apex", 1930, None)]
    clip = next(c for c in index["clips"] if c["clip_id"] == "028_4_1")
    assert (clip["onset"], clip["apex"], clip["offset"], clip["length"]) == (1130, None, 1134, 5)


def test_casme3_release_skip_bad_records_all_four_clips(tmp_path: Path) -> None:
    ds = make_casme3_release(tmp_path / "c3")
    res = _prepare(ds.root, "casme3", tmp_path / "cache", "--skip-bad")
    cache = load_cache(Path(res.output.split("cache: ")[1].split()[0]))
    assert [s["clip_id"] for s in cache.skipped] == CASME3_BAD_CLIPS
    assert all(s["source"].startswith("annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx:row ")
               for s in cache.skipped)
    assert "skipped: 4" in res.output
    for clip in CASME3_BAD_CLIPS:
        assert re.search(rf"^  \S+:row \d: clip {re.escape(clip)}: ", res.output, re.M), clip
    assert [(r["clip_id"], r["original"]) for r in cache.repaired] == [("spNO.2_c_40", 38)]
    assert [c["clip_id"] for c in cache.clips] == ["spNO.1_a_10", "spNO.1_a_30", "spNO.2_b_5", "spNO.2_c_40",
                                                   "spNO.5_a_3"]


def test_long_clips_warned_and_subsampled_with_max_frames(tmp_path: Path) -> None:
    rows = [{"subject": "spNO.1", "filename": "a", "onset": 10, "apex": 20, "offset": 89, "emotion": "happy"},
            {"subject": "spNO.2", "filename": "b", "onset": 1, "apex": 2, "offset": 4, "emotion": "sad"}]
    ds = make_casme3(tmp_path / "c3", rows=rows)
    plain = _prepare(ds.root, "casme3", tmp_path / "cache")
    # 80 frames at 30 fps = 2.7 s
    assert ("warning: 1 clips longer than 2 s (longest spNO.1_a_10: 80 frames, 2.7 s); prepare --max-frames N "
            "subsamples long clips uniformly when caching") in plain.output
    res = _prepare(ds.root, "casme3", tmp_path / "cache", "--max-frames", "8")
    path = Path(res.output.split("cache: ")[1].split()[0])
    assert path != Path(plain.output.split("cache: ")[1].split()[0])  # another key: other pixels
    cache = load_cache(path)
    assert cache.settings["max_frames"] == 8
    long, short = cache.clips
    assert (long["length"], long["subsampled_from"], short["length"]) == (8, 80, 4) and "subsampled_from" not in short
    kept = [10 + k for k in subsample(80, 8)]
    assert kept[0] == 10 and kept[-1] == 89
    grey = cache.clip_frames(0).reshape(8, -1).mean(1)
    np.testing.assert_allclose(grey, [frame_value(n) for n in kept], atol=2)
    assert "max frames: 8 (prepare --max-frames); 1 clips subsampled uniformly" in res.output


def test_subsample_is_uniform_and_keeps_both_ends() -> None:
    assert subsample(5, None) == [0, 1, 2, 3, 4] and subsample(5, 8) == [0, 1, 2, 3, 4]
    assert subsample(3456, 4) == [0, 1152, 2303, 3455]
    picked = subsample(100, 10)
    assert len(picked) == len(set(picked)) == 10 and picked[0] == 0 and picked[-1] == 99
    assert max(np.diff(picked)) - min(np.diff(picked)) <= 1


def test_count_progress_is_plain_off_a_terminal_and_live_on_one() -> None:
    log = io.StringIO()
    progress = CountProgress("prepare", stream=log, tty=False)
    for i in range(1, 101):
        progress(i, 100, f"clip{i}")
    lines = log.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    assert re.fullmatch(r"prepare: 100/100 clips \(clip100\), \d+\.\d clips/s", lines[-1])
    assert [int(ln.split()[1].split("/")[0]) for ln in lines] == [1] + list(range(10, 101, 10))
    term = io.StringIO()
    live = CountProgress("synth", stream=term, tty=True)
    live(1, 2)
    assert live.open and term.getvalue().startswith("\rsynth: 1/2 clips, ")
    live.close_line()
    assert term.getvalue().endswith("\n") and not live.open


@pytest.mark.integration
def test_a_log_of_prepare_has_no_carriage_returns_or_escape_sequences(tmp_path: Path) -> None:
    """stderr redirected to a file, as a batch job writes it (issue #15: a 36 KB single line before)."""
    ds = make_counts("casme_sq", tmp_path / "sq")
    log = tmp_path / "prepare.log"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"}
    with open(log, "w") as err:
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "prepare", "casme_sq", "--root", str(ds.root),
                               "--out", str(tmp_path / "cache"), "--no-align"], stdout=subprocess.PIPE, stderr=err,
                              text=True, env=env, timeout=120)
    assert proc.returncode == 0, log.read_text()
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    # the first clip, every 5th of 57 (about a tenth), the last
    assert [int(ln.split()[1].split("/")[0]) for ln in lines] == [1, *range(5, 57, 5), 57]
    assert all(re.fullmatch(r"prepare: \d+/57 clips \(\S+\), \d+\.\d clips/s", ln) for ln in lines), text
    assert lines[-1].startswith("prepare: 57/57 clips")
    assert "casme_sq/4 (Table 2)" in proc.stdout


def test_casme_sq_offset_zero_repair_is_printed_and_stored_with_the_original(tmp_path: Path) -> None:
    ds = make_casme_sq(tmp_path / "sq")  # row 3: anger1_1 with offset 0, apex 24
    res = _prepare(ds.root, "casme_sq", tmp_path / "cache")
    line = ("  CAS(ME)^2code_final.xlsx:row 3: clip s16_anger1_1: offset 0 (missing): apex 24 used as offset "
            "(original offset 0)")
    assert "repaired: 1" in res.output and line in res.output.splitlines()
    cache = load_cache(Path(res.output.split("cache: ")[1].split()[0]))
    assert [(r["clip_id"], r["field"], r["original"], r["value"]) for r in cache.repaired] == [
        ("s16_anger1_1", "offset", 0, 24)]
    clip = next(c for c in cache.clips if c["clip_id"] == "s16_anger1_1")
    assert (clip["onset"], clip["offset"], clip["length"]) == (20, 24, 5)


def test_long_clip_limit_is_an_option_of_datasets(tmp_path: Path) -> None:
    rows = [{"subject": "spNO.1", "filename": "a", "onset": 1, "apex": 2, "offset": 40, "emotion": "happy"}]
    _prepare(make_casme3(tmp_path / "c3", rows=rows).root, "casme3", tmp_path / "cache")
    quiet = CliRunner().invoke(main, ["datasets", "casme3", "--cache-root", str(tmp_path / "cache")])
    assert quiet.exit_code == 0 and "warning:" not in quiet.output  # 40 frames at 30 fps: 1.3 s
    loud = CliRunner().invoke(main, ["datasets", "casme3", "--cache-root", str(tmp_path / "cache"),
                                     "--long-clips", "1"])
    assert "warning: 1 clips longer than 1 s (longest spNO.1_a_1: 40 frames, 1.3 s)" in loud.output
