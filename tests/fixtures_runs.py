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
