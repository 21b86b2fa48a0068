"""Helpers for tests that train, track and stop real runs: the tiny network config, a tracked smoke
sweep, driver processes and the processes they leave."""

from __future__ import annotations

import os
from pathlib import Path

from fdp.profiles import SMOKE

# the smallest network the trainer accepts (the smoke profile's widths) at batch 4 on the CPU, logging
# and checkpointing every 2 steps so that a few-step fold has a checkpoint to resume from
TINY: dict = {**{k: v for k, v in SMOKE.items() if k.startswith("model.")},
              "train.batch_size": 4, "train.device": "cpu", "train.log_every": 2, "train.checkpoint_every": 2}


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process (Linux /proc); one that ends while it is
    read is left out."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(d)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmd.strip())
    return out


def descendants(pid: int, procs: dict[int, tuple[int, str]] | None = None) -> set[int]:
    """The pids of every process below `pid` in `procs` (default: the processes now)."""
    procs = processes() if procs is None else procs
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (pp, _) in procs.items() if pp in frontier} - found
        found |= frontier
    return found


def run_smoke_sweep(synth_cache, root, monkeypatch) -> str:
    """Run sweeps/smoke.yaml --smoke (2 variants x 2 folds, 4 steps) for real into project `root`;
    returns the tracking URI. Shared by the tests that read a real tracked sweep. In this process
    (`--in-process`: the same jobs, runs, resume and pooling as on Ray, without starting a cluster),
    so the fast tier can read it; the sweep on Ray is the scheduler tests' and the demo's."""
    from pathlib import Path

    from click.testing import CliRunner

    from orchestrator.cli.run import run_cmd

    monkeypatch.setenv("FDP_CACHE_DIR", str(Path(synth_cache).parent))
    monkeypatch.setenv("FDP_PROJECT_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{Path(root) / 'mlflow.db'}"
    spec = Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml"
    res = CliRunner().invoke(run_cmd, [str(spec), "--smoke", "--tracking-uri", uri, "--in-process"])
    assert res.exit_code == 0, res.output
    return uri


def cli_driver(root, code: str, *args: str):
    """A driver process (`python -c code args...`) for the tests that SIGKILL one: its own session
    (so `os.killpg` takes its local Ray with it), project root `root`, no inherited stores or cluster."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "FDP_PROJECT_ROOT": str(root), "MLFLOW_DISABLE_TELEMETRY": "true",
           "RAY_USAGE_STATS_ENABLED": "0"}
    for k in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "FDP_OPTUNA_STORAGE"):
        env.pop(k, None)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finished_runs(db, role: str) -> int:
    """FINISHED runs with tag fdp.role = `role` in the SQLite store `db`, read-only with sqlite3 (an
    MlflowClient here would race the driver's schema creation); 0 while it is not there or locked."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                               "WHERE t.key = 'fdp.role' AND t.value = ? AND r.status = 'FINISHED'",
                               (role,)).fetchone()[0]
    except sqlite3.Error:
        return 0


def statuses_by_key(runs) -> dict[str, list[str]]:
    """job key -> the statuses of its runs (exactly ["FINISHED"] when a job ran to completion once)."""
    out: dict[str, list[str]] = {}
    for r in runs:
        out.setdefault(r.data.tags["fdp.job_key"], []).append(r.info.status)
    return out


def run_demo_smoke(synth_cache, root, monkeypatch) -> str:
    """Run sweeps/demo.yaml --smoke (5 methods x 2 folds, 4 steps) on the shared synthetic benchmark
    prepared at the laptop profile's frame size into project `root` (the sweep as `fdp-sweep demo
    --smoke` runs it, without the claims); returns the tracking URI."""
    from pathlib import Path

    from click.testing import CliRunner

    from fdp.data.cache import prepare
    from fdp.profiles import LAPTOP_ALIGNED
    from orchestrator.cli.run import run_cmd

    monkeypatch.setenv("FDP_PROJECT_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # a 72 x 72 cache is refused by the laptop profile: the same draw, prepared at its size
    cache = prepare("casme2", Path(synth_cache).parents[1] / "data", out_dir=Path(root) / "cache", size=LAPTOP_ALIGNED)
    uri = f"sqlite:///{Path(root) / 'mlflow.db'}"
    spec = Path(__file__).resolve().parents[1] / "sweeps" / "demo.yaml"
    res = CliRunner().invoke(run_cmd, [str(spec), "--smoke", "--tracking-uri", uri, "--max-parallel", "2",
                                       "--set", f"data.cache_dir={cache}"])
    assert res.exit_code == 0, res.output
    return uri
