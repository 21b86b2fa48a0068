"""A job run's test-selected record (fdp.test_selected) as MLflow holds it, written by the worker
and read back by the tables: every name and row carries the label.

* metrics `test_selected_inflated/by_<metric>/{acc,uf1,uar,step}`: the fold's scores at the step
  chosen on the test subject by <metric> (and that step), logged at the fold's last step;
  `test_selected_inflated/curve/{acc,uf1}`: the test clips' scores at every evaluated step.
* artifact `test_selected_predictions.csv`: one row per test clip and selection metric, its first
  column `selection` = "test-selected (inflated) by <metric> at step <s>".
* tag `fdp.test_selected`: what was recorded, in words.

The honest `predictions.csv` and the honest metrics are written exactly as without the record.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fdp.test_selected import LABEL, METRIC_NAMES

PREFIX = "test_selected_inflated"  # MLflow metric names allow no parentheses: the label as a prefix
ARTIFACT = "test_selected_predictions.csv"
TAG = "fdp.test_selected"


def metric_values(result: Any) -> dict[str, float]:
    """The fold-level metrics of the record: per selection metric, the pooled scores of the chosen
    step's predictions and the step itself."""
    from fdp.metrics import pooled_metrics

    out: dict[str, float] = {}
    for metric, b in result.test_selected.get("by", {}).items():
        m = pooled_metrics(result.labels, b["preds"], len(result.class_names))
        out.update({f"{PREFIX}/by_{metric}/{k}": float(m[k]) for k in ("acc", "uf1", "uar")})
        out[f"{PREFIX}/by_{metric}/step"] = float(b["step"])
    return out


def curve_points(result: Any) -> list[tuple[str, float, int]]:
    """(name, value, step) of the test clips' scores at every evaluated step."""
    return [(f"{PREFIX}/curve/{k}", float(v), int(step)) for step, acc, uf1 in result.test_selected.get("curve", [])
            for k, v in (("acc", acc), ("uf1", uf1))]


def tag_text(result: Any) -> str:
    ts = result.test_selected
    by = ", ".join(f"{METRIC_NAMES.get(m, m)} (step {b['step']})" for m, b in ts["by"].items())
    return f"{LABEL}: the step chosen on the test subject by {by}; test clips evaluated every {ts['every']} steps"


def selection_text(metric: str, step: int) -> str:
    return f"{LABEL} by {metric} at step {step}"


def predictions_csv(result: Any) -> str:
    """selection, selected_by, step, clip_id, subject, label, pred, prob_<class>...: one row per
    test clip and selection metric."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["selection", "selected_by", "step", "clip_id", "subject", "label", "pred"]
               + [f"prob_{c}" for c in result.class_names])
    for metric, b in result.test_selected.get("by", {}).items():
        for i, cid in enumerate(result.clip_ids):
            w.writerow([selection_text(metric, b["step"]), metric, b["step"], cid, result.subjects[i],
                        result.labels[i], b["preds"][i]] + [f"{p:.6g}" for p in b["probs"][i]])
    return buf.getvalue()


def read_predictions(text: str) -> dict[str, dict[str, Any]]:
    """`predictions_csv` back: {metric: {"step", "clip_ids", "subjects", "labels", "preds",
    "num_classes", "selection"}}."""
    reader = csv.DictReader(io.StringIO(text))
    n_classes = len([h for h in reader.fieldnames or [] if h.startswith("prob_")])
    out: dict[str, dict[str, Any]] = {}
    for r in reader:
        if not r["selection"].startswith(LABEL):  # a record without its label is not read as one
            raise ValueError(f"{ARTIFACT}: a row without the label {LABEL!r}: {r['selection']!r}")
        d = out.setdefault(r["selected_by"], {"step": int(r["step"]), "clip_ids": [], "subjects": [], "labels": [],
                                               "preds": [], "num_classes": n_classes, "selection": r["selection"]})
        d["clip_ids"].append(r["clip_id"])
        d["subjects"].append(r["subject"])
        d["labels"].append(int(r["label"]))
        d["preds"].append(int(r["pred"]))
    return out
