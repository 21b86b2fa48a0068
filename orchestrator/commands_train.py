"""`fdp-sweep train`: one fold, or a whole LOSO sequentially, without Ray or MLflow (debugging)."""

from __future__ import annotations

import sys
import time

import click

from orchestrator.clitools import fail_on_errors, parse_sets


@click.command("train")
@click.option("--dataset", default="casme2", show_default=True, help="Prepared dataset (reader name).")
@click.option("--setting", default=None, help="Class setting, e.g. casme2/5 (default: <dataset>'s first).")
@click.option("--variant", default="fdp", show_default=True, help="Registered variant (fdp-sweep list-variants).")
@click.option("--cache", "cache_dir", default="", help="Clip cache directory (default: the prepared one).")
@click.option("--fold", default=None, help="Test subject of the one fold to run (default: every LOSO fold).")
@click.option("--folds", "max_folds", type=int, default=0, help="Run only the first N LOSO folds (0: all).")
@click.option("--steps", type=int, default=None, help="Optimizer steps per fold (train.steps).")
@click.option("--device", default=None, help="cpu | cuda | cuda:N | auto (train.device).")
@click.option("--seed", type=int, default=None, help="train.seed.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Dotted config override, repeatable.")
@click.option("--smoke", is_flag=True, help="Tiny model, batch 8, 20 steps, CPU: a run of seconds.")
@fail_on_errors
def train_cmd(dataset, setting, variant, cache_dir, fold, max_folds, steps, device, seed, sets, smoke) -> None:
    """Train and evaluate FDP folds in this process; print progress and the fold metrics."""
    from fdp.data.settings import SETTINGS
    from fdp.metrics import pooled_metrics
    from fdp.train import fold_names, run_fold
    from fdp.variants import build_config

    if setting is None:
        setting = next(n for n, s in SETTINGS.items() if s.dataset == dataset)
    over = {"data.dataset": dataset, "data.setting": setting, "data.cache_dir": cache_dir}
    if smoke:
        over.update(SMOKE_OVERRIDES)
    over.update({k: v for k, v in (("train.steps", steps), ("train.device", device), ("train.seed", seed))
                 if v is not None})
    over.update(parse_sets(sets))
    cfg = build_config(variant, over)
    folds = [fold] if fold else fold_names(cfg)
    if max_folds and not fold:
        folds = folds[:max_folds]
    click.echo(f"{variant} on {setting}: {len(folds)} fold(s), {cfg.train.steps} steps each, "
               f"device {cfg.train.device}", err=True)
    labels, preds, t0 = [], [], time.perf_counter()
    for i, f in enumerate(folds, 1):
        def progress(step: int, terms: dict[str, float], f=f, i=i) -> None:
            if sys.stderr.isatty() or step % max(cfg.train.steps // 5, 1) == 0 or step == cfg.train.steps:
                losses = " ".join(f"{k}={v:.4f}" for k, v in terms.items())
                click.echo(f"\r[fold {i}/{len(folds)} {f}] step {step}/{cfg.train.steps} {losses}", err=True,
                           nl=not sys.stderr.isatty())
        res = run_fold(cfg, f, callback=progress)
        if sys.stderr.isatty():
            click.echo("", err=True)
        m = " ".join(f"{k}={v:.4f}" for k, v in res.metrics.items())
        click.echo(f"fold {f}: {m}  ({res.steps_per_s:.2f} steps/s, peak {res.peak_mem_mb:.0f} MB, "
                   f"selection: {res.selection})")
        labels += res.labels
        if res.preds is not None:
            preds += res.preds
    if len(folds) > 1 and preds:
        pm = pooled_metrics(labels, preds, cfg.model.num_classes)
        click.echo(f"pooled over {len(folds)} folds ({len(labels)} clips): "
                   + " ".join(f"{k}={v:.4f}" for k, v in pm.items()) + f"  [{time.perf_counter() - t0:.0f} s]")


# the smoke size shared by `train --smoke` and sweep files' default smoke block
SMOKE_OVERRIDES = {
    "model.encoder.dims": [16, 32, 64, 256], "model.encoder.stem_channels": 16, "model.encoder.heads": 4,
    "model.encoder.vit_dim": 256, "model.encoder.vit_depth": 2, "model.encoder.vit_heads": 4,
    "model.temporal_channels": 32, "model.mer_hidden": 64, "model.dic_channels": [16, 16, 32, 32],
    "train.batch_size": 8, "train.steps": 20, "train.device": "cpu", "train.log_every": 5,
    "train.checkpoint_every": 10,
}
