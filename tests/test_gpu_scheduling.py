"""Ray's GPU scheduling, tested without GPUs (issue #18): a local Ray declared with two fake GPUs
packs fractional jobs per GPU and never more, gives each job its own GPU in CUDA_VISIBLE_DEVICES
(the device the trainer then picks), and a job no GPU can hold is refused before anything starts.

The job function here records when it ran and what it saw, without training (declared GPUs only
do accounting: there is nothing to compute on). A barrier holds the first wave until as many jobs
as the capacity have started, so the wave really overlaps even on a loaded 2-core machine.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import ray
import torch

from orchestrator.run.packing import jobs_per_gpu
from orchestrator.run.worker import JobOutcome, JobPayload
from orchestrator.run.scheduler import (Cluster, SchedulerError, Scheduler, SweepOptions, capacity, run_sweep, start_ray)
from orchestrator.spec.sweep import Resources, parse_spec

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

FAKE_GPUS = 2
FAKE_CPUS = 16  # declared, so CPUs never limit the packing (cpus 0.5 per job)


def gpu_window_job(payload: JobPayload) -> JobOutcome:
    """Start, wait for the wave (the barrier count is in the payload's fold), end; record it all."""
    rec_dir = Path(payload.checkpoint_path).parent
    started = time.time()
    (rec_dir / f"{payload.key}.start").write_text("")
    wave = int(payload.fold)
    deadline = started + 60
    while len(list(rec_dir.glob("*.start"))) < wave and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    (rec_dir / f"{payload.key}.json").write_text(json.dumps({
        "start": started, "end": time.time(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}))
    return JobOutcome(payload.key, True)


@pytest.fixture(scope="module")
def fake_gpu_cluster():
    if ray.is_initialized():
        ray.shutdown()  # the suite's shared Ray has no GPUs to declare: a cluster of its own
    cluster = start_ray(num_cpus=FAKE_CPUS, num_gpus=FAKE_GPUS)
    yield cluster
    ray.shutdown()


def _run(cluster: Cluster, tmp_path: Path, gpus: float, n_jobs: int) -> tuple[int, list[dict]]:
    res = Resources(cpus=0.5, gpus=gpus)
    par = capacity(cluster, res)
    payloads = [JobPayload(f"job{i:02d}", f"job{i}", "c", str(par), {}, "", "", str(tmp_path / f"job{i:02d}.pt"))
                for i in range(n_jobs)]
    out = Scheduler(res, retries=0, parallel=par, job_fn=gpu_window_job).run(payloads)
    assert all(o.ok for o in out.values()), out
    return par, [json.loads((tmp_path / f"job{i:02d}.json").read_text()) for i in range(n_jobs)]


def _max_overlap(windows: list[dict]) -> int:
    events = sorted([(w["start"], 1) for w in windows] + [(w["end"], -1) for w in windows],
                    key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


@pytest.mark.integration
@pytest.mark.parametrize("gpus,per_gpu", [(0.25, 4), (0.4, 2)])
def test_fractional_gpus_pack_per_gpu_and_never_more(fake_gpu_cluster, tmp_path, gpus, per_gpu):
    assert (fake_gpu_cluster.cpus, fake_gpu_cluster.gpus) == (FAKE_CPUS, FAKE_GPUS)
    par, windows = _run(fake_gpu_cluster, tmp_path, gpus, n_jobs=FAKE_GPUS * per_gpu + 3)
    # 0.4 on 2 GPUs: 2 per GPU = 4 at once (not 2 // 0.4 = 5, the node-wide count)
    assert par == FAKE_GPUS * per_gpu
    assert _max_overlap(windows) == par
    for g in map(str, range(FAKE_GPUS)):
        on_g = [w for w in windows if w["gpu_ids"] == [g]]
        assert _max_overlap(on_g) == per_gpu, f"GPU {g}: {_max_overlap(on_g)} jobs at once"
    # each job saw exactly the one GPU Ray assigned it
    for w in windows:
        assert len(w["gpu_ids"]) == 1 and w["visible"] == w["gpu_ids"][0], w


@pytest.mark.integration
def test_each_job_trains_on_the_gpu_ray_assigned(fake_gpu_cluster, tmp_path):
    """The trainer's device choice, given what a job saw: `auto` -> cuda:0, the first visible GPU,
    i.e. the assigned one (torch.cuda mocked: the GPUs are declared, not real)."""
    from fdp.runtime import physical_gpu
    from fdp.fold import TrainingError
    from fdp.runtime import resolve_device

    _, windows = _run(fake_gpu_cluster, tmp_path, 0.5, n_jobs=4)
    assert {w["gpu_ids"][0] for w in windows} == {"0", "1"}  # both GPUs used
    for w in windows:
        env = {"CUDA_VISIBLE_DEVICES": w["visible"]}
        with mock.patch.dict(os.environ, env), mock.patch.object(torch.cuda, "is_available", return_value=True), \
                mock.patch.object(torch.cuda, "device_count", return_value=1):
            dev = resolve_device("auto")
            assert dev == torch.device("cuda", 0) and physical_gpu(dev, env) == w["gpu_ids"][0]
            assert resolve_device("cuda") == dev
            with pytest.raises(TrainingError, match=rf"^train.device=cuda:1: only 1 GPU\(s\) visible "
                                                    rf"\(CUDA_VISIBLE_DEVICES={w['visible']}\)$"):
                resolve_device("cuda:1")  # another job's GPU is not this job's to use


@pytest.mark.integration
def test_a_job_bigger_than_any_gpu_is_refused_before_anything_starts(fake_gpu_cluster, synth_cache, tmp_path):
    spec = parse_spec({"name": "too-big", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"],
                       "steps": 1, "overrides": {"data.cache_dir": str(synth_cache), "train.device": "cpu"},
                       "resources": {"cpus": 1, "gpus": 3}, "tracking": {"experiment": "too-big"}})
    from orchestrator.plan.jobs import expand

    with pytest.raises(SchedulerError) as e:
        run_sweep(expand(spec), SweepOptions(root=tmp_path, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                             stream=io.StringIO()))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("no node of the cluster (16 cpus, 2 gpus) fits one job (1 cpus, 3 gpus)")
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / ".cache").exists()  # nothing started


def test_gpu_fraction_above_one_is_refused_in_one_line(tmp_path):
    """gpus 1.5 cannot be placed on GPUs of 1 (a fraction must fit on one GPU): the spec says so."""
    from click.testing import CliRunner

    from orchestrator.cli.run import run_cmd

    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ndataset: casme2\nsetting: casme2/5\nvariants: [fdp]\nresources: {cpus: 1, gpus: 1.5}\n")
    r = CliRunner().invoke(run_cmd, [str(spec), "--dry-run"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"error: {spec}: resources.gpus: expected a fraction in [0, 1] or a whole number of GPUs, got 1.5"]


def test_capacity_counts_fractions_per_gpu_and_per_node():
    one = Cluster("local", cpus=16, gpus=2, log_dir="", started_here=True)
    assert capacity(one, Resources(cpus=1, gpus=0.25)) == 8
    assert capacity(one, Resources(cpus=1, gpus=0.4)) == 4  # not floor(2 / 0.4) = 5
    assert capacity(one, Resources(cpus=1, gpus=1 / 3)) == 6  # Ray's 1e-4 units: 0.3333 x 3 fits one GPU
    assert capacity(one, Resources(cpus=1, gpus=2)) == 1 and capacity(one, Resources(cpus=1, gpus=3)) == 0
    assert capacity(one, Resources(cpus=4, gpus=0.25)) == 4  # CPUs bound it
    # two nodes of 1 GPU: a 2-GPU job fits neither, though the cluster has 2 GPUs in total
    two = Cluster("ray://head", cpus=32, gpus=2, log_dir="", started_here=False, nodes=[(16, 1), (16, 1)])
    assert capacity(two, Resources(cpus=1, gpus=2)) == 0
    assert capacity(two, Resources(cpus=1, gpus=0.4)) == 4
    assert jobs_per_gpu(Resources(cpus=1, gpus=0.15)) == 6 and jobs_per_gpu(Resources(cpus=1, gpus=0)) == 0
    # the reported Ray Tune trap: 0.15 GPU on 8 GPUs is 6 per GPU = 48 jobs, not 53
    assert capacity(Cluster("x", 64, 8, "", False), Resources(cpus=1, gpus=0.15)) == 48
