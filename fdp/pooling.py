"""A fold's test predictions as a file, and pooling them over folds (SPEC §5).

`predictions_csv` writes one fold's per-clip predictions (the `predictions.csv` artifact of its
run), `read_predictions` reads them back as plain lists, `concat_predictions` joins several folds
and `pool_predictions` scores the concatenation once: Acc / UF1 / UAR of the pooled predictions
(`fdp.metrics.pooled_metrics`, not a mean over folds) and the mean dynamic-image MSE over clips.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from fdp.metrics import pooled_metrics

if TYPE_CHECKING:
    from fdp.fold import FoldResult


def concat_predictions(predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """Several folds' `read_predictions` dicts as one, clips in fold order: `preds` None when a
    fold has none, `di_mse` the values of the folds that have them (None if none does),
    `num_classes` the most any fold names (0 for no fold)."""
    preds = None if any(p["preds"] is None for p in predictions) else [y for p in predictions for y in p["preds"]]
    di = [v for p in predictions for v in p.get("di_mse") or []]
    return {"subjects": [s for p in predictions for s in p["subjects"]],
            "labels": [y for p in predictions for y in p["labels"]], "preds": preds, "di_mse": di or None,
            "num_classes": max((p["num_classes"] for p in predictions), default=0)}


def pool_predictions(predictions: list[dict[str, Any]]) -> dict[str, float]:
    """Metrics of concatenated `read_predictions` dicts: pooled Acc/UF1/UAR (SPEC §5), mean DI MSE."""
    c = concat_predictions(predictions)
    out: dict[str, float] = {}
    if c["labels"] and c["preds"] is not None:
        out.update(pooled_metrics(c["labels"], c["preds"], c["num_classes"]))
    if c["di_mse"]:
        out["di_mse"] = sum(c["di_mse"]) / len(c["di_mse"])
    return out


def read_predictions(text: str) -> dict[str, Any]:
    """Parse `predictions.csv` (see `predictions_csv`)."""
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    probs = [h for h in reader.fieldnames or [] if h.startswith("prob_")]
    labels = [int(r["label"]) for r in rows]
    preds = [int(r["pred"]) for r in rows] if rows and rows[0]["pred"] != "" else None
    di = [float(r["di_mse"]) for r in rows] if rows and rows[0].get("di_mse", "") != "" else None
    return {"clip_ids": [r["clip_id"] for r in rows], "subjects": [r["subject"] for r in rows],
            "labels": labels, "preds": preds, "di_mse": di, "num_classes": len(probs),
            "class_names": [h[len("prob_"):] for h in probs]}


def predictions_csv(result: "FoldResult") -> str:
    """clip_id, subject, label, pred, prob_<class>..., di_mse: one row per test clip. The prob
    columns name every class of the setting, which is how readers learn the number of classes."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["clip_id", "subject", "label", "pred"] + [f"prob_{c}" for c in result.class_names] + ["di_mse"])
    for i, cid in enumerate(result.clip_ids):
        probs = result.probs[i] if result.probs is not None else [""] * len(result.class_names)
        w.writerow([cid, result.subjects[i], result.labels[i],
                    result.preds[i] if result.preds is not None else ""]
                   + [f"{p:.6g}" if p != "" else "" for p in probs]
                   + [f"{result.di_mse[i]:.6g}" if result.di_mse is not None else ""])
    return buf.getvalue()
