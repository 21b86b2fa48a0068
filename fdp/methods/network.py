"""The method `network`: FDP (paper §3) and its registered variants (fdp.variants), trained by
`fdp.train.train_fold` (Adam, a fixed step budget, eq. 8's loss, the model after the last step)."""

from __future__ import annotations

from typing import Any

from fdp.methods.registry import Method, register


def describe_input(cfg: Any) -> str:
    m, d = cfg.model, cfg.data
    colour = "grey (luma of the RGB frames)" if m.arch == "authors_code" else "RGB"
    return (f"{m.frames} frames of the clip, {colour} {d.crop} x {d.crop} crops of the aligned face, uniformly "
            f"spaced over onset..offset")


def count(cfg: Any) -> int:
    from fdp.model import build_model, count_parameters

    return count_parameters(build_model(cfg.model))


def check(cfg: Any) -> None:
    from fdp.config import check_config

    check_config(cfg)


def memory(cfg: Any, device: str, frames: int | None) -> Any:
    from fdp.memory import estimate_memory

    return estimate_memory(cfg, device, frames)


def run(inputs: Any) -> Any:
    from fdp.train import train_fold

    return train_fold(inputs.cfg, inputs.split, inputs.bank, test_bank=inputs.test_bank, callback=inputs.callback,
                      checkpoint_path=inputs.checkpoint_path, labels=inputs.train_labels, probe=inputs.probe)


register(Method(
    name="network",
    paper="Shao et al. 2025, Micro-Expression Recognition via Fine-Grained Dynamic Perception (§3); "
          "the variants of its Tables 9, 10, 14 are config diffs of it (fdp.variants)",
    input=describe_input, params=count, params_note="trainable weights of the built model, counted",
    run=run, check=check, memory=memory, title="FDP network"))
