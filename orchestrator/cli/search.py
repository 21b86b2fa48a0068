"""`fdp-sweep search SPEC`: run (or resume) the Optuna study of a spec's `search:` block.

Exit status: 0 when the study has a best trial, 1 when no trial completed, 2 when the search could
not start (bad spec, missing cache, a study whose subject split differs) -- one line per problem.
"""

from __future__ import annotations

import sys

import click

from orchestrator.cli.tools import TRACKING_HELP, fail, fail_on_errors, parse_sets


@click.command("search")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--smoke", is_flag=True, help="Apply the spec's smoke block (tiny model, few steps, CPU) and "
              "run `search.smoke_trials` trials in the study <name>-smoke.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Dotted config override for every trial, applied last; repeatable.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Finished trials the study should reach (default: search.trials).")
@click.option("--address", default=None, help="Ray cluster to attach to (default: $RAY_ADDRESS, else a local one).")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--storage", default=None,
              help="Optuna storage URL (default: search.storage, else sqlite:///<project>/optuna.db).")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None, help="At most N folds at once.")
@click.option("--wait", is_flag=True, help="If another driver runs this study, wait for it to finish instead of refusing.")
@fail_on_errors
def search_cmd(spec_path: str, smoke: bool, sets: tuple[str, ...], trials: int | None, address: str | None,
               tracking_uri: str | None, storage: str | None, max_parallel: int | None, wait: bool) -> None:
    """Search the `search:` space of SPEC with Optuna; the objective never sees the holdout subjects
    (docs/search.md). Re-running the same command resumes the study, also after a crash: folds
    finished earlier are reused, interrupted ones resume from their checkpoints."""
    from orchestrator.run.scheduler import SchedulerError
    from orchestrator.search.study import SearchError, SearchOptions, parse_search, run_search
    from orchestrator.search.study import load_spec_from_search as load_spec
    from orchestrator.track.store import resolve_tracking_uri

    spec = load_spec(spec_path, sets=parse_sets(sets), smoke=smoke)
    settings = parse_search(spec, trials=trials)
    try:
        uri = resolve_tracking_uri(tracking_uri)
        report = run_search(spec, settings, SearchOptions(address=address, tracking_uri=uri, storage=storage,
                                                          max_parallel=max_parallel, wait=wait))
    except (SearchError, SchedulerError, ValueError) as e:
        fail(" ".join(str(e).split()))
    n = {s: sum(t.state == s for t in report.trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    click.echo(f"search {report.study}: {n['COMPLETE']} complete, {n['PRUNED']} pruned, {n['FAIL']} failed "
               f"in this run ({report.wall_s:.0f} s; {len(report.trained)} fold(s) trained, {len(report.reused)} "
               f"reused from earlier runs); study in {report.storage}, MLflow run {report.study_run_id}")
    if report.best_trial is None:
        click.echo("no completed trial yet: no best configuration")
    else:
        click.echo(f"best: trial {report.best_trial} {settings.metric}={report.best_value:.4f} "
                   + " ".join(f"{k}={v}" for k, v in report.best_overrides.items()))
        click.echo(f"report only on the holdout subjects {','.join(report.split.holdout)}: "
                   f"add `from_search: {report.study}` to a LOSO sweep spec")
    sys.exit(report.exit_code)
