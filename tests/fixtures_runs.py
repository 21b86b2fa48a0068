"""Helpers for tests that need a real tracked sweep."""

from __future__ import annotations


def run_smoke_sweep(synth_cache, root, monkeypatch) -> str:
    """Run sweeps/smoke.yaml --smoke (2 variants x 2 folds, 4 steps) for real into project `root`;
    returns the tracking URI. Shared by the tests that read a real tracked sweep."""
    from pathlib import Path

    from click.testing import CliRunner

    from orchestrator.cli.run import run_cmd

    monkeypatch.setenv("FDP_CACHE_DIR", str(Path(synth_cache).parent))
    monkeypatch.setenv("FDP_PROJECT_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{Path(root) / 'mlflow.db'}"
    spec = Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml"
    res = CliRunner().invoke(run_cmd, [str(spec), "--smoke", "--tracking-uri", uri, "--max-parallel", "2"])
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
