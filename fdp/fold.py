"""One fold, whatever the method (SPEC §5): what a method is given (`FoldInputs`: the config, the
split, the clips, the labels training may read) and what it gives back (`FoldResult`: per-clip
predictions of the test split, metrics, and what the fold cost).

Every method (fdp.methods) fits on `split.train` (and may validate on `split.val`, training
subjects only) and predicts `split.test` once; the test subject is never used to select anything
in the result's honest fields. `FoldResult.test_selected` is the one exception, kept apart and
labelled: what the published protocol would have reported (fdp.test_selected), recorded only when a
config asks for it by name.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

Callback = Callable[[int, dict[str, float]], None]  # (step, loss terms) reported while a method trains


class TrainingError(RuntimeError):
    """A fold that cannot finish (non-finite loss, bad split); one line naming step and term."""


@dataclass
class FoldSplit:
    """Indices into the training bank (train, val) and the test bank (test)."""

    fold: str  # test subject (LOSO) or "cross"
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class FoldResult:
    fold: str
    clip_ids: list[str]
    subjects: list[str]
    labels: list[int]
    preds: list[int] | None  # None without the MER head (no_mer)
    probs: list[list[float]] | None
    class_names: list[str]
    di_mse: list[float] | None  # per test clip; None without the DIC module
    curves: dict[str, list[tuple[int, float]]]  # term -> [(step, value)]
    steps: int
    wall_time_s: float
    steps_per_s: float
    peak_mem_mb: float  # CUDA: max allocated; CPU: peak RSS of the process
    selection: str  # the selection rule actually used, in words
    metrics: dict[str, float]  # honest only: never a test-selected value
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 (autocast), as run (fdp.runtime)
    memory_format: str = "contiguous"  # channels_last (2-D convs) | contiguous, as run
    compiled: str = ""  # torch.compile backend of the forward; "" = eager
    gpu: str = ""  # physical GPU (its CUDA_VISIBLE_DEVICES entry); "" on CPU
    n_params: int | None = None  # exact count of what was fitted (network weights, regression coefficients)
    # the published protocol's pick, recorded beside the honest result when the config asks for it
    # (`fdp.test_selected.TestSelectedRecorder.records`); {} when not asked for or nothing to select
    test_selected: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # frames, gt_di, pred_di (uint8)

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("examples")
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> "FoldResult":
        d = json.loads(text)
        d["curves"] = {k: [tuple(p) for p in v] for k, v in d["curves"].items()}
        return cls(**d)


@dataclass
class FoldInputs:
    """Everything a method's `run` may read for one fold. `bank` holds the training (and
    validation) clips, `test_bank` the test clips (the same bank under LOSO); `cache` / `test_cache`
    are the prepared caches behind them (frames, annotated onset / apex, content fingerprint)."""

    cfg: Any  # fdp.config.ExperimentConfig, with one output per class of the data read
    split: FoldSplit
    bank: Any  # fdp.data.sampling.ClipBank
    test_bank: Any
    cache: Any  # fdp.data.cache.ClipCache
    test_cache: Any
    train_labels: Any  # (N,) torch.Tensor over `bank`: its labels, or the shuffled control's permutation
    callback: Callback | None = None  # (step, loss terms), for methods that train in steps
    checkpoint_path: Path | None = None  # resume from / save to (methods that train in steps)
    probe: Any = None  # fdp.test_selected.TestSelectedRecorder when the config asks for it, else None

    @property
    def test_labels(self) -> np.ndarray:
        """(n_test,) true labels of the test clips, as the result reports them."""
        import torch

        labels = self.test_bank.labels
        return labels[torch.as_tensor(self.split.test, device=labels.device)].cpu().numpy()


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def result_of_predictions(inputs: FoldInputs, probs: np.ndarray, *, selection: str, t0: float, steps: int = 0,
                          n_params: int | None = None, curves: dict[str, list[tuple[int, float]]] | None = None,
                          device: str = "cpu", peak_mem_mb: float | None = None) -> FoldResult:
    """The FoldResult of a method that predicts class probabilities `probs` (n_test, m) for
    `inputs.split.test`, started at `time.perf_counter()` value `t0`: clip ids, subjects, true
    labels, arg-max predictions and pooled metrics filled in. The small adapters of fdp.methods use it."""
    from fdp.metrics import pooled_metrics

    wall = time.perf_counter() - t0
    tb, test = inputs.test_bank, inputs.split.test
    labels = inputs.test_labels
    probs = np.asarray(probs, dtype=np.float64)
    preds = probs.argmax(1)
    return FoldResult(
        fold=inputs.split.fold, clip_ids=[tb.clip_ids[i] for i in test], subjects=[tb.subjects[i] for i in test],
        labels=labels.tolist(), preds=preds.tolist(), probs=probs.tolist(), class_names=list(tb.class_names),
        di_mse=None, curves=curves or {}, steps=steps, wall_time_s=wall,
        steps_per_s=steps / wall if steps and wall > 0 else 0.0,
        peak_mem_mb=peak_rss_mb() if peak_mem_mb is None else peak_mem_mb, selection=selection,
        metrics=pooled_metrics(labels, preds, inputs.cfg.model.num_classes), device=device, n_params=n_params)


# ---------------------------------------------------------------------------------------------
# splits and the labels training may read


def step_seed(seed: int, step: int, salt: int) -> int:
    """A distinct, reproducible random stream per (seed, step, purpose)."""
    return (seed * 1_000_003 + step * 7_919 + salt) % (2**63 - 1)


def loso_splits(subjects: list[str]) -> list[FoldSplit]:
    """One fold per subject that has samples; the test subject's clips are never in train."""
    subj = np.asarray(subjects)
    return [FoldSplit(s, np.flatnonzero(subj != s), np.flatnonzero(subj == s)) for s in sorted(set(subjects))]


def with_validation(split: FoldSplit, subjects: list[str], n_val: int, seed: int) -> FoldSplit:
    """Move `n_val` whole training subjects (never the test subject) into a validation set."""
    subj = np.asarray(subjects)
    train_subjects = sorted(set(subj[split.train].tolist()))
    if n_val >= len(train_subjects):
        raise TrainingError(f"train.val_subjects={n_val}: fold {split.fold} has only {len(train_subjects)} "
                            "training subjects")
    rng = np.random.default_rng(seed)
    val_subjects = set(rng.choice(train_subjects, size=n_val, replace=False).tolist())
    is_val = np.isin(subj[split.train], list(val_subjects))
    return FoldSplit(split.fold, split.train[~is_val], split.test, split.train[is_val])


def training_labels(cfg: Any, bank: Any, split: FoldSplit) -> Any:
    """The labels training may read, (N,) over the bank: `bank.labels`, or with
    `train.shuffle_labels` (the negative control) a copy whose training and validation clips carry a
    permutation of their own labels, seeded by train.seed (the class counts stay; which clip has
    which label is noise). Test clips keep their labels; a test subject is never in the permuted set."""
    import torch

    if not cfg.train.shuffle_labels:
        return bank.labels
    pos = np.concatenate([split.train, split.val]).astype(np.int64)
    perm = np.random.default_rng(step_seed(cfg.train.seed, 0, 4)).permutation(len(pos))
    out = bank.labels.clone()
    src = torch.as_tensor(pos[perm], device=out.device)
    out[torch.as_tensor(pos, device=out.device)] = bank.labels[src]
    return out
