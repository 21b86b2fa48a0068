"""How many fold jobs of one size a Ray node runs at once: Ray's resource arithmetic, counted the way
Ray places tasks, so that the scheduler never hands out more jobs than run (a job queued inside Ray
would be shown as running) and the dry run says what the cluster will do."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.spec.schema import Resources

RAY_UNITS = 10_000  # Ray's fixed-point resolution of resource quantities (1e-4)


def jobs_per_gpu(res: "Resources") -> int:
    """Jobs that share one GPU: Ray places a fractional request on a single GPU, so fractions
    are counted per GPU, not over the node (0.4 on 2 GPUs: 2 per GPU = 4 jobs, not 2 // 0.4 = 5).
    Ray counts resources in units of 1e-4. 0 for a CPU-only job; 1 for whole GPUs."""
    if res.gpus <= 0:
        return 0
    if res.gpus >= 1:
        return 1
    return RAY_UNITS // max(1, round(res.gpus * RAY_UNITS))


def node_fit(res: "Resources", cpus: float, gpus: float) -> int:
    """How many jobs of size `res` one node with `cpus` CPUs and `gpus` GPUs runs at once."""
    n = int(cpus // res.cpus) if res.cpus > 0 else 10**6
    if res.gpus >= 1:
        n = min(n, int(gpus // res.gpus))
    elif res.gpus > 0:
        n = min(n, int(gpus) * jobs_per_gpu(res))
    return n
