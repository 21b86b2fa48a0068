"""End to end: `fdp-sweep run sweeps/protocol.yaml --smoke`, then `fdp-sweep summarize --table
protocol`, through the one scheduler (Ray) and the one worker; every registered method takes part."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fdp.methods import METHODS
from fdp.test_selected import LABEL

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "sweeps" / "protocol.yaml"


@pytest.fixture(scope="module")
def protocol_sweep(ray_cluster, synth_cache, tmp_path_factory):
    """The smoke protocol sweep, run once for the module: (tracking URI, summarize output, tidy output)."""
    import os

    from orchestrator.cli.run import run_cmd
    from orchestrator.cli.summarize import summarize_cmd

    root = tmp_path_factory.mktemp("protocol")
    env = {"FDP_CACHE_DIR": str(Path(synth_cache).parent), "FDP_PROJECT_ROOT": str(root)}
    old = {k: os.environ.get(k) for k in (*env, "MLFLOW_TRACKING_URI")}
    os.environ.update(env)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        uri = f"sqlite:///{root / 'mlflow.db'}"
        res = CliRunner().invoke(run_cmd, [str(SPEC), "--smoke", "--tracking-uri", uri, "--max-parallel", "2"])
        assert res.exit_code == 0, res.output
        table = CliRunner().invoke(summarize_cmd, ["--table", "protocol", "--include-smoke", "--tracking-uri", uri])
        assert table.exit_code == 0, table.output
        tidy = CliRunner().invoke(summarize_cmd, ["--table", "protocol", "--include-smoke", "--format", "tidy",
                                                  "--tracking-uri", uri])
        assert tidy.exit_code == 0, tidy.output
        yield uri, table.output, tidy.stdout
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _rows(md: str) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| Method") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip("| ").split(" | ")]
            out.setdefault(cells[0], []).append(cells)
    return out


@pytest.mark.integration
def test_protocol_sweep_runs_and_summarizes(protocol_sweep):
    _, md, tidy = protocol_sweep
    variants = yaml.safe_load(SPEC.read_text())["variants"]
    rows = _rows(md)
    for v in variants:
        assert f"{v} (re-run here)" in rows, md
    # networks trained in steps (FDP's and the small ones on flow): one row per selection metric, with
    # test-selected cells and the paired difference
    for v in ("fdp", "authors_code", "fdp_shuffled", "ststnet", "off_apexnet", "ststnet_shuffled"):
        assert len(rows[f"{v} (re-run here)"]) == 2
        assert all(r[4] != "—" and r[6] != "—" and r[2].count("[") == 1 for r in rows[f"{v} (re-run here)"])
    # fitted once: honest cells only
    for v in ("single_frame", "lbp_top"):
        (once,) = rows[f"{v} (re-run here)"]
        assert once[2] != "—" and once[4:] == ["—"] * 4 and "fitted once" in once[1]
    # MEB's published rows beside the re-run of the same method
    names = list(rows)
    assert names.index("STSTNet (published: MEB notebook)") == names.index("ststnet (re-run here)") + 1
    assert "71.27" in " ".join(rows["STSTNet (published: MEB notebook)"][0])
    assert names[names.index("off_apexnet (re-run here)") + 1].startswith("OFF-ApexNet (MEB's single-stream form)")
    assert md.count(LABEL) >= 6 and "- provenance: " in md
    assert all(LABEL in line for line in md.splitlines() if line.startswith("- provenance: "))
    for r in csv.DictReader(io.StringIO(tidy)):
        assert ("test_selected" in r["metric"]) == (LABEL in r["selection"]), r


@pytest.mark.integration
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_ran_through_the_scheduler(method, protocol_sweep):
    """Each registered method has jobs in the sweep, all FINISHED, and each job's predictions are
    what the fold runner gives in this process for the job's logged config (same code, same numbers)."""
    from fdp.config import ExperimentConfig, from_dict
    from fdp.runner import run_fold
    from orchestrator.track.driver import SweepTracker

    uri = protocol_sweep[0]
    tracker = SweepTracker(uri)
    runs = [r for e in tracker.client.search_experiments() for r in tracker.search(e.experiment_id,
                                                                                  "tags.`fdp.role` = 'job'")]
    mine = [r for r in runs if r.data.tags.get("fdp.method") == method]
    assert mine and all(r.info.status == "FINISHED" for r in mine), method
    # what was fitted and how its number was selected are on the run
    assert all(r.data.metrics["n_params"] > 0 and r.data.tags["fdp.selection_detail"] for r in mine)
    run = sorted(mine, key=lambda r: r.data.tags["fdp.fold"])[0]
    art = Path(run.info.artifact_uri.removeprefix("file://"))
    cfg = from_dict(ExperimentConfig, yaml.safe_load((art / "config.yaml").read_text()))
    direct = run_fold(cfg, run.data.tags["fdp.fold"])
    logged = tracker.predictions(run.info.run_id)
    assert logged["preds"] == direct.preds and logged["labels"] == direct.labels
