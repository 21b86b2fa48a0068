"""The GPU path, run on CPU (issue #18): every setting a CUDA job applies -- channels_last for the
2-D convolutions, bf16 autocast, the device-resident clip bank, torch.compile -- forced on a CPU and
trained a few steps on every registered variant, through the trainer's own step function."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from fixtures_runs import TINY

from fdp.config import ConfigError, ExperimentConfig, TrainConfig, apply_overrides, from_dict, to_dict
from fdp.data.cache import load_cache
from fdp.data.sampling import ClipBank, select
from fdp.data.settings import SETTINGS
from fdp.model import build_model
from fdp.runtime import physical_gpu, prepare_model, resolve_runtime
from fdp.runner import fold_names, run_fold
from fdp.train import train_step
from fdp.variants import VARIANTS, build_config

CPU = torch.device("cpu")
# tiny sizes of every backbone (the ViT's width stays 256 = 16 x 16: the DIC needs a 16-side map)
SIZES = {**TINY, "model.encoder.vit_depth": 1, "train.batch_size": 2}  # one ViT block, 2 clips a step
GPU_SETTINGS = {"train.precision": "bf16", "train.channels_last": True}
STEPS = 3
# bf16 autocast vs fp32 from the same initialisation and batches: total loss after STEPS steps.
# Measured on this CPU (AVX-512 BF16): <= 0.2 % for the lgfat variants, 1.7 % for resnet18.
BF16_REL_TOL = 0.03


@pytest.mark.parametrize("name", sorted(n for n in VARIANTS if VARIANTS[n].method == "network"))  # the networks
def test_cuda_model_setup_applied_on_cpu_raises_nothing(name):
    """Today's CUDA branch (train.channels_last, the default, on a GPU) crashed every job: the
    temporal pooling's Conv3d has a 5-D weight and `model.to(memory_format=channels_last)` refuses it."""
    cfg = build_config(name, {"model.num_classes": 5})
    rt = resolve_runtime(TrainConfig(channels_last=True), CPU)
    assert rt.memory_format == "channels_last"
    model, fwd = prepare_model(build_model(cfg.model), rt)
    out = fwd(torch.rand(1, cfg.model.frames, 3, 64, 64))
    assert any(v is not None for v in out.values())


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from a second intra-op thread, and on a shared 2-core machine its
    spin-waiting made these steps 10-20x slower (measured: 0.09 s vs 1-2 s CPU per step)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def bank(synth_cache):
    """The device-resident clip bank a GPU job trains from, here on the CPU."""
    cache = load_cache(synth_cache)
    sel = select(cache, SETTINGS["casme2/5"])
    return ClipBank(cache, sel.indices, sel.labels, CPU, class_names=sel.class_names)


def _train(name: str, bank, settings: dict) -> tuple[nn.Module, list[float], dict]:
    cfg = build_config(name, {**SIZES, **settings})
    torch.manual_seed(0)
    rt = resolve_runtime(cfg.train, CPU)
    model, fwd = prepare_model(build_model(cfg.model), rt)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    model.train()
    losses = []
    for s in range(STEPS):
        terms = train_step(model, fwd, opt, cfg, bank, np.arange(len(bank)), s)
        losses.append(float(terms["total"].detach()))
    with rt.autocast():
        out = fwd(bank.batch(torch.arange(2), cfg.model.frames, train=False))
    return model, losses, out


@pytest.mark.parametrize("name", sorted(n for n in VARIANTS if VARIANTS[n].method == "network"))  # the networks
def test_every_variant_trains_with_the_gpu_settings_on_cpu(name, bank):
    model, losses, out = _train(name, bank, GPU_SETTINGS)
    assert all(np.isfinite(losses)), losses
    # the settings really applied: 2-D conv weights channels_last, the 3-D conv's left as it is,
    # the forward in bf16
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert all(m.weight.is_contiguous() for m in model.modules() if isinstance(m, nn.Conv3d))
    head = out["logits"] if out["logits"] is not None else out["di"]
    assert head.dtype == torch.bfloat16
    # gradients on every parameter, finite, not all zero (the last step's, kept after opt.step)
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), f"{name}: bad gradient in {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient in {pname}"
    _, fp32, _ = _train(name, bank, {"train.precision": "fp32", "train.channels_last": False})
    assert abs(losses[-1] - fp32[-1]) <= BF16_REL_TOL * abs(fp32[-1]), (name, losses, fp32)


def test_auto_means_gpu_settings_on_cuda_and_fp32_on_cpu():
    tc = TrainConfig()
    assert (tc.precision, tc.channels_last) == ("auto", "auto")
    cpu, cuda = resolve_runtime(tc, CPU), resolve_runtime(tc, torch.device("cuda", 0))
    assert (cpu.precision, cpu.memory_format) == ("fp32", "contiguous")
    assert (cuda.precision, cuda.memory_format) == ("bf16", "channels_last")
    assert cpu.compile_backend == cuda.compile_backend == ""
    forced = resolve_runtime(TrainConfig(precision="bf16", channels_last=True, compile=True,
                                         compile_backend="aot_eager"), CPU)
    assert forced.describe() == "bf16, channels_last, compiled (aot_eager)"


def test_compiled_forward_on_cpu_matches_eager(bank):
    """torch.compile runs on CPU too; aot_eager traces the graphs (dynamo + AOT autograd) without
    generating code, so a graph that cannot be traced fails here, not on the GPU box."""
    _, eager, _ = _train("fdp", bank, GPU_SETTINGS)
    _, compiled, _ = _train("fdp", bank, {**GPU_SETTINGS, "train.compile": True, "train.compile_backend": "aot_eager"})
    np.testing.assert_allclose(compiled, eager, rtol=1e-3)


def test_fold_result_records_precision_and_memory_format(synth_cache):
    from orchestrator.cli.train import SMOKE_OVERRIDES

    over = {**SMOKE_OVERRIDES, **GPU_SETTINGS, "data.cache_dir": str(synth_cache), "train.steps": 2,
            "train.batch_size": 2, "train.checkpoint_every": 0}
    cfg = build_config("fdp", over)
    res = run_fold(cfg, fold_names(cfg)[0])
    assert (res.precision, res.memory_format, res.compiled, res.gpu) == ("bf16", "channels_last", "", "")
    assert np.isfinite(res.metrics["uf1"])
    plain = run_fold(build_config("fdp", {**over, "train.precision": "auto", "train.channels_last": "auto"}),
                     fold_names(cfg)[0])
    assert (plain.precision, plain.memory_format) == ("fp32", "contiguous")


def test_renamed_amp_key_keeps_its_meaning():
    assert apply_overrides(ExperimentConfig(), {"train.amp": False}).train.precision == "fp32"
    assert apply_overrides(ExperimentConfig(), {"train.amp": True}).train.precision == "auto"
    old = to_dict(ExperimentConfig())
    old["train"].pop("precision")
    old["train"]["amp"] = False  # a config stored before the rename
    assert from_dict(ExperimentConfig, old).train.precision == "fp32"
    with pytest.raises(ConfigError, match=r"^train.precision: unknown value 'fp16'"):
        apply_overrides(ExperimentConfig(), {"train.precision": "fp16"})
    with pytest.raises(ConfigError, match=r"^train.channels_last: expected auto, true or false, got 'yes'"):
        apply_overrides(ExperimentConfig(), {"train.channels_last": "yes"})


def test_physical_gpu_follows_cuda_visible_devices():
    assert physical_gpu(torch.device("cuda", 0), {"CUDA_VISIBLE_DEVICES": "3"}) == "3"
    assert physical_gpu(torch.device("cuda", 1), {"CUDA_VISIBLE_DEVICES": "2,5"}) == "5"
    assert physical_gpu(torch.device("cuda", 1), {}) == "1"
    assert physical_gpu(CPU, {"CUDA_VISIBLE_DEVICES": "3"}) == ""


# ---------------------------------------------------------------------------------------------
# the same on a real GPU (make gpu-check runs these; skipped without CUDA)


@pytest.fixture(scope="module")
def cuda_bank(synth_cache):
    cache = load_cache(synth_cache)
    sel = select(cache, SETTINGS["casme2/5"])
    return ClipBank(cache, sel.indices, sel.labels, torch.device("cuda", 0), class_names=sel.class_names)


def _train_cuda(name: str, bank, settings: dict) -> tuple[nn.Module, list[float]]:
    cfg = build_config(name, {**SIZES, "train.device": "cuda", **settings})
    torch.manual_seed(0)
    rt = resolve_runtime(cfg.train, bank.device)
    model, fwd = prepare_model(build_model(cfg.model), rt)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    model.train()
    losses = [float(train_step(model, fwd, opt, cfg, bank, np.arange(len(bank)), s)["total"].detach())
              for s in range(STEPS)]
    return model, losses


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(n for n in VARIANTS if VARIANTS[n].method == "network"))  # the networks
def test_every_variant_trains_on_cuda_with_auto_settings(name, cuda_bank):
    rt = resolve_runtime(build_config(name, {**SIZES, "train.device": "cuda"}).train, cuda_bank.device)
    assert (rt.precision, rt.memory_format) == ("bf16", "channels_last")
    model, losses = _train_cuda(name, cuda_bank, {})
    assert all(np.isfinite(losses))
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.is_cuda and torch.isfinite(p.grad).all(), pname
    _, fp32 = _train_cuda(name, cuda_bank, {"train.precision": "fp32", "train.channels_last": False})
    assert abs(losses[-1] - fp32[-1]) <= BF16_REL_TOL * abs(fp32[-1]), (name, losses, fp32)


@pytest.mark.gpu
def test_inductor_compiled_forward_on_cuda_matches_eager(cuda_bank):
    _, eager = _train_cuda("fdp", cuda_bank, {})
    _, compiled = _train_cuda("fdp", cuda_bank, {"train.compile": True})
    np.testing.assert_allclose(compiled, eager, rtol=0.02)


@pytest.mark.gpu
def test_cuda_fold_records_its_gpu_and_settings(synth_cache):
    from orchestrator.cli.train import SMOKE_OVERRIDES

    cfg = build_config("fdp", {**SMOKE_OVERRIDES, "data.cache_dir": str(synth_cache), "train.device": "auto",
                               "train.steps": 4, "train.checkpoint_every": 0})
    res = run_fold(cfg, fold_names(cfg)[0])
    assert (res.device, res.precision, res.memory_format) == ("cuda:0", "bf16", "channels_last")
    assert res.gpu == physical_gpu(torch.device("cuda", 0)) and res.peak_mem_mb > 0
