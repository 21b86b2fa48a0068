"""MLflow tracking of sweeps: where the store is, what the driver creates, what workers log.

Store (SPEC §7): `sqlite:///<project root>/mlflow.db` with artifacts under `<project root>/mlruns`
(project root = `$FDP_PROJECT_ROOT` or the cwd), so a plain `mlflow ui` in the project root shows
everything. `MLFLOW_TRACKING_URI` or `--tracking-uri` replaces it (an http URI for multi-node).

Order of writes (SPEC §7: eight processes creating a SQLite store at once crashed seven): the
DRIVER creates the store, the experiment (with an explicit absolute artifact location) and the
parent run before any worker starts; a worker only opens its job's run (`open_job_run`, found
again by job key when the job is retried) and writes to it. Every write goes through `with_retry`, because SQLite
serialises writers and answers "database is locked" under contention instead of waiting long.

Names a reader of the store relies on -- tags, params, metrics and artifacts of parent and child
runs -- are listed in docs/sweeps.md ("Tracking (MLflow)"); a change to a name here changes them there.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import os
import random
import re
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fdp import plots
from fdp.config import dump_yaml, flatten, to_dict

if TYPE_CHECKING:  # the worker imports these lazily; the driver gets them the same way
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from fdp.config import ExperimentConfig
    from fdp.fold import FoldResult
    from orchestrator.plan.jobs import Job
    from orchestrator.spec.sweep import SweepSpec

T = TypeVar("T")
MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
PARAMS_PER_BATCH = 100  # MLflow's limit on params per log_batch
METRICS_PER_BATCH = 1000  # MLflow's limit on metrics per log_batch
POOLED = ("acc", "war", "uf1", "uar", "di_mse")
CODE_DIR = Path(__file__).resolve().parents[2]  # the folder holding fdp/ and orchestrator/


# ---------------------------------------------------------------------------------------------
# where


def project_root() -> Path:
    """`$FDP_PROJECT_ROOT`, else the current directory; always absolute."""
    return Path(os.environ.get("FDP_PROJECT_ROOT") or os.getcwd()).expanduser().resolve()


def default_tracking_uri(root: Path | None = None) -> str:
    """`sqlite:///<root>/mlflow.db` with an absolute path (four slashes), valid from any cwd."""
    return f"sqlite:///{(root or project_root()) / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None = None, root: Path | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the project default. A relative sqlite
    path is made absolute against the project root, since workers run in other directories."""
    root = root or project_root()
    uri = absolute_sqlite(uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(root), root)
    if "://" not in uri:  # a bare directory/file path: MLflow would take it for a file store
        raise ValueError(f"tracking URI {uri!r}: expected sqlite:///path, http(s)://host:port, ...")
    return uri


def absolute_sqlite(url: str, root: Path) -> str:
    """A relative `sqlite:///path` made absolute against `root`; any other URL unchanged."""
    m = re.match(r"^sqlite:///(?!/)(.+)$", url)
    return f"sqlite:///{(root / m.group(1)).resolve()}" if m else url


def artifact_location(experiment: str, root: Path | None = None) -> str:
    """Absolute file URI under `<root>/mlruns/` for an experiment's artifacts."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment).strip("_") or "experiment"
    return ((root or project_root()) / "mlruns" / slug).as_uri()


def metric_prefix(config_label: str) -> str:
    """A configuration label as an MLflow metric-name prefix: 'fdp|lambda_d=10|seed0' ->
    'fdp/lambda_d:10/seed0', 'casme2->samm|fdp|seed0' -> 'casme2-to-samm/fdp/seed0' (MLflow
    names allow only [/\\w.\\- :])."""
    text = config_label.replace("|", "/").replace("=", ":").replace("->", "-to-")
    return re.sub(r"[^/\w.\- :]", "_", text)


def pooled_artifact_dir(config_label: str) -> str:
    """Where a configuration's pooled figures sit among the parent run's artifacts."""
    return "pooled/" + re.sub(r"[^\w.\-/]", "_", metric_prefix(config_label))


def source_tags(source: str, commit: str, dirty: bool) -> dict[str, str]:
    """What the MLflow UI shows as a run's Source: `source` (a sweep file, or the tool for job runs)
    and the commit, which it shows only beside a source name; `fdp.version`, the installed fdp-sweep's."""
    tags = {"mlflow.source.name": source, "mlflow.source.type": "LOCAL", "fdp.version": code_version()}
    return {**tags, "mlflow.source.git.commit": commit, "fdp.git_dirty": str(dirty).lower()} if commit else tags


@functools.cache  # one lookup per process: every job run is tagged with it
def code_version() -> str:
    """The installed fdp-sweep's version (what a run says made it when no commit is known)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fdp-sweep")
    except PackageNotFoundError:
        from fdp import __version__

        return __version__


def git_info(code_dir: Path = CODE_DIR) -> tuple[str, bool]:
    """(commit, dirty) of the git checkout the running code was imported from (a clone, or an
    editable install of one): the commit says which code made a number, so it is not the project
    folder's. ("", False) for a package installed into site-packages (even inside some other
    repository), outside git, or before the first commit. Taken on the driver: workers may run
    from a copy without .git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(code_dir), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()

    try:
        top = git("rev-parse", "--show-toplevel")
        commit = git("rev-parse", "--verify", "-q", "HEAD") if top and Path(top).resolve() == code_dir.resolve() else ""
        return (commit, bool(git("status", "--porcelain", "--untracked-files=no"))) if commit else ("", False)
    except (OSError, subprocess.SubprocessError):
        return "", False


class StoreError(RuntimeError):
    """The tracking store cannot be used (unreachable server, read-only folder or database);
    the message is one line naming it."""


def check_store(uri: str, root: Path | None = None, timeout_s: float = 10.0) -> None:
    """Fail fast, in one line and without writing anything, when a sweep could not record its
    runs: an http(s) server that does not answer `/health` within `timeout_s` (MLflow's client
    would retry for minutes), or a read-only project folder / SQLite file (SQLite answers
    "readonly database" only on the first write, after MLflow's retries)."""
    import sqlite3
    import urllib.error
    import urllib.request

    root = root or project_root()
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r:
                status = r.status
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise StoreError(f"tracking server {uri} unreachable ({reason}; waited at most {timeout_s:g} s); start "
                             f"it (`mlflow server ...`) or pass another --tracking-uri") from None
        if status != 200:
            raise StoreError(f"tracking server {uri}: /health answered HTTP {status}")
        return
    folders = [root]
    db: Path | None = None
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        folders.append(db.parent)
    for folder in dict.fromkeys(folders):
        probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), folder)
        if not os.access(probe, os.W_OK | os.X_OK):
            raise StoreError(f"{folder}: not writable (read-only); the sweep's runs, artifacts and checkpoints "
                             f"go there: make it writable or run from a writable project folder "
                             f"(FDP_PROJECT_ROOT / --tracking-uri)")
    if db is not None and db.is_file():
        if not os.access(db, os.R_OK | os.W_OK):
            raise StoreError(f"{db}: MLflow store not writable (read-only file); make it writable, or pass "
                             f"another --tracking-uri")
        try:
            con = sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=timeout_s)
            try:
                con.execute("BEGIN IMMEDIATE")  # takes the write lock; rolled back at once
                con.rollback()
            finally:
                con.close()
        except sqlite3.OperationalError as e:
            if "locked" in str(e).lower():
                return  # busy, not read-only: the writes retry
            raise StoreError(f"{db}: MLflow store not writable ({e}); make it writable, or pass another "
                             f"--tracking-uri") from None


# ---------------------------------------------------------------------------------------------
# contention


def is_locked_error(e: BaseException) -> bool:
    text = str(e).lower()
    return "database is locked" in text or "database table is locked" in text


def with_retry(fn: Callable[..., T], *args: Any, attempts: int = 12, **kwargs: Any) -> T:
    """Call `fn`, retrying with jittered exponential backoff while SQLite says it is locked.
    Other errors propagate at once."""
    delay = 0.05
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if not is_locked_error(e) or i == attempts - 1:
                raise
            time.sleep(delay * (1 + random.random()))  # jitter: colliding writers drift apart
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def client(uri: str) -> "MlflowClient":
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


# ---------------------------------------------------------------------------------------------
# driver side


@dataclass
class ParentRun:
    run_id: str
    instance: str  # fdp.sweep_instance: one uuid per sweep instance (kept when resumed)
    reused: bool  # True when an earlier parent run with the same spec hash is continued


class SweepTracker:
    """The driver's view of the store: experiment, parent run, child runs, pooled metrics."""

    def __init__(self, tracking_uri: str, root: Path | None = None) -> None:
        self.uri = tracking_uri
        self.root = root or project_root()
        # the store's one-time schema messages and download progress bars are noise in a sweep's output
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        for name in ("mlflow.store.db.utils", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.client = client(tracking_uri)  # creates the SQLite schema here, in one process

    def experiment_id(self, name: str, description: str = "") -> str:
        """Get or create the experiment; its artifacts go to an absolute `mlruns/` location, or,
        with a tracking server, wherever the server keeps them (`mlflow-artifacts:/...`, uploaded
        over HTTP): a path on the driver's disk is not one the other nodes' workers can write to."""
        from mlflow.exceptions import MlflowException

        exp = with_retry(self.client.get_experiment_by_name, name)
        if exp is None:
            served = self.uri.startswith(("http://", "https://", "databricks"))
            try:
                return with_retry(self.client.create_experiment, name,
                                  artifact_location=None if served else artifact_location(name, self.root),
                                  tags={"mlflow.note.content": description} if description else None)
            except MlflowException:
                # another driver created it between our lookup and create: use theirs
                exp = with_retry(self.client.get_experiment_by_name, name)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            with_retry(self.client.restore_experiment, exp.experiment_id)
        if description and not exp.tags.get("mlflow.note.content"):
            # the UI shows this note as the experiment's description
            with_retry(self.client.set_experiment_tag, exp.experiment_id, "mlflow.note.content", description)
        return exp.experiment_id

    def search(self, experiment_id: str, filter_string: str, order_by: list[str] | None = None,
               max_results: int | None = None) -> list["Run"]:
        """All runs matching `filter_string`, paging through the store."""
        runs: list[Run] = []
        token = None
        while True:
            page = with_retry(self.client.search_runs, [experiment_id], filter_string,
                              max_results=min(max_results or 1000, 1000), order_by=order_by, page_token=token)
            runs.extend(page)
            token = page.token
            if not token or (max_results and len(runs) >= max_results):
                return runs[:max_results] if max_results else runs

    def open_parent(self, experiment_id: str, spec: "SweepSpec", fresh: bool = False, data: str = "",
                    extra_tags: dict[str, str] | None = None) -> ParentRun:
        """Continue the latest parent run of this sweep with the same spec hash and data (`data`:
        the content fingerprints of the caches its jobs read, tag `fdp.data`), or create one:
        re-prepared data starts a new sweep instance, so a table never pools two data versions."""
        if not fresh:
            flt = (f"tags.`fdp.role` = 'parent' and tags.`fdp.sweep` = '{spec.name}' "
                   f"and tags.`fdp.spec_hash` = '{spec.spec_hash}'")
            if data:
                flt += f" and tags.`fdp.data` = '{data}'"
            found = self.search(experiment_id, flt, order_by=["attributes.start_time DESC"], max_results=1)
            if found:
                run = found[0]
                with_retry(self.client.update_run, run.info.run_id, status="RUNNING")
                return ParentRun(run.info.run_id, run.data.tags.get("fdp.sweep_instance", ""), True)
        instance = uuid.uuid4().hex
        tags = {"fdp.role": "parent", "fdp.sweep": spec.name, "fdp.spec_hash": spec.spec_hash,
                "fdp.sweep_instance": instance, "fdp.smoke": str(spec.is_smoke).lower(),
                "fdp.spec_path": spec.path, **(extra_tags or {})}
        if data:
            tags["fdp.data"] = data[:5000]
        if spec.table:
            tags["fdp.table"] = spec.table
        if spec.from_search:
            tags["fdp.from_search"] = spec.from_search  # the study its overrides and folds come from
        tags["fdp.experiments"] = ",".join(e.key for e in spec.experiments)[:5000]
        commit, dirty = git_info()
        tags.update(source_tags(spec.path, commit, dirty))
        run = with_retry(self.client.create_run, experiment_id, tags=tags,
                         run_name=f"{spec.name}{' [smoke]' if spec.is_smoke else ''}")
        rid = run.info.run_id
        import yaml

        with_retry(self.client.log_text, rid, yaml.safe_dump(spec.raw, sort_keys=False), "sweep.yaml")
        if spec.sets:
            with_retry(self.client.log_dict, rid, spec.sets, "cli_sets.json")
        return ParentRun(rid, instance, False)

    def log_parent_inputs(self, parent_id: str, jobs: Iterable["Job"]) -> None:
        """The data a sweep's jobs read, once each, as the parent run's dataset inputs: the
        runs table shows it on the parent row too (children are folded under it)."""
        have = {(d.dataset.name, d.dataset.digest) for d in
                with_retry(self.client.get_run, parent_id).inputs.dataset_inputs}
        out = []
        for job in jobs:
            for i in dataset_inputs(job):
                if (i["name"], i["digest"]) not in have:
                    have.add((i["name"], i["digest"]))
                    out.append(i)
        if out:
            with_retry(self.client.log_inputs, parent_id, datasets=mlflow_inputs(out))

    def children(self, experiment_id: str, parent_id: str) -> dict[str, "Run"]:
        """job_key -> child run of a parent (the FINISHED one if a key somehow has several)."""
        return self.runs_by_key(experiment_id, f"tags.`mlflow.parentRunId` = '{parent_id}'")

    def runs_by_key(self, experiment_id: str, filter_string: str) -> dict[str, "Run"]:
        """job_key -> the run of that key among those matching (a FINISHED one where there are several)."""
        out: dict[str, Run] = {}
        for run in self.search(experiment_id, filter_string):
            key = run.data.tags.get("fdp.job_key")
            if key and (key not in out or run.info.status == "FINISHED"):
                out[key] = run
        return out

    def child_run_spec(self, parent: ParentRun, job: "Job", sweep: str) -> dict[str, Any]:
        """What a job's run is created with (tags, name, dataset inputs as plain data): the worker
        opens it when the job starts training (`open_job_run`), so its Duration is the job's."""
        tags = {"mlflow.parentRunId": parent.run_id, "fdp.role": "job", "fdp.job_key": job.key,
                "fdp.variant": job.variant, "fdp.fold": job.fold, "fdp.seed": str(job.seed),
                "fdp.config_label": job.config_label, "fdp.selection": job.cfg.train.selection,
                "fdp.sweep": sweep, "fdp.sweep_instance": parent.instance, **experiment_tags(job), **data_tags(job),
                **control_tags(job.cfg)}
        return {"tags": tags, "name": run_name(job), "inputs": dataset_inputs(job)}

    def create_child(self, experiment_id: str, parent: ParentRun, job: "Job", sweep: str) -> str:
        """Create a job's run now (status SCHEDULED), e.g. for tools that hand out run ids."""
        s = self.child_run_spec(parent, job, sweep)
        rid = open_job_run(self.uri, experiment_id, s["tags"], s["name"], s["inputs"])
        with_retry(self.client.update_run, rid, status="SCHEDULED")
        return rid

    def mark_failed(self, run_id: str, reason: str) -> None:
        """FAILED with the reason as tag `fdp.error` (also for deaths the worker cannot report)."""
        with_retry(self.client.set_tag, run_id, "fdp.error", reason[:5000])
        with_retry(self.client.set_terminated, run_id, "FAILED")

    def predictions(self, run_id: str) -> dict[str, Any]:
        """A child's per-clip predictions: labels, preds (None without MER), di_mse, num_classes."""
        uri = with_retry(self.client.get_run, run_id).info.artifact_uri
        if uri.startswith("file:"):  # local store: read in place, no copy
            from urllib.parse import unquote, urlparse

            return read_predictions((Path(unquote(urlparse(uri).path)) / "predictions.csv").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            path = with_retry(self.client.download_artifacts, run_id, "predictions.csv", tmp)
            return read_predictions(Path(path).read_text())

    def pooled(self, run_ids: Iterable[str]) -> dict[str, float]:
        """Metrics of the concatenated per-clip predictions of these child runs (SPEC §5)."""
        return pool_predictions([self.predictions(rid) for rid in run_ids])

    def log_pooled(self, parent_id: str, config_label: str, metrics: dict[str, float]) -> None:
        prefix = metric_prefix(config_label)
        # a pooled metric is logged once: a second value would make the parent's number ambiguous
        ms = unlogged_metrics(self.client, parent_id, {f"{prefix}/{k}": v for k, v in metrics.items() if k in POOLED})
        if ms:
            with_retry(self.client.log_batch, parent_id, metrics=ms)

    def log_pooled_figures(self, parent_id: str, config_label: str, folds: list[str],
                           predictions: list[dict[str, Any]]) -> None:
        """On the parent run, under `pooled/<configuration>/`: the confusion matrix of the pooled
        predictions (json + png) and the per-fold Acc / UF1 (json + bar chart). `predictions`: one
        `read_predictions` dict per fold in `folds`, as `pool_predictions` got them."""
        from fdp.metrics import confusion, pooled_metrics

        pooled = concat_predictions(predictions)
        if not predictions or pooled["preds"] is None:  # no MER head: nothing to count
            return
        names = predictions[0]["class_names"]
        per_fold = []
        for fold, p in zip(folds, predictions):
            m = pooled_metrics(p["labels"], p["preds"], p["num_classes"])
            per_fold.append({"fold": fold, "clips": len(p["labels"]), "acc": m["acc"], "uf1": m["uf1"]})
        cm = confusion(pooled["labels"], pooled["preds"], len(names))
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            write_confusion(d, cm, names, f"{config_label}: pooled over {len(per_fold)} folds")
            (d / "per_fold.json").write_text(json.dumps(per_fold))
            plots.per_fold_png(per_fold, d / "per_fold.png", config_label)
            with_retry(self.client.log_artifacts, parent_id, str(d), pooled_artifact_dir(config_label))

    def close_parent(self, parent_id: str, ok: bool, summary: dict[str, Any]) -> None:
        with_retry(self.client.log_dict, parent_id, summary, "summary.json")
        with_retry(self.client.set_terminated, parent_id, "FINISHED" if ok else "FAILED")


def unlogged_metrics(c: "MlflowClient", run_id: str, values: dict[str, float], step: int = 0) -> list[Any]:
    """`values` as MLflow metrics at `step`, less those the run already has (read from the store)."""
    from mlflow.entities import Metric

    have = with_retry(c.get_run, run_id).data.metrics
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, int(step)) for k, v in values.items() if k not in have]


def write_confusion(folder: Path, cm: Any, names: list[str], title: str) -> None:
    """`confusion.json` (rows true, columns predicted) and `confusion.png` in `folder`."""
    (folder / "confusion.json").write_text(json.dumps(
        {"class_names": names, "matrix": cm.tolist(), "rows": "true", "cols": "pred"}))
    plots.confusion_png(cm, names, folder / "confusion.png", title)


def control_tags(cfg: Any) -> dict[str, str]:
    """`fdp.method` (what fitted and predicted the job, fdp.methods) on every job run, and
    `fdp.control: shuffled_labels` on the runs of the negative control (trained on permuted
    training labels: must score chance), whose number is a control, not a model result."""
    tags = {"fdp.method": cfg.method}
    if cfg.train.shuffle_labels:
        tags["fdp.control"] = "shuffled_labels"
    return tags


def experiment_tags(job: "Job") -> dict[str, str]:
    """The experiment a job belongs to, as declared in the spec: `fdp.experiment` (the key Tables
    4-8 file it under), `fdp.dataset`, `fdp.setting`, `fdp.protocol`, `fdp.test_dataset`, and
    `fdp.smoke` (true: a --smoke run; the params `data.*` say what it trained on, which is then
    the smoke block's data, e.g. the synthetic casme2/5, not the declared one)."""
    e = job.experiment
    if e is None:  # a job built without a spec: its own data is the experiment
        from orchestrator.spec.sweep import experiment_key

        d = job.cfg.data
        protocol = "cross" if d.test_dataset else "loso"
        return {"fdp.experiment": experiment_key(d.dataset, d.setting, protocol, d.test_dataset),
                "fdp.dataset": d.dataset, "fdp.setting": d.setting, "fdp.protocol": protocol,
                "fdp.test_dataset": d.test_dataset}
    return {"fdp.experiment": e.key, "fdp.dataset": e.dataset, "fdp.setting": e.setting,
            "fdp.protocol": e.protocol, "fdp.test_dataset": e.test_dataset, "fdp.smoke": str(e.smoke).lower()}


def run_name(job: "Job") -> str:
    """'fold=01 fdp seed0' ('fold=006 samm/3 fdp seed0'): the fold first, where the UI's run
    name column cuts long names off."""
    return f"fold={job.fold} " + job.config_label.replace("|", " ")


def data_tags(job: "Job") -> dict[str, str]:
    """The caches a job reads: path, content fingerprint, source root, real or synthetic."""
    out: dict[str, str] = {}
    for prefix, ref in (("fdp.", job.data), ("fdp.test_", job.test_data)):
        if ref is not None:
            out.update({f"{prefix}data_fingerprint": ref.fingerprint, f"{prefix}cache_dir": ref.path,
                        f"{prefix}data_root": ref.root, f"{prefix}data_synthetic": str(ref.synthetic).lower()})
    return out


def dataset_name(dataset: str, setting: str) -> str:
    """'casme2/5' for the setting casme2/5 of casme2, 'casme2/cross/samm' for a cross setting."""
    return setting if setting.startswith(dataset + "/") else f"{dataset}/{setting}"


def dataset_inputs(job: "Job") -> list[dict[str, Any]]:
    """A job's data as MLflow dataset inputs (the UI's Dataset column), as plain data for the
    worker: name `dataset/setting`, digest = content fingerprint, source = the dataset folder,
    context training / test (one input `training+test` under LOSO, whose folds split one cache)."""
    d = job.cfg.data
    pairs = [(job.data, "training"), (job.test_data, "test")] if job.test_data is not None \
        else [(job.data, "training+test")]
    return [{"name": dataset_name(ref.dataset, d.setting if ctx != "test" else f"{d.setting}/{ref.dataset}"),
             "digest": ref.fingerprint, "source_type": "local", "source": json.dumps({"uri": ref.root}),
             "profile": json.dumps({"clips": ref.clips, "cache": ref.path, "prepared": ref.created,
                                    "synthetic": ref.synthetic}), "context": ctx}
            for ref, ctx in pairs if ref is not None]


def open_job_run(uri: str, experiment_id: str, tags: dict[str, str], name: str,
                 inputs: list[dict[str, Any]] | None = None) -> str:
    """The run of one job (`tags` hold its parent and job key): the one an earlier attempt of
    the job opened (a worker that died and was retried), else a new one with its dataset inputs.
    Called on the worker as the job starts, so the run's start time is the job's."""
    c = client(uri)
    found = with_retry(c.search_runs, [experiment_id],
                       f"tags.`mlflow.parentRunId` = '{tags['mlflow.parentRunId']}' and "
                       f"tags.`fdp.job_key` = '{tags['fdp.job_key']}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = with_retry(c.create_run, experiment_id, tags=tags, run_name=name)
    if inputs:
        with_retry(c.log_inputs, run.info.run_id, datasets=mlflow_inputs(inputs))
    return run.info.run_id


def mlflow_inputs(inputs: list[dict[str, Any]]) -> list[Any]:
    """`dataset_inputs` dicts as MLflow's DatasetInput entities."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return [DatasetInput(Dataset(name=i["name"], digest=i["digest"], source_type=i["source_type"],
                                 source=i["source"], profile=i.get("profile")),
                         [InputTag("mlflow.data.context", i["context"])]) for i in inputs]


def concat_predictions(predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """Several folds' `read_predictions` dicts as one, clips in fold order: `preds` None when a
    fold has none, `di_mse` the values of the folds that have them (None if none does),
    `num_classes` the most any fold names (0 for no fold)."""
    preds = None if any(p["preds"] is None for p in predictions) else [y for p in predictions for y in p["preds"]]
    di = [v for p in predictions for v in p.get("di_mse") or []]
    return {"subjects": [s for p in predictions for s in p["subjects"]],
            "labels": [y for p in predictions for y in p["labels"]], "preds": preds, "di_mse": di or None,
            "num_classes": max((p["num_classes"] for p in predictions), default=0)}


def pool_predictions(predictions: list[dict[str, Any]]) -> dict[str, float]:
    """Metrics of concatenated `read_predictions` dicts: pooled Acc/UF1/UAR (SPEC §5), mean DI MSE."""
    from fdp.metrics import pooled_metrics

    c = concat_predictions(predictions)
    out: dict[str, float] = {}
    if c["labels"] and c["preds"] is not None:
        out.update(pooled_metrics(c["labels"], c["preds"], c["num_classes"]))
    if c["di_mse"]:
        out["di_mse"] = sum(c["di_mse"]) / len(c["di_mse"])
    return out


def read_predictions(text: str) -> dict[str, Any]:
    """Parse `predictions.csv` (see `predictions_csv`)."""
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    probs = [h for h in reader.fieldnames or [] if h.startswith("prob_")]
    labels = [int(r["label"]) for r in rows]
    preds = [int(r["pred"]) for r in rows] if rows and rows[0]["pred"] != "" else None
    di = [float(r["di_mse"]) for r in rows] if rows and rows[0].get("di_mse", "") != "" else None
    return {"clip_ids": [r["clip_id"] for r in rows], "subjects": [r["subject"] for r in rows],
            "labels": labels, "preds": preds, "di_mse": di, "num_classes": len(probs),
            "class_names": [h[len("prob_"):] for h in probs]}


def predictions_csv(result: "FoldResult") -> str:
    """clip_id, subject, label, pred, prob_<class>..., di_mse: one row per test clip. The prob
    columns name every class of the setting, which is how readers learn the number of classes."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["clip_id", "subject", "label", "pred"] + [f"prob_{c}" for c in result.class_names] + ["di_mse"])
    for i, cid in enumerate(result.clip_ids):
        probs = result.probs[i] if result.probs is not None else [""] * len(result.class_names)
        w.writerow([cid, result.subjects[i], result.labels[i],
                    result.preds[i] if result.preds is not None else ""]
                   + [f"{p:.6g}" if p != "" else "" for p in probs]
                   + [f"{result.di_mse[i]:.6g}" if result.di_mse is not None else ""])
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# worker side


class RunLogger:
    """Logs one job into the run the driver created for it. Step metrics are buffered and sent
    with log_batch every `flush_every` metrics or `flush_seconds`, which keeps SQLite writes few."""

    def __init__(self, tracking_uri: str, run_id: str, flush_every: int = 50, flush_seconds: float = 10.0) -> None:
        self.uri, self.run_id = tracking_uri, run_id
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self._client: MlflowClient | None = None
        self._buffer: list[Any] = []
        self._last_flush = time.monotonic()
        self._logged: dict[str, set[int]] = {}  # train/<term> -> steps in the store (earlier attempts' + sent)

    @property
    def client(self) -> "MlflowClient":
        if self._client is None:
            self._client = client(self.uri)
        return self._client

    def _log_batch(self, tags: dict[str, str], metrics: list[Any] | None = None) -> None:
        """One log_batch of `tags` (name -> value) and `metrics` (at most METRICS_PER_BATCH)."""
        from mlflow.entities import RunTag

        with_retry(self.client.log_batch, self.run_id, metrics=metrics or [],
                   tags=[RunTag(k, v) for k, v in tags.items()])

    def start(self, resumed_from_step: int = 0) -> None:
        with_retry(self.client.update_run, self.run_id, status="RUNNING")
        tags = {"fdp.host": socket.gethostname(), "fdp.worker_pid": str(os.getpid())}
        if resumed_from_step:
            tags["fdp.resumed_from_step"] = str(resumed_from_step)
        # a killed attempt may have sent steps past its checkpoint (or before its first one): a
        # retry replays them with the same values, and must not send them twice
        self._logged = self._logged_steps()
        self._log_batch(tags)

    def _logged_steps(self) -> dict[str, set[int]]:
        keys = [k for k in with_retry(self.client.get_run, self.run_id).data.metrics if k.startswith("train/")]
        return {k: {m.step for m in with_retry(self.client.get_metric_history, self.run_id, k)} for k in keys}

    def log_config(self, cfg: "ExperimentConfig", git_commit: str = "", git_dirty: bool = False) -> None:
        """Flattened config as params (only those not logged yet: a resumed attempt re-logs
        nothing, and MLflow refuses to change a param), `config.yaml` and git commit tags."""
        from mlflow.entities import Param

        have = with_retry(self.client.get_run, self.run_id).data.params
        params = [Param(k, _param_text(v)) for k, v in flatten(to_dict(cfg)).items() if k not in have]
        for i in range(0, len(params), PARAMS_PER_BATCH):
            with_retry(self.client.log_batch, self.run_id, params=params[i:i + PARAMS_PER_BATCH])
        with_retry(self.client.log_text, self.run_id, dump_yaml(cfg), "config.yaml")
        self._log_batch(source_tags("fdp-sweep", git_commit, git_dirty))

    def log_terms(self, step: int, terms: dict[str, float]) -> None:
        """The trainer's callback: buffer `train/<term>` at `step`, flush when due."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer.extend(Metric(f"train/{k}", float(v), now, int(step)) for k, v in terms.items()
                            if int(step) not in self._logged.get(f"train/{k}", ()))
        if len(self._buffer) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[:METRICS_PER_BATCH], self._buffer[METRICS_PER_BATCH:]
            with_retry(self.client.log_batch, self.run_id, metrics=batch)
            for m in batch:
                self._logged.setdefault(m.key, set()).add(m.step)
        self._last_flush = time.monotonic()

    def log_result(self, result: "FoldResult", cfg: "ExperimentConfig") -> None:
        """Final fold metrics, predictions, fold result, confusion matrix and example grid."""
        from mlflow.entities import Metric

        self.flush()
        now = int(time.time() * 1000)
        # complete loss curves: the logging steps a killed attempt buffered but never sent come
        # from the checkpointed curves in `result` (each step once)
        logged, every = self._logged, max(cfg.train.log_every, 1)  # earlier attempts' steps + this one's
        self._buffer = [Metric(f"train/{k}", float(v), now, int(s)) for k, pts in result.curves.items()
                        if k != "val_score" for s, v in pts
                        if (s % every == 0 or s == result.steps) and int(s) not in logged.get(f"train/{k}", ())]
        self.flush()
        values = dict(result.metrics)
        values.update(wall_time_s=result.wall_time_s, steps_per_s=result.steps_per_s,
                      peak_mem_mb=result.peak_mem_mb)
        if result.n_params is not None:
            values["n_params"] = result.n_params
        tags = {"fdp.selection_detail": result.selection[:5000], "fdp.device": result.device,
                # what the job ran as, after `auto` was resolved on its device (fdp.runtime)
                "fdp.precision": result.precision, "fdp.memory_format": result.memory_format,
                "fdp.compiled": result.compiled or "no", "fdp.gpu": result.gpu or "-"}
        # a final metric has exactly one value: an attempt that died after logging them is not
        # allowed to add a second
        metrics = unlogged_metrics(self.client, self.run_id, values, result.steps)
        if result.test_selected:  # the published protocol's pick, apart and labelled
            from orchestrator.track import test_selected as ts

            tags[ts.TAG] = ts.tag_text(result)
            metrics += unlogged_metrics(self.client, self.run_id, ts.metric_values(result), result.steps)
            if f"{ts.PREFIX}/curve/acc" not in with_retry(self.client.get_run, self.run_id).data.metrics:
                metrics += [Metric(k, v, now, s) for k, v, s in ts.curve_points(result)]  # once per run
        for i in range(0, max(len(metrics), 1), METRICS_PER_BATCH):
            self._log_batch(tags if i == 0 else {}, metrics[i:i + METRICS_PER_BATCH])
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "predictions.csv").write_text(predictions_csv(result))
            if result.test_selected:
                (d / ts.ARTIFACT).write_text(ts.predictions_csv(result))
            (d / "fold_result.json").write_text(result.to_json())
            if result.preds is not None:
                from fdp.metrics import confusion

                cm = confusion(result.labels, result.preds, len(result.class_names))
                write_confusion(d, cm, result.class_names, f"fold {result.fold}")
            if result.examples:
                plots.examples_png(result.examples, d / "examples.png", f"{cfg.variant} fold {result.fold}")
            # one directory copy, not one call per file: fewer store round trips
            with_retry(self.client.log_artifacts, self.run_id, str(d))

    def log_objective(self, metric: str, value: float, step: int, train_subjects: list[str],
                      val_subjects: list[str]) -> None:
        """An objective fold's value (once: a retried attempt does not add a second) and the
        subjects it trained and validated on (the search's honesty, checkable per run)."""
        self._log_batch({"fdp.train_subjects": ",".join(train_subjects), "fdp.val_subjects": ",".join(val_subjects)},
                        unlogged_metrics(self.client, self.run_id, {f"objective_{metric}": value}, step))

    def finish(self) -> None:
        self.flush()
        with_retry(self.client.set_terminated, self.run_id, "FINISHED")

    def fail(self, reason: str, details: str = "") -> None:
        """Best effort: FAILED + `fdp.error`. If the store itself is the problem the driver marks
        the run from the outcome, so errors here must not mask the job's own error."""
        try:
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the curves are nice to have, the failure is not
                self._buffer.clear()
            with_retry(self.client.set_tag, self.run_id, "fdp.error", reason[:5000])
            if details:
                with_retry(self.client.log_text, self.run_id, details, "error.txt")
            with_retry(self.client.set_terminated, self.run_id, "FAILED")
        except Exception:  # noqa: BLE001 - see docstring
            pass


def _param_text(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return text[:MAX_PARAM_CHARS]
