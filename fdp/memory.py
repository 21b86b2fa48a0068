"""Peak memory of one fold job, predicted from its config, before it runs.

    total = parameters + gradients + Adam state          (fp32: 4 + 4 + 8 bytes per parameter)
          + activations saved for backward at the batch  (measured, see below)
          + the input batch and its dynamic-image target
          + the device-resident clip bank                (uint8 frames of the selected clips)

Activations are measured, not modelled: one forward pass at batch 1 and one at batch 2 on the CPU,
under the precision the job will use on its device (bf16 autocast on CUDA by default), with
`torch.autograd.graph.saved_tensors_hooks` adding up the bytes of every distinct storage autograd
keeps for the backward pass (parameters excluded: counted above). Saved bytes are linear in the
batch (the intercept is what does not grow with it, e.g. autocast's bf16 weight copies), so the
two points give the figure at any batch size. Not included: transient buffers (cuDNN workspaces,
the activation gradients alive during backward), allocator fragmentation, and the CUDA context of
each process (~0.5 GiB, outside `torch.cuda.max_memory_allocated`): `bench/gpu_check.py` compares
the estimate with the measured peak on a GPU.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import torch

from fdp.config import ExperimentConfig, to_dict
from fdp.runtime import resolve_runtime

MB = 2**20
ADAM_STATES = 2  # exp_avg and exp_avg_sq, fp32, one each per parameter
CUDA_CONTEXT_MB = 512.0  # per process on the GPU, outside max_memory_allocated (an assumption, not measured here)


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted peak memory of one job, in MiB, by part."""

    n_params: int  # parameters of the model the job builds
    params_mb: float  # fp32 weights
    grads_mb: float  # fp32 gradients (one per parameter)
    optimizer_mb: float  # Adam state (ADAM_STATES per parameter)
    activations_mb: float  # saved for backward at `batch`, scaled from batch 1 and 2
    batch_mb: float  # the input batch (B, T, 3, crop, crop) fp32 + the dynamic-image target
    bank_mb: float | None  # the clip bank on the device; None when the cache is not known
    batch: int  # clips per step the figure is for
    precision: str  # fp32 | bf16, what the activations were measured under

    @property
    def total_mb(self) -> float:
        return (self.params_mb + self.grads_mb + self.optimizer_mb + self.activations_mb + self.batch_mb
                + (self.bank_mb or 0.0))

    def describe(self) -> str:
        bank = f"{self.bank_mb:.0f} MB" if self.bank_mb is not None else "? (no cache: not counted)"
        return (f"{self.n_params / 1e6:.2f} M params: weights+grads+Adam "
                f"{self.params_mb + self.grads_mb + self.optimizer_mb:.0f} MB, activations "
                f"{self.activations_mb:.0f} MB (batch {self.batch}, {self.precision}), batch {self.batch_mb:.0f} MB, "
                f"clip bank {bank} -> {self.total_mb / 1024:.2f} GB")


def saved_bytes(model: torch.nn.Module, x: torch.Tensor, autocast: Any) -> int:
    """Bytes of the distinct storages autograd saves in one forward of `model` on `x` (parameters
    excluded). The forward runs in train mode and its graph is freed afterwards."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
        out = model(x)
    del out
    return sum(seen.values())


@functools.lru_cache(maxsize=64)
def _activation_fit(model_json: str, precision: str, frames: int, crop: int) -> tuple[int, float, float]:
    """(parameters, bytes at batch 0 (intercept), bytes per clip) of a model config, measured on CPU."""
    from fdp.config import ModelConfig, from_dict
    from fdp.model import build_model, count_parameters

    torch.manual_seed(0)
    model = build_model(from_dict(ModelConfig, json.loads(model_json)))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    b1, b2 = (saved_bytes(model, torch.rand(b, frames, 3, crop, crop), autocast) for b in (1, 2))
    per_clip = float(b2 - b1)
    return count_parameters(model), float(b1) - per_clip, per_clip


def estimate_memory(cfg: ExperimentConfig, device_type: str = "cuda", bank_frames: int | None = None
                    ) -> MemoryEstimate:
    """The estimate for one job of `cfg` on a device of `device_type` (its `auto` precision
    resolved there), holding `bank_frames` cached frames (None: unknown)."""
    rt = resolve_runtime(cfg.train, torch.device(device_type))
    t, crop, batch = cfg.model.frames, cfg.data.crop, cfg.train.batch_size
    n, intercept, per_clip = _activation_fit(json.dumps(to_dict(cfg.model), sort_keys=True), rt.precision, t, crop)
    weights = n * 4 / MB
    batch_mb = batch * t * 3 * crop * crop * 4 / MB + (batch * crop * crop * 4 / MB if cfg.model.use_dic else 0.0)
    bank = None
    if bank_frames is not None:
        bank = bank_frames * 3 * cfg.data.aligned_size ** 2 / MB
    return MemoryEstimate(n, weights, weights, ADAM_STATES * weights, max(0.0, intercept + per_clip * batch) / MB,
                          batch_mb, bank, batch, rt.precision)


def bank_frames(cfg: ExperimentConfig) -> int | None:
    """Cached frames the job's clip bank(s) hold on the device (training + the cross protocol's
    test bank); None when a cache is not there."""
    from fdp.data.cache import load_cache, resolve_cache_dir
    from fdp.data.sampling import select
    from fdp.data.settings import SETTINGS

    d = cfg.data
    wanted = [(d.dataset, d.cache_dir, d.setting)]
    if d.test_dataset:
        wanted.append((d.test_dataset, d.test_cache_dir, d.setting.split("/")[0] + "/" + d.test_dataset
                       if d.setting.startswith("cross/") else d.setting))
    total = 0
    for dataset, explicit, setting in wanted:
        try:
            cache = load_cache(resolve_cache_dir(dataset, explicit))
            sel = select(cache, SETTINGS[setting])
        except Exception:  # noqa: BLE001 - no cache (or not readable): the plan already says why
            return None
        total += int(cache.lengths[sel.indices].sum())
    return total


def jobs_fit(per_job_mb: float, jobs: int, gpu_mb: float) -> bool:
    """Whether `jobs` such jobs, each with its own CUDA context, fit in `gpu_mb`."""
    return jobs * (per_job_mb + CUDA_CONTEXT_MB) <= gpu_mb
