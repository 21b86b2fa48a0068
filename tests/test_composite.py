"""The MEGC2019 composite protocol and leave-one-dataset-out (issue #16); readers: test_readers_more."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fdp.config import ExperimentConfig, apply_overrides
from fdp.data.cache import load_cache
from fdp.data.merged import (MEGC_FILE, MEGC_SHA256, build_composite, build_lodo, canonical_ids, read_label_list)
from fdp.data.samples import DataError
from fdp.metrics import pooled_metrics
from fdp.runner import fold_names, make_split

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "megc2019_combined_3class_gt.csv"


# ---------------------------------------------------------------------------------------------
# the official label list


def test_official_list_facts() -> None:
    """The shipped list is the official file byte for byte, with the facts of shared/data/README.md."""
    import hashlib

    assert hashlib.sha256(MEGC_FILE.read_bytes()).hexdigest() == MEGC_SHA256
    if SHARED.is_file():
        assert SHARED.read_bytes() == MEGC_FILE.read_bytes()
    entries = read_label_list()
    assert len(entries) == 442
    per_db = collections.defaultdict(lambda: [0, 0, 0])
    for e in entries:
        per_db[e.database][e.label] += 1
    assert dict(per_db) == {"casme2": [88, 32, 25], "samm": [92, 26, 15], "smic": [70, 51, 43]}
    subjects = {(e.database, e.subject) for e in entries}
    assert len(subjects) == 68
    assert collections.Counter(db for db, _ in subjects) == {"casme2": 24, "samm": 28, "smic": 16}
    # id formats normalised to what the readers write
    first = {e.database: e for e in reversed(entries)}
    assert (first["samm"].subject, first["samm"].clip_id) == ("006", "006_1_2")
    assert (first["casme2"].subject, first["casme2"].clip_id) == ("01", "sub01_EP02_01f")
    assert first["smic"].subject == "s01" and first["smic"].clip_id.startswith("s01_")
    assert "032_3_1" in {e.clip_id for e in entries if e.database == "samm"}  # missing from the old -2 file


@pytest.mark.parametrize("db, subject, clip, want", [
    ("casme2", "sub01", "EP02_01f", ("01", "sub01_EP02_01f")),
    ("casme2", 1, "sub01_EP02_01f", ("01", "sub01_EP02_01f")),
    ("samm", "6", "006_1_2", ("006", "006_1_2")),
    ("samm", 6, "006_1_2", ("006", "006_1_2")),
    ("smic", "s1", "s1_ne_01", ("s01", "s01_ne_01")),
    ("smic", "s03", "s3_NE_03", ("s03", "s03_ne_03")),
    ("smic", "s20", "s20_po_05", ("s20", "s20_po_05")),
])
def test_canonical_ids(db, subject, clip, want) -> None:
    assert canonical_ids(db, subject, clip) == want


@pytest.mark.parametrize("line, message", [
    ("casme2,sub01,EP02_01f", "expected 4 columns"),
    ("mmew,S01,S01-01-001,0", "unknown database 'mmew'"),
    ("samm,6,006_1_2,3", "class must be 0"),
    ("samm,x6,006_1_2,0", "bad SAMM subject"),
])
def test_bad_list_rows_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    p = tmp_path / "list.csv"
    p.write_text("samm,7,007_1_1,1\n\n" + line + "\n")
    with pytest.raises(DataError) as e:
        read_label_list(p)
    assert f"{p}:line 3: " in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_duplicate_list_entry(tmp_path: Path) -> None:
    p = tmp_path / "list.csv"
    p.write_text("samm,7,007_1_1,1\nsamm,007,007_1_1,2\n")
    with pytest.raises(DataError, match=r"line 2: clip samm/007_1_1 listed twice \(first at line 1\)"):
        read_label_list(p)


# ---------------------------------------------------------------------------------------------
# fixture caches from the list's own ids (no frames decoded: the index and a tiny frame block)


def _fake_cache(path: Path, dataset: str, clips: list[tuple[str, str, str]], size: int = 8) -> Path:
    """A prepared-cache folder holding `clips` (subject, clip_id, emotion), 2 frames each."""
    path.mkdir(parents=True)
    n = 2
    frames = np.zeros((n * len(clips), 3, size, size), np.uint8)
    for i in range(len(clips)):
        frames[n * i:n * (i + 1)] = i % 251
    np.save(path / "frames.npy", frames)
    index = {"dataset": dataset, "root": f"/data/{dataset}", "key": path.name, "settings": {"size": size},
             "clips": [{"subject": s, "clip_id": c, "emotion": e, "fps": 100.0, "start": n * i, "length": n,
                        "onset": 1, "apex": None, "offset": 2, "source": f"fixture:{i}"}
                       for i, (s, c, e) in enumerate(clips)], "skipped": []}
    (path / "index.json").write_text(json.dumps(index))
    return path


_WORDS = {"casme2": ("disgust", "happiness", "surprise"), "samm": ("anger", "happiness", "surprise"),
          "smic": ("negative", "positive", "surprise")}


@pytest.fixture(scope="module")
def megc_parts(tmp_path_factory) -> dict[str, Path]:
    """Caches of casme2, samm and smic holding exactly the list's clips (plus one clip of an
    emotion the composite omits), with the dataset's own emotion words."""
    base = tmp_path_factory.mktemp("megc")
    by_db = collections.defaultdict(list)
    for e in read_label_list():
        by_db[e.database].append((e.subject, e.clip_id, _WORDS[e.database][e.label]))
    by_db["casme2"].append(("01", "sub01_EP99_99", "others"))
    return {db: _fake_cache(base / f"{db}-fixture", db, clips) for db, clips in by_db.items()}


def test_composite_has_442_clips_and_68_folds(megc_parts, tmp_path: Path) -> None:
    path = build_composite(megc_parts, tmp_path)
    cache = load_cache(path)
    assert cache.dataset == "composite" and len(cache.clips) == 442
    assert collections.Counter(c["emotion"] for c in cache.clips) == {"negative": 250, "positive": 109, "surprise": 83}
    assert collections.Counter(c["database"] for c in cache.clips) == {"casme2": 145, "samm": 133, "smic": 164}
    # subjects namespaced by database: ids of two datasets can never collide
    assert all(c["subject"].startswith(c["database"] + "/") for c in cache.clips)
    assert "samm/006" in {c["subject"] for c in cache.clips}
    # the frames travelled with their clip
    src = load_cache(megc_parts["samm"])
    j = next(i for i, c in enumerate(cache.clips) if c["clip_id"] == "samm/006_1_2")
    k = next(i for i, c in enumerate(src.clips) if c["clip_id"] == "006_1_2")
    assert np.array_equal(cache.clip_frames(j), src.clip_frames(k))
    cfg = apply_overrides(ExperimentConfig(), {"data.dataset": "composite", "data.setting": "composite/3",
                                               "data.cache_dir": str(path)})
    folds = fold_names(cfg)
    assert len(folds) == 68 and len({f.split("/")[0] for f in folds}) == 3
    index = json.loads((path / "index.json").read_text())
    assert index["merged"]["official"] is True and index["merged"]["label_list_sha256"] == MEGC_SHA256
    # idempotent: the same parts and list give the same cache
    assert build_composite(megc_parts, tmp_path) == path


def test_composite_plan_from_the_sweep_file(megc_parts, tmp_path: Path) -> None:
    """sweeps/composite.yaml on fixture caches: exactly 68 folds per configuration."""
    from orchestrator.plan.jobs import expand
    from orchestrator.spec.sweep import load_spec

    path = build_composite(megc_parts, tmp_path)
    plan = expand(load_spec(ROOT / "sweeps" / "composite.yaml", sets={"data.cache_dir": str(path)}))
    assert not plan.problems, plan.problems
    per_config = collections.Counter(j.config_label for j in plan.jobs)
    assert set(per_config.values()) == {68}
    assert len({j.fold for j in plan.jobs}) == 68


def test_a_listed_clip_not_on_disk_is_named(megc_parts, tmp_path: Path) -> None:
    samm = load_cache(megc_parts["samm"])
    kept = [(c["subject"], c["clip_id"], c["emotion"]) for c in samm.clips if c["clip_id"] != "032_3_1"]
    parts = dict(megc_parts, samm=_fake_cache(tmp_path / "samm-short", "samm", kept))
    with pytest.raises(DataError) as e:
        build_composite(parts, tmp_path)
    msg = str(e.value)
    assert "1 of 442 listed clips not in the prepared caches: samm/032_3_1 (line " in msg
    assert "--skip-missing" in msg and "\n" not in msg
    assert not list(tmp_path.glob("composite-*"))  # nothing half-written
    path = build_composite(parts, tmp_path, skip_missing=True)
    cache = load_cache(path)
    assert len(cache.clips) == 441
    assert [s["clip_id"] for s in cache.skipped] == ["samm/032_3_1"]


def test_per_database_metrics_equal_the_pooled_predictions_split_by_database() -> None:
    from orchestrator.report.megc import per_database

    # two folds of predictions; clips of casme2 and samm
    f1 = {"labels": [0, 1, 2, 0], "preds": [0, 1, 1, 0], "subjects": ["casme2/01"] * 2 + ["samm/006"] * 2,
          "num_classes": 3}
    f2 = {"labels": [2, 1, 0], "preds": [2, 0, 0], "subjects": ["samm/007", "casme2/02", "casme2/02"],
          "num_classes": 3}
    got = per_database([f1, f2])
    assert got["composite"] == pooled_metrics([0, 1, 2, 0, 2, 1, 0], [0, 1, 1, 0, 2, 0, 0], 3)
    # by hand: casme2 clips (labels 0,1,1,0 / preds 0,1,0,0): class 0 P=2/3 R=1 F1=0.8, class 1 P=1 R=1/2
    # F1=2/3, class 2 absent F1=0 -> UF1 = (0.8 + 2/3) / 3; UAR over the classes present there
    assert got["casme2"]["uf1"] == pytest.approx((0.8 + 2 / 3 + 0.0) / 3)
    assert got["casme2"]["acc"] == pytest.approx(3 / 4)
    assert got["samm"]["acc"] == pytest.approx(2 / 3)
    assert set(got) == {"composite", "casme2", "samm"}


# ---------------------------------------------------------------------------------------------
# leave-one-dataset-out


def test_lodo_folds_are_datasets(tmp_path: Path) -> None:
    parts = {"casme2": _fake_cache(tmp_path / "c", "casme2", [("01", "sub01_a", "happiness"), ("02", "sub02_b", "disgust"),
                                                                ("02", "sub02_c", "surprise"), ("02", "sub02_d", "others")]),
             "samm": _fake_cache(tmp_path / "s", "samm", [("006", "006_1", "happiness"), ("007", "007_1", "anger"),
                                                          ("007", "007_2", "surprise")])}
    path = build_lodo(parts, {"casme2": "casme2/3", "samm": "samm/3"}, tmp_path)
    cache = load_cache(path)
    assert len(cache.clips) == 6  # "others" has no 3-class label
    cfg = apply_overrides(ExperimentConfig(), {"data.dataset": "lodo", "data.setting": "lodo/3",
                                               "data.cache_dir": str(path), "data.fold_by": "database"})
    assert fold_names(cfg) == ["casme2", "samm"]
    subjects = [c["subject"] for c in cache.clips]
    split = make_split(cfg, subjects, "samm")
    assert {subjects[i].split("/")[0] for i in split.test} == {"samm"}
    assert {subjects[i].split("/")[0] for i in split.train} == {"casme2"}
    # the protocol in a sweep file: folds are the datasets, the config says so
    from orchestrator.plan.jobs import expand
    from orchestrator.spec.sweep import parse_spec

    spec = parse_spec({"name": "lodo", "dataset": "lodo", "setting": "lodo/3", "protocol": "leave-one-dataset-out",
                       "variants": ["fdp"], "overrides": {"data.cache_dir": str(path)}})
    plan = expand(spec)
    assert not plan.problems and sorted(j.fold for j in plan.jobs) == ["casme2", "samm"]
    assert {c.cfg.data.fold_by for c in plan.configurations} == {"database"}
    with pytest.raises(DataError, match="the settings' classes differ"):
        build_lodo(parts, {"casme2": "casme2/5", "samm": "samm/3"}, tmp_path)
    with pytest.raises(DataError, match="no class setting given for samm"):
        build_lodo(parts, {"casme2": "casme2/3"}, tmp_path)


# ---------------------------------------------------------------------------------------------
# synthetic layouts -> real readers -> composite, end to end through the CLI


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("fdp-sweep")
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.integration
def test_composite_smoke_sweep_and_megc_table(tmp_path: Path) -> None:
    env = {**os.environ, "FDP_CACHE_DIR": str(tmp_path / "cache"), "MLFLOW_DISABLE_TELEMETRY": "true",
           "RAY_USAGE_STATS_ENABLED": "0"}
    for layout, seed in (("casme2", 0), ("samm", 1), ("smic", 2)):
        r = _cli("synth", "--out", str(tmp_path / layout), "--layout", layout, "--subjects", "3",
                 "--clips-per-subject", "3", "--seed", str(seed), "--size", "64", "--frames-per-clip", "12",
                 cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
        r = _cli("prepare", layout, "--root", str(tmp_path / layout), cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
    r = _cli("merge", "composite", cwd=tmp_path, env=env)  # the official list: synthetic clips are not in it
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "listed clips not in the prepared caches" in r.stderr
    r = _cli("merge", "composite", "--label-list", "rule", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    # 3 x 3 clips each; the one "others" (CASME II) and "Other" (SAMM) clip drawn is omitted, as the guideline says
    assert "composite: 25 clips, 9 subjects (casme2 8, samm 8, smic 9)" in r.stdout, r.stdout
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    r = _cli("run", str(ROOT / "sweeps" / "composite.yaml"), "--smoke", "--tracking-uri", uri, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "6 done" in r.stdout
    r = _cli("summarize", "--table", "megc", "--include-smoke", "--tracking-uri", uri, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    rows = {line.split("|")[1].strip(): line for line in r.stdout.splitlines() if line.startswith("| ")}
    assert {"LBP-TOP (baseline)", "fdp (re-run here)", "no_dic (re-run here)", "no_local_global (re-run here)"} <= set(rows)
    assert "| 58.82 | 57.85 |" in rows["LBP-TOP (baseline)"]
    assert "smoke: a pipeline check" in r.stderr
    # where the numbers come from, under the table as under the paper's tables (issue #13)
    assert "Ours on synthetic composite/3." in r.stdout
    assert "- provenance: data composite/3 (synthetic), fingerprint " in r.stdout and "smoke: yes" in r.stdout
    # the same numbers as a tidy CSV for pandas: one row per (method, metric@database), ours with their source
    import io

    import pandas as pd

    t = _cli("summarize", "--table", "megc", "--include-smoke", "--format", "tidy", "--tracking-uri", uri,
             cwd=tmp_path, env=env)
    assert t.returncode == 0, t.stderr
    df = pd.read_csv(io.StringIO(t.stdout)).set_index(["row", "metric"])
    assert df.loc[("LBP-TOP (baseline)", "uf1@composite"), "published"] == pytest.approx(58.82)
    fdp = df.loc["fdp"]
    assert list(fdp.index) == [f"{m}@{c}" for c in ("composite", "smic", "casme2", "samm") for m in ("uf1", "uar")]
    printed = [c.strip() for c in rows["fdp (re-run here)"].strip("| ").split("|")[2:]]  # after method, protocol
    # the table's cells, unrounded; a database no smoke fold tested is empty in both
    assert ["—" if pd.isna(v) else f"{v:.2f}" for v in fdp["mean"]] == printed
    assert set(fdp["data"]) == {"synthetic composite/3"} and (fdp["unit"] == "%").all()
    tested = fdp["mean"].notna()
    assert tested.any() and (fdp.loc[tested, "seeds"] == 1).all() and fdp.loc[~tested, "seeds"].isna().all()
    assert "provenance: data composite/3 (synthetic)" in t.stderr
