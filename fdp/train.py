"""Training and evaluation of the network on one fold (SPEC §2 training defaults, §5 protocol):
the `run` of the method `network` (fdp.methods.network).

`train_fold(cfg, split, bank)` is a plain function: a fresh model, Adam, a fixed step budget,
eq. 8's loss with each term reported through `callback`, then ONE evaluation of the selected
model on the test clips. Selection never looks at the test subject: by default the model after
the last step is evaluated; optionally early stopping on validation subjects drawn from the
training subjects. A test-selected record (fdp.test_selected), when asked for, evaluates the test
clips on the side and changes nothing of this.

Determinism: the batch indices and the augmentation of step s are functions of (seed, s) alone,
so a run resumed from a checkpoint (model + optimizer + step) replays exactly what an
uninterrupted run would have done.
"""

from __future__ import annotations

import math
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fdp.config import ExperimentConfig
from fdp.dynamic_image import dynamic_image
from fdp.fold import Callback, FoldResult, FoldSplit, TrainingError, step_seed, training_labels
from fdp.losses import loss_terms
from fdp.metrics import pooled_metrics
from fdp.model import build_model, count_parameters
from fdp.runtime import Runtime, deterministic_kernels, physical_gpu, prepare_model, resolve_runtime

# ---------------------------------------------------------------------------------------------
# helpers


def batch_indices(n: int, batch: int, seed: int, step: int) -> np.ndarray:
    """Positions of step `step` in the endless stream of per-epoch permutations of range(n)."""
    start, out = step * batch, []
    while len(out) < batch:
        epoch, pos = divmod(start + len(out), n)
        perm = np.random.default_rng(step_seed(seed, epoch, 1)).permutation(n)
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
    gen = torch.Generator(device=device).manual_seed(step_seed(tc.seed, step, 2))
    torch.manual_seed(step_seed(tc.seed, step, 3))  # dropout of this step
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
               callback: Callback | None = None, checkpoint_path: str | os.PathLike | None = None,
               labels: torch.Tensor | None = None, probe: Any = None) -> FoldResult:
    """Train a fresh model on `split.train` of `bank`, evaluate once on `split.test` of
    `test_bank` (default: `bank`). Resumes from `checkpoint_path` when it exists. `labels` (N,):
    what training may read (default `fdp.fold.training_labels`); `probe`: a
    `fdp.test_selected.TestSelectedRecorder` fed the test clips' probabilities every `probe.every`
    steps (in eval mode, between steps: the training and its result do not change)."""
    test_bank = test_bank if test_bank is not None else bank
    if len(split.train) == 0 or len(split.test) == 0:
        raise TrainingError(f"fold {split.fold}: empty split (train {len(split.train)}, test {len(split.test)})")
    if test_bank is bank and np.intersect1d(split.train, split.test).size:
        raise TrainingError(f"fold {split.fold}: test clips appear in the training set")
    tc = cfg.train
    device = bank.device
    torch.manual_seed(tc.seed)  # initialisation
    deterministic_kernels(device)
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
        if probe is not None:
            probe.load_state_dict(state.get("probe"))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    stop_early = tc.selection == "early_stop_val"
    if stop_early and len(split.val) == 0:
        raise TrainingError("train.selection=early_stop_val needs train.val_subjects > 0")
    if tc.selection not in ("last", "early_stop_val"):
        raise TrainingError(f"train.selection: unknown rule {tc.selection!r} (last | early_stop_val)")
    best = best or {"score": -math.inf, "step": 0, "bad": 0, "state": None}

    # permuted under the shuffled-label control
    labels_seen = training_labels(cfg, bank, split) if labels is None else labels
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
        if probe is not None and probe.due(step, tc.steps):  # the published protocol, on the side
            probs = evaluate(model, cfg, test_bank, split.test, device)["probs"]
            if probs is not None:  # without the MER head there is nothing to select by
                probe.observe(step, probs)
            model.train()
        if ckpt is not None and tc.checkpoint_every and step % tc.checkpoint_every == 0 and step < tc.steps:
            flush()
            _save_checkpoint(ckpt, model, opt, step, curves, best if stop_early else None,
                             probe.state_dict() if probe is not None else None)
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
        n_params=count_parameters(model),
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


def _save_checkpoint(path: Path, model, opt, step: int, curves, best, probe: dict | None = None) -> None:
    """Atomic: write to a temp file, then rename, so a kill never leaves a torn checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "curves": {k: [list(p) for p in v] for k, v in curves.items()}, "best": best, "probe": probe}, tmp)
    os.replace(tmp, path)
