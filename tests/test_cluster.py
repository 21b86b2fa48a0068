"""The README's cluster command, for real (issue #5 item 7): `ray job submit --working-dir .` of
a smoke sweep to a `ray start --head` cluster on loopback, tracked by an `mlflow server`.

What it proves: the job server (the `ray[default]` extra) accepts the job; `--working-dir .`
uploads the project without `.venv`, `.git`, `mlruns`, `.cache` or `mlflow.db` (Ray applies
`.gitignore` and its default excludes);
`fdp-sweep` runs as the job's driver and its fold jobs import the uploaded code on the workers;
every write goes to the tracking server given in the runtime env, artifacts included (through the
server, not into the job's temporary working directory); the job ends SUCCEEDED with one FINISHED
child run per job key and the pooled metrics on the parent run.

Token authentication is on (Ray >= 2.59 enables it for local clusters; SPEC §7): the cluster and
the client share a token through `RAY_AUTH_TOKEN`, so nothing is read from or written to
`~/.ray`. The cluster's processes are stopped by id at the end (`ray stop` would stop every Ray
instance on the machine, other users' included).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures_runs import descendants, processes

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # ray, mlflow and fdp-sweep of this environment
# what a job may not inherit from the test's environment: it gets these from its runtime env only
SCRUB = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "MLFLOW_TRACKING_URI", "FDP_PROJECT_ROOT", "FDP_CACHE_DIR",
         "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None, timeout: float = 10) -> bytes:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


@dataclass
class Service:
    """A server this test started: `url` answers once `probe` (a path under it) does."""

    what: str
    proc: subprocess.Popen
    url: str
    probe: str
    log: Path
    token: str | None = None

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                _get(self.url + self.probe, self.token)
                return
            except (OSError, urllib.error.URLError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{self.what} did not come up at {self.url}:\n{self.log.read_text()[-4000:]}") from None
                time.sleep(0.5)


def _stop(proc: subprocess.Popen, tag: str | None = None, grace: float = 30) -> None:
    """SIGTERM `proc` (which stops what it started), then SIGKILL what is left of its process tree
    and whatever names `tag` (the cluster's own temp dir) on its command line: job drivers run in
    sessions of their own, out of reach of a process group. Only processes this test started."""
    procs = processes()
    ours = descendants(proc.pid, procs) | ({p for p, (_, cmd) in procs.items() if tag in cmd} if tag else set())
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in (ours & set(processes())) - {os.getpid()}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}, **extra)
    return env


@contextmanager
def ray_head(tmp: Path, temp: Path, token: str) -> Iterator[Service]:
    """`ray start --head` on loopback with its own ports and temp dir; `url` is the job server."""
    dash = _free_port()
    cmd = [str(BIN / "ray"), "start", "--head", "--block",
           # Ray swaps 127.0.0.1 for the host's routable address in the GCS address; the dashboard,
           # which is what `ray job submit` talks to, stays on loopback
           "--node-ip-address", "127.0.0.1", "--port", str(_free_port()),
           "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
           # the fixed defaults (10001, 52365) would collide with another Ray on the machine
           "--ray-client-server-port", str(_free_port()), "--dashboard-agent-listen-port", str(_free_port()),
           "--num-cpus", "2", "--temp-dir", str(temp), "--disable-usage-stats"]
    log = tmp / "ray-start.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp, env=_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield Service("ray start --head", proc, f"http://127.0.0.1:{dash}", "/api/version", log, token)
    finally:
        _stop(proc, str(temp))


@contextmanager
def mlflow_server(tmp: Path, artifacts: Path) -> Iterator[Service]:
    """`mlflow server` on loopback: SQLite behind it, artifacts served from `artifacts`."""
    port = _free_port()
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
           "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]
    log = tmp / "mlflow-server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield Service("mlflow server", proc, f"http://127.0.0.1:{port}", "/health", log)
    finally:
        _stop(proc)


def submit_command(dashboard: str, tracking_uri: str, cache_root: Path, sweep: str, *args: str) -> list[str]:
    """The cluster command of docs/cluster.md: `fdp-sweep submit` (ray job submit with the commit)."""
    return ["fdp-sweep", "submit", "--address", dashboard, "--tracking-uri", tracking_uri, "--cache-dir", str(cache_root),
            "--", "run", sweep, *args]


@pytest.fixture
def ray_temp() -> Iterator[Path]:
    """A short temp dir for the cluster: Ray's unix socket paths under it must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="fdpray-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.integration
def test_ray_job_submit_runs_a_tracked_sweep_on_a_cluster(synth_cache, tmp_path, ray_temp, monkeypatch):
    from mlflow.tracking import MlflowClient

    from orchestrator.plan.jobs import expand
    from orchestrator.spec.sweep import load_spec
    from orchestrator.track.driver import SweepTracker, metric_prefix

    token = secrets.token_hex(32)
    cache_root = Path(synth_cache).parent  # FDP_CACHE_DIR: where `fdp-sweep prepare` put the clip cache
    sweep = "sweeps/smoke.yaml"
    artifacts = tmp_path / "mlartifacts"
    with mlflow_server(tmp_path, artifacts) as mlflow, ray_head(tmp_path, ray_temp, token) as ray:
        t0 = time.monotonic()
        mlflow.wait_ready()  # both start at once: about 10 s on 2 busy cores
        ray.wait_ready()
        t_up = time.monotonic() - t0
        tracking, dashboard = mlflow.url, ray.url
        cmd = submit_command(dashboard, tracking, cache_root, sweep, "--smoke")
        t0 = time.monotonic()
        res = subprocess.run(cmd, cwd=REPO, env=_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token),
                             capture_output=True, text=True, timeout=400)
        took = time.monotonic() - t0
        out = res.stdout + res.stderr
        assert res.returncode == 0, f"ray job submit failed after {took:.0f}s:\n{out[-6000:]}\n" + shlex.join(cmd)
        (job,) = json.loads(_get(f"{dashboard}/api/jobs/", token))
        assert job["status"] == "SUCCEEDED" and job["entrypoint"] == f"fdp-sweep run {sweep} --smoke", job
        assert "on a Ray cluster at" in out  # the job's driver attached to the cluster, no Ray of its own
        assert "sweep smoke: 4 done, 0 skipped (finished earlier), 0 failed" in out  # the driver's summary

        # what `--working-dir .` shipped: the project, not its environment or local results
        (pkg,) = {p.resolve() for p in ray_temp.glob("session_*/runtime_resources/working_dir_files/_ray_pkg_*")
                  if p.is_dir()}  # session_latest links to the one session
        assert (pkg / "pyproject.toml").is_file() and (pkg / "orchestrator" / "run" / "scheduler.py").is_file()
        for local in (".venv", ".git", "mlflow.db", "fdp_sweep.egg-info", ".pytest_cache"):
            assert not (pkg / local).exists(), local
        assert [p.name for p in (pkg / "mlruns").iterdir()] in ([], [".gitkeep"])
        assert {p.name for p in (pkg / ".cache").glob("*")} <= {"checkpoints"}  # the job's own, no clip caches
        assert sum(p.stat().st_size for p in pkg.rglob("*") if p.is_file()) < 8 * 2**20

        # the tracking server has the whole sweep
        client = MlflowClient(tracking)
        exp = client.get_experiment_by_name("fdp-smoke")
        assert exp.artifact_location.startswith("mlflow-artifacts:")  # served, not a path on the driver's node
        runs = client.search_runs([exp.experiment_id], "")
        (parent,) = [r for r in runs if r.data.tags.get("fdp.role") == "parent"]
        children = [r for r in runs if r.data.tags.get("fdp.role") == "job"]
        assert parent.info.status == "FINISHED" and parent.data.tags["fdp.smoke"] == "true"
        # the upload has no .git: the commit is the submitting checkout's, handed over by `submit`
        if (REPO / ".git").exists():
            head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip()
            assert parent.data.tags.get("mlflow.source.git.commit") == head
            assert {r.data.tags.get("mlflow.source.git.commit") for r in children} == {head}
        monkeypatch.setenv("FDP_CACHE_DIR", str(cache_root))  # the plan as the job's driver saw it
        plan = expand(load_spec(str(REPO / sweep), smoke=True))
        keys = sorted(r.data.tags["fdp.job_key"] for r in children)
        assert keys == sorted(j.key for j in plan.jobs) and len(keys) == 4  # one run per job key
        assert all(r.info.status == "FINISHED" and r.data.tags["mlflow.parentRunId"] == parent.info.run_id
                   for r in children)
        assert all({"acc", "uf1", "uar"} <= set(r.data.metrics) for r in children)
        tracker = SweepTracker(tracking)
        for c in plan.configurations:  # pooled on the parent = recomputed from the jobs' predictions.csv
            runs_of = [r.info.run_id for r in children if r.data.tags["fdp.config_label"] == c.label]
            pooled = {f"{metric_prefix(c.label)}/{k}": v for k, v in tracker.pooled(runs_of).items()}
            assert {k.rsplit("/", 1)[1] for k in pooled} >= {"acc", "war", "uf1", "uar"}
            assert {k: parent.data.metrics[k] for k in pooled} == pytest.approx(pooled), c.label
        # artifacts went through the server into its artifact store, one predictions.csv per job
        assert len(list(artifacts.rglob("predictions.csv"))) == 4
    print(f"servers up in {t_up:.1f}s; ray job submit took {took:.1f}s")


def test_docs_show_the_tested_submit_command():
    """docs/cluster.md's command is `submit_command` with placeholders for the hosts and paths."""
    cmd = submit_command("http://HEAD:8265", "http://MLFLOW_HOST:5000", Path("/shared/fdp-cache"), "sweeps/smoke.yaml",
                         "--smoke")
    doc = " ".join((REPO / "docs" / "cluster.md").read_text().replace("\\\n", " ").split())
    assert "RAY_AUTH_MODE=token " + shlex.join(cmd) in doc


def test_submit_hands_the_commit_and_what_every_node_needs_to_the_job():
    from orchestrator.cli.submit import submit_argv

    argv = submit_argv("http://h:8265", ("run", "sweeps/smoke.yaml"), "http://m:5000", "/c", "ab" * 20, True)
    env = json.loads(argv[argv.index("--runtime-env-json") + 1])["env_vars"]
    assert env == {"MLFLOW_TRACKING_URI": "http://m:5000", "FDP_CACHE_DIR": "/c", "FDP_GIT_COMMIT": "ab" * 20,
                   "FDP_GIT_DIRTY": "true"}
    assert argv[argv.index("--") + 1:] == ["fdp-sweep", "run", "sweeps/smoke.yaml"]
    argv = submit_argv("http://h:8265", ("run", "x.yaml"), None, None, "", False, no_wait=True)
    assert json.loads(argv[argv.index("--runtime-env-json") + 1]) == {"env_vars": {}} and "--no-wait" in argv
