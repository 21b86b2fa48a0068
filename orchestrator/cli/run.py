"""`fdp-sweep run SPEC`: expand a sweep spec into fold jobs, run them on Ray (or, with
`--in-process`, one after another in this process), track them in MLflow.

Exit status: 0 when every job finished, 1 when some job failed (the others still ran; the
summary names each failure), 2 when the sweep could not start (bad spec, missing cache, a job
that no node can fit) -- with one line per problem.
"""

from __future__ import annotations

import sys

import click

from orchestrator.cli.tools import TRACKING_HELP, fail, fail_on_errors, parse_sets


@click.command("run")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the jobs and the resources they ask for; run nothing.")
@click.option("--smoke", is_flag=True, help="Apply the spec's smoke block: tiny model, few steps, CPU.")
@click.option("--fresh", is_flag=True, help="Start a new sweep instance instead of resuming the last one.")
@click.option("--address", default=None, help="Ray cluster to attach to (default: $RAY_ADDRESS, else a local one).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Dotted config override for every job, applied last; repeatable.")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None, help="At most N jobs at once.")
@click.option("--in-process", is_flag=True,
              help="No Ray: run the jobs one after another in this process (debugging: breakpoints and "
                   "tracebacks work, nothing to start). Same runs, resume and pooling as on Ray.")
@click.option("--gpu-mem", "gpu_mem", type=click.FloatRange(min=0, min_open=True), default=None, metavar="GB",
              help="Memory of one GPU for the dry run's packing check (default: the visible GPU's, else 80).")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--wait", is_flag=True,
              help="If another driver is running this sweep, wait for it to finish instead of refusing.")
@fail_on_errors
def run_cmd(spec_path: str, dry_run: bool, smoke: bool, fresh: bool, address: str | None, sets: tuple[str, ...],
            max_parallel: int | None, tracking_uri: str | None, wait: bool, gpu_mem: float | None = None,
            in_process: bool = False) -> None:
    """Run the sweep SPEC (a YAML file, see docs/sweeps.md); re-running resumes it."""
    from orchestrator.plan.jobs import expand
    from orchestrator.report.significance import log_sweep
    from orchestrator.run.dry_run import format_plan
    from orchestrator.run.scheduler import SchedulerError, SweepOptions, run_sweep
    from orchestrator.search.study import load_spec_from_search as load_spec
    from orchestrator.track.store import resolve_tracking_uri

    plan = expand(load_spec(spec_path, sets=parse_sets(sets), smoke=smoke))
    if dry_run:
        click.echo(format_plan(plan, gpu_mem_gb=gpu_mem))
        return
    if not plan.complete:
        fail(*plan.problems)
    if in_process and address:
        fail("--in-process runs no Ray cluster: give --in-process or --address, not both")
    for d in plan.duplicates + plan.notes:
        click.echo(f"note: {d}", err=True)
    try:
        uri = resolve_tracking_uri(tracking_uri)
    except ValueError as e:
        fail(e)
    try:
        report = run_sweep(plan, SweepOptions(fresh=fresh, address=address, max_parallel=max_parallel,
                                              tracking_uri=uri, wait=wait, on_finish=log_sweep,
                                              in_process=in_process))
    except SchedulerError as e:
        fail(e)
    for line in report.summary_lines():
        click.echo(line)
    sys.exit(report.exit_code)
