"""`mlflow ui` on 127.0.0.1 serves a real smoke sweep: the parent run, every child run, their
metrics and the dynamic-image PNGs, through its REST API (issue: sweeps)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from fixtures_runs import run_smoke_sweep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, endpoint: str, **query) -> bytes:
    url = f"{base}{endpoint}?{urllib.parse.urlencode(query)}" if query else f"{base}{endpoint}"
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def _post(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.integration
def test_mlflow_ui_serves_the_sweep(synth_cache, tmp_path, monkeypatch):
    uri = run_smoke_sweep(synth_cache, tmp_path, monkeypatch)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                             "--port", str(port)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    try:
        deadline = time.time() + 120
        while True:
            try:
                assert _get(base, "/health").strip() == b"OK"
                break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError("mlflow ui did not come up on 127.0.0.1")
                time.sleep(1)
        exp = json.loads(_get(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="fdp-smoke"))
        exp_id = exp["experiment"]["experiment_id"]
        runs = _post(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id], "max_results": 100})["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        parents = [r for r, t in zip(runs, tags) if t.get("fdp.role") == "parent"]
        children = [r for r, t in zip(runs, tags) if t.get("fdp.role") == "job"]
        assert len(parents) == 1
        parent_id = parents[0]["info"]["run_id"]
        # smoke --smoke: 2 variants x 2 folds, every one a FINISHED child of the parent
        assert len(children) == 4
        for r, t in zip(runs, tags):
            if t.get("fdp.role") == "job":
                assert t["mlflow.parentRunId"] == parent_id and r["info"]["status"] == "FINISHED"
        parent_metrics = {m["key"] for m in parents[0]["data"]["metrics"]}
        assert any(k.endswith("/uf1") for k in parent_metrics)  # pooled per configuration
        for child in children:
            rid = child["info"]["run_id"]
            assert {"acc", "uf1", "uar"} <= {m["key"] for m in child["data"]["metrics"]}
            hist = json.loads(_get(base, "/api/2.0/mlflow/metrics/get-history", run_id=rid,
                                   metric_key="train/total"))["metrics"]
            assert len(hist) >= 2  # per-step loss terms
            files = {f["path"] for f in json.loads(_get(base, "/api/2.0/mlflow/artifacts/list",
                                                         run_id=rid)).get("files", [])}
            assert {"predictions.csv", "config.yaml"} <= files
            if "examples.png" in files:  # variants with the DIC module
                png = _get(base, "/get-artifact", path="examples.png", run_uuid=rid)
                assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert sum("examples.png" in {f["path"] for f in json.loads(_get(
            base, "/api/2.0/mlflow/artifacts/list", run_id=c["info"]["run_id"])).get("files", [])}
                   for c in children) == 2  # fdp's two folds have a DIC; no_dic's do not
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
