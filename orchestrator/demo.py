"""`fdp-sweep demo`: the whole pipeline in minutes on a laptop.

Synthetic benchmark (8 subjects x 10 clips, seed 0, CASME II layout) -> clip cache -> the Table 9
ablation sweep (`sweeps/ablation.yaml`) at smoke size, run through the same code as `fdp-sweep run`
(`load`/`parse_spec` -> `jobs.expand` -> `scheduler.run_sweep`: Ray + MLflow) -> Table 9.

The file's own smoke block switches it to the synthetic casme2/5 data and one seed; the demo only
asks for 1 CPU per job so both cores of a laptop run jobs. It names the cache it prepared
(`data.cache_dir`), so other caches of casme2 -- a real CASME II, another synthetic draw -- are
never picked by accident, and its runs record which one they read.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from orchestrator.clitools import fail_on_errors

DEMO_SPEC = "sweeps/ablation.yaml"


def demo_spec(path: str | Path = DEMO_SPEC, cache_dir: str | Path | None = None):
    """ablation.yaml with --smoke (its smoke block: synthetic casme2/5, one seed), 1 CPU per job,
    reading the cache `cache_dir` when given."""
    import yaml

    from orchestrator.spec import UniqueKeyLoader, parse_spec

    raw = yaml.load(Path(path).read_text(), Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    raw["resources"] = {"cpus": 1, "gpus": 0}
    sets = {"data.cache_dir": str(cache_dir)} if cache_dir is not None else None
    return parse_spec(raw, sets=sets, smoke=True, source=str(path))


def prepare_demo_data(root: Path, echo=click.echo) -> Path:
    """Synthesize and prepare the demo benchmark under root/.cache/demo (skipped when present);
    returns the prepared cache's folder."""
    from fdp.data.cache import prepare
    from fdp.data.synth import write_synthetic

    base = root / ".cache" / "demo"
    data, clips = base / "data", base / "clips"
    if not (data.exists() and any(data.iterdir())):
        echo(f"synth: 8 subjects x 10 clips -> {data}")
        write_synthetic(data, subjects=8, clips_per_subject=10, seed=0)
    else:
        echo(f"synth: {data} exists, reused")
    path = prepare("casme2", data, out_dir=clips)  # a complete cache with the same key is reused
    echo(f"prepare: casme2 cache at {path}")
    return path


@click.command("demo")
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db).")
@fail_on_errors
def demo_cmd(tracking_uri: str | None) -> None:
    """Synthetic data -> Table 9 ablation sweep (smoke size, Ray + MLflow) -> Table 9."""
    from orchestrator.jobs import expand
    from orchestrator.scheduler import SchedulerError, SweepOptions, run_sweep
    from orchestrator.spec import SpecError
    from orchestrator.summarize import render_summary
    from orchestrator.tracking import project_root, resolve_tracking_uri

    t0 = time.perf_counter()
    root = project_root()
    cache = prepare_demo_data(root)
    os.environ["FDP_CACHE_DIR"] = str(cache.parent)  # workers inherit it; caches are also pinned per job
    try:
        path = root / DEMO_SPEC
        if not path.exists():  # run from another folder: the spec shipped with the code
            path = Path(__file__).resolve().parents[1] / DEMO_SPEC
        spec = demo_spec(path, cache_dir=cache)
    except SpecError as e:
        for line in e.problems:
            click.echo(f"error: {line}", err=True)
        sys.exit(2)
    plan = expand(spec)
    if not plan.complete:
        for p in plan.problems:
            click.echo(f"error: {p}", err=True)
        sys.exit(2)
    uri = resolve_tracking_uri(tracking_uri, root)
    click.echo(f"run: {DEMO_SPEC} --smoke on the synthetic casme2/5: {len(plan.jobs)} jobs")
    try:
        report = run_sweep(plan, SweepOptions(tracking_uri=uri, root=root))
    except SchedulerError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    for line in report.summary_lines():
        click.echo(line)
    text, _ = render_summary(9, uri, sweep=spec.name, include_smoke=True)
    click.echo("")
    click.echo(text)
    click.echo(f"\nelapsed: {time.perf_counter() - t0:.0f} s")
    click.echo("open the runs: mlflow ui  (in this folder)")
    sys.exit(report.exit_code)
