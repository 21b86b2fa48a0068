"""What the compared methods share: the result of one fit (`FitOutput`), parameter counts, and the
plain trainer of the small networks on fixed per-clip inputs (`train_net`).

`train_net` trains with Adam (L2 weight decay as torch's Adam applies it, as MEB trains these
networks) for a fixed number of steps and returns the softmax of the model after the LAST step on
the test inputs: nothing is selected on the test subject. It is deterministic given `seed`: the
batch of step s is drawn from the per-epoch permutation seeded by (seed, epoch), and dropout in
step s from a generator seeded by (seed, s), so neither depends on what ran before. `on_eval(step,
test_probs)`, called every `eval_every` steps, sees the model in eval mode under no_grad and
changes nothing the training reads (no parameter, no batch-norm statistic, no random stream), so
the last-step predictions are bit-identical with and without it: it is how a test-selected
protocol can be recorded beside the honest one without altering it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fdp.runtime import deterministic_kernels

EvalHook = Callable[[int, np.ndarray], None]  # (steps done, (n_test, classes) softmax of the test inputs)


@dataclass(frozen=True)
class TrainProfile:
    """The training budget of a small network."""

    steps: int  # optimizer steps (the last one is evaluated)
    batch_size: int
    lr: float  # Adam
    weight_decay: float  # L2 term of torch's Adam

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "weight_decay": self.weight_decay}


def steps_for_epochs(n_train: int, epochs: int, batch_size: int) -> int:
    """Steps of `epochs` passes over `n_train` clips in batches of `batch_size` (the last one
    partial, as a PyTorch DataLoader without drop_last gives them)."""
    return epochs * math.ceil(n_train / batch_size)


@dataclass
class FitOutput:
    """One fit on the training clips, evaluated once on the test clips."""

    probs: np.ndarray  # (n_test, num_classes) float64; rows sum to 1; argmax = the prediction
    n_params: int  # exact: trainable parameters (networks) or fitted weights + biases (SVM)
    wall_s: float  # fit + predict, seconds
    steps: int  # optimizer steps (0 for the SVM)
    selection: str  # which model was evaluated, in words
    details: dict[str, Any] = field(default_factory=dict)  # hyper-parameters and inputs, for the record


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Positions of step `step` (0-based) in the endless stream of per-epoch permutations of
    range(n); epoch e's permutation is seeded by (seed, e) alone."""
    start, out = step * batch_size, []
    while len(out) < batch_size:
        epoch, pos = divmod(start + len(out), n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        out.extend(perm[pos:pos + batch_size - len(out)].tolist())
    return np.asarray(out, dtype=np.int64)


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step, 2]).generate_state(1, dtype=np.uint64)[0] >> 1)


@torch.no_grad()
def predict_probs(model: torch.nn.Module, x: torch.Tensor, chunk: int = 1024) -> np.ndarray:
    """(n, classes) float64 softmax of `model` in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    out = [F.softmax(model(x[i:i + chunk]).float(), dim=1).double().cpu() for i in range(0, max(len(x), 1), chunk)]
    model.train(was_training)
    return torch.cat(out).numpy()


def train_net(model: torch.nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *,
              steps: int, batch_size: int, lr: float, weight_decay: float, seed: int, eval_every: int = 0,
              on_eval: EvalHook | None = None, device: str | torch.device = "cpu") -> np.ndarray:
    """Train `model` (already initialised) on (x_train, y_train) for `steps` steps; return the
    (n_test, classes) float64 softmax of the model after the last step on x_test."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"train_net: steps and batch_size must be >= 1, got {steps}, {batch_size}")
    if len(x_train) == 0:
        raise ValueError("train_net: no training clips")
    device = torch.device(device)
    deterministic_kernels(device)
    xt = torch.as_tensor(np.asarray(x_train, dtype=np.float32), device=device)
    yt = torch.as_tensor(np.asarray(y_train, dtype=np.int64), device=device)
    xs = torch.as_tensor(np.asarray(x_test, dtype=np.float32), device=device)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):  # the caller's random streams are left as they were
        for step in range(steps):
            idx = torch.as_tensor(batch_indices(len(xt), batch_size, seed, step), device=device)
            torch.manual_seed(_step_seed(seed, step))  # dropout of this step
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            if not torch.isfinite(loss):
                raise RuntimeError(f"train_net: loss is {loss.item()} at step {step + 1} of {steps}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if on_eval is not None and eval_every > 0 and (step + 1) % eval_every == 0:
                on_eval(step + 1, predict_probs(model, xs))
    return predict_probs(model, xs)


def minmax_per_clip(values: np.ndarray) -> np.ndarray:
    """(n, c, h, w) -> each clip's each channel scaled to [0, 1] by its own min and max (a constant
    map becomes 0), as MEB and the STSTNet authors feed flow images; uses nothing of other clips,
    so the test clips are normalised without any statistic of the training set or of each other."""
    v = np.asarray(values, dtype=np.float32)
    lo = v.min(axis=(2, 3), keepdims=True)
    span = v.max(axis=(2, 3), keepdims=True) - lo
    return np.where(span > 0, (v - lo) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)


def seeded_model(build: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """`build()` with its initial weights drawn from `seed` (the caller's random streams untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
