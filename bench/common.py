"""Shared helpers of the benchmarks: machine description and the results file."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("results.md")


def machine() -> str:
    if torch.cuda.is_available():
        dev = torch.cuda.get_device_name(0)
    else:
        dev = "no GPU"
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} CPU cores ({cpu}), {dev}"


def versions() -> str:
    return f"python {platform.python_version()}, torch {torch.__version__}"


def append_results(title: str, table: str, note: str = "") -> None:
    """Append one dated section to bench/results.md (the record the README points to)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with RESULTS.open("a") as f:
        f.write(f"\n## {title} — {stamp}\n\nMachine: {machine()}; {versions()}\n\n{table}\n")
        if note:
            f.write(f"\n{note}\n")


def md_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
