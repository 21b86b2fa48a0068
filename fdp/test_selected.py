"""The published protocol, recorded beside the honest one and labelled: what a fold would report
if its step were chosen on the test subject (SPEC §8-9: the authors' FDP code keeps the epoch of
best test accuracy, HTNet likewise, MEB's notebook the epoch of best test F1).

Off unless a config names the metric (`protocol_probe.select_on_test`). Then a method that trains
in steps evaluates the test clips every `protocol_probe.every` steps (and after its last step), in
eval mode and without touching the training (no optimizer step, no running statistic, no random
draw of the training changes), and `TestSelectedRecorder` keeps, per named metric, the predictions
of the best step (the earliest, on ties: the `>` of those codes). One training gives both numbers;
the honest result is the same, bit for bit, with and without this record.

Everything it yields is labelled `LABEL` wherever it is shown: never a number of ours without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LABEL = "test-selected (inflated)"
METRICS = ("acc", "uf1")  # what a step may be chosen by: accuracy (authors' FDP code, HTNet) | macro F1 (MEB)
METRIC_NAMES = {"acc": "accuracy", "uf1": "macro F1"}


class TestSelectedRecorder:
    """Test-subject scores every `every` steps, and per metric of `metrics` the best step's
    predictions. `labels`: the test clips' true labels (n_test,); `num_classes`: m."""

    __test__ = False  # not a pytest class

    def __init__(self, metrics: list[str], every: int, labels: np.ndarray, num_classes: int) -> None:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise ValueError(f"protocol_probe.select_on_test: expected some of {', '.join(METRICS)}, got {metrics!r}")
        self.metrics, self.every = list(metrics), int(every)
        self.labels, self.num_classes = np.asarray(labels), int(num_classes)
        self.curve: list[tuple[int, float, float]] = []  # (step, acc, uf1) of the test clips
        self.best: dict[str, dict[str, Any]] = {}  # metric -> {"step", "score", "probs"}

    def due(self, step: int, last: int) -> bool:
        """Whether the test clips are evaluated after (1-based) step `step` of `last`."""
        return step % self.every == 0 or step == last

    def observe(self, step: int, probs: np.ndarray) -> None:
        """The test clips' class probabilities (n_test, m) of the model after step `step`."""
        from fdp.metrics import pooled_metrics

        probs = np.asarray(probs, dtype=np.float64)
        if any(s == step for s, _, _ in self.curve):  # a resumed run replays no step twice
            return
        m = pooled_metrics(self.labels, probs.argmax(1), self.num_classes)
        self.curve.append((int(step), float(m["acc"]), float(m["uf1"])))
        for metric in self.metrics:
            if metric not in self.best or m[metric] > self.best[metric]["score"]:
                self.best[metric] = {"step": int(step), "score": float(m[metric]), "probs": probs.tolist()}

    def records(self) -> dict[str, Any]:
        """{"label", "every", "curve": [[step, acc, uf1], ...], "by": {metric: {"step", "score", "preds",
        "probs"}}}; {} when nothing was observed (a method fitted once has no step to choose)."""
        if not self.curve:
            return {}
        by = {m: {**b, "preds": np.asarray(b["probs"]).argmax(1).tolist()} for m, b in self.best.items()}
        return {"label": LABEL, "every": self.every, "curve": [list(c) for c in self.curve], "by": by}

    def state_dict(self) -> dict[str, Any]:
        return {"curve": [list(c) for c in self.curve], "best": self.best}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state:
            self.curve = [(int(s), float(a), float(f)) for s, a, f in state["curve"]]
            self.best = state["best"]


def recorder_for(cfg: Any, labels: np.ndarray) -> TestSelectedRecorder | None:
    """The recorder `cfg.protocol_probe` asks for, or None (the default: off)."""
    p = cfg.protocol_probe
    if not p.select_on_test:
        return None
    return TestSelectedRecorder(list(p.select_on_test), p.every, labels, cfg.model.num_classes)
