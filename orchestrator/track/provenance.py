"""Which code made a run: the git commit and "dirty" of the checkout the code was imported from,
and the installed fdp-sweep's version, as the tags the MLflow UI shows as a run's Source; and which
machine: the CPU and the kernels its libraries used (`machine_tags`)."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

CODE_DIR = Path(__file__).resolve().parents[2]  # the folder holding fdp/ and orchestrator/


def source_tags(source: str, commit: str, dirty: bool) -> dict[str, str]:
    """What the MLflow UI shows as a run's Source: `source` (a sweep file, or the tool for job runs)
    and the commit, which it shows only beside a source name; `fdp.version`, the installed fdp-sweep's."""
    tags = {"mlflow.source.name": source, "mlflow.source.type": "LOCAL", "fdp.version": code_version()}
    return {**tags, "mlflow.source.git.commit": commit, "fdp.git_dirty": str(dirty).lower()} if commit else tags


@functools.cache  # one lookup per process: every job run is tagged with it
def code_version() -> str:
    """The installed fdp-sweep's version (what a run says made it when no commit is known)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fdp-sweep")
    except PackageNotFoundError:
        from fdp import __version__

        return __version__


def git_info(code_dir: Path = CODE_DIR) -> tuple[str, bool]:
    """(commit, dirty) of the git checkout the running code was imported from (a clone, or an
    editable install of one): the commit says which code made a number, so it is not the project
    folder's. ("", False) for a package installed into site-packages (even inside some other
    repository), outside git, or before the first commit. Taken on the driver: workers may run
    from a copy without .git. A driver started by `fdp-sweep submit` runs from such a copy too:
    without a checkout, the commit the submitting side read is taken from $FDP_GIT_COMMIT
    ($FDP_GIT_DIRTY: "true" when it had uncommitted changes)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(code_dir), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()

    try:
        top = git("rev-parse", "--show-toplevel")
        commit = git("rev-parse", "--verify", "-q", "HEAD") if top and Path(top).resolve() == code_dir.resolve() else ""
        if commit:
            return commit, bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        pass
    submitted = os.environ.get("FDP_GIT_COMMIT", "").strip()
    return (submitted, os.environ.get("FDP_GIT_DIRTY", "") == "true") if submitted else ("", False)


def machine_tags() -> dict[str, str]:
    """The machine a run computed on (fdp.machine): `fdp.machine`, one line to compare runs by,
    and each part as its own tag (`fdp.cpu`, `fdp.isa`, `fdp.torch_kernels`, ...) to filter by."""
    from fdp.machine import machine_info, machine_summary

    info = machine_info()
    return {"fdp.machine": machine_summary(info), **{f"fdp.{k}": v for k, v in info.items() if v}}
