"""Figures of fold results, drawn off-screen (matplotlib's Agg canvas, no display, no pyplot
state): the confusion matrix, Acc/UF1 per fold, and the Fig. 4-style grid of a fold's clips with
their ground-truth and predicted dynamic images. The tracking layer logs them as run artifacts."""

from __future__ import annotations

import json
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


def write_confusion(folder: Path, cm: Any, names: list[str], title: str) -> None:
    """`confusion.json` (rows true, columns predicted) and `confusion.png` in `folder`."""
    (folder / "confusion.json").write_text(json.dumps(
        {"class_names": names, "matrix": cm.tolist(), "rows": "true", "cols": "pred"}))
    confusion_png(cm, names, folder / "confusion.png", title)


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
    """Fig. 4-style grid: per test clip, its frames, the ground-truth DI and the predicted DI.

    The panels (uint8, as `fdp.train.evaluate` keeps them) are laid out in one image and drawn
    on one axes: one axes per panel (40 for 4 clips) costs several times more in every fold
    job. The gray DIs become gray RGB, what a gray colormap over 0..255 shows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frames = np.asarray(examples["frames"], dtype=np.uint8)  # (k, T, 3, H, W)
    panels = [frames.transpose(0, 1, 3, 4, 2)]  # (k, T, H, W, 3)
    names = [f"t{i}" for i in range(frames.shape[1])]
    for key, name in (("gt_di", "GT DI"), ("pred_di", "pred DI")):
        if examples.get(key) is not None:
            di = np.asarray(examples[key], dtype=np.uint8)  # (k, 1, H, W)
            panels.append(np.repeat(di[:, :, :, :, None], 3, axis=4))
            names.append(name)
    grid = np.concatenate(panels, axis=1)  # (k, cols, H, W, 3)
    k, cols, h, w, _ = grid.shape
    pad = max(1, w // 8)
    gapped = np.pad(grid, ((0, 0), (0, 0), (0, pad), (0, pad), (0, 0)), constant_values=255)  # white gaps
    mosaic = gapped.transpose(0, 2, 1, 3, 4).reshape(k * (h + pad), cols * (w + pad), 3)[:-pad, :-pad]
    fig = Figure(figsize=(0.9 * cols, 0.95 * k + 0.3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for c, name in enumerate(names):
        ax.text(c * (w + pad) + w / 2, -pad, name, ha="center", va="bottom", fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.savefig(path)
