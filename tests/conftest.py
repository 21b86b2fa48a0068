"""Shared test setup: offline tool settings, GPU skipping, one small synthetic clip cache."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
# every sweep and search start waits the store lease's settle (1.5 s); the drivers of the suite all
# run on this host, where the lock file decides first (orchestrator/run/lease.py); inherited by the
# drivers the tests start as processes
os.environ.setdefault("FDP_LEASE_SETTLE_S", "0.05")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


class TierError(AssertionError):
    """A test outside the `integration` marker started Ray or a process (`make test-fast` excludes
    only what is marked, so an unmarked one would slow the fast tier down)."""


@pytest.fixture(autouse=True)
def _fast_tier_starts_no_ray_and_no_process(request, monkeypatch):
    """Tests not marked `integration` (or slow / gpu / browser) may start neither Ray nor a
    subprocess, except the quick reads of the provenance: `git` (the commit) and `uname` (Python's
    `platform` asks it for the processor)."""
    if any(m in request.keywords for m in ("integration", "slow", "gpu", "browser")):
        return
    import subprocess

    popen_init = subprocess.Popen.__init__

    def guarded_popen(self, args, *a, **kw):
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        if os.path.basename(str(argv[0]).split()[0]) not in ("git", "uname"):
            raise TierError(f"{request.node.nodeid} starts a process ({argv[0]}): mark it integration")
        popen_init(self, args, *a, **kw)

    def no_ray(*a, **kw):
        raise TierError(f"{request.node.nodeid} starts Ray: mark it integration")

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded_popen)
    import ray

    monkeypatch.setattr(ray, "init", no_ray)


@pytest.fixture(scope="session")
def synth_cache(tmp_path_factory):
    """A prepared cache of a small synthetic benchmark (4 subjects x 5 clips, casme2 layout)."""
    from fdp.data.cache import prepare
    from fdp.data.synth import write_synthetic

    root = tmp_path_factory.mktemp("synth")
    data = write_synthetic(root / "data", subjects=4, clips_per_subject=5, seed=0)
    return prepare("casme2", data, out_dir=root / "cache")

