"""Training and evaluation of one fold (SPEC §2 training defaults, §5 protocol).

`train_fold(cfg, split, bank)` is a plain function: a fresh model, Adam, a fixed step budget,
eq. 8's loss with each term reported through `callback`, then ONE evaluation of the selected
model on the test clips. Selection never looks at the test subject: by default the model after
the last step is evaluated; optionally early stopping on validation subjects drawn from the
training subjects.

Determinism: the batch indices and the augmentation of step s are functions of (seed, s) alone,
so a run resumed from a checkpoint (model + optimizer + step) replays exactly what an
uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from fdp.config import ConfigError, ExperimentConfig
from fdp.dynamic_image import dynamic_image
from fdp.losses import loss_terms
from fdp.metrics import pooled_metrics
from fdp.model import build_model
from fdp.runtime import Runtime, physical_gpu, prepare_model, resolve_runtime

Callback = Callable[[int, dict[str, float]], None]


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
    metrics: dict[str, float]
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 (autocast), as run (fdp.runtime)
    memory_format: str = "contiguous"  # channels_last (2-D convs) | contiguous, as run
    compiled: str = ""  # torch.compile backend of the forward; "" = eager
    gpu: str = ""  # physical GPU (its CUDA_VISIBLE_DEVICES entry); "" on CPU
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


# ---------------------------------------------------------------------------------------------
# splits


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


# ---------------------------------------------------------------------------------------------
# helpers


def resolve_device(name: str) -> torch.device:
    """The device `train.device` names. `auto` and `cuda` are the first *visible* GPU, cuda:0 --
    under Ray that is the one GPU the job was assigned (CUDA_VISIBLE_DEVICES); `cuda:N` must be
    visible too."""
    if name == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"train.device={name}: CUDA is not available on this machine")
        n = torch.cuda.device_count()
        if (dev.index or 0) >= n:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            raise TrainingError(f"train.device={name}: only {n} GPU(s) visible"
                                + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""))
        dev = torch.device("cuda", dev.index or 0)
    return dev


def _step_seed(seed: int, step: int, salt: int) -> int:
    # a distinct, reproducible stream per (seed, step, purpose)
    return (seed * 1_000_003 + step * 7_919 + salt) % (2**63 - 1)


def batch_indices(n: int, batch: int, seed: int, step: int) -> np.ndarray:
    """Positions of step `step` in the endless stream of per-epoch permutations of range(n)."""
    start, out = step * batch, []
    while len(out) < batch:
        epoch, pos = divmod(start + len(out), n)
        perm = np.random.default_rng(_step_seed(seed, epoch, 1)).permutation(n)
        out.extend(perm[pos:pos + batch - len(out)].tolist())
    return np.asarray(out, dtype=np.int64)


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _autocast(cfg: ExperimentConfig, device: torch.device):
    return resolve_runtime(cfg.train, device).autocast()


@torch.no_grad()
def evaluate(model: torch.nn.Module, cfg: ExperimentConfig, bank, idx: np.ndarray, device: torch.device
             ) -> dict[str, Any]:
    """Predictions of `model` (in eval mode) on clips `idx` of `bank` with test-time sampling."""
    model.eval()
    t, crop = cfg.model.frames, cfg.data.crop
    probs, di_mse, examples = [], [], {}
    for lo in range(0, len(idx), cfg.train.eval_batch_size):
        chunk = torch.as_tensor(idx[lo:lo + cfg.train.eval_batch_size], device=device)
        x = bank.batch(chunk, t, train=False, generator=None, crop=crop, flip=False)  # (b, T, 3, crop, crop)
        with _autocast(cfg, device):
            out = model(x)
        if out["logits"] is not None:
            probs.append(torch.softmax(out["logits"].float(), dim=1))
        if out["di"] is not None:
            target = dynamic_image(x)
            di_mse.append(((out["di"].float() - target) ** 2).flatten(1).mean(1))
            if not examples:  # a few test clips for the Fig. 4-style grid
                k = min(4, x.shape[0])
                examples = {name: (a[:k].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
                            for name, a in (("frames", x), ("gt_di", target), ("pred_di", out["di"].float()))}
    return {
        "probs": torch.cat(probs).cpu().numpy() if probs else None,
        "di_mse": torch.cat(di_mse).cpu().numpy() if di_mse else None,
        "examples": examples,
    }


def training_labels(cfg: ExperimentConfig, bank, split: FoldSplit) -> torch.Tensor:
    """The labels training may read, (N,) over the bank: `bank.labels`, or with
    `train.shuffle_labels` (the negative control) a copy whose training and validation clips carry a
    permutation of their own labels, seeded by train.seed (the class counts stay; which clip has
    which label is noise). Test clips keep their labels; a test subject is never in the permuted set."""
    if not cfg.train.shuffle_labels:
        return bank.labels
    pos = np.concatenate([split.train, split.val]).astype(np.int64)
    perm = np.random.default_rng(_step_seed(cfg.train.seed, 0, 4)).permutation(len(pos))
    out = bank.labels.clone()
    src = torch.as_tensor(pos[perm], device=out.device)
    out[torch.as_tensor(pos, device=out.device)] = bank.labels[src]
    return out


# ---------------------------------------------------------------------------------------------
# the fold


def train_step(model: torch.nn.Module, fwd, opt: torch.optim.Optimizer, cfg: ExperimentConfig, bank,
               train: np.ndarray, step: int, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One optimizer step (0-based `step`) on a batch of the clips `train` of `bank`; returns eq. 8's
    terms. Batch, augmentation and dropout are functions of (train.seed, step) alone. `fwd` is
    `model` or its compiled form; the model must be in train mode. `labels` (N,) replaces
    `bank.labels` (the shuffled-label control, `training_labels`)."""
    tc, device = cfg.train, bank.device
    idx = torch.as_tensor(train[batch_indices(len(train), tc.batch_size, tc.seed, step)], device=device)
    gen = torch.Generator(device=device).manual_seed(_step_seed(tc.seed, step, 2))
    torch.manual_seed(_step_seed(tc.seed, step, 3))  # dropout of this step
    x = bank.batch(idx, cfg.model.frames, train=True, generator=gen, crop=cfg.data.crop, flip=cfg.data.flip)
    di = dynamic_image(x) if model.dic is not None else None  # same sampled frames the model sees
    with _autocast(cfg, device):
        out = fwd(x)
    terms = loss_terms(out, (bank.labels if labels is None else labels)[idx], di, cfg.loss, model)
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    opt.step()
    return terms


def train_fold(cfg: ExperimentConfig, split: FoldSplit, bank, *, test_bank=None,
               callback: Callback | None = None, checkpoint_path: str | os.PathLike | None = None) -> FoldResult:
    """Train a fresh model on `split.train` of `bank`, evaluate once on `split.test` of
    `test_bank` (default: `bank`). Resumes from `checkpoint_path` when it exists."""
    test_bank = test_bank if test_bank is not None else bank
    if len(split.train) == 0 or len(split.test) == 0:
        raise TrainingError(f"fold {split.fold}: empty split (train {len(split.train)}, test {len(split.test)})")
    if test_bank is bank and np.intersect1d(split.train, split.test).size:
        raise TrainingError(f"fold {split.fold}: test clips appear in the training set")
    tc = cfg.train
    device = bank.device
    torch.manual_seed(tc.seed)  # initialisation
    rt: Runtime = resolve_runtime(tc, device)  # precision, memory format, compile: the same on CPU and CUDA
    model, fwd = prepare_model(build_model(cfg.model), rt)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    step0, curves, best = 0, {}, None
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step0 = int(state["step"])
        curves = {k: [(int(s), float(v)) for s, v in pts] for k, pts in state["curves"].items()}
        best = state.get("best")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    stop_early = tc.selection == "early_stop_val"
    if stop_early and len(split.val) == 0:
        raise TrainingError("train.selection=early_stop_val needs train.val_subjects > 0")
    if tc.selection not in ("last", "early_stop_val"):
        raise TrainingError(f"train.selection: unknown rule {tc.selection!r} (last | early_stop_val)")
    best = best or {"score": -math.inf, "step": 0, "bad": 0, "state": None}

    labels_seen = training_labels(cfg, bank, split)  # permuted under the shuffled-label control
    pending: list[tuple[int, torch.Tensor]] = []  # loss terms kept on device until the next flush
    names: list[str] = []

    def flush() -> None:
        # one host sync per log interval, not per step
        if not pending:
            return
        values = torch.stack([v for _, v in pending]).float().cpu().numpy()
        for (s, _), row in zip(pending, values):
            if not np.all(np.isfinite(row)):
                bad = names[int(np.flatnonzero(~np.isfinite(row))[0])]
                raise TrainingError(f"fold {split.fold}: step {s}: loss term '{bad}' is {row[names.index(bad)]}")
            for n, v in zip(names, row):
                curves.setdefault(n, []).append((s, float(v)))
        if callback is not None:
            callback(pending[-1][0], {n: float(v) for n, v in zip(names, values[-1])})
        pending.clear()

    t0 = time.perf_counter()
    model.train()
    step = step0
    while step < tc.steps:
        terms = train_step(model, fwd, opt, cfg, bank, split.train, step, labels_seen)
        step += 1
        names = list(terms)
        pending.append((step, torch.stack([terms[n].detach().float() for n in names])))
        if step % tc.log_every == 0 or step == tc.steps:
            flush()
        if stop_early and step % tc.eval_every == 0:
            flush()
            score = _val_score(model, cfg, bank, split.val, device, labels_seen)
            curves.setdefault("val_score", []).append((step, score))
            if score > best["score"]:
                best = {"score": score, "step": step, "bad": 0,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            else:
                best["bad"] += 1
            model.train()
        if ckpt is not None and tc.checkpoint_every and step % tc.checkpoint_every == 0 and step < tc.steps:
            flush()
            _save_checkpoint(ckpt, model, opt, step, curves, best if stop_early else None)
        if stop_early and best["bad"] >= tc.patience:
            break
    flush()
    wall = time.perf_counter() - t0
    if stop_early and best["state"] is not None:
        model.load_state_dict(best["state"])
        selection = (f"early stopping on {len(set(bank.subjects[i] for i in split.val))} validation subjects "
                     f"from the training subjects: best validation score at step {best['step']}")
    else:
        selection = f"model after the last step ({step}); test subject never used for selection"

    ev = evaluate(model, cfg, test_bank, split.test, device)
    labels = test_bank.labels[torch.as_tensor(split.test, device=device)].cpu().numpy()
    metrics: dict[str, float] = {}
    preds = None
    if ev["probs"] is not None:
        preds = ev["probs"].argmax(1)
        metrics.update(pooled_metrics(labels, preds, cfg.model.num_classes))
    if ev["di_mse"] is not None:
        metrics["di_mse"] = float(ev["di_mse"].mean())
    done = step - step0
    return FoldResult(
        fold=split.fold,
        clip_ids=[test_bank.clip_ids[i] for i in split.test],
        subjects=[test_bank.subjects[i] for i in split.test],
        labels=labels.tolist(),
        preds=preds.tolist() if preds is not None else None,
        probs=ev["probs"].tolist() if ev["probs"] is not None else None,
        class_names=list(test_bank.class_names),
        di_mse=ev["di_mse"].tolist() if ev["di_mse"] is not None else None,
        curves=curves,
        steps=step,
        wall_time_s=wall,
        steps_per_s=done / wall if wall > 0 else 0.0,
        peak_mem_mb=_peak_mem_mb(device),
        selection=selection,
        metrics=metrics,
        device=str(device),
        precision=rt.precision,
        memory_format=rt.memory_format,
        compiled=rt.compile_backend,
        gpu=physical_gpu(device),
        examples=ev["examples"],
    )


def _val_score(model, cfg: ExperimentConfig, bank, idx: np.ndarray, device: torch.device,
               labels: torch.Tensor | None = None) -> float:
    """Validation UF1 (or -DI MSE without MER) on training-subject clips, against `labels`
    (default `bank.labels`; the control's permuted ones, so it never scores on real labels)."""
    ev = evaluate(model, cfg, bank, idx, device)
    if ev["probs"] is not None:
        labels = (bank.labels if labels is None else labels)[torch.as_tensor(idx, device=device)].cpu().numpy()
        return pooled_metrics(labels, ev["probs"].argmax(1), cfg.model.num_classes)["uf1"]
    return -float(ev["di_mse"].mean())


def _save_checkpoint(path: Path, model, opt, step: int, curves, best) -> None:
    """Atomic: write to a temp file, then rename, so a kill never leaves a torn checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "curves": {k: [list(p) for p in v] for k, v in curves.items()}, "best": best}, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# from a config to a fold: data loading shared by the CLI, Ray workers and benchmarks


def cache_dir_for(dataset: str, explicit: str = "", newest: bool = False) -> Path:
    """The cache `data.cache_dir` names (a cache, a folder of exactly one, a fingerprint), else
    the only prepared one; several and none named refuse (`fdp.data.cache.find_cache`)."""
    from fdp.data.cache import resolve_cache_dir

    return resolve_cache_dir(dataset, explicit, newest=newest)


@functools.lru_cache(maxsize=4)
def _bank(cache_dir: str, setting: str, device: str):
    """Selected clips of a cache on a device; kept per process so LOSO folds reuse them."""
    from fdp.data.cache import load_cache
    from fdp.data.sampling import ClipBank, select
    from fdp.data.settings import SETTINGS

    cache = load_cache(cache_dir)
    sel = select(cache, SETTINGS[setting])
    return ClipBank(cache, sel.indices, sel.labels, torch.device(device), class_names=sel.class_names), sel


def load_bank(cfg: ExperimentConfig, test: bool = False):
    """(bank, selection) for the training data, or the test dataset of the cross protocol.
    ConfigError when the cache's frames are not `data.aligned_size` pixels square."""
    d = cfg.data
    if test:
        setting = d.setting.split("/")[0] + "/" + d.test_dataset if d.setting.startswith("cross/") else d.setting
        path = str(cache_dir_for(d.test_dataset, d.test_cache_dir))
    else:
        setting, path = d.setting, str(cache_dir_for(d.dataset, d.cache_dir))
    bank, sel = _bank(path, setting, str(resolve_device(cfg.train.device)))
    if bank.size != d.aligned_size:
        # a crop of differently sized frames sees another scale of the face: refuse, never train on it
        raise ConfigError(f"data.aligned_size={d.aligned_size}: the cache {path} holds {bank.size}x{bank.size} "
                          f"frames; prepare it at {d.aligned_size} or set data.aligned_size={bank.size}")
    return bank, sel


def fold_groups(cfg: ExperimentConfig, subjects: list[str]) -> list[str]:
    """What a fold holds out, per clip: its subject (LOSO), or its database (`data.fold_by:
    database`, leave-one-dataset-out on a merged cache whose subjects read `<database>/<subject>`)."""
    if cfg.data.fold_by == "database":
        from fdp.data.merged import database_of

        groups = [database_of(s) for s in subjects]
        if not all(groups):
            raise TrainingError(f"data.fold_by=database: the {cfg.data.dataset} cache is not a merged set "
                                "(its subjects carry no database); prepare one with `fdp-sweep merge lodo`")
        return groups
    return list(subjects)


def fold_names(cfg: ExperimentConfig) -> list[str]:
    """LOSO: the subjects with samples in the class setting, sorted; leave-one-dataset-out: the
    databases; cross protocol: ["cross"]."""
    if cfg.data.test_dataset:
        return ["cross"]
    from fdp.data.cache import load_cache
    from fdp.data.sampling import select
    from fdp.data.settings import SETTINGS

    sel = select(load_cache(cache_dir_for(cfg.data.dataset, cfg.data.cache_dir)), SETTINGS[cfg.data.setting])
    return sorted(set(fold_groups(cfg, sel.subjects)))


def make_split(cfg: ExperimentConfig, subjects: list[str], fold: str, n_test: int | None = None) -> FoldSplit:
    if fold == "cross":
        split = FoldSplit("cross", np.arange(len(subjects)), np.arange(n_test or 0))
    else:
        groups = fold_groups(cfg, subjects)
        splits = {s.fold: s for s in loso_splits(groups)}
        if fold not in splits:
            what = "test database" if cfg.data.fold_by == "database" else "test subject"
            raise TrainingError(f"fold {fold!r}: no such {what} (known: {', '.join(sorted(splits))})")
        split = splits[fold]
    if cfg.train.selection == "early_stop_val":
        split = with_validation(split, subjects, cfg.train.val_subjects, cfg.train.seed)
    return split


def with_classes(cfg: ExperimentConfig, class_names: Sequence[str]) -> ExperimentConfig:
    """`cfg` whose MER head has one output per class of the data it reads (a copy when that differs)."""
    if cfg.model.num_classes == len(class_names):
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.model.num_classes = len(class_names)
    return cfg


def run_fold(cfg: ExperimentConfig, fold: str, callback: Callback | None = None,
             checkpoint_path: str | os.PathLike | None = None) -> FoldResult:
    """Load the prepared clips named by `cfg.data`, build fold `fold` and train it."""
    bank, sel = load_bank(cfg)
    test_bank = None
    if fold == "cross":
        test_bank, test_sel = load_bank(cfg, test=True)
        split = make_split(cfg, list(sel.subjects), fold, n_test=len(test_sel.subjects))
    else:
        split = make_split(cfg, list(sel.subjects), fold)
    cfg = with_classes(cfg, sel.class_names)
    if cfg.model.baseline:  # no network: the single-frame regression on the same split (fdp.baselines)
        from fdp.baselines import single_frame_fold
        from fdp.data.cache import load_cache

        d = cfg.data
        cache = load_cache(cache_dir_for(d.dataset, d.cache_dir))
        test_cache = load_cache(cache_dir_for(d.test_dataset, d.test_cache_dir)) if fold == "cross" else None
        return single_frame_fold(cfg, split, bank, cache, training_labels(cfg, bank, split), test_bank, test_cache)
    return train_fold(cfg, split, bank, test_bank=test_bank, callback=callback, checkpoint_path=checkpoint_path)
