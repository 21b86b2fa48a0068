"""How a model runs on its device: numeric precision, memory format, compilation.

One code path for CPU and CUDA (issue #18): every setting a GPU job applies can be forced on a CPU,
so the tests run exactly the code a GPU job runs. `resolve_runtime` turns the config's `auto`
values into decisions for one device; `prepare_model` applies them where the model is built (the
trainer and `bench/model.py` both call it); `Runtime.autocast` is the precision context of the
forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn


@dataclass(frozen=True)
class Runtime:
    """The decisions for one device (no `auto` left); recorded on every fold result."""

    device: torch.device
    precision: str  # fp32 | bf16 (bf16 autocast of the forward; weights, grads and Adam stay fp32)
    memory_format: str  # channels_last (the 2-D convolutions) | contiguous
    compile_backend: str  # torch.compile backend of the forward, "" = eager

    def autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")


def resolve_runtime(tc: Any, device: torch.device) -> Runtime:
    """Decisions for `device` from a `fdp.config.TrainConfig`."""
    cuda = device.type == "cuda"
    precision = "bf16" if (tc.amp and cuda) else "fp32"
    memory_format = "channels_last" if tc.channels_last else "contiguous"
    return Runtime(device, precision, memory_format, "inductor" if tc.compile and cuda else "")


def prepare_model(model: nn.Module, rt: Runtime) -> tuple[nn.Module, Callable[..., Any]]:
    """(model on the device in its memory format, the forward to call: compiled or the model)."""
    model = model.to(rt.device)
    if rt.memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    fwd = torch.compile(model, backend=rt.compile_backend) if rt.compile_backend else model
    return model, fwd
