"""The predicted peak memory of a job (issue #18): the parts that follow from the parameter count
are exact, the activation count is the bytes autograd really saves and scales with the batch, and
the dry run warns when the jobs packed on one GPU would not fit it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from fixtures_runs import TINY
from torch import nn

from fdp.data.cache import load_cache
from fdp.data.sampling import ClipBank, select
from fdp.data.settings import SETTINGS
from fdp.memory import MB, bank_frames, estimate_memory, saved_bytes
from fdp.model import build_model, count_parameters
from fdp.variants import build_config
from orchestrator.cli.run import run_cmd
from orchestrator.plan.jobs import expand
from orchestrator.run.dry_run import format_plan
from orchestrator.spec.sweep import parse_spec

REPO_SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"


def test_saved_bytes_count_what_autograd_keeps():
    """Linear saves its input (its weight is a parameter: not counted again), ReLU its output."""
    net = nn.Sequential(nn.Linear(10, 20), nn.ReLU())
    assert saved_bytes(net, torch.rand(7, 10), torch.autocast("cpu", enabled=False)) == 7 * (10 + 20) * 4
    # bf16 autocast: the bf16 copy of the input (the weight's copy would only serve the input's
    # gradient, which nothing needs, so autograd does not keep it)
    net = nn.Sequential(nn.Linear(10, 20))
    assert saved_bytes(net, torch.rand(7, 10), torch.autocast("cpu", dtype=torch.bfloat16)) == 7 * 10 * 2


def test_weights_grads_and_adam_follow_the_parameter_count():
    cfg = build_config("fdp", TINY)
    e = estimate_memory(cfg, "cuda")
    n = count_parameters(build_model(cfg.model))
    assert e.n_params == n
    assert e.params_mb == e.grads_mb == pytest.approx(n * 4 / MB)
    assert e.optimizer_mb == pytest.approx(2 * n * 4 / MB)
    assert e.precision == "bf16" and estimate_memory(cfg, "cpu").precision == "fp32"  # auto, per device
    assert e.bank_mb is None and e.total_mb == pytest.approx(
        e.params_mb + e.grads_mb + e.optimizer_mb + e.activations_mb + e.batch_mb)


def test_activations_scale_with_the_batch_as_measured():
    """The estimate at batch 4, extrapolated from batches 1 and 2, against a measurement at 4."""
    cfg = build_config("fdp", {**TINY, "train.batch_size": 4, "train.precision": "fp32"})
    e = estimate_memory(cfg, "cpu")
    torch.manual_seed(0)
    measured = saved_bytes(build_model(cfg.model), torch.rand(4, 8, 3, 64, 64), torch.autocast("cpu", enabled=False))
    assert e.activations_mb * MB == pytest.approx(measured, rel=0.02)
    e8 = estimate_memory(build_config("fdp", {**TINY, "train.batch_size": 8, "train.precision": "fp32"}), "cpu")
    ratio = e8.activations_mb / e.activations_mb
    assert ratio > 1.9 and ratio < 2.0  # linear, with a small batch-independent part
    assert e8.batch_mb == pytest.approx(2 * e.batch_mb)


def test_bank_is_the_clip_bank_the_job_puts_on_its_device(synth_cache):
    cfg = build_config("fdp", {**TINY, "data.cache_dir": str(synth_cache)})
    cache = load_cache(synth_cache)
    sel = select(cache, SETTINGS["casme2/5"])
    bank = ClipBank(cache, sel.indices, sel.labels, "cpu")
    assert bank_frames(cfg) == bank.frames.shape[0]
    assert estimate_memory(cfg, "cuda", bank_frames(cfg)).bank_mb == pytest.approx(bank.frames.nbytes / MB)
    assert bank_frames(build_config("fdp", {"data.cache_dir": str(synth_cache / "missing")})) is None


def test_ablation_dry_run_shows_memory_per_job_and_jobs_per_gpu():
    r = CliRunner().invoke(run_cmd, [str(REPO_SWEEPS / "ablation.yaml"), "--dry-run", "--gpu-mem", "80"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("estimated peak GPU memory"))
    rows = lines[start + 1:start + 7]
    assert [ln.split()[0] for ln in rows] == ["fdp", "no_dic", "no_rank", "no_local", "no_global", "no_local_global"]
    assert all("(batch 36, bf16)" in ln and ln.endswith(" GB") for ln in rows)
    assert lines[start + 7].startswith("gpus 0.25 per job -> 4 job(s) per GPU: 4 x (")
    assert lines[start + 7].endswith("GB of 80 GB per GPU (--gpu-mem)")
    assert not any(ln.startswith("warning: 4 job(s)") for ln in lines)


def test_warning_when_the_jobs_on_one_gpu_exceed_its_memory():
    """fdp needs ~0.9 GB a job, no_local_global ~0.2 GB: at 4 per GPU (+0.5 GB context each) a 3 GB
    GPU holds the latter, not the former."""
    r = CliRunner().invoke(run_cmd, [str(REPO_SWEEPS / "ablation.yaml"), "--dry-run", "--gpu-mem", "3"])
    assert r.exit_code == 0, r.output
    warned = [ln.split(" of ")[1].split(" on one GPU")[0] for ln in r.output.splitlines()
              if ln.startswith("warning: 4 job(s) of ")]
    assert "fdp" in warned and "no_local_global" not in warned
    assert all(ln.endswith("raise resources.gpus (fewer jobs per GPU) or lower train.batch_size")
               for ln in r.output.splitlines() if ln.startswith("warning: 4 job(s)"))


def test_plan_with_a_cache_counts_the_clip_bank(synth_cache):
    spec = parse_spec({"name": "m", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"], "steps": 1,
                       "overrides": {**TINY, "data.cache_dir": str(synth_cache)},
                       "resources": {"cpus": 1, "gpus": 0.5}})
    text = format_plan(expand(spec), cluster_cpus=4, cluster_gpus=1, gpu_mem_gb=16)
    frames = bank_frames(build_config("fdp", {"data.cache_dir": str(synth_cache)}))
    assert f"clip bank {frames * 3 * 72 * 72 / MB:.0f} MB -> " in text
    assert "gpus 0.5 per job -> 2 job(s) per GPU" in text and "parallel here: 2 job(s)" in text
