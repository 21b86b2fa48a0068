"""`fdp-sweep summarize`: the paper's tables (and Fig. 4) from the sweeps recorded in MLflow."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.cli.tools import TRACKING_HELP, fail_on_errors


class _TableChoice(click.ParamType):
    """A paper table number 4-14, `megc` (the MEGC2019 composite evaluation) or `protocol` (the
    honest protocol beside the test-selected one)."""

    name = "4-14|megc|protocol"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        if isinstance(value, int):
            return value
        if str(value).lower() in ("megc", "protocol"):
            return str(value).lower()
        if str(value).isdigit() and 4 <= int(value) <= 14:
            return int(value)
        self.fail(f"{value!r} is not a table 4-14, megc or protocol", param, ctx)


@click.command("summarize")
@click.option("--table", "table", type=_TableChoice(), default=None,
              help="Paper table 4-14; megc: the MEGC2019 composite evaluation (sweeps/composite.yaml); protocol: "
                   "honest beside test-selected (inflated) numbers per method (sweeps/protocol.yaml).")
@click.option("--figure", "figure", type=click.Choice(["4"]), default=None,
              help="Fig. 4: frames, ground-truth and predicted DI per variant (Table 14 / 9 sweep).")
@click.option("--sweep", "sweeps", multiple=True, metavar="NAME",
              help="Use the latest sweep with this name (fdp.sweep tag), smoke or not, complete or not. "
                   "Repeat to merge sweeps (e.g. settings run as separate sweeps): per job key the latest "
                   "finished run wins.")
@click.option("--format", "fmt", type=click.Choice(["md", "latex", "csv", "tidy"]), default="md", show_default=True,
              help="md, latex or csv: the table as printed. tidy: a CSV for pandas/R, one row per number of "
                   "ours (mean, std, seeds, 95 % subject-bootstrap interval, folds, the published value) naming "
                   "its sweep, data, data fingerprint and commit; the provenance lines go to stderr.")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--include-smoke", is_flag=True, help="Also consider --smoke sweeps.")
@click.option("--log", "log", is_flag=True,
              help="Also log the table's statistics (intervals, paired comparisons, rank-sum tests) to the parent "
                   "run(s) it read, under summary/table<N>/, with the table as summaries/table<N>.md and .json; "
                   "a metric is never logged twice (docs/tracking.md).")
@click.option("--out", default="figures/fig4.png", show_default=True, type=click.Path(dir_okay=False),
              help="With --figure: where to write the PNG.")
@fail_on_errors
def summarize_cmd(table: int | None, figure: str | None, sweeps: tuple[str, ...], fmt: str,
                  tracking_uri: str | None, include_smoke: bool, out: str, log: bool = False) -> None:
    """Print a paper table (`--table 9`) with our results beside the paper's, or write Fig. 4 (`--figure 4`).

    Without --sweep: the latest complete sweep for the table (Tables 4-7 and 8 read every
    experiment of it, one cell per dataset/setting)."""
    from orchestrator.report.megc import render_megc
    from orchestrator.report.protocol import render_protocol
    from orchestrator.report.significance import render_and_log
    from orchestrator.report.summarize import SWEEP_FILES, SummaryError, figure4, render_summary
    from orchestrator.track.store import resolve_tracking_uri

    if (table is None) == (figure is None):
        click.echo("error: give exactly one of --table N or --figure 4", err=True)
        sys.exit(2)
    try:
        uri = resolve_tracking_uri(tracking_uri)
        if log and (figure or table in ("megc", "protocol")):
            raise SummaryError("--log logs the tables 4-14 (not --figure, not --table megc or protocol)")
        if table in ("megc", "protocol") and len(sweeps) > 1:
            raise SummaryError(f"--table {table} reads one sweep; give --sweep once")
        if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
            # nothing tracked here yet, and a read must not leave an empty store behind
            sweep_file = {"megc": "composite", "protocol": "protocol"}.get(table) or ("dic" if figure else SWEEP_FILES[table])
            raise SummaryError(f"no tracked runs: no MLflow store at {uri}; run `fdp-sweep run "
                               f"sweeps/{sweep_file}.yaml` first (or pass --tracking-uri)")
        if figure:
            if len(sweeps) > 1:
                raise SummaryError("--figure 4 reads one sweep; give --sweep once")
            path = figure4(uri, Path(out), sweep=sweeps[0] if sweeps else None, include_smoke=include_smoke)
            click.echo(f"wrote {path}")
            return
        if table == "megc":
            text, notes = render_megc(uri, sweep=sweeps[0] if sweeps else None, fmt=fmt, include_smoke=include_smoke)
        elif table == "protocol":
            text, notes = render_protocol(uri, sweep=sweeps[0] if sweeps else None, fmt=fmt,
                                          include_smoke=include_smoke)
        else:
            text, notes = (render_and_log if log else render_summary)(
                table, uri, sweep=list(sweeps) or None, fmt=fmt, include_smoke=include_smoke)
    except (SummaryError, ValueError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    click.echo(text, nl=not text.endswith("\n"))  # a tidy CSV ends in its last row's newline
    for n in notes:
        click.echo(n, err=True)
