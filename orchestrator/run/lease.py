"""One driver per sweep instance: a second `fdp-sweep run` of a sweep that is running refuses at
once with one line naming the first (host, pid, since when), or waits for it with `--wait`.

Two layers, because drivers can share a tracking server from two machines:

* on one host, an exclusive `fcntl.flock` on a lock file in the temp directory, keyed by the
  tracking URI and the sweep instance (sweep name, spec hash, data fingerprints). The kernel
  releases it when the holder dies, however it dies, so a re-run after a crash resumes at once.
  The file holds the holder's host, pid and start time for the refusal message.
* across hosts, a lease in the tracking store: an experiment tag `fdp.driver.<instance>` with
  host, pid, start time, a random token and a heartbeat refreshed every `HEARTBEAT_S`. A lease
  whose heartbeat is older than `TTL_S` belongs to a dead driver and is taken over; one written
  by this host is stale by definition (this process holds the host's lock). MLflow offers no
  compare-and-set, so a claim is written, left to settle for `SETTLE_S` and read back: of two
  drivers that claim at once, the one whose token is read back wins and the other refuses.

A tag (not a parent-run tag) because two drivers that start together have no parent run yet:
whoever holds the lease opens (or creates) it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from orchestrator.track.driver import SweepTracker
from orchestrator.track.store import with_retry

TTL_S = 90.0  # a lease not refreshed for this long is a dead driver's
HEARTBEAT_S = 15.0  # how often the holder refreshes it
SETTLE_S = 1.5  # claim -> read back: longer than one store round trip of a racing claimant
SETTLE_ENV = "FDP_LEASE_SETTLE_S"  # overrides SETTLE_S (`settle_s`)
WAIT_POLL_S = 5.0  # --wait: how often to look again


class DriverBusy(RuntimeError):
    """Another live driver runs this sweep instance; the message is one line naming it."""


def settle_s() -> float:
    """SETTLE_S, or $FDP_LEASE_SETTLE_S where set: raise it for a tracking server whose round trip
    is slow. The test suite lowers it: its drivers all run on one host, where this host's lock
    decides before the store's lease does (every sweep and search start waits the settle once)."""
    raw = os.environ.get(SETTLE_ENV)
    if raw is None:
        return SETTLE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < TTL_S:
        raise ValueError(f"${SETTLE_ENV}: expected seconds in [0, {TTL_S:g}), got {raw!r}")
    return value


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _busy_line(sweep: str, holder: dict[str, Any], where: str, kind: str = "sweep") -> str:
    return (f"{kind} {sweep} is already being run by pid {holder.get('pid', '?')} on host "
            f"{holder.get('host', '?')} since {holder.get('since', '?')} ({where}); nothing started: wait for "
            f"it with --wait, or stop that driver first")


class DriverLease:
    """Held for a whole `run_sweep`: `acquire_local()` before Ray starts, `acquire_remote()` once
    the store is open, `release()` at the end (also on errors)."""

    def __init__(self, sweep: str, instance_key: str, tracking_uri: str, wait: bool = False,
                 echo: Callable[[str], None] | None = None, kind: str = "sweep") -> None:
        """`kind`: what the lease guards, for the messages (a `sweep`, or a `search` study)."""
        self.sweep, self.instance_key, self.uri, self.wait = sweep, instance_key, tracking_uri, wait
        self.kind, self.settle_s = kind, settle_s()
        self.echo = echo or (lambda _line: None)
        self.host, self.pid, self.token = socket.gethostname(), os.getpid(), uuid.uuid4().hex
        self.since = _now_iso()
        digest = hashlib.sha256(f"{tracking_uri}\0{instance_key}".encode()).hexdigest()[:24]
        self.lock_path = Path(tempfile.gettempdir()) / "fdp-sweep-locks" / f"{digest}.lock"
        self.tag = "fdp.driver." + hashlib.sha256(instance_key.encode()).hexdigest()[:20]
        self._file: IO[str] | None = None
        self._tracker: SweepTracker | None = None
        self._exp_id = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- this host

    def acquire_local(self) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.lock_path, "a+")  # noqa: SIM115 - held open for the lease's lifetime
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(f)
            if not self.wait:
                f.close()
                raise DriverBusy(_busy_line(self.sweep, holder, "this host", self.kind)) from None
            self.echo(f"waiting for the driver of {self.kind} {self.sweep} (pid {holder.get('pid', '?')} on "
                      f"{holder.get('host', '?')} since {holder.get('since', '?')}) to finish ...")
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # blocks until that driver exits
            self.since = _now_iso()
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"host": self.host, "pid": self.pid, "since": self.since}))
        f.flush()
        self._file = f

    @staticmethod
    def _read_holder(f: IO[str]) -> dict[str, Any]:
        try:
            f.seek(0)
            return json.loads(f.read() or "{}")
        except (OSError, ValueError):
            return {}

    # -- the tracking store (drivers on other hosts)

    def _value(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid, "since": self.since, "token": self.token,
                           "heartbeat": time.time()})

    def _holder(self) -> dict[str, Any] | None:
        assert self._tracker is not None
        raw = with_retry(self._tracker.client.get_experiment, self._exp_id).tags.get(self.tag)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _live_other(self, holder: dict[str, Any] | None) -> bool:
        if not holder or holder.get("token") == self.token:
            return False
        if holder.get("host") == self.host:
            return False  # this host's lock is ours: whoever wrote it is gone
        return time.time() - float(holder.get("heartbeat", 0)) < TTL_S

    def acquire_remote(self, tracker: SweepTracker, experiment_id: str) -> None:
        self._tracker, self._exp_id = tracker, experiment_id
        announced = False
        while True:
            holder = self._holder()
            if not self._live_other(holder):
                with_retry(tracker.client.set_experiment_tag, experiment_id, self.tag, self._value())
                time.sleep(self.settle_s)
                holder = self._holder()
                if holder is not None and holder.get("token") == self.token:
                    break
            assert holder is not None
            if not self.wait:
                raise DriverBusy(_busy_line(self.sweep, holder, f"lease in {self.uri}", self.kind))
            if not announced:
                self.echo(f"waiting for the driver of {self.kind} {self.sweep} (pid {holder.get('pid', '?')} on "
                          f"{holder.get('host', '?')}) to finish ...")
                announced = True
            time.sleep(WAIT_POLL_S)
        self._thread = threading.Thread(target=self._heartbeat, name="fdp-driver-lease", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        assert self._tracker is not None
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with_retry(self._tracker.client.set_experiment_tag, self._exp_id, self.tag, self._value())
            except Exception:  # noqa: BLE001 - a missed beat is retried; TTL spans several
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._tracker is not None:
            try:
                holder = self._holder()
                if holder is not None and holder.get("token") == self.token:
                    with_retry(self._tracker.client.delete_experiment_tag, self._exp_id, self.tag)
            except Exception:  # noqa: BLE001 - an unreleased lease expires after TTL_S
                pass
            self._tracker = None
        if self._file is not None:
            try:
                self._file.seek(0)
                self._file.truncate()
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None
