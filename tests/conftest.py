"""Shared test setup: offline tool settings, GPU skipping, one small synthetic clip cache."""

from __future__ import annotations

import contextlib
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
# every sweep and search start waits the store lease's settle (1.5 s); the drivers of the suite all
# run on this host, where the lock file decides first (orchestrator/run/lease.py); inherited by the
# drivers the tests start as processes
os.environ.setdefault("FDP_LEASE_SETTLE_S", "0.05")
# one intra-op thread, as a Ray worker of a 1-CPU job has (Ray sets OMP_NUM_THREADS from the job's
# `cpus`): an in-process fold then reduces floats in the worker's order, and the suite's small tensors
# do not wait on a second OpenMP thread that a busy 2-core machine has descheduled (a barrier per op);
# read by torch when it is imported below, and inherited by the drivers the tests start as processes
os.environ.setdefault("OMP_NUM_THREADS", "1")

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


OUTSIDE_FAST = ("integration", "slow", "gpu", "browser")


@contextlib.contextmanager
def _fast_tier_guard(item):
    """While a test not marked `integration` (or slow / gpu / browser) sets up, runs and tears down
    -- its fixtures of every scope included, so a module fixture cannot start a cluster for it --
    neither Ray nor a subprocess may start, except the quick reads of the provenance: `git` (the
    commit) and `uname` (Python's `platform` asks it for the processor)."""
    if any(m in item.keywords for m in OUTSIDE_FAST):
        yield
        return
    import subprocess

    import ray

    popen_init, ray_init = subprocess.Popen.__init__, ray.init

    def guarded_popen(self, args, *a, **kw):
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        if os.path.basename(str(argv[0]).split()[0]) not in ("git", "uname"):
            raise TierError(f"{item.nodeid} starts a process ({argv[0]}): mark it integration")
        popen_init(self, args, *a, **kw)

    def no_ray(*a, **kw):
        raise TierError(f"{item.nodeid} starts Ray: mark it integration")

    subprocess.Popen.__init__, ray.init = guarded_popen, no_ray
    try:
        yield
    finally:
        subprocess.Popen.__init__, ray.init = popen_init, ray_init


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _fast_tier_guard(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _fast_tier_guard(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    with _fast_tier_guard(item):
        yield


@pytest.fixture(scope="session", autouse=True)
def _shared_ray_stops_at_the_end():
    """Stops the shared local Ray of `ray_cluster` (if one is up) when the session ends."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray (2 CPUs, loopback only) shared by every test that runs jobs on Ray in this
    process, `run_sweep` and the CLI attaching to it: the first module that asks starts it and it
    stays up for the next ones (a start costs seconds, and fresh workers import torch again). A
    test that needs a cluster of its own (declared fake GPUs, the loopback check) shuts it down
    first; the next module that asks starts it again. Outside the `integration` tier the start
    fails (the tier guard above)."""
    import ray

    from orchestrator.run.scheduler import start_ray

    if not ray.is_initialized():
        start_ray(num_cpus=2)
    yield


@pytest.fixture(scope="session")
def synth_cache(tmp_path_factory):
    """A prepared cache of a small synthetic benchmark (4 subjects x 5 clips, casme2 layout)."""
    from fdp.data.cache import prepare
    from fdp.data.synth import write_synthetic

    root = tmp_path_factory.mktemp("synth")
    data = write_synthetic(root / "data", subjects=4, clips_per_subject=5, seed=0)
    return prepare("casme2", data, out_dir=root / "cache")

