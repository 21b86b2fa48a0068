"""The GPU path, run on CPU (issue #18): the model setup a CUDA job applies (channels_last, bf16
autocast, compile) works on every registered variant when forced on a CPU."""

from __future__ import annotations

import pytest
import torch

from fdp.config import TrainConfig
from fdp.model import build_model
from fdp.runtime import prepare_model, resolve_runtime
from fdp.variants import VARIANTS, build_config


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cuda_model_setup_applied_on_cpu_raises_nothing(name):
    """Today's CUDA branch (train.channels_last, the default, on a GPU) crashed every job: the
    temporal pooling's Conv3d has a 5-D weight and `model.to(memory_format=channels_last)` refuses it."""
    cfg = build_config(name, {"model.num_classes": 5})
    rt = resolve_runtime(TrainConfig(channels_last=True), torch.device("cpu"))
    assert rt.memory_format == "channels_last"
    model, fwd = prepare_model(build_model(cfg.model), rt)
    out = fwd(torch.rand(1, cfg.model.frames, 3, 64, 64))
    assert any(v is not None for v in out.values())
