"""Batch assembly benchmark: `ClipBank.batch` (and the ARP dynamic-image target built from it)
against one training step of the FDP model, batch 36, t = 8, 3x64x64. Target: assembly < 5 % of a
step, so the data path never starves the model and needs no DataLoader workers.

    python bench/batch_assembly.py            # CASME II-sized bank (255 clips), full FDP step
    python bench/batch_assembly.py --quick    # fewer repetitions (CI-sized)
    python bench/batch_assembly.py --device cuda

The bank holds random uint8 frames: assembly cost depends on sizes, not on pixel values.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import append_results, md_table  # noqa: E402
from fdp.data.cache import ClipCache  # noqa: E402
from fdp.data.sampling import ClipBank  # noqa: E402
from fdp.dynamic_image import dynamic_image  # noqa: E402
from fdp.losses import loss_terms  # noqa: E402
from fdp.model import build_model  # noqa: E402
from fdp.variants import build_config  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_time(fn, reps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fake_cache(clips: int, seed: int = 0) -> ClipCache:
    """CASME II-like sizes: onset..offset spans of 30-90 frames at 72x72."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(30, 91, clips)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    frames = rng.integers(0, 256, (int(lengths.sum()), 3, 72, 72), dtype=np.uint8)
    meta = [{"subject": f"{i % 26:02d}", "clip_id": f"c{i}", "emotion": "others", "fps": 200.0, "start": int(s),
             "length": int(n), "onset": 0, "apex": None, "offset": int(n) - 1, "source": "bench"}
            for i, (s, n) in enumerate(zip(starts, lengths))]
    return ClipCache(path=Path("bench"), dataset="casme2", frames=frames, clips=meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=36)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--clips", type=int, default=255)
    ap.add_argument("--variant", default="fdp")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    args = ap.parse_args()
    device = torch.device(args.device)
    reps, step_reps = (20, 2) if args.quick else (100, 5)

    cache = fake_cache(args.clips)
    bank = ClipBank(cache, np.arange(args.clips), np.zeros(args.clips, np.int64), device)
    gen = torch.Generator(device=device).manual_seed(0)
    idx = torch.randint(0, len(bank), (args.batch,), generator=gen, device=device)

    def assemble() -> torch.Tensor:
        return bank.batch(idx, args.frames, True, gen)

    t_batch = _median_time(assemble, reps, 5, device)
    x = assemble()
    t_di = _median_time(lambda: dynamic_image(x), reps, 5, device)

    cfg = build_config(args.variant, {"model.num_classes": 5})
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    y = torch.randint(0, 5, (args.batch,), device=device)
    di = dynamic_image(x) if model.dic is not None else None

    def step() -> None:
        out = model(x)
        terms = loss_terms(out, y, di, cfg.loss, model)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()

    t_step = _median_time(step, step_reps, 1, device)
    rows = [
        ["bank.batch (train: offsets, crop, flip)", f"{t_batch * 1e3:.2f}", f"{100 * t_batch / t_step:.2f} %"],
        ["dynamic_image target", f"{t_di * 1e3:.2f}", f"{100 * t_di / t_step:.2f} %"],
        [f"{args.variant} training step (fwd+bwd+Adam)", f"{t_step * 1e3:.0f}", "100 %"],
    ]
    table = md_table(["what", "ms (median)", "of a step"], rows)
    print(table)
    ok = t_batch + t_di < 0.05 * t_step
    note = (f"batch {args.batch}, t = {args.frames}, {args.clips}-clip bank ({bank.frames.shape[0]} frames, "
            f"{bank.frames.numel() / 2**20:.0f} MiB uint8) on {device}, torch threads {torch.get_num_threads()}; "
            f"target batch assembly + DI < 5 % of a step: {'met' if ok else 'NOT met'}.")
    print(note)
    if not args.no_record:
        append_results(f"Batch assembly vs. training step ({device})", table, note)


if __name__ == "__main__":
    main()
