"""A corpus of bad inputs (issue #7, item 4), each driven through the real `fdp-sweep` command line.

Every case must end with a non-zero exit status and exactly one error line on stderr -- no
traceback -- that names the file / row / key and the reason (the case's `needles`), and must leave
nothing behind: the listing of every folder the command could write to (inputs, project root with
its MLflow / Optuna stores, cache roots) is the same after the command as before it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fixtures_data import CASME3_BAD_CLIPS, make_casme2, make_casme3_release

from orchestrator.cli.main import main

# Lines a command may print on stderr before its error: progress, the train header, click's usage,
# and the bad rows a pass found (one line each, the error line then names them by row and clip).
INFO_PREFIXES = ("prepare: ", "synth: ", "fdp on ", "Usage: ", "Try '", "bad row: ")

SPEC = "name: bad\ndataset: casme2\nsetting: casme2/5\nvariants: [fdp]\n"
# CASME II rows: a good row, the case's row (row 3 of the sheet), a good row
GOOD = {"subject": "03", "filename": "EP01_01", "onset": 9, "apex": 10, "offset": 12, "emotion": "disgust"}
ANNOTATION = "CASME2-coding-20190701.xlsx"
FRAMES = "CASME2_RAW_selected/sub03/EP01_01"
ROW3 = f"{ANNOTATION}:row 3: clip sub03_EP01_01: "  # how every message about the case's row starts


@dataclass
class Bad:
    """One bad input: `build(tmp)` writes it under tmp and returns the CLI arguments."""

    id: str
    build: Callable[[Path], list[str]]
    needles: list[str]  # substrings of the error line; "{tmp}" is the test's tmp_path
    cache: bool = False  # the command needs the prepared synthetic cache ($FDP_CACHE_DIR)
    regex: str = ""  # a pattern the error line must also match
    marks: list = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # environment for the command ("{tmp}" expanded)
    within_s: float | None = None  # the error line must come this fast (issue #13: 15 s)


def spec(text: str, *extra: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        (tmp / "spec.yaml").write_text(text)
        return ["run", str(tmp / "spec.yaml"), *extra]
    return build


def casme2(change: dict | None = None, frame: Callable[[Path], None] | None = None) -> Callable[[Path], list[str]]:
    """A tiny CASME II copy whose 3rd sheet row is GOOD + `change`; `frame(path)` spoils one frame
    file of that row; `prepare` into an existing, empty cache root."""
    def build(tmp: Path) -> list[str]:
        rows = [{"subject": "01", "filename": "EP02_01f", "onset": 8, "apex": 9, "offset": 11, "emotion": "happiness"},
                {**GOOD, **(change or {})},
                {"subject": 2, "filename": "EP13_02", "onset": 1, "apex": 2, "offset": 3, "emotion": "surprise"}]
        ds = make_casme2(tmp / "data", rows, frame_size=32)
        if frame is not None:
            frame(ds.root / FRAMES / "img10.jpg")
        (tmp / "out").mkdir()
        return ["prepare", "casme2", "--root", str(ds.root), "--out", str(tmp / "out"), "--no-align"]
    return build


def prepare_with(make: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    """A tiny CASME II copy (the `casme2()` rows); `make(tmp)` changes it and returns extra arguments."""
    def build(tmp: Path) -> list[str]:
        argv = casme2()(tmp)
        return argv + make(tmp)
    return build


def two_coding_files(tmp: Path) -> list[str]:
    (tmp / "data" / ANNOTATION).rename(tmp / "data" / "CASME2-coding-20140508.xlsx")
    make_casme2(tmp / "data")  # a second coding file beside it
    return []


def not_an_annotation_csv(tmp: Path) -> list[str]:
    (tmp / "data" / "codes.csv").write_text("Subject,Filename,Onset\n01,EP02_01f,8\n")
    return ["--annotations", str(tmp / "data" / "codes.csv")]


def casme3_release(tmp: Path) -> list[str]:
    ds = make_casme3_release(tmp / "c3")
    (tmp / "out").mkdir()
    return ["prepare", "casme3", "--root", str(ds.root), "--out", str(tmp / "out"), "--no-align"]


def empty_root(tmp: Path) -> list[str]:
    (tmp / "empty").mkdir()
    return ["prepare", "casme2", "--root", str(tmp / "empty"), "--out", str(tmp / "out")]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def synth_into(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        out = make(tmp)
        return ["synth", "--out", str(out), "--subjects", "1", "--clips-per-subject", "1", "--size", "64",
                "--frames-per-clip", "8"]
    return build


def a_file(tmp: Path) -> Path:
    (tmp / "file").write_text("not a folder")
    return tmp / "file" / "synth"


def a_dataset_root(tmp: Path) -> Path:
    return make_casme2(tmp / "CASME2").root


def args(*a: str) -> Callable[[Path], list[str]]:
    return lambda tmp: list(a)


def merge_with_list(second_row: str) -> Callable[[Path], list[str]]:
    """`merge composite` of three tiny part caches (under tmp/parts, outside the cache root) with
    a label list whose first row is found and whose second row is `second_row`."""
    import json

    import numpy as np

    def build(tmp: Path) -> list[str]:
        argv = ["merge", "composite", "--label-list", str(tmp / "list.csv")]
        for db, subject, clip, emotion in (("casme2", "01", "sub01_EP01", "happiness"),
                                           ("samm", "007", "007_1_1", "anger"), ("smic", "s01", "s01_po_01", "positive")):
            d = tmp / "parts" / f"{db}-x"
            d.mkdir(parents=True)
            np.save(d / "frames.npy", np.zeros((2, 3, 8, 8), np.uint8))
            (d / "index.json").write_text(json.dumps({"dataset": db, "settings": {}, "clips": [
                {"subject": subject, "clip_id": clip, "emotion": emotion, "start": 0, "length": 2}]}))
            argv += ["--part", f"{db}={d}"]
        (tmp / "list.csv").write_text("samm,7,007_1_1,0\n" + second_row)
        return argv
    return build


def a_file_named(name: str, then: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        (tmp / name).write_text("not a folder")
        return then(tmp)
    return build


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DOWN = f"http://127.0.0.1:{_closed_port()}"


S = "{tmp}/spec.yaml: "
CORPUS = [
    # --- sweep YAML mistakes (`fdp-sweep run`): caught before Ray or MLflow start
    Bad("spec-unknown-top-key", spec(SPEC + "seed: [0]\n"), [S + "unknown key 'seed' (did you mean 'seeds'?)"]),
    Bad("spec-unknown-override-key", spec(SPEC + "overrides: {train.stepz: 3}\n"),
        [S + "overrides: unknown config key 'train.stepz' (did you mean 'train.steps'?)"]),
    Bad("spec-wrong-type", spec(SPEC + "overrides: {train.batch_size: many}\n"),
        [S + "overrides: train.batch_size: expected an integer, got 'many'"]),
    Bad("spec-unknown-variant", spec(SPEC.replace("[fdp]", "[fdp, no_dicc]")),
        [S + "variants: unknown variant 'no_dicc' (did you mean 'no_dic'?)", "fdp-sweep list-variants"]),
    Bad("spec-unknown-setting", spec(SPEC.replace("casme2/5", "casme2/6")),
        [S + "setting: unknown class setting 'casme2/6' (did you mean 'casme2/5'?)"]),
    Bad("spec-seeds-not-a-list", spec(SPEC + "seeds: '0, 1'\n"),
        [S + "seeds: expected a non-empty list of non-negative integers, got '0, 1'"]),
    Bad("spec-negative-steps", spec(SPEC + "steps: -5\n"), [S + "steps: expected a positive integer", "got -5"]),
    Bad("spec-negative-steps-override", spec(SPEC + "overrides: {train.steps: -5}\n"),
        [S + "overrides: train.steps: expected an integer >= 1, got -5"]),
    Bad("spec-steps-given-twice", spec(SPEC + "steps: 300\noverrides: {train.steps: 500}\n"),
        [S + "steps: 300 and overrides: train.steps: 500 both set the step budget; keep one"]),
    Bad("spec-nan-weight-in-grid", spec(SPEC + "grid: {loss.lambda_d: [1, .nan]}\n"),
        [S + "grid: loss.lambda_d: expected a finite number, got nan"]),
    Bad("spec-zero-cpus", spec(SPEC + "resources: {cpus: 0}\n"),
        [S + "resources.cpus: expected a positive number, got 0"]),
    Bad("spec-fractional-gpus-above-one", spec(SPEC + "resources: {gpus: 1.5}\n"),
        [S + "resources.gpus: expected a fraction in [0, 1] or a whole number of GPUs, got 1.5"]),
    Bad("spec-more-gpus-than-the-cluster", spec(SPEC + "steps: 1\nresources: {cpus: 1, gpus: 64}\n"),
        ["no node of the cluster", "fits one job (1 cpus, 64 gpus)", "lower `resources:`"], cache=True,
        marks=[pytest.mark.integration]),  # asks a started Ray for its nodes
    Bad("spec-malformed-yaml", spec(SPEC + "overrides: {train.lr: [1, 2\n"),
        ["{tmp}/spec.yaml:6: not valid YAML"]),
    Bad("spec-empty-file", spec(""), [S + "a sweep spec is a YAML mapping"]),
    Bad("spec-file-missing", args("run", "/nonexistent/spec.yaml"),
        ["/nonexistent/spec.yaml: cannot read the spec (No such file or directory)"]),
    Bad("spec-from-unknown-study", spec(SPEC + "from_search: nostudy\n"),
        ["from_search: no Optuna study 'nostudy'", "{tmp}/project/optuna.db", "fdp-sweep search"]),
    Bad("spec-missing-cache", spec(SPEC),
        ["no prepared clip cache for casme2", "{tmp}/cache", "fdp-sweep prepare casme2"]),
    Bad("spec-smoke-missing-cache", spec(SPEC, "--smoke"),  # says how to make the synthetic one
        ["no prepared clip cache for casme2", "fdp-sweep synth --out data/synth-casme2 --layout casme2",
         "fdp-sweep prepare casme2 --root data/synth-casme2"]),
    Bad("spec-search-choice-cannot-build",
        spec(SPEC + "search: {holdout: 1, space: {model.encoder.dims: {type: categorical, "
                    "choices: [[64, 128, 256, 768], [32, 64, 128, 384]]}}}\n", "--dry-run"),
        [S + "search: space: model.encoder.dims: [32, 64, 128, 384] cannot be built: model.encoder.dims: "
         "feature width 384 is not a multiple of model.temporal_map^2 = 256"]),
    Bad("run-set-width-the-temporal-map-cannot-take", spec(SPEC, "--dry-run", "--set", "model.encoder.dims=[32,64,128,384]"),
        [S + "fdp|seed0: model.encoder.dims: feature width 384 is not a multiple of model.temporal_map^2 = 256"]),
    Bad("spec-duplicate-key", spec(SPEC + "overrides: {train.steps: 3}\noverrides: {train.lr: 0.1}\n"),
        ["{tmp}/spec.yaml:6: key 'overrides' given twice (first at {tmp}/spec.yaml:5)"], within_s=15),
    Bad("spec-duplicate-nested-key", spec(SPEC + "overrides:\n  train.steps: 3\n  train.lr: 0.1\n  train.steps: 500\n"),
        ["{tmp}/spec.yaml:8: key 'train.steps' given twice (first at {tmp}/spec.yaml:6)"]),
    # --- the tracking store and the folders a run writes to (issue #13): one line before Ray starts
    Bad("run-tracking-server-unreachable", spec(SPEC + "steps: 1\n", "--tracking-uri", DOWN),
        [f"tracking server {DOWN} unreachable", "pass another --tracking-uri"], cache=True, within_s=15),
    Bad("run-tracking-server-unreachable-env", spec(SPEC + "steps: 1\n"), [f"tracking server {DOWN} unreachable"],
        cache=True, env={"MLFLOW_TRACKING_URI": DOWN}, within_s=15),
    Bad("run-cache-dir-env-is-a-file", a_file_named("cachefile", spec(SPEC + "steps: 1\n")),
        ["FDP_CACHE_DIR={tmp}/cachefile: is a file, not a folder"], env={"FDP_CACHE_DIR": "{tmp}/cachefile"},
        within_s=15),
    Bad("prepare-cache-dir-env-is-a-file", a_file_named("cachefile", lambda tmp: [
        "prepare", "casme2", "--root", str(make_casme2(tmp / "data").root), "--no-align"]),
        ["FDP_CACHE_DIR={tmp}/cachefile: is a file, not a folder"], env={"FDP_CACHE_DIR": "{tmp}/cachefile"},
        within_s=15),
    Bad("run-set-unknown-choice", spec(SPEC, "--set", "model.encoder.kind=vitt"),
        ["--set: model.encoder.kind: unknown value 'vitt' (did you mean 'vit'?); known: lgfat, vit, resnet18"]),
    # --- annotations and frames (`fdp-sweep prepare`)
    Bad("prepare-no-annotation-file", empty_root,
        ["{tmp}/empty: no CASME II annotation file found", "tables seen: none", "--annotations FILE"]),
    Bad("prepare-offset-before-onset", casme2({"onset": 12, "offset": 9, "frames": []}),
        [ROW3 + "offset 9 before onset 12; fix the row or run with --skip-bad"]),
    Bad("prepare-non-integer-frame", casme2({"onset": 9.5}), [ROW3 + "non-integer OnsetFrame 9.5"]),
    Bad("prepare-text-non-number", casme2({"offset": "12a"}), [ROW3 + "non-numeric OffsetFrame '12a'"]),
    Bad("prepare-unknown-emotion", casme2({"emotion": "joy"}), [ROW3 + "unknown emotion 'joy'"]),
    Bad("prepare-unknown-subject-folder", casme2({"subject": "07", "frames": []}),
        [f"{ANNOTATION}:row 3: clip sub07_EP01_01: frame folder CASME2_RAW_selected/sub07/EP01_01 not found on disk"]),
    Bad("prepare-missing-frame-file", casme2({"frames": [9, 10, 12]}),
        [ROW3 + f"missing frames on disk in {FRAMES}: 11 (1 of 9..12)"]),
    Bad("prepare-truncated-jpeg", casme2(frame=truncate),
        [ROW3, f"{FRAMES}/img10.jpg: truncated JPEG (no end-of-image marker"]),
    Bad("prepare-not-an-image", casme2(frame=lambda p: p.write_bytes(b"not a jpeg")),
        [ROW3, f"{FRAMES}/img10.jpg: unreadable image"]),
    Bad("prepare-four-bad-rows-in-one-pass", casme3_release,
        ["annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx: 4 bad rows: ",
         *[f"({c})" for c in CASME3_BAD_CLIPS], "run with --skip-bad"]),
    Bad("prepare-two-matching-annotation-files", prepare_with(two_coding_files),
        ["{tmp}/data: 2 files match the CASME II annotation table: CASME2-coding-20140508.xlsx, "
         "CASME2-coding-20190701.xlsx", "--annotations FILE"]),
    Bad("prepare-annotations-not-the-dataset", prepare_with(not_an_annotation_csv),
        ["codes.csv: not a CASME II annotation file", "header row 1 has no column 'ApexFrame'"]),
    Bad("prepare-annotations-file-missing", prepare_with(lambda tmp: ["--annotations", str(tmp / "nope.xlsx")]),
        ["Invalid value for '--annotations'", "nope.xlsx' does not exist"]),
    Bad("prepare-max-frames-below-two", prepare_with(lambda tmp: ["--max-frames", "1"]),
        ["Invalid value for '--max-frames': 1 is not in the range x>=2"]),
    Bad("datasets-no-cache", args("datasets", "casme2"),
        ["no prepared cache for casme2 under {tmp}/cache", "fdp-sweep prepare casme2"]),
    Bad("datasets-empty-cache-root", args("datasets"), ["no prepared caches under {tmp}/cache"]),
    Bad("datasets-unknown-name", args("datasets", "casme9"),
        ["unknown dataset 'casme9' (did you mean 'casme3'?); known: casme2, samm,", "(or give a cache folder)"]),
    Bad("datasets-folder-without-a-cache", lambda tmp: ["datasets", str(tmp)],
        ["{tmp}: not a prepared clip cache (no index.json in it)"]),
    Bad("datasets-no-merged-cache", args("datasets", "composite"),
        ["no prepared cache for composite under {tmp}/cache: run `fdp-sweep merge composite`"]),
    # --- the synthetic benchmark (`fdp-sweep synth`)
    Bad("synth-into-a-dataset-root", synth_into(a_dataset_root),
        ["{tmp}/CASME2: folder is not empty and holds no earlier synthetic benchmark"]),
    Bad("synth-unwritable-folder", synth_into(a_file),
        ["{tmp}/file/synth: cannot write the synthetic benchmark (Not a directory)"]),
    # --- one fold (`fdp-sweep train`): settings that produce NaN or cannot run
    Bad("train-nan-loss-weight", args("train", "--smoke", "--fold", "01", "--set", "loss.lambda_d=nan"),
        ["loss.lambda_d: expected a finite number, got 'nan'"], cache=True),
    Bad("train-zero-batch", args("train", "--smoke", "--set", "train.batch_size=0"),
        ["train.batch_size: expected an integer >= 1, got 0"], cache=True),
    Bad("train-unknown-device", args("train", "--smoke", "--device", "tpu"),
        ["train.device: expected auto, cpu, mps, cuda or cuda:N, got 'tpu'"], cache=True),
    Bad("train-heads-do-not-divide-width", args("train", "--smoke", "--fold", "01", "--set", "model.encoder.heads=5"),
        ["model.encoder.heads=5: stage width 16 is not divisible by it"], cache=True),
    Bad("train-unknown-fold", args("train", "--smoke", "--fold", "99"),
        ["fold '99': no such test subject (known: 01, 02, 03, 04)"], cache=True),
    Bad("train-unknown-dataset", args("train", "--dataset", "casme9"),
        ["data.dataset: unknown dataset 'casme9' (did you mean 'casme3'?); known: casme2, casme3, casme_sq, "
         "composite, fourd, lodo, mmew, samm, smic, smic_nir, smic_vis"]),
    Bad("train-setting-of-another-dataset", args("train", "--dataset", "samm", "--setting", "casme2/5"),
        ["data.setting: 'casme2/5' is a setting of casme2, not of data.dataset 'samm'"]),
    Bad("train-negative-folds", args("train", "--smoke", "--folds", "-2"),
        ["Invalid value for '--folds': -2 is not in the range x>=0"]),
    # --- tables (`fdp-sweep summarize`)
    Bad("summarize-unknown-table", args("summarize", "--table", "99"),
        ["Error: Invalid value for '--table': '99' is not a table 4-14, megc or protocol"]),
    Bad("summarize-megc-no-runs", args("summarize", "--table", "megc"),
        ["no tracked runs: no MLflow store at sqlite:///{tmp}/project/mlflow.db", "sweeps/composite.yaml"]),
    # --- merged datasets (issue #16)
    Bad("spec-composite-protocol-on-a-single-dataset", spec(SPEC + "protocol: composite\n"),
        [S + "dataset: protocol composite runs on the merged dataset 'composite' (`fdp-sweep merge composite`), "
             "got 'casme2'"]),
    Bad("merge-listed-clip-missing", merge_with_list("samm,7,007_1_9,2\n"),
        ["{tmp}/list.csv: 1 of 2 listed clips not in the prepared caches: samm/007_1_9 (line 2)", "--skip-missing"]),
    Bad("merge-bad-list-row", merge_with_list("samm,7,007_1_1,5\n"),
        ["{tmp}/list.csv:line 2: class must be 0 (negative), 1 (positive) or 2 (surprise), got '5'"]),
    Bad("summarize-no-runs", args("summarize", "--table", "9"),
        ["no tracked runs: no MLflow store at sqlite:///{tmp}/project/mlflow.db",
         "`fdp-sweep run sweeps/ablation.yaml`"]),
]


def listing(*roots: Path) -> dict[str, int]:
    """Every path under `roots` with its size (-1 for folders): what 'nothing written' compares."""
    return {str(p): (p.stat().st_size if p.is_file() else -1) for r in roots if r.exists() for p in r.rglob("*")}


def error_line(res: Result) -> str:
    """The failed command's one error line; fails on exit 0, a crash (traceback), or any other
    stderr line that is neither progress nor click's usage lines."""
    assert res.exit_code != 0, res.output
    assert isinstance(res.exception, SystemExit), "".join(traceback.format_exception(res.exception))
    assert "Traceback" not in res.output
    lines = [ln.replace("\x1b[K", "").strip("\r ") for ln in res.stderr.split("\n")]
    lines = [ln for ln in lines if ln]
    assert lines and lines[-1].startswith(("error: ", "Error: ")), res.stderr
    assert all(ln.startswith(INFO_PREFIXES) for ln in lines[:-1]), res.stderr
    return lines[-1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project root (the default MLflow and Optuna stores) as cwd, an empty cache root."""
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "cache").mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("FDP_PROJECT_ROOT", str(root))
    monkeypatch.setenv("FDP_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("MLFLOW_TRACKING_URI", "FDP_OPTUNA_STORAGE", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CORPUS])
def test_bad_input_gives_one_clear_line_and_writes_nothing(case: Bad, project, tmp_path, monkeypatch, request):
    roots = [tmp_path]
    if case.cache:
        cache = request.getfixturevalue("synth_cache")
        monkeypatch.setenv("FDP_CACHE_DIR", str(Path(cache).parent))
        roots.append(Path(cache).parent)
    argv = case.build(tmp_path)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v.format(tmp=tmp_path))
    before = listing(*roots)
    t0 = time.monotonic()
    res = CliRunner().invoke(main, argv)
    elapsed = time.monotonic() - t0
    line = error_line(res)
    if case.within_s is not None:
        assert elapsed < case.within_s, f"{elapsed:.1f} s"
    for needle in case.needles:
        assert needle.format(tmp=tmp_path) in line, line
    if case.regex:
        assert re.search(case.regex, line), line
    assert listing(*roots) == before  # nothing half-written: no cache, store, run, checkpoint


def test_corpus_size():
    assert len(CORPUS) >= 20 and len({c.id for c in CORPUS}) == len(CORPUS)


@pytest.mark.integration
def test_truncated_frame_in_a_real_process(tmp_path):
    """In a real process (not CliRunner): libjpeg writes its warnings to file descriptor 2, so a
    truncated frame that reached the decoder would show up here as an extra stderr line."""
    argv = casme2(frame=truncate)(tmp_path)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *argv], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr  # not a terminal: plain lines
    lines = [ln for ln in proc.stderr.split("\n") if ln.strip()]
    # one progress line per clip (3 clips), then the error: no libjpeg warning between them
    assert [ln.startswith("prepare: ") for ln in lines] == [True, True, True, False], proc.stderr
    assert lines[-1].startswith(f"error: {ROW3}") and "truncated JPEG" in lines[-1]
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_rows_of_one_pass_are_printed_one_line_each(tmp_path, project):
    """The error line names the four clips; the lines above it give each one's reason."""
    res = CliRunner().invoke(main, casme3_release(tmp_path))
    error_line(res)
    rows = [ln for ln in res.stderr.splitlines() if ln.startswith("bad row: ")]
    name = "annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    assert rows == [
        f"bad row: {name}:row 6: clip spNO.3_a_20: offset 15 before onset 20",
        f"bad row: {name}:row 7: clip spNO.3_b_50: offset is 0 (missing)",
        f"bad row: {name}:row 8: clip spNO.4_d_60: offset is 0 (missing)",
        f"bad row: {name}:row 9: clip spNO.4_e_70: missing frames on disk in spNO.4/e/color: 72-73 (2 of 70..73)",
    ]
# --- read-only folders and unreadable files (issue #13, item 6). Permission bits do not stop root,
# so as root these commands run without the capabilities that override them (`setpriv`).

def _unprivileged() -> list[str]:
    import shutil

    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permission bits cannot be made to apply")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


@pytest.fixture
def open_dir(tmp_path):
    yield tmp_path
    for p in [tmp_path, *tmp_path.rglob("*")]:  # so that the tmp folder can be removed
        p.chmod(0o700)


def _cli(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    full = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0", **env}
    full.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.monotonic()
    proc = subprocess.run([*_unprivileged(), sys.executable, "-m", "orchestrator.cli.main", *argv], capture_output=True,
                          text=True, env=full, cwd=cwd, timeout=120)
    return proc, time.monotonic() - t0


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln.replace("\x1b[K", "").strip("\r ") for ln in proc.stderr.split("\n") if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(INFO_PREFIXES)]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.integration
@pytest.mark.parametrize("what", ["project-folder", "mlflow-db"])
def test_read_only_project_or_store_is_one_line_fast(open_dir, synth_cache, what):
    import sqlite3

    proj = open_dir / "proj"
    proj.mkdir()
    (open_dir / "spec.yaml").write_text(SPEC + "steps: 1\n")
    if what == "mlflow-db":
        con = sqlite3.connect(proj / "mlflow.db")  # an existing store the user cannot write
        con.execute("create table t (x)")
        con.commit()
        con.close()
        (proj / "mlflow.db").chmod(0o444)
        want = f"{proj / 'mlflow.db'}: MLflow store not writable"
    else:
        proj.chmod(0o555)
        want = f"{proj}: not writable (read-only)"
    before = listing(open_dir)
    proc, seconds = _cli(["run", str(open_dir / "spec.yaml")], proj,
                         {"FDP_PROJECT_ROOT": str(proj), "FDP_CACHE_DIR": str(Path(synth_cache).parent)})
    line = _one_line(proc)
    assert want in line and seconds < 15, (line, seconds)
    assert listing(open_dir) == before


@pytest.mark.integration
def test_unreadable_frame_is_one_line_or_skipped_and_recorded(open_dir):
    import json

    argv = casme2()(open_dir)
    frame = open_dir / "data" / FRAMES / "img10.jpg"
    frame.chmod(0o000)
    env = {"FDP_CACHE_DIR": str(open_dir / "out")}
    proc, seconds = _cli(argv, open_dir, env)
    line = _one_line(proc)
    assert f"{ANNOTATION}:row 3: " in line and f"{FRAMES}/img10.jpg: frame file not readable" in line, line
    assert seconds < 15 and list((open_dir / "out").iterdir()) == []
    proc, _ = _cli(argv + ["--skip-bad"], open_dir, env)
    assert proc.returncode == 0, proc.stderr
    assert "skipped: 1" in proc.stdout and "img10.jpg: frame file not readable" in proc.stdout
    (cache,) = (open_dir / "out").iterdir()
    skipped = json.loads((cache / "index.json").read_text())["skipped"]
    assert [s["source"].endswith("row 3") for s in skipped] == [True] and "not readable" in skipped[0]["reason"]
