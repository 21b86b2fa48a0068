"""`fdp-sweep train`: the folds of one configuration, as a sweep of its own run in this process.

The options make a sweep spec (`train_spec`: what a sweep file with the same content says), the
spec makes the jobs (`orchestrator.plan.jobs.expand`: the same job keys a sweep gets), and the one
scheduler runs them without Ray (`SweepOptions.in_process`): the same worker, MLflow runs, resume
and pooling as `fdp-sweep run`, with breakpoints, tracebacks and the running fold's steps here.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from fdp.profiles import profile
from orchestrator.cli.tools import TRACKING_HELP, expected_errors, fail, fail_on_errors, parse_sets

SWEEP_NAME = "train"  # the sweep (and MLflow experiment) every `fdp-sweep train` records into


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
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Keep this training's record in DIR instead of the project's: the MLflow store DIR/mlflow.db "
                   "(artifacts in DIR/mlruns) and the running fold's checkpoint in DIR/.cache; run again with the "
                   "same --out to resume.")
@click.option("--fresh", is_flag=True, help="Train every fold again (a new parent run) instead of resuming.")
@fail_on_errors
def train_cmd(dataset, setting, variant, cache_dir, fold, max_folds, steps, device, seed, sets, smoke,
              tracking_uri, out_dir, fresh) -> None:
    """Train and evaluate the folds of one configuration in this process; print each fold's
    metrics and the pooled ones.

    The folds run as the jobs of a sweep named `train`, through the same scheduler, worker and
    tracking as `fdp-sweep run`, in this process (no Ray; breakpoints work): one MLflow run per
    fold under a parent run that holds the pooled metrics (experiment `train`; `fdp-sweep
    summarize --sweep train` reads it, with --include-smoke after --smoke). Running the same
    command again skips the finished folds and resumes an interrupted one (Ctrl-C) from its last
    checkpoint (train.checkpoint_every steps); another configuration is another sweep instance
    with runs of its own. Exit status: 0; 1 when a fold failed (its run keeps why; an unexpected
    error's traceback is printed); 2 when nothing could start."""
    from orchestrator.plan.jobs import expand
    from orchestrator.run.scheduler import SchedulerError, SweepOptions, run_sweep
    from orchestrator.track.store import default_tracking_uri, resolve_tracking_uri

    t0 = time.perf_counter()
    opts = _options(dataset, setting, variant, cache_dir, fold, max_folds, steps, device, seed, parse_sets(sets),
                    smoke)
    plan = expand(train_spec(**opts))
    if not plan.complete and fold:
        _check_fold(opts)  # the line a test subject that is not there gets
    if not plan.complete:
        fail(*plan.problems)
    for note in plan.duplicates + plan.notes:
        click.echo(f"note: {note}", err=True)
    first = plan.jobs[0]
    click.echo(f"{variant} on {first.cfg.data.setting}: {len(plan.jobs)} fold(s), {first.cfg.train.steps} steps "
               f"each, device {first.cfg.train.device}, data {first.data.path} (fingerprint {first.data.fingerprint})",
               err=True)
    root = Path(out_dir).expanduser().resolve() if out_dir else None
    try:
        uri = resolve_tracking_uri(tracking_uri or (default_tracking_uri(root) if root else None), root)
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
    except ValueError as e:
        fail(e)
    except OSError as e:
        fail(f"{root}: cannot keep the training's record there ({e.strerror})")
    try:
        report = run_sweep(plan, SweepOptions(in_process=True, tracking_uri=uri, root=root, fresh=fresh))
    except SchedulerError as e:
        fail(e)
    _print_results(plan, report, uri, root, time.perf_counter() - t0)
    sys.exit(report.exit_code)


def _options(dataset: str | None, setting: str | None, variant: str, cache_dir: str, fold: str | None,
             max_folds: int, steps: int | None, device: str | None, seed: int | None, sets: dict[str, Any],
             smoke: bool) -> dict[str, Any]:
    """The command's options, checked as one config (a bad value, or a dataset and setting that do
    not belong together, is `build_config`'s own line), with defaults filled in."""
    from fdp.config import ExperimentConfig
    from fdp.data.settings import SETTINGS
    from fdp.variants import build_config

    # a sweep sets these through its own fields: here they are the options they stand for
    seed = sets.pop("train.seed", seed)
    dataset = sets.pop("data.dataset", dataset)
    setting = sets.pop("data.setting", setting)
    # one of the two names the other
    if dataset is None:
        dataset = SETTINGS[setting].dataset if setting in SETTINGS else "casme2"
    if setting is None:
        setting = next((n for n, s in SETTINGS.items() if s.dataset == dataset), ExperimentConfig().data.setting)
    over = {"data.dataset": dataset, "data.setting": setting, "data.cache_dir": cache_dir}
    if smoke:
        over.update(SMOKE_OVERRIDES)
    over.update({k: v for k, v in (("train.steps", steps), ("train.device", device), ("train.seed", seed))
                 if v is not None})
    build_config(variant, {**over, **sets})
    return dict(dataset=dataset, setting=setting, variant=variant, cache_dir=cache_dir, fold=fold,
                max_folds=max_folds, steps=steps, device=device, seed=seed, sets=sets, smoke=smoke)


def train_spec(dataset: str, setting: str, variant: str, cache_dir: str = "", fold: str | None = None,
               max_folds: int = 0, steps: int | None = None, device: str | None = None, seed: int | None = None,
               sets: dict[str, Any] | None = None, smoke: bool = False) -> Any:
    """The sweep spec of a `train` command: what a sweep file with the same content says, so its
    jobs get the keys that file's jobs get. Under --smoke the step budget and device go into the
    smoke block (which replaces the spec's own, as in a sweep file); --set is the CLI's last layer."""
    from orchestrator.spec.sweep import parse_spec

    raw: dict[str, Any] = {"name": SWEEP_NAME, "dataset": dataset, "setting": setting, "variants": [variant]}
    if seed is not None:
        raw["seeds"] = [seed]
    if fold:
        raw["folds"] = [fold]
    elif max_folds:
        raw["folds"] = max_folds
    overrides: dict[str, Any] = {"data.cache_dir": cache_dir} if cache_dir else {}
    if smoke:
        raw["smoke"] = {"profile": "smoke", **{k: v for k, v in (("train.steps", steps), ("train.device", device))
                                               if v is not None}}
    else:
        raw.update({"steps": steps} if steps is not None else {})
        overrides.update({"train.device": device} if device is not None else {})
    if overrides:
        raw["overrides"] = overrides
    return parse_spec(raw, sets=sets, smoke=smoke, source=f"fdp-sweep {SWEEP_NAME}")


def _check_fold(opts: dict[str, Any]) -> None:
    """A --fold the data does not have: one line naming the ones it has."""
    from fdp.fold import TrainingError
    from orchestrator.plan.jobs import expand

    every = expand(train_spec(**{**opts, "fold": None, "max_folds": 0}))
    names = [j.fold for j in every.jobs]
    if every.complete and opts["fold"] not in names:
        what = "test database" if every.jobs[0].cfg.data.fold_by == "database" else "test subject"
        raise TrainingError(f"fold {opts['fold']!r}: no such {what} (known: {', '.join(names)})")


def _print_results(plan: Any, report: Any, uri: str, root: Path | None, seconds: float) -> None:
    """Each fold's line from its run (this invocation's or an earlier one's), the pooled line, the
    failed folds as error lines, and where the record is."""
    from fdp.fold import FoldResult
    from orchestrator.track.driver import SweepTracker

    tracker = SweepTracker(uri, root)
    runs = tracker.children(report.experiment_id, report.parent_run_id)
    skipped, clips = set(report.skipped), 0
    for job in plan.jobs:
        run = runs.get(job.key)
        if run is None or run.info.status != "FINISHED":
            continue
        res = FoldResult.from_json(tracker.artifact_text(run.info.run_id, "fold_result.json"))
        clips += len(res.labels)
        click.echo(f"fold {job.fold}: {_fold_line(res)}" + ("  [finished earlier]" if job.label in skipped else ""))
    pooled = report.pooled.get(plan.configurations[0].label)
    if len(plan.jobs) > 1 and pooled:
        click.echo(f"pooled over {len(plan.jobs)} folds ({clips} clips): "
                   + " ".join(f"{k}={v:.4f}" for k, v in pooled.items()) + f"  [{seconds:.0f} s]")
    click.echo(f"recorded in {uri}: experiment {plan.spec.experiment!r}, parent run {report.parent_run_id}"
               + (" (resumed)" if report.resumed else ""))
    told = {e.__name__ for e in expected_errors()}  # errors whose line says it all
    for label, reason in report.failed.items():
        job = next(j for j in plan.jobs if j.label == label)
        run = runs.get(job.key)
        if run is not None and reason.split(":", 1)[0] not in told:
            try:  # a bug: its traceback, which the worker kept in the run
                click.echo(tracker.artifact_text(run.info.run_id, "error.txt").rstrip(), err=True)
            except Exception:  # noqa: BLE001 - a worker that died kept none; the line below still says why
                pass
        click.echo(f"error: fold {job.fold} failed: {reason}", err=True)


def _fold_line(res) -> str:
    m = " ".join(f"{k}={v:.4f}" for k, v in res.metrics.items())
    # the training loss at the end, averaged over the last tenth of the steps (one step is noisy):
    # a training CE still at ln(classes) means the fold never started to fit
    tail = {k: [v for s, v in pts if s > res.steps - max(res.steps // 10, 1)] for k, pts in res.curves.items()}
    train = " ".join(f"{k}={sum(v) / len(v):.4f}" for k, v in tail.items() if v)
    return (f"{m}  (train loss, last 10% of steps: {train}; {res.steps_per_s:.2f} steps/s, "
            f"peak {res.peak_mem_mb:.0f} MB, selection: {res.selection})")


# the smoke size shared by `train --smoke`, sweep files' `profile: smoke` and the tests: fdp/profiles.py
SMOKE_OVERRIDES = profile("smoke")
