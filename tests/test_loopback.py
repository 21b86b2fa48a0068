"""The local Ray cluster that `fdp-sweep run` / `search` / `demo` start listens on loopback only
(issue #13, item 7): GCS, raylet, object manager, workers and the dashboard agent, which by
default bind the machine's network address without authentication."""

from __future__ import annotations

import ipaddress
import os

import pytest


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # '::ffff:127.0.0.1': an IPv6 socket bound to the IPv4 loopback
    return addr.is_loopback


@pytest.mark.integration
def test_local_cluster_listens_on_loopback_only():
    import psutil
    import ray
    from ray._private import ray_constants

    from orchestrator.run.scheduler import LOOPBACK_ENV, start_ray

    assert not _loopback("0.0.0.0") and not _loopback("::") and _loopback("::ffff:127.0.0.1")
    if ray.is_initialized():
        ray.shutdown()
    before = (os.environ.get(LOOPBACK_ENV), ray_constants.ENABLE_RAY_CLUSTER)
    cluster = start_ray(num_cpus=1)
    try:
        assert cluster.started_here
        ray.get(ray.remote(lambda: os.getpid()).remote())  # a worker process is up too
        listening: list[tuple[str, str, int]] = []
        for p in [psutil.Process(), *psutil.Process().children(recursive=True)]:
            try:
                listening += [(p.name(), c.laddr.ip, c.laddr.port) for c in p.net_connections(kind="inet")
                              if c.status == psutil.CONN_LISTEN]
            except psutil.Error:
                continue
        names = {n for n, _, _ in listening}
        # the servers this is about are there (so the check below cannot pass vacuously)
        assert {"gcs_server", "raylet"} <= names and any("Agent" in n for n in names), listening
        outside = [s for s in listening if not _loopback(s[1])]
        assert not outside, outside
        assert ray._private.worker.global_worker.node.node_ip_address == "127.0.0.1"
    finally:
        ray.shutdown()
    # only the cluster started here: attaching to a real cluster later is unaffected
    assert (os.environ.get(LOOPBACK_ENV), ray_constants.ENABLE_RAY_CLUSTER) == before
