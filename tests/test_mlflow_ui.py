"""`mlflow ui` on 127.0.0.1 serves a real smoke sweep: the parent run, every child run, their
metrics and the dynamic-image PNGs, through its REST API (issue: sweeps); and, in a real
browser (headless Chromium, marked `browser`), the runs table shows each run's data in the
Dataset column and its fold first in the name, and a child's Duration is its own time (issue #13);
the parent run's page shows the sweep's significance results: the comparison metrics by name and
significance.md rendered in the artifact viewer."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from fixtures_runs import run_demo_smoke, run_smoke_sweep


def _stop(proc: subprocess.Popen) -> None:
    """End a server the test started: terminate, then kill if it does not exit in 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


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


def _serve(uri: str, root: Path):
    """`mlflow ui` serving store `uri` on 127.0.0.1 until the generator closes: its base url."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                             "--port", str(port)], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    try:
        deadline = time.time() + 120
        while True:
            try:
                assert _get(base, "/health").strip() == b"OK"
                break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError("mlflow ui did not come up on 127.0.0.1") from None
                time.sleep(1)
        yield base
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def served(synth_cache, tmp_path_factory):
    """A real smoke sweep (2 variants x 2 folds) in a tmp project, and `mlflow ui` serving it on
    127.0.0.1: (base url, tracking uri, project root)."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("ui")
    try:
        uri = run_smoke_sweep(synth_cache, root, mp)
        for base in _serve(uri, root):
            yield base, uri, root
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def served_demo(synth_cache, tmp_path_factory):
    """The demo's sweep at its smoke size with its claims logged, served by `mlflow ui`:
    (base url, tracking uri)."""
    from orchestrator.report.claims import demo_claims, log_claims
    from orchestrator.report.protocol import collect_protocol
    from orchestrator.report.summarize import find_parent
    from orchestrator.track.driver import SweepTracker

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("ui-demo")
    try:
        uri = run_demo_smoke(synth_cache, root, mp)
        tracker = SweepTracker(uri)
        found = find_parent(tracker, sweep="demo", include_smoke=True)
        log_claims(tracker, found.parent.info.run_id, demo_claims(collect_protocol(tracker, found.children)))
        for base in _serve(uri, root):
            yield base, uri
    finally:
        mp.undo()


@pytest.mark.integration
def test_mlflow_ui_serves_the_sweep(served):
    base, uri, _ = served
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
    # the sweep's significance results: intervals per configuration, the comparison, its record
    assert {"fdp/uf1_ci_low", "fdp/uf1_ci_high", "no_dic/vs_fdp/uf1_delta", "no_dic/vs_fdp/p",
            "no_dic/vs_fdp/holm_p"} <= parent_metrics
    files = {f["path"] for f in json.loads(_get(base, "/api/2.0/mlflow/artifacts/list", run_id=parent_id))["files"]}
    assert {"significance.json", "significance.md"} <= files
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


# --- a real browser (issue #13): headless Chromium driven over the DevTools protocol

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=2000,1000"]
EXPANDER = 'button[data-component-id$="runnamecellrenderer.tsx_46"]'  # the + before a parent run's name


class Browser:
    """Just enough of the Chrome DevTools protocol: navigate, evaluate JS, screenshot."""

    def __init__(self, ws) -> None:
        self.ws, self.n = ws, 0

    async def call(self, method: str, **params):
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=60)
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str):
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return r.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 60.0):
        import asyncio

        deadline = time.time() + timeout
        while time.time() < deadline:
            v = await self.js(expression)
            if v:
                return v
            await asyncio.sleep(0.5)
        raise AssertionError(f"timed out waiting for {expression}; page text: {await self.js('document.body.innerText')}")

    async def screenshot(self, path: Path) -> None:
        import base64

        r = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(r["data"]))


def _duration_s(text: str) -> float:
    """'3.2s' / '1.1min' / '950ms' (the UI's Duration) in seconds."""
    m = re.fullmatch(r"([\d.]+)\s*(ms|s|min|h)", text.strip())
    assert m, text
    return float(m.group(1)) * {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}[m.group(2)]


def in_chromium(tmp_path: Path, steps) -> dict[str, str]:
    """Start headless Chromium, run `await steps(browser)` on its page, stop it: what `steps` returns."""
    import asyncio

    import aiohttp

    port = _free_port()
    proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}",
                             f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def drive() -> dict[str, str]:
        deadline = time.time() + 60
        while True:
            try:
                pages = json.loads(_get(f"http://127.0.0.1:{port}", "/json/list"))
                page = next(p for p in pages if p.get("type") == "page")
                break
            except Exception:
                if time.time() > deadline:
                    raise AssertionError("chromium's DevTools endpoint did not come up") from None
                await asyncio.sleep(0.5)
        async with aiohttp.ClientSession(trust_env=False) as http:
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                b = Browser(ws)
                await b.call("Page.enable")
                return await steps(b)

    try:
        return asyncio.run(drive())
    finally:
        _stop(proc)


def _shots(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("FDP_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium; `make test-browser`)")
def test_runs_table_and_child_run_in_a_real_browser(served, tmp_path):
    import asyncio

    from orchestrator.track.driver import SweepTracker

    base, uri, root = served
    tracker = SweepTracker(uri)
    exp = tracker.client.get_experiment_by_name("fdp-smoke")
    child = next(r for r in tracker.search(exp.experiment_id, "tags.`fdp.role` = 'job'")
                 if r.info.run_name == "fold=01 fdp seed0")
    fp = child.data.tags["fdp.data_fingerprint"]
    shots = _shots(tmp_path)

    async def steps(b: Browser) -> dict[str, str]:
        await b.call("Page.navigate", url=f"{base}/#/experiments/{exp.experiment_id}/runs")
        await b.wait_for(f"document.querySelectorAll('{EXPANDER}').length > 0")
        await b.js(f"document.querySelectorAll('{EXPANDER}').forEach(e => e.click())")  # unfold the children
        await b.wait_for("document.body.innerText.includes('fold=01 fdp seed0')")
        await asyncio.sleep(1.0)
        await b.screenshot(shots / "runs_table.png")
        table = await b.js("document.body.innerText")
        await b.call("Page.navigate", url=f"{base}/#/experiments/{exp.experiment_id}/runs/{child.info.run_id}")
        await b.wait_for("document.body.innerText.includes('Duration') && "
                         "document.body.innerText.includes('casme2/5')")
        await asyncio.sleep(1.0)
        await b.screenshot(shots / "child_run.png")
        return {"table": table, "child": await b.js("document.body.innerText")}

    text = in_chromium(tmp_path, steps)
    for name in ("runs_table.png", "child_run.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = text["table"]
    # every child shows under its fold-first name, and the Dataset column names the data
    for fold in ("01", "02"):
        for variant in ("fdp", "no_dic"):
            assert f"fold={fold} {variant} seed0" in table
    assert table.count(f"casme2/5 ({fp[:8]}") >= 5 or table.count("casme2/5") >= 5, table  # 4 children + parent
    # the child's page: its dataset (name, digest) and a Duration that is its own time
    page = text["child"]
    assert "casme2/5" in page and fp[:6] in page, page
    m = re.search(r"Duration\s*\n?\s*([\d.]+\s*(?:ms|s|min|h))", page)
    assert m, page
    ui_duration = _duration_s(m.group(1))
    wall = child.data.metrics["wall_time_s"]
    run_s = (child.info.end_time - child.info.start_time) / 1000
    assert abs(ui_duration - run_s) <= max(0.15 * run_s, 0.6)  # the UI shows the run's own span
    # the span is the job's: training (wall_time_s) plus its data loading, evaluation and logging,
    # never the time it waited for a free slot
    assert wall <= run_s < wall + 12, (wall, run_s)


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium; `make test-browser`)")
def test_demo_parent_run_page_shows_the_significance_results_and_claims(served_demo, tmp_path):
    """The demo's parent run page lists the comparison metrics and the claims by name with the
    values the run holds, describes whether the statistics are complete, and opens significance.md
    and claims.md in the artifact viewer as tables."""
    import asyncio

    from orchestrator.track.driver import SweepTracker

    base, uri = served_demo
    tracker = SweepTracker(uri)
    exp = tracker.client.get_experiment_by_name("fdp-demo")
    parent = tracker.search(exp.experiment_id, "tags.`fdp.role` = 'parent'")[0]
    shots = _shots(tmp_path)
    page = f"{base}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}"

    async def steps(b: Browser) -> dict[str, str]:
        await b.call("Page.navigate", url=page)
        await b.wait_for("document.body.innerText.includes('ststnet_shuffled/vs_fdp/holm_p')", timeout=120)
        overview = await b.js("document.body.innerText")
        # the metrics table's search box, as a user would filter it: the comparisons and claims in view
        await b.js("(() => { const i = document.querySelector('input[placeholder=\"Search metrics\"]');"
                   " Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(i, 'vs_fdp');"
                   " i.dispatchEvent(new Event('input', {bubbles: true})); })()")
        await b.wait_for("!document.body.innerText.includes('claims/')")
        await asyncio.sleep(1.0)
        await b.screenshot(shots / "demo_parent_run.png")
        await b.call("Page.navigate", url=f"{page}/artifacts/significance.md")
        await b.wait_for("document.body.innerText.includes('paired comparisons against the reference (fdp)')",
                         timeout=120)
        await asyncio.sleep(1.0)
        await b.screenshot(shots / "demo_significance_md.png")
        significance = await b.js("document.body.innerText")
        await b.call("Page.navigate", url="about:blank")  # a new hash route alone keeps the viewer's file
        await b.call("Page.navigate", url=f"{page}/artifacts/claims.md")
        await b.wait_for("document.body.innerText.includes('FDP above the shuffled control')", timeout=120)
        await asyncio.sleep(1.0)
        await b.screenshot(shots / "demo_claims_md.png")
        return {"overview": overview, "significance": significance, "claims": await b.js("document.body.innerText")}

    text = in_chromium(tmp_path, steps)
    for name in ("demo_parent_run.png", "demo_significance_md.png", "demo_claims_md.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = [ln.strip() for ln in text["overview"].splitlines()]
    metrics = parent.data.metrics
    for key in ("ststnet_shuffled/vs_fdp/uf1_delta", "ststnet_shuffled/vs_fdp/uf1_delta_ci_low", "ststnet/vs_fdp/p",
                "lbp_top/vs_fdp/holm_p", "single_frame/vs_fdp/n_folds", "fdp/uf1", "fdp/uf1_ci_low",
                "claims/fdp_above_control/estimate", "claims/test_selection_lifts_control/holds"):
        shown = lines[lines.index(key) + 1]  # the metrics table: a name, then its value
        assert float(shown) == pytest.approx(metrics[key]), (key, shown)
    assert "Significance (significance.md, significance.json): complete:" in text["overview"]
    # the artifact viewer renders the markdown (no '###', no '| --- |' left), its rows the run's numbers
    art = text["significance"]
    assert "sweep demo: pooled metrics" in art and "### sweep" not in art and "| ---" not in art, art
    assert f"{100 * metrics['fdp/uf1']:.2f} [{100 * metrics['fdp/uf1_ci_low']:.2f}, " in art
    assert "fdp vs ststnet" in art and "ststnet/vs_fdp" in art
    claims = text["claims"]
    assert "|---" not in claims and parent.data.tags["fdp.claims"] in claims
    est = metrics["claims/fdp_above_control/estimate"]
    assert f"{100 * est:+.1f} pp" in claims
