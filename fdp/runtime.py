"""How a model runs on its device: numeric precision, memory format, compilation.

One code path for CPU and CUDA: every setting a GPU job applies can be forced on a CPU,
so the tests run exactly the code a GPU job runs. `resolve_runtime` turns the config's `auto`
values into decisions for one device; `prepare_model` applies them where the model is built (the
trainer and `bench/model.py` both call it); `Runtime.autocast` is the precision context of the
forward pass. The clip bank is resident on the same device either way (fdp.data.sampling), so
there are no host-to-device batch copies to make asynchronous.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from fdp.fold import TrainingError

# Modules whose weights take the channels_last layout: the 4-D (2-D conv) weights only. The
# temporal pooling's Conv3d has a 5-D weight, for which torch refuses channels_last
# (`model.to(memory_format=torch.channels_last)` on the whole model crashed every CUDA job); it
# stays contiguous -- cuDNN then reads its input, a transposed stack of frame maps, as it comes.
CHANNELS_LAST_MODULES = (nn.Conv2d, nn.ConvTranspose2d)


@dataclass(frozen=True)
class Runtime:
    """The decisions for one device (no `auto` left); recorded on every fold result."""

    device: torch.device
    precision: str  # fp32 | bf16 (bf16 autocast of the forward; weights, grads and Adam stay fp32)
    memory_format: str  # channels_last (the 2-D convolutions) | contiguous
    compile_backend: str  # torch.compile backend of the forward, "" = eager

    def autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def describe(self) -> str:
        """One line for logs and tables: "bf16, channels_last, compiled (inductor)"."""
        return ", ".join([self.precision, self.memory_format]
                         + ([f"compiled ({self.compile_backend})"] if self.compile_backend else []))


def resolve_runtime(tc: Any, device: torch.device) -> Runtime:
    """Decisions for `device` from a `fdp.config.TrainConfig`: `auto` means the GPU settings on
    CUDA and plain fp32 / contiguous on CPU (bf16 on CPU is an option, not a default, until a
    learning check says it learns as well)."""
    cuda = device.type == "cuda"
    precision = ("bf16" if cuda else "fp32") if tc.precision == "auto" else tc.precision
    channels_last = cuda if tc.channels_last == "auto" else bool(tc.channels_last)
    return Runtime(device, precision, "channels_last" if channels_last else "contiguous",
                   tc.compile_backend if tc.compile else "")


def apply_memory_format(model: nn.Module, memory_format: str) -> nn.Module:
    """Put the 2-D convolutions' weights in `memory_format` (in place); see CHANNELS_LAST_MODULES."""
    if memory_format == "channels_last":
        for m in model.modules():
            if isinstance(m, CHANNELS_LAST_MODULES):
                m.to(memory_format=torch.channels_last)
    elif memory_format != "contiguous":
        raise ValueError(f"memory format {memory_format!r}: expected channels_last or contiguous")
    return model


def prepare_model(model: nn.Module, rt: Runtime) -> tuple[nn.Module, Callable[..., Any]]:
    """(model on the device in its memory format, the forward to call: compiled or the model
    itself). Parameters are shared, so optimizer, state_dict and checkpoints use `model`."""
    model = apply_memory_format(model.to(rt.device), rt.memory_format)
    fwd = torch.compile(model, backend=rt.compile_backend) if rt.compile_backend else model
    return model, fwd


def physical_gpu(device: torch.device, env: dict[str, str] | None = None) -> str:
    """Which physical GPU a CUDA device is: its entry in CUDA_VISIBLE_DEVICES (Ray sets it to the
    GPU(s) it assigned the job; torch numbers the visible ones from 0). "" for a non-CUDA device."""
    if device.type != "cuda":
        return ""
    env = os.environ if env is None else env
    index = device.index or 0
    visible = [v.strip() for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if "CUDA_VISIBLE_DEVICES" not in env:
        return str(index)
    return visible[index] if index < len(visible) else f"?{index}"


def resolve_device(name: str) -> torch.device:
    """The device `train.device` names. `auto` and `cuda` are the first *visible* GPU, cuda:0 --
    under Ray that is the one GPU the job was assigned (CUDA_VISIBLE_DEVICES); `cuda:N` must be
    visible too."""
    if name == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"train.device={name}: CUDA is not available on this machine")
        n = torch.cuda.device_count()
        if (dev.index or 0) >= n:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            raise TrainingError(f"train.device={name}: only {n} GPU(s) visible"
                                + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""))
        dev = torch.device("cuda", dev.index or 0)
    return dev


def deterministic_kernels(device: torch.device) -> None:
    """Ask torch for its deterministic kernels where they cost little: on CPU, where nearly every
    kernel already is one, this makes the exceptions announce themselves (a warning, once per
    operation: the authors' max-unpooling has no deterministic CPU kernel). On CUDA the
    deterministic convolutions and scatter kernels are slower, so a GPU job keeps cuDNN's choice;
    two GPU runs of one seed may then differ in the last bits. What no setting removes: results
    differ between CPUs whose kernels differ (ATEN_CPU_CAPABILITY, bench/demo_spread.py)."""
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
