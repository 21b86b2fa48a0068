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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fdp.runtime import deterministic_kernels

EvalHook = Callable[[int, np.ndarray], None]  # (steps done, (n_test, classes) softmax of the test inputs)
LossHook = Callable[[int, float], None]  # (steps done, training loss of that step)


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
              on_eval: EvalHook | None = None, device: str | torch.device = "cpu", log_every: int = 0,
              on_loss: LossHook | None = None) -> np.ndarray:
    """Train `model` (already initialised) on (x_train, y_train) for `steps` steps; return the
    (n_test, classes) float64 softmax of the model after the last step on x_test. `on_loss(step,
    loss)`: every `log_every` steps and after the last (reads the loss; changes nothing)."""
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
            if on_loss is not None and log_every > 0 and ((step + 1) % log_every == 0 or step + 1 == steps):
                on_loss(step + 1, float(loss.detach()))
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


def fit_flow_net(method: str, build: Callable[[], torch.nn.Module], x_train: np.ndarray, y_train: np.ndarray,
                 x_test: np.ndarray, *, profile: TrainProfile, input_words: str, seed: int, device: str,
                 eval_every: int, on_eval: EvalHook | None, log_every: int, on_loss: LossHook | None) -> FitOutput:
    """A fresh `build()` (initial weights from `seed`) trained on the flow images `x_train`, each
    clip's each channel min-max scaled on its own, for `profile`'s budget; the last step's softmax
    on `x_test`, recorded with the budget and `input_words` (STSTNet and OFF-ApexNet alike)."""
    t0 = time.perf_counter()
    model = seeded_model(build, seed)
    probs = train_net(model, minmax_per_clip(x_train), y_train, minmax_per_clip(x_test), steps=profile.steps,
                      batch_size=profile.batch_size, lr=profile.lr, weight_decay=profile.weight_decay, seed=seed,
                      eval_every=eval_every, on_eval=on_eval, device=device, log_every=log_every, on_loss=on_loss)
    return FitOutput(probs=probs, n_params=count_parameters(model), wall_s=time.perf_counter() - t0,
                     steps=profile.steps, selection=f"model after the last step ({profile.steps} steps, fixed)",
                     details={"method": method, "input": input_words, **profile.to_dict(), "seed": seed})


# ---------------------------------------------------------------------------------------------
# one fold of a compared method: what the adapters of fdp.methods.ststnet, off_apexnet and
# lbp_top share (features of the fold's clips, the budget the config asks for, the result)


@dataclass
class FoldFeatures:
    """A fold's inputs as a compared method reads them, from the per-clip feature cache."""

    x_train: np.ndarray  # (n_train, ...) features of the training clips (`split.train`, bank order)
    y_train: np.ndarray  # (n_train,) the labels training may read: the bank's, or the shuffled control's
    x_test: np.ndarray  # (n_test, ...) features of the test clips (`split.test`)
    apex_rules: list[str]  # per clip, training then test: the rule that gave its apex ("" where unused)
    computed: int  # clips whose features this fold computed (0: all read from the feature cache)


def fold_features(inputs: Any, kind: str) -> FoldFeatures:
    """Features `kind` of the training and test clips of `inputs` (fdp.fold.FoldInputs), read from
    the feature cache beside the clip cache (computed once per clip when absent:
    fdp.features.store.load_features); a bank's clip k is row `bank.clip_indices[k]` of its cache."""
    from fdp.features.store import load_features

    split = inputs.split
    train_fs = load_features(inputs.cache, kind)
    test_fs = train_fs if inputs.test_cache is inputs.cache else load_features(inputs.test_cache, kind)
    tr_rows = np.asarray(inputs.bank.clip_indices)[split.train]
    te_rows = np.asarray(inputs.test_bank.clip_indices)[split.test]
    labels = inputs.train_labels
    y = labels[torch.as_tensor(split.train, device=labels.device)].cpu().numpy()
    rules = [train_fs.apex_rules[i] for i in tr_rows] + [test_fs.apex_rules[i] for i in te_rows]
    return FoldFeatures(train_fs.values[tr_rows], y, test_fs.values[te_rows], rules,
                        train_fs.computed + (test_fs.computed if test_fs is not train_fs else 0))


def budget(cfg: Any, module: Any, n_train: int) -> tuple[TrainProfile, str]:
    """(training budget, in words) of a small network for `cfg.compared`: `budget` paper (the
    module's `paper_profile(n_train)`, MEB's) or cpu (its `CPU_PROFILE`), with `steps` > 0 replacing
    the budget's step count."""
    import dataclasses

    c = cfg.compared
    if c.budget == "paper":
        prof = module.paper_profile(n_train)
        words = (f"budget paper (MEB's): {module.PAPER_EPOCHS} epochs x ceil({n_train} / {prof.batch_size}) = "
                 f"{prof.steps:,} steps")
    else:
        prof = module.CPU_PROFILE
        words = f"budget cpu: the method's CPU profile, {prof.steps:,} steps"
    if c.steps > 0:
        prof = dataclasses.replace(prof, steps=c.steps)
        words += f", replaced by compared.steps = {c.steps:,}"
    return prof, (f"{words}; batch {prof.batch_size}, Adam lr {prof.lr:g}, weight decay {prof.weight_decay:g}")


def budget_steps(cfg: Any, module: Any) -> int | str:
    """Steps per fold `budget` gives, before the training split is known: a count, or "<E> ep"
    (the paper budget's epochs: its steps are E x ceil(n_train / batch))."""
    c = cfg.compared
    if c.steps > 0:
        return c.steps
    return module.CPU_PROFILE.steps if c.budget == "cpu" else f"{module.PAPER_EPOCHS} ep"


def apex_rule_words(rules: list[str]) -> str:
    """How the fold's clips got their apex frame, counted ("apex: annotated for 18 clips; middle of
    onset..offset (apex unknown) for 2")."""
    from collections import Counter

    counts = Counter(r for r in rules if r)
    return "apex: " + "; ".join(f"{r} for {n} clip{'s' if n != 1 else ''}" for r, n in sorted(counts.items()))


def fit_fold_net(inputs: Any, module: Any, fit: Callable[..., FitOutput]) -> Any:
    """The FoldResult of a small network of `module` (ststnet, off_apexnet) on one fold: its flow
    features, the training labels `inputs.train_labels`, the budget `cfg.compared` asks for, the
    test clips fed to the test-selected recorder every `probe.every` steps and after the last one
    (so the honest step is a candidate), training loss reported through `inputs.callback`."""
    import time

    from fdp.fold import result_of_predictions
    from fdp.runtime import physical_gpu, resolve_device

    cfg, probe = inputs.cfg, inputs.probe
    t0 = time.perf_counter()
    f = fold_features(inputs, module.FEATURE_KIND)
    prof, words = budget(cfg, module, len(f.x_train))
    device = resolve_device(cfg.train.device)
    curve: list[tuple[int, float]] = []

    def on_loss(step: int, loss: float) -> None:
        curve.append((step, loss))
        if inputs.callback is not None:
            inputs.callback(step, {"loss": loss})

    with cpu_threads(cfg.compared.threads if device.type == "cpu" else 0):
        out = fit(f.x_train, f.y_train, f.x_test, num_classes=cfg.model.num_classes, profile=prof,
                  seed=cfg.train.seed, device=device, eval_every=probe.every if probe is not None else 0,
                  on_eval=probe.observe if probe is not None else None, log_every=cfg.train.log_every,
                  on_loss=on_loss)
    if probe is not None:  # the last step is a candidate too (a repeated step is ignored)
        probe.observe(out.steps, out.probs)
    selection = f"{out.selection}; {words}; {apex_rule_words(f.apex_rules)}"
    result = result_of_predictions(inputs, out.probs, selection=selection, t0=t0, steps=out.steps,
                                   n_params=out.n_params, curves={"loss": curve}, device=str(device))
    result.gpu = physical_gpu(device)
    return result


class cpu_threads:
    """Context: torch uses `n` CPU threads inside (0: leave torch's setting), restored after."""

    def __init__(self, n: int) -> None:
        self.n, self.before = n, 0

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        if self.n > 0:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)
