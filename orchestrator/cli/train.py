"""`fdp-sweep train`: one fold, or a whole LOSO sequentially, without Ray or MLflow (debugging)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from fdp.profiles import profile
from orchestrator.cli.tools import fail_on_errors, parse_sets


@click.command("train")
@click.option("--dataset", default=None, help="Prepared dataset (reader name; default: --setting's, else casme2).")
@click.option("--setting", default=None, help="Class setting, e.g. samm/5 (default: <dataset>'s first).")
@click.option("--variant", default="fdp", show_default=True, help="Registered variant (fdp-sweep list-variants).")
@click.option("--cache", "cache_dir", default="", help="Clip cache directory (default: the prepared one).")
@click.option("--fold", default=None, help="Test subject of the one fold to run (default: every LOSO fold).")
@click.option("--folds", "max_folds", type=click.IntRange(min=0), default=0,
              help="Run only the first N LOSO folds (0: all).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Optimizer steps per fold (train.steps).")
@click.option("--device", default=None, help="cpu | cuda | cuda:N | auto (train.device).")
@click.option("--seed", type=int, default=None, help="train.seed.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Dotted config override, repeatable.")
@click.option("--smoke", is_flag=True, help="Tiny model, batch 8, 20 steps, CPU: a run of seconds.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Keep each finished fold here (fold-<subject>.json: predictions, probabilities, loss curves) "
                   "with checkpoints; run again with the same --out and configuration to resume.")
@fail_on_errors
def train_cmd(dataset, setting, variant, cache_dir, fold, max_folds, steps, device, seed, sets, smoke,
              out_dir) -> None:
    """Train and evaluate FDP folds in this process; print progress and the fold metrics.

    With --out, a finished fold is written at once (atomically) and a killed run picks up where it
    stopped: finished folds are read back, the running one resumes from its last checkpoint
    (train.checkpoint_every steps)."""
    from fdp.config import ExperimentConfig, to_dict
    from fdp.data.cache import cache_fingerprint
    from fdp.data.settings import SETTINGS
    from fdp.metrics import pooled_metrics
    from fdp.fold import FoldResult
    from fdp.runner import cache_dir_for, fold_names
    from fdp.variants import build_config

    # one of the two names the other; an unknown or mismatched pair is build_config's one-line error
    if dataset is None:
        dataset = SETTINGS[setting].dataset if setting in SETTINGS else "casme2"
    if setting is None:
        setting = next((n for n, s in SETTINGS.items() if s.dataset == dataset), ExperimentConfig().data.setting)
    over = {"data.dataset": dataset, "data.setting": setting, "data.cache_dir": cache_dir}
    if smoke:
        over.update(SMOKE_OVERRIDES)
    over.update({k: v for k, v in (("train.steps", steps), ("train.device", device), ("train.seed", seed))
                 if v is not None})
    over.update(parse_sets(sets))
    cfg = build_config(variant, over)
    # the cache is chosen once, here (several and none named: refused; --smoke: the newest), and
    # its content fingerprint is part of what --out's results belong to
    data_dir = cache_dir_for(cfg.data.dataset, cfg.data.cache_dir, newest=smoke)
    cfg = build_config(variant, {**over, "data.cache_dir": str(data_dir)})
    fingerprint = cache_fingerprint(data_dir) if (data_dir / "index.json").is_file() else ""
    folds = [fold] if fold else fold_names(cfg)[:max_folds or None]
    kept = {**to_dict(cfg), "data_fingerprint": fingerprint}
    kept["data"] = {k: v for k, v in kept["data"].items() if k != "cache_dir"}  # the content counts, not where
    out = _open_out_dir(Path(out_dir), kept) if out_dir else None
    click.echo(f"{variant} on {setting}: {len(folds)} fold(s), {cfg.train.steps} steps each, "
               f"device {cfg.train.device}, data {data_dir} (fingerprint {fingerprint or '?'})", err=True)
    labels, preds, t0 = [], [], time.perf_counter()
    for i, f in enumerate(folds, 1):
        done = out / f"fold-{_safe(f)}.json" if out else None
        if done is not None and done.exists():
            res, note = FoldResult.from_json(done.read_text()), f"  [read back from {done}]"
        else:
            res, note = _train_one(cfg, f, f"[fold {i}/{len(folds)} {f}]", out), ""
        click.echo(f"fold {f}: {_fold_line(res)}{note}")
        labels += res.labels
        if res.preds is not None:
            preds += res.preds
    if len(folds) > 1 and preds:
        pm = pooled_metrics(labels, preds, cfg.model.num_classes)
        click.echo(f"pooled over {len(folds)} folds ({len(labels)} clips): "
                   + " ".join(f"{k}={v:.4f}" for k, v in pm.items()) + f"  [{time.perf_counter() - t0:.0f} s]")


def _train_one(cfg, fold: str, tag: str, out: Path | None):
    """Train fold `fold`, printing progress; with `out`, checkpoint there and keep the result."""
    from fdp.data.cache import atomic_write_text
    from fdp.runner import run_fold

    steps = cfg.train.steps

    def progress(step: int, terms: dict[str, float]) -> None:
        if sys.stderr.isatty() or step % max(steps // 5, 1) == 0 or step == steps:
            losses = " ".join(f"{k}={v:.4f}" for k, v in terms.items())
            click.echo(f"\r{tag} step {step}/{steps} {losses}", err=True, nl=not sys.stderr.isatty())

    ckpt = out / f"fold-{_safe(fold)}.ckpt" if out else None
    res = run_fold(cfg, fold, callback=progress, checkpoint_path=ckpt)
    if sys.stderr.isatty():
        click.echo("", err=True)
    if out is not None:
        atomic_write_text(out / f"fold-{_safe(fold)}.json", res.to_json())
        ckpt.unlink(missing_ok=True)
    return res


def _fold_line(res) -> str:
    m = " ".join(f"{k}={v:.4f}" for k, v in res.metrics.items())
    # the training loss at the end, averaged over the last tenth of the steps (one step is noisy):
    # a training CE still at ln(classes) means the fold never started to fit
    tail = {k: [v for s, v in pts if s > res.steps - max(res.steps // 10, 1)] for k, pts in res.curves.items()}
    train = " ".join(f"{k}={sum(v) / len(v):.4f}" for k, v in tail.items() if v)
    return (f"{m}  (train loss, last 10% of steps: {train}; {res.steps_per_s:.2f} steps/s, "
            f"peak {res.peak_mem_mb:.0f} MB, selection: {res.selection})")


# settings that change neither the numbers nor the fold results
_NOT_COMPARED = {("train", "log_every"), ("train", "checkpoint_every")}


def _open_out_dir(out: Path, config: dict) -> Path:
    """Create `out`, or check that the results already in it come from this configuration."""
    from fdp.config import ConfigError, flatten
    from fdp.data.cache import atomic_write_text

    kept = {k: v for k, v in flatten(config).items() if tuple(k.split(".", 1)) not in _NOT_COMPARED}
    kept = json.loads(json.dumps(kept))  # tuples -> lists, as they read back
    cfg_file = out / "config.json"
    if cfg_file.exists():
        try:
            before = json.loads(cfg_file.read_text())
        except ValueError as e:
            raise ConfigError(f"{cfg_file}: not readable JSON ({e})") from None
        diff = sorted(k for k in set(before) | set(kept) if before.get(k) != kept.get(k))
        if diff:
            k = diff[0]
            raise ConfigError(
                f"{cfg_file}: holds results of another configuration ({k}: {before.get(k)!r} there, "
                f"{kept.get(k)!r} now{f', and {len(diff) - 1} more' if len(diff) > 1 else ''}); "
                "use another --out")
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cfg_file, json.dumps(kept, indent=1, sort_keys=True))
        except OSError as e:
            raise ConfigError(f"{out}: cannot write results ({e.strerror})") from None
    return out


# the smoke size shared by `train --smoke`, sweep files' `profile: smoke` and the tests: fdp/profiles.py
SMOKE_OVERRIDES = profile("smoke")


def _safe(fold: str) -> str:
    """A fold name as a file name: merged sets name folds `samm/006` (fdp.data.merged)."""
    return fold.replace("/", "__")
