"""Figures of fold results, drawn off-screen (matplotlib's Agg canvas, no display, no pyplot
state): the confusion matrix, Acc/UF1 per fold, and the Fig. 4-style grid of a fold's clips with
their ground-truth and predicted dynamic images. The tracking layer logs them as run artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def confusion_png(cm: Any, names: list[str], path: Path, title: str) -> None:
    """The confusion matrix (rows true, columns predicted) with its counts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    m = len(names)
    fig = Figure(figsize=(1.0 + 0.7 * m, 0.8 + 0.7 * m), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(cm, cmap="Blues")
    for i in range(m):
        for j in range(m):
            ax.text(j, i, str(int(cm[i][j])), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(m), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(m), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def per_fold_png(folds: list[dict[str, Any]], path: Path, title: str) -> None:
    """Bars of Acc and UF1 per fold (the pooled figures are in the parent's metrics)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(folds)
    fig = Figure(figsize=(max(4.0, 0.35 * n + 1.5), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = list(range(n))
    ax.bar([i - 0.2 for i in x], [f["acc"] for f in folds], width=0.4, label="Acc")
    ax.bar([i + 0.2 for i in x], [f["uf1"] for f in folds], width=0.4, label="UF1")
    ax.set_xticks(x, [str(f["fold"]) for f in folds], rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_xlabel("fold (test subject)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def examples_png(examples: dict[str, Any], path: Path, title: str) -> None:
    """Fig. 4-style grid: per test clip, its frames, the ground-truth DI and the predicted DI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frames = np.asarray(examples["frames"])  # (k, T, 3, H, W) uint8
    gt = np.asarray(examples["gt_di"])  # (k, 1, H, W)
    pred = examples.get("pred_di")
    pred = np.asarray(pred) if pred is not None else None
    k, t = frames.shape[0], frames.shape[1]
    cols = t + 1 + (pred is not None)
    fig = Figure(figsize=(0.9 * cols, 0.95 * k + 0.3), dpi=100)
    FigureCanvasAgg(fig)
    for r in range(k):
        panels = [(frames[r, i].transpose(1, 2, 0), f"t{i}") for i in range(t)] + [(gt[r, 0], "GT DI")]
        if pred is not None:
            panels.append((pred[r, 0], "pred DI"))
        for c, (img, name) in enumerate(panels):
            ax = fig.add_subplot(k, cols, r * cols + c + 1)
            ax.imshow(img, cmap=None if img.ndim == 3 else "gray", vmin=0, vmax=255)
            ax.set_axis_off()
            if r == 0:
                ax.set_title(name, fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.savefig(path)
