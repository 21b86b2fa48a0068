"""The tracking store: where it is (SPEC §7), whether it can be written, and writing to it under
contention.

Store: `sqlite:///<project root>/mlflow.db` with artifacts under `<project root>/mlruns`
(project root = `$FDP_PROJECT_ROOT` or the cwd), so a plain `mlflow ui` in the project root shows
everything. `MLFLOW_TRACKING_URI` or `--tracking-uri` replaces it (an http URI for multi-node).

Every write goes through `with_retry`, because SQLite serialises writers and answers "database is
locked" under contention instead of waiting long. A value MLflow keeps once (a final metric) is
sent through `unlogged_metrics`, which leaves out what the run already holds.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

T = TypeVar("T")


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


def unlogged_metrics(c: "MlflowClient", run_id: str, values: dict[str, float], step: int = 0) -> list[Any]:
    """`values` as MLflow metrics at `step`, less those the run already has (read from the store)."""
    from mlflow.entities import Metric

    have = with_retry(c.get_run, run_id).data.metrics
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, int(step)) for k, v in values.items() if k not in have]
