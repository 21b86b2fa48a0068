"""Model step benchmark: parameters, counted FLOPs per training step,
time per forward+backward+Adam step, peak memory, achieved TFLOP/s — CPU, and CUDA when a GPU is
present. Precision and memory format are the trainer's (`fdp.runtime`, set up by the same
helper): `auto` = bf16 autocast + channels_last on CUDA, fp32 on CPU; `--precision bf16
--channels-last true` forces the GPU settings on CPU too.

    python bench/model.py            # batch 36, t = 8, 3x64x64 (the paper's setting)
    python bench/model.py --quick    # batch 4, fewer steps (CI-sized)
    python bench/model.py --variants fdp,no_dic --devices cuda --compile
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import md_table, publish  # noqa: E402
from fdp.dynamic_image import dynamic_image  # noqa: E402
from fdp.losses import loss_terms  # noqa: E402
from fdp.memory import estimate_memory  # noqa: E402
from fdp.model import build_model, count_parameters  # noqa: E402
from fdp.runtime import prepare_model, resolve_runtime  # noqa: E402
from fdp.variants import build_config  # noqa: E402


def step_fn(model, fwd, opt, cfg, x, y, rt):
    def step():
        di = dynamic_image(x) if model.dic is not None else None
        with rt.autocast():
            out = fwd(x)
        terms = loss_terms(out, y, di, cfg.loss, model)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        return terms["total"]
    return step


def bench_one(variant: str, device: torch.device, batch: int, steps: int, warmup: int, precision: str = "auto",
              channels_last: bool | str = "auto", compile_: bool = False, overrides: dict | None = None) -> dict:
    cfg = build_config(variant, {"model.num_classes": 5, "train.precision": precision,
                                 "train.channels_last": channels_last, "train.compile": compile_,
                                 "train.batch_size": batch, **(overrides or {})})
    rt = resolve_runtime(cfg.train, device)
    est = estimate_memory(cfg, device.type)  # no clip bank here: random batches
    torch.manual_seed(0)
    model, fwd = prepare_model(build_model(cfg.model), rt)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, cfg.model.frames, 3, 64, 64, device=device)
    y = torch.randint(0, 5, (batch,), device=device)
    # count FLOPs of one eager step (forward + backward; Adam's elementwise work is not counted)
    with FlopCounterMode(display=False) as fc:
        step_fn(model, model, opt, cfg, x, y, rt)()
    flops = fc.get_total_flops()
    step = step_fn(model, fwd, opt, cfg, x, y, rt)
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    float(loss.detach())  # one sync at the end
    dt = (time.perf_counter() - t0) / steps
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"variant": variant, "device": str(device), "batch": batch, "precision": rt.precision,
            "memory_format": rt.memory_format,
            "params_m": count_parameters(model) / 1e6, "gflop_step": flops / 1e9, "ms_step": dt * 1e3,
            "steps_s": 1 / dt, "peak_mb": peak, "est_mb": est.total_mb, "tflops": flops / dt / 1e12}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="fdp")
    ap.add_argument("--devices", default="auto", help="cpu, cuda, or auto (cpu + cuda if present)")
    ap.add_argument("--batch", type=int, default=36)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="auto: bf16 autocast on CUDA, fp32 on CPU (train.precision)")
    ap.add_argument("--channels-last", default="auto", choices=["auto", "true", "false"],
                    help="2-D convs in channels_last; auto: on CUDA only (train.channels_last)")
    ap.add_argument("--quick", action="store_true", help="batch 4, 2 steps: a CI-sized run")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    a = ap.parse_args()
    if a.quick:
        a.batch, a.steps, a.warmup = 4, 2, 1
    devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])) if a.devices == "auto" else a.devices.split(",")
    rows = []
    for dev in devices:
        device = torch.device(dev)
        channels_last = {"true": True, "false": False}.get(a.channels_last, "auto")
        for v in a.variants.split(","):
            r = bench_one(v, device, a.batch, a.steps, a.warmup, a.precision, channels_last, a.compile)
            rows.append([r["variant"], r["device"], r["batch"], f"{r['precision']}, {r['memory_format']}",
                         f"{r['params_m']:.2f}", f"{r['gflop_step']:.1f}", f"{r['ms_step']:.1f}",
                         f"{r['steps_s']:.2f}", f"{r['peak_mb']:.0f}", f"{r['est_mb']:.0f}", f"{r['tflops']:.3f}"])
            print(" ".join(str(c) for c in rows[-1]), flush=True)
    table = md_table(["variant", "device", "batch", "precision, memory format", "params (M)", "GFLOP/step", "ms/step",
                      "steps/s", "peak MB", "estimated MB", "TFLOP/s"], rows)
    publish("bench/model.py", a, table, "GFLOP/step counted by torch.utils.flop_counter (forward + backward). "
            "Peak MB: CUDA max allocated; CPU: peak RSS of the process (interpreter and libraries included). "
            "Estimated MB: fdp.memory's prediction of the CUDA figure (weights, grads, Adam, saved activations, batch).")


if __name__ == "__main__":
    main()
