"""Shared helpers of the benchmarks: machine description, the results file, the SAMM-sized
synthetic benchmark and a sweep run through the real scheduler and tracking."""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).with_name("results.md")
RESULTS_ENV = "FDP_BENCH_RESULTS"  # another results file (bench/gpu_check.py --results; its test writes a temp one)


def results_path() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or RESULTS)


def machine() -> str:
    """The machine in the terms that change a figure: cores, CPU and the kernels each library
    uses (fdp.machine), GPU."""
    from fdp.machine import machine_info, machine_summary

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        dev = f"{torch.cuda.device_count()} x {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    else:
        dev = "no GPU"
    return f"{os.cpu_count()} CPU cores, {machine_summary(machine_info())}, {dev}"


def versions() -> str:
    return f"python {platform.python_version()}, torch {torch.__version__}"


def append_results(title: str, table: str, note: str = "") -> None:
    """Append one dated section to bench/results.md (the record the README points to), or to
    $FDP_BENCH_RESULTS."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with results_path().open("a") as f:
        f.write(f"\n## {title} — {stamp}\n\nMachine: {machine()}; {versions()}\n\n{table}\n")
        if note:
            f.write(f"\n{note}\n")


def publish(script: str, args, table: str, note: str = "") -> None:
    """Print a benchmark's table; unless `--no-record`, append it to bench/results.md under the
    script's name (with " --quick" for a quick run)."""
    print(table)
    if not args.no_record:
        append_results(script + (" --quick" if getattr(args, "quick", False) else ""), table, note)


def md_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def synthetic_benchmark(root: Path, subjects: int, clips: int, seed: int = 0, size: int = 128,
                        frames_per_clip: int = 40) -> tuple[Path, float]:
    """Write (or reuse) the synthetic benchmark with `clips` clips over `subjects` subjects and
    prepare its clip cache under `root`; returns (cache dir, seconds spent).

    `fdp.data.synth.write_synthetic` writes the same number of clips for every subject, so it
    writes ceil(clips / subjects) per subject and the last clip row of the last subjects is
    deleted from the annotation sheet (SAMM-sized: 28 subjects, 136 clips = 24 x 5 + 4 x 4). The
    real reader and preparation then see exactly `clips` clips.
    """
    import openpyxl

    from fdp.data.cache import prepare
    from fdp.data.synth import ANNOTATION_NAME, write_synthetic

    if not 1 <= subjects <= clips:
        raise SystemExit(f"need 1 <= subjects <= clips, got {subjects} subjects, {clips} clips")
    per = -(-clips // subjects)
    data = root / f"synth-{subjects}s-{clips}c-seed{seed}-{size}px-{frames_per_clip}f"
    t0 = time.perf_counter()
    if not (data / ANNOTATION_NAME).is_file():
        write_synthetic(data, subjects=subjects, clips_per_subject=per, seed=seed, size=size,
                        frames_per_clip=frames_per_clip)
        extra = subjects * per - clips
        if extra:
            wb = openpyxl.load_workbook(data / ANNOTATION_NAME)
            ws = wb.active
            last_row = {}  # subject -> sheet row of its last clip (rows are subject after subject)
            for r, values in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
                last_row[values[0]] = r
            for r in sorted((last_row[s] for s in sorted(last_row)[-extra:]), reverse=True):
                ws.delete_rows(r)
            wb.save(data / ANNOTATION_NAME)
            meta = json.loads((data / "synthetic.json").read_text())
            meta["bench_rows_deleted"] = extra  # provenance: the counts above are before the deletion
            (data / "synthetic.json").write_text(json.dumps(meta, indent=2))
    cache = prepare("casme2", data, out_dir=root / "cache")
    return cache, time.perf_counter() - t0


def run_bench_sweep(raw: dict[str, Any], root: Path, max_parallel: int | None = None, num_gpus: int | None = None
                    ) -> tuple[Any, list[dict[str, float]]]:
    """Run the sweep spec `raw` (parsed YAML) through `run_sweep` with MLflow tracking in a fresh
    SQLite store under `root` (a local Ray declared with `num_gpus` GPUs when given: fake ones on a
    CPU machine exercise the GPU packing); returns (SweepReport, per-job metrics of the tracked
    job runs: wall_time_s, steps_per_s, peak_mem_mb, acc, uf1, ...)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from mlflow import MlflowClient

    from orchestrator.plan.jobs import expand
    from orchestrator.run.scheduler import SweepOptions, run_sweep
    from orchestrator.spec.sweep import parse_spec

    plan = expand(parse_spec(raw))
    if not plan.complete:
        raise SystemExit("; ".join(plan.problems))
    uri = f"sqlite:///{root / (raw['name'] + '.db')}"
    report = run_sweep(plan, SweepOptions(root=root, tracking_uri=uri, max_parallel=max_parallel, fresh=True,
                                          stream=io.StringIO(), num_gpus=num_gpus))
    runs = MlflowClient(uri).search_runs([report.experiment_id], "tags.`fdp.role` = 'job'", max_results=10000)
    return report, [dict(r.data.metrics) for r in runs if r.info.status == "FINISHED"]
