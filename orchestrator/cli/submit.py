"""`fdp-sweep submit`: `ray job submit` of an fdp-sweep command, with the submitting checkout's commit.

`ray job submit --working-dir .` uploads the project without `.git`, so the job's driver cannot read
the commit of the code it runs, and the runs it tracks would say "git commit unknown". This command
reads the commit (and whether the checkout has uncommitted changes) here, where `.git` is, and hands
it to the job in its runtime environment (`FDP_GIT_COMMIT`, `FDP_GIT_DIRTY`), beside the tracking
URI and the cache root every node reads. The same variables may be given to a plain
`ray job submit` by hand (docs/cluster.md).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import click

from orchestrator.cli.tools import fail

COMMIT_ENV, DIRTY_ENV = "FDP_GIT_COMMIT", "FDP_GIT_DIRTY"


def submit_argv(address: str, args: tuple[str, ...], tracking_uri: str | None, cache_dir: str | None,
                commit: str, dirty: bool, no_wait: bool = False) -> list[str]:
    """The `ray job submit` command line: the working directory uploaded, the runtime env with
    what every node needs and the commit of the code, then `fdp-sweep ARGS` as the entrypoint."""
    env = {k: v for k, v in (("MLFLOW_TRACKING_URI", tracking_uri), ("FDP_CACHE_DIR", cache_dir)) if v}
    if commit:
        env.update({COMMIT_ENV: commit, DIRTY_ENV: str(dirty).lower()})
    return ["ray", "job", "submit", "--address", address, "--working-dir", ".",
            "--runtime-env-json", json.dumps({"env_vars": env}), *(["--no-wait"] if no_wait else []),
            "--", "fdp-sweep", *args]


@click.command("submit", context_settings={"ignore_unknown_options": True})
@click.option("--address", envvar="RAY_ADDRESS", required=True,
              help="The cluster's job server, e.g. http://HEAD:8265 (default: $RAY_ADDRESS).")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None,
              help="The tracking server every node logs to, e.g. http://MLFLOW_HOST:5000 (default: $MLFLOW_TRACKING_URI).")
@click.option("--cache-dir", envvar="FDP_CACHE_DIR", default=None,
              help="The clip-cache root on a path every node sees (default: $FDP_CACHE_DIR).")
@click.option("--no-wait", is_flag=True, help="Return once the job is submitted (ray job submit --no-wait).")
@click.option("--dry-run", is_flag=True, help="Print the ray job submit command instead of running it.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def submit_cmd(address: str, tracking_uri: str | None, cache_dir: str | None, no_wait: bool, dry_run: bool,
               args: tuple[str, ...]) -> None:
    """Submit `fdp-sweep ARGS` (e.g. `run sweeps/ablation.yaml`) to a Ray cluster with
    `ray job submit --working-dir .`, run from the project folder; the runs it tracks carry
    this checkout's commit. Needs the `cluster` extra (ray[default]) here and on the cluster."""
    from orchestrator.track.provenance import CODE_DIR, git_info

    if not (Path.cwd() / "pyproject.toml").is_file():
        fail(f"{Path.cwd()}: not the project folder (no pyproject.toml): run fdp-sweep submit where "
             "`--working-dir .` uploads the project")
    if cache_dir and not os.path.isabs(cache_dir):
        fail(f"--cache-dir {cache_dir}: give an absolute path that every node of the cluster sees")
    commit, dirty = git_info(CODE_DIR)
    if not commit:
        click.echo("note: the code is not a git checkout; the runs will say 'git commit unknown'", err=True)
    elif dirty:
        click.echo(f"note: uncommitted changes in {CODE_DIR}: the runs will say {commit[:12]} (dirty)", err=True)
    argv = submit_argv(address, args, tracking_uri, cache_dir, commit, dirty, no_wait)
    if dry_run:
        click.echo(shlex.join(argv))
        return
    try:
        sys.exit(subprocess.run(argv).returncode)
    except FileNotFoundError:
        fail("`ray` not found: install the cluster extra (pip install -c constraints.txt -e '.[cluster]')")
