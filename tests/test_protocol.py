"""The published protocol as a labelled column (fdp.test_selected): recording it changes nothing of
the honest result (bit for bit), a spec must name its metric, and no test-selected number reaches
a metric, an artifact, a table cell or a tidy row without its label."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from fdp.metrics import pooled_metrics
from fdp.runner import fold_names, run_fold
from fdp.stats import SeedPredictions
from fdp.test_selected import LABEL, TestSelectedRecorder
from fdp.variants import build_config
from orchestrator.cli.train import SMOKE_OVERRIDES

PROBE = {"protocol_probe.select_on_test": ["acc", "uf1"], "protocol_probe.every": 2}


def _cfg(cache, variant="fdp", **over):
    o = {**SMOKE_OVERRIDES, "data.cache_dir": str(cache), "train.steps": 6, "train.log_every": 2,
         "train.batch_size": 4, "train.checkpoint_every": 0, **over}
    return build_config(variant, o)


def _onehot(preds, m=3):
    return np.eye(m)[preds] * 0.8 + 0.2 / m


def test_the_recorder_keeps_the_earliest_best_step_per_metric():
    labels = np.array([0, 0, 1, 2])
    r = TestSelectedRecorder(["acc", "uf1"], every=10, labels=labels, num_classes=3)
    r.observe(10, _onehot([0, 0, 0, 0]))  # acc 0.50, uf1 = (2/3) / 3 = 0.222
    r.observe(20, _onehot([0, 1, 1, 2]))  # acc 0.75, uf1 = (2/3 + 2/3 + 1) / 3 = 0.778
    r.observe(30, _onehot([0, 0, 1, 1]))  # acc 0.75 (a tie: the earlier step stays), uf1 = (1 + 2/3 + 0) / 3
    r.observe(30, _onehot([2, 2, 2, 2]))  # a replayed step (resume) is not recorded twice
    rec = r.records()
    assert rec["label"] == LABEL and rec["every"] == 10
    assert [c[0] for c in rec["curve"]] == [10, 20, 30]
    assert rec["curve"][0][1:] == pytest.approx([0.5, 2 / 9])
    assert rec["by"]["acc"]["step"] == 20 and rec["by"]["acc"]["preds"] == [0, 1, 1, 2]
    assert rec["by"]["uf1"]["step"] == 20 and rec["by"]["uf1"]["score"] == pytest.approx(7 / 9)
    assert r.due(10, 35) and r.due(35, 35) and not r.due(11, 35)
    back = TestSelectedRecorder(["acc", "uf1"], 10, labels, 3)
    back.load_state_dict(r.state_dict())
    assert back.records() == rec


def test_honest_predictions_are_bit_identical_with_and_without_the_record(synth_cache):
    cfg = _cfg(synth_cache)
    fold = fold_names(cfg)[0]
    plain = run_fold(cfg, fold)
    probed = run_fold(_cfg(synth_cache, **PROBE), fold)
    assert np.array_equal(np.asarray(plain.probs), np.asarray(probed.probs))  # bit for bit
    assert plain.preds == probed.preds and plain.metrics == probed.metrics
    assert np.array_equal(np.asarray(plain.di_mse), np.asarray(probed.di_mse))
    assert plain.curves == probed.curves  # every loss of every step: the training did not change
    assert plain.test_selected == {} and "test" not in " ".join(plain.metrics)
    rec = probed.test_selected
    assert [c[0] for c in rec["curve"]] == [2, 4, 6] and set(rec["by"]) == {"acc", "uf1"}
    # the last step is a candidate: its test scores are the honest result's
    assert rec["curve"][-1][1:] == pytest.approx([plain.metrics["acc"], plain.metrics["uf1"]])
    assert rec["by"]["acc"]["score"] >= plain.metrics["acc"] and rec["by"]["uf1"]["score"] >= plain.metrics["uf1"]


def test_a_resumed_fold_records_what_an_uninterrupted_one_does(synth_cache, tmp_path):
    cfg = _cfg(synth_cache, **PROBE, **{"train.checkpoint_every": 2})
    fold = fold_names(cfg)[0]
    whole = run_fold(cfg, fold, checkpoint_path=tmp_path / "ckpt.pt")  # leaves the step-4 checkpoint
    assert (tmp_path / "ckpt.pt").exists()
    resumed = run_fold(cfg, fold, checkpoint_path=tmp_path / "ckpt.pt")  # steps 5-6 only
    assert resumed.test_selected == whole.test_selected
    assert np.array_equal(np.asarray(resumed.probs), np.asarray(whole.probs))


def test_a_method_fitted_once_records_nothing(synth_cache):
    res = run_fold(_cfg(synth_cache, "single_frame", **PROBE), fold_names(_cfg(synth_cache))[0])
    assert res.test_selected == {}


@pytest.mark.parametrize("probe", [{"every": 20}, {}, True, "acc"])
def test_a_spec_that_does_not_name_the_metric_is_refused_in_one_line(probe):
    from orchestrator.spec.sweep import SpecError, parse_spec

    raw = {"name": "x", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], "protocol_probe": probe}
    with pytest.raises(SpecError) as e:
        parse_spec(raw, source="p.yaml")
    assert len(e.value.problems) == 1 and "\n" not in e.value.problems[0]
    line = e.value.problems[0]
    assert line.startswith("p.yaml: protocol_probe: ") and "select_on_test: acc" in line and LABEL in line


def test_the_record_is_off_unless_named():
    from orchestrator.spec.sweep import configurations, parse_spec

    base = {"name": "x", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"]}
    assert configurations(parse_spec(base))[0].cfg.protocol_probe.select_on_test == []
    on = parse_spec({**base, "protocol_probe": {"select_on_test": "uf1", "every": 5}})
    assert configurations(on)[0].cfg.protocol_probe.select_on_test == ["uf1"]
    with pytest.raises(Exception, match="protocol_probe.select_on_test: set it with the spec's `protocol_probe:`"):
        parse_spec({**base, "overrides": {"protocol_probe.select_on_test": ["acc"]}})


def _recorded_result():
    from fdp.fold import FoldResult

    labels, honest = [0, 1, 2, 1], [0, 0, 0, 0]
    m = 3
    rec = TestSelectedRecorder(["acc"], 2, np.array(labels), m)
    rec.observe(2, _onehot([0, 1, 2, 0]))
    rec.observe(4, _onehot(honest))
    return FoldResult(fold="s1", clip_ids=[f"c{i}" for i in range(4)], subjects=["s1"] * 4, labels=labels,
                      preds=honest, probs=_onehot(honest).tolist(), class_names=["a", "b", "c"], di_mse=None,
                      curves={}, steps=4, wall_time_s=1.0, steps_per_s=4.0, peak_mem_mb=1.0, selection="last",
                      metrics=pooled_metrics(labels, honest, m), test_selected=rec.records())


def test_no_test_selected_value_reaches_a_metric_or_artifact_without_its_label(tmp_path):
    from orchestrator.plan.jobs import Job
    from orchestrator.spec.sweep import parse_spec
    from orchestrator.track import test_selected as ts
    from fdp.pooling import predictions_csv
    from orchestrator.track.driver import SweepTracker
    from orchestrator.track.worker import RunLogger

    res = _recorded_result()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker(uri, root=tmp_path)
    spec = parse_spec({"name": "p", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"]})
    eid = tracker.experiment_id("p")
    parent = tracker.open_parent(eid, spec)
    cfg = build_config("fdp")
    rid = tracker.create_child(eid, parent, Job("k", "fdp|fold=s1", "fdp", "s1", "fdp", 0, cfg), "p")
    log = RunLogger(uri, rid)
    log.start()
    log.log_result(res, cfg)
    run = tracker.client.get_run(rid)
    honest = {"acc", "war", "uf1", "uar", "wall_time_s", "steps_per_s", "peak_mem_mb"}
    assert {k for k in run.data.metrics if k not in honest} == {
        f"{ts.PREFIX}/by_acc/{k}" for k in ("acc", "uf1", "uar", "step")} | {f"{ts.PREFIX}/curve/{k}" for k in ("acc", "uf1")}
    assert run.data.metrics["acc"] == 0.25 and run.data.metrics[f"{ts.PREFIX}/by_acc/acc"] == 0.75  # honest vs step 2
    assert LABEL in run.data.tags[ts.TAG]
    art = Path(run.info.artifact_uri.removeprefix("file://"))
    assert (art / "predictions.csv").read_bytes() == predictions_csv(res).encode()  # the honest file, as without the record
    rows = list(csv.DictReader(io.StringIO((art / ts.ARTIFACT).read_text())))
    assert rows and all(r["selection"].startswith(LABEL) for r in rows)
    assert ts.read_predictions((art / ts.ARTIFACT).read_text())["acc"]["preds"] == [0, 1, 2, 0]
    unlabelled = (art / ts.ARTIFACT).read_text().replace(LABEL, "best")
    with pytest.raises(ValueError, match="without the label"):
        ts.read_predictions(unlabelled)


def _row(label="fdp", variant="fdp"):
    from orchestrator.report.protocol import ProtocolRow

    y = [0, 1, 2, 0, 1, 2, 0, 1]
    subj = ["a", "a", "b", "b", "c", "c", "d", "d"]
    row = ProtocolRow(label, variant, num_classes=3, every=2)
    row.honest = [SeedPredictions.of(y, [0, 0, 0, 0, 1, 1, 1, 1], subj)]
    row.selected = {"acc": [SeedPredictions.of(y, [0, 1, 2, 0, 1, 1, 1, 1], subj)]}
    row.fold_mean = {"acc": [{"acc": 0.75, "wf1": 0.7}]}
    return row


def test_the_protocol_table_labels_every_test_selected_column_and_row():
    from orchestrator.report.protocol import HEADER, build_protocol_table, protocol_tidy
    from orchestrator.report.tables import tidy_csv

    t = build_protocol_table([_row(), _row("ststnet", "ststnet")])
    inflated = [i for i, h in enumerate(t.header) if LABEL in h]
    assert [t.header[i] for i in inflated] == HEADER[4:]  # every column right of the honest ones
    ours = [r for r in t.rows if "(re-run here)" in r[0]]
    assert all(LABEL in r[1] for r in ours)
    fdp = ours[0]
    assert fdp[2].startswith("41.67") or float(fdp[2].split()[0]) == pytest.approx(100 * pooled_metrics(
        [0, 1, 2, 0, 1, 2, 0, 1], [0, 0, 0, 0, 1, 1, 1, 1], 3)["uf1"], abs=0.005)
    # the published row of the method that ran sits right below it (MEB's STSTNet), labelled too
    i = next(i for i, r in enumerate(t.rows) if r[0].startswith("ststnet"))
    assert t.rows[i + 1][0] == "STSTNet (published: MEB notebook)" and LABEL in t.rows[i + 1][1]
    assert t.rows[i + 1][2:5] == ["71.27", "—", "77.40"]
    rows = protocol_tidy([_row()])
    assert rows and all(("test_selected" in r["metric"]) == (LABEL in r.get("selection", "")) for r in rows)
    assert "selection" in tidy_csv(rows).splitlines()[0]


@pytest.mark.slow  # 4 folds x 24 steps: about 10 minutes on the shared 2-core machine
def test_the_shuffled_label_control_scores_above_its_honest_number_once_its_step_is_picked_on_test(synth_cache):
    """A model that learned nothing (permuted training labels) looks better once its step is chosen on
    the test subject: pooled over the LOSO folds of a small synthetic draw, the UF1 of the steps of
    best test F1 (MEB's rule) is above the honest UF1, and the accuracy of the steps of best test
    accuracy (the authors' rule) is never below the honest accuracy (the last step is a candidate of
    every fold)."""
    cfg = _cfg(synth_cache, "fdp_shuffled", **{**PROBE, "train.steps": 24, "train.lr": 2e-3})
    results = [run_fold(cfg, f) for f in fold_names(cfg)]
    y = [v for r in results for v in r.labels]
    honest = pooled_metrics(y, [v for r in results for v in r.preds], 5)
    by = {m: pooled_metrics(y, [v for r in results for v in r.test_selected["by"][m]["preds"]], 5) for m in ("acc", "uf1")}
    assert by["acc"]["acc"] >= honest["acc"]
    assert by["uf1"]["uf1"] > honest["uf1"], (by, honest)
