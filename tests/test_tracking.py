"""MLflow tracking of sweeps: store location, driver-created runs, worker logging, pooled metrics."""

from __future__ import annotations

import numpy as np
import pytest

from fdp.metrics import pooled_metrics
from fdp.fold import FoldResult
from fdp.variants import build_config
from orchestrator.plan.jobs import Job, job_key
from orchestrator.spec.sweep import parse_spec
from fdp.pooling import predictions_csv, read_predictions
from orchestrator.track.driver import SweepTracker, metric_prefix
from orchestrator.track.store import artifact_location, resolve_tracking_uri, with_retry
from orchestrator.track.worker import RunLogger


def _spec(name="trk", **extra):
    raw = {"name": name, "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], **extra}
    return parse_spec(raw)


def _result(fold: str, labels: list[int], preds: list[int], di: list[float] | None = None) -> FoldResult:
    n, m = len(labels), 5
    probs = [[0.9 if c == p else 0.025 for c in range(m)] for p in preds]
    return FoldResult(fold=fold, clip_ids=[f"{fold}_c{i}" for i in range(n)], subjects=[fold] * n, labels=labels,
                      preds=preds, probs=probs, class_names=["happiness", "disgust", "repression", "surprise", "others"],
                      di_mse=di, curves={"total": [(1, 2.0), (2, 1.5)]}, steps=2, wall_time_s=0.5, steps_per_s=4.0,
                      peak_mem_mb=100.0, selection="model after the last step (2)",
                      metrics=pooled_metrics(labels, preds, m) | ({"di_mse": float(np.mean(di))} if di else {}),
                      examples={"frames": np.zeros((2, 8, 3, 16, 16), np.uint8),
                                "gt_di": np.full((2, 1, 16, 16), 128, np.uint8),
                                "pred_di": np.full((2, 1, 16, 16), 64, np.uint8)})


@pytest.fixture
def tracker(tmp_path):
    return SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", root=tmp_path)


def test_the_commit_is_the_codes_checkout_not_the_project_folders(tmp_path, monkeypatch):
    """git_info names the checkout the code was imported from; a package copied into a folder of
    some other repository (site-packages inside a clone) has no commit of its own."""
    import subprocess

    from orchestrator.track.provenance import CODE_DIR, git_info

    def git(where, *args):
        out = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    assert (CODE_DIR / "orchestrator" / "track" / "provenance.py").is_file()
    if (CODE_DIR / ".git").exists():  # this checkout (a clone of the repository, as the README has it)
        assert git_info()[0] == git(CODE_DIR, "rev-parse", "HEAD")
    repo = tmp_path / "repo"
    (repo / "lib" / "site-packages").mkdir(parents=True)
    (repo / "a.txt").write_text("1")
    git(tmp_path, "init", "-q", str(repo))
    assert git_info(repo) == ("", False)  # before the first commit
    git(repo, "add", "a.txt")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = git(repo, "rev-parse", "HEAD")
    assert git_info(repo) == (head, False)
    (repo / "a.txt").write_text("2")
    assert git_info(repo) == (head, True)
    assert git_info(repo / "lib" / "site-packages") == ("", False)  # inside the repository, not its code
    assert git_info(tmp_path) == ("", False)  # no repository at all
    # a driver of `fdp-sweep submit` runs from an upload without .git: the submitter's commit
    monkeypatch.setenv("FDP_GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("FDP_GIT_DIRTY", "true")
    assert git_info(tmp_path) == ("0123456789abcdef0123456789abcdef01234567", True)
    assert git_info(repo) == (head, True)  # a checkout of the code itself still says what it is


def test_tracking_uri_layers(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("FDP_PROJECT_ROOT", str(tmp_path))
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"
    assert resolve_tracking_uri().startswith("sqlite:////")  # absolute: valid from a worker's cwd
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///sub/runs.db")  # relative: pinned to the root
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path}/sub/runs.db"
    assert resolve_tracking_uri("http://head:5000") == "http://head:5000"  # the CLI wins
    with pytest.raises(ValueError, match="expected sqlite"):
        resolve_tracking_uri("just/a/dir")
    assert artifact_location("fdp smoke", tmp_path) == (tmp_path / "mlruns" / "fdp_smoke").as_uri()


def test_metric_prefix_is_a_valid_mlflow_name():
    assert metric_prefix("fdp|lambda_d=10|seed0") == "fdp/lambda_d:10/seed0"
    assert metric_prefix("fdp|dims=16,32|seed1") == "fdp/dims:16_32/seed1"


def test_retry_only_on_locked_database():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert with_retry(flaky) == "ok" and len(calls) == 3
    calls.clear()

    def broken():
        calls.append(1)
        raise RuntimeError("no such table")

    with pytest.raises(RuntimeError, match="no such table"):
        with_retry(broken)
    assert len(calls) == 1


def test_parent_is_reused_by_spec_hash_unless_fresh(tracker, tmp_path):
    exp = tracker.experiment_id("trk-exp")
    assert tracker.client.get_experiment(exp).artifact_location == (tmp_path / "mlruns" / "trk-exp").as_uri()
    spec = _spec()
    first = tracker.open_parent(exp, spec)
    again = tracker.open_parent(exp, spec)
    assert not first.reused and again.reused
    assert again.run_id == first.run_id and again.instance == first.instance
    other = tracker.open_parent(exp, _spec(steps=7))  # another spec hash: another instance
    fresh = tracker.open_parent(exp, spec, fresh=True)
    assert len({first.run_id, other.run_id, fresh.run_id}) == 3
    tags = tracker.client.get_run(fresh.run_id).data.tags
    assert tags["fdp.sweep"] == "trk" and tags["fdp.spec_hash"] == spec.spec_hash and tags["fdp.role"] == "parent"
    assert tracker.open_parent(exp, spec).run_id == fresh.run_id  # the latest instance is resumed


def test_worker_logging_and_pooled_metrics(tracker):
    exp = tracker.experiment_id("trk-exp")
    parent = tracker.open_parent(exp, _spec())
    cfg = build_config("fdp", {"train.steps": 2})
    folds = {"01": ([0, 1, 2, 3], [0, 1, 1, 3]), "02": ([4, 4, 0], [4, 0, 0])}
    run_ids = []
    for fold, (labels, preds) in folds.items():
        job = Job(job_key(cfg, fold), f"fdp|seed0|fold={fold}", "fdp|seed0", fold, "fdp", 0, cfg)
        rid = tracker.create_child(exp, parent, job, "trk")
        assert tracker.client.get_run(rid).info.status == "SCHEDULED"
        log = RunLogger(tracker.uri, rid, flush_every=4)
        log.start()
        log.log_config(cfg, "abc123", False)
        for step in range(1, 6):
            log.log_terms(step, {"mer": 1.0 / step, "total": 2.0 / step})
        log.log_result(_result(fold, labels, preds, di=[0.01] * len(labels)), cfg)
        log.finish()
        run_ids.append(rid)
    run = tracker.client.get_run(run_ids[0])
    assert run.info.status == "FINISHED"
    assert run.data.params["loss.lambda_d"] == "100.0" and run.data.params["model.encoder.dims"] == str(cfg.model.encoder.dims)
    assert run.data.tags["mlflow.source.git.commit"] == "abc123" and run.data.tags["fdp.job_key"] == job_key(cfg, "01")
    # the UI's Source column shows the commit only beside a source name
    assert run.data.tags["mlflow.source.name"] == "fdp-sweep" and run.data.tags["mlflow.source.type"] == "LOCAL"
    from fdp.machine import machine_info, machine_summary  # the machine the fold computed on

    info = machine_info()
    assert run.data.tags["fdp.machine"] == machine_summary(info)
    assert {k: run.data.tags[f"fdp.{k}"] for k in ("cpu", "isa", "torch_kernels", "numpy_simd", "opencv_simd")} == \
        {k: info[k] for k in ("cpu", "isa", "torch_kernels", "numpy_simd", "opencv_simd")}
    parent_tags = tracker.client.get_run(parent.run_id).data.tags
    assert parent_tags["mlflow.source.name"] == _spec().path and parent_tags["mlflow.source.type"] == "LOCAL"
    from importlib.metadata import version

    assert run.data.tags["fdp.version"] == parent_tags["fdp.version"] == version("fdp-sweep")
    assert "fdp.from_search" not in parent_tags
    tuned = parse_spec({**_spec().raw, "name": "tuned", "from_search": "st", "folds": ["01"]}, resolved=True)
    assert tracker.client.get_run(tracker.open_parent(exp, tuned).run_id).data.tags["fdp.from_search"] == "st"
    assert run.data.tags["mlflow.parentRunId"] == parent.run_id and run.data.tags["fdp.selection"] == "last"
    history = tracker.client.get_metric_history(run_ids[0], "train/total")
    assert [m.step for m in history] == [1, 2, 3, 4, 5] and history[-1].value == pytest.approx(0.4)
    artifacts = {a.path for a in tracker.client.list_artifacts(run_ids[0])}
    assert {"config.yaml", "predictions.csv", "fold_result.json", "confusion.json", "confusion.png",
            "examples.png"} <= artifacts
    assert set(tracker.children(exp, parent.run_id)) == {job_key(cfg, "01"), job_key(cfg, "02")}

    pooled = tracker.pooled(run_ids)
    # hand-computed: 7 clips, 5 correct (0,1,3 of fold 01; 4,0 of fold 02)
    assert pooled["acc"] == pytest.approx(5 / 7)
    expected = pooled_metrics([0, 1, 2, 3, 4, 4, 0], [0, 1, 1, 3, 4, 0, 0], 5)
    assert pooled["uf1"] == pytest.approx(expected["uf1"]) and pooled["uar"] == pytest.approx(expected["uar"])
    assert pooled["di_mse"] == pytest.approx(0.01)
    tracker.log_pooled(parent.run_id, "fdp|seed0", pooled)
    assert tracker.client.get_run(parent.run_id).data.metrics["fdp/seed0/acc"] == pytest.approx(5 / 7)


def test_failed_job_is_marked_with_reason(tracker):
    exp = tracker.experiment_id("trk-exp")
    parent = tracker.open_parent(exp, _spec())
    cfg = build_config("fdp")
    rid = tracker.create_child(exp, parent, Job(job_key(cfg, "01"), "l", "c", "01", "fdp", 0, cfg), "trk")
    log = RunLogger(tracker.uri, rid)
    log.start()
    log.log_terms(1, {"total": 1.0})
    log.fail("TrainingError: fold 01: step 3: loss term 'total' is nan", "Traceback ...")
    run = tracker.client.get_run(rid)
    assert run.info.status == "FAILED"
    assert run.data.tags["fdp.error"].startswith("TrainingError: fold 01: step 3")
    assert run.data.metrics["train/total"] == 1.0  # buffered curve flushed before failing


def test_predictions_csv_roundtrip():
    res = _result("07", [0, 2, 4], [0, 2, 1], di=[0.1, 0.2, 0.3])
    back = read_predictions(predictions_csv(res))
    assert back["labels"] == [0, 2, 4] and back["preds"] == [0, 2, 1] and back["num_classes"] == 5
    assert back["di_mse"] == pytest.approx([0.1, 0.2, 0.3]) and back["clip_ids"][0] == "07_c0"
    res.preds, res.probs = None, None  # no_mer: no class predictions
    assert read_predictions(predictions_csv(res))["preds"] is None


def test_examples_png_shows_every_panel_in_place(tmp_path):
    """The Fig. 4-style grid: each clip's frames, then its ground-truth and predicted DI, one row a
    clip, at the figure size of one panel column per 0.9 inch. Every panel is a solid value here,
    so each must appear, in its row and column order, along a horizontal line through its row."""
    import matplotlib.image as mpimg

    from fdp.plots import examples_png

    k, t, s = 2, 3, 16
    frames = np.zeros((k, t, 3, s, s), np.uint8)
    for r in range(k):
        for i in range(t):
            frames[r, i] = np.array([40 * (i + 1), 30 * r + 10, 200], np.uint8)[:, None, None]
    gt = np.stack([np.full((1, s, s), 100 + r, np.uint8) for r in range(k)])
    pred = np.stack([np.full((1, s, s), 150 + r, np.uint8) for r in range(k)])
    out = tmp_path / "examples.png"
    examples_png({"frames": frames, "gt_di": gt, "pred_di": pred}, out, "fdp fold 01")
    img = (mpimg.imread(out)[..., :3] * 255).round().astype(int)
    assert img.shape[:2] == (round(100 * (0.95 * k + 0.3)), round(100 * 0.9 * (t + 2)))
    for r in range(k):
        want = [(40 * (i + 1), 30 * r + 10, 200) for i in range(t)] + [(100 + r,) * 3, (150 + r,) * 3]
        lines = []
        for y in range(img.shape[0]):
            seen = []  # the panel colours along this line, in order, each once
            for px in map(tuple, img[y]):
                if px in want and (not seen or seen[-1] != px):
                    seen.append(px)
            lines.append(seen)
        assert want in lines, f"clip {r}: not every panel found in order"
    without = tmp_path / "no_pred.png"
    examples_png({"frames": frames, "gt_di": gt}, without, "no_dic")
    assert mpimg.imread(without).shape[1] == round(100 * 0.9 * (t + 1))
