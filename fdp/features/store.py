"""The per-clip feature cache: each kind of feature is computed once for every clip of a prepared
clip cache and stored beside it, so every later fold, sweep and trial reads it.

    <clip cache>/features/<kind>-<key>.npz
        values      (N, ...) float32, one row per clip, in the cache's clip order
        clip_ids    (N,) the cache's clip ids, in that order
        apex_rules  (N,) which rule gave each clip's apex (fdp.features.keyframes; "" where unused)
        meta        JSON: kind, version, params, the cache's content fingerprint, dataset, created

`key` is 12 hex digits of sha256 over (kind, version, params, content fingerprint): another
preparation of the data (another fingerprint) or other feature parameters never read a stale file.
The file is written to a temporary name in the same folder and renamed into place, so a
concurrent reader sees no file or the whole file; jobs computing the same file take turns on a lock
file beside it (`<file>.lock`, flock), so two fold jobs starting together compute it once: the
second waits, then reads. An unreadable file is a one-line
`DataError` naming it. A cache folder that cannot be written (a read-only shared copy) gets its
features computed in memory for this process, and `FeatureSet.path` is None.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fdp.data.cache import ClipCache, cache_fingerprint, load_cache
from fdp.data.progress import CountProgress
from fdp.data.samples import DataError
from fdp.features import flow as flow_mod
from fdp.features import lbp_top as lbp_mod

Progress = Callable[[int, int, str], None]  # (clips done, clips total, clip id), e.g. CountProgress("features")

# bump a kind's version when its computation changes meaning: the key changes, old files are ignored
KIND_VERSIONS = {"flow": 1, "lbp_top": 1}
KEY_HEX = 12


def default_params(kind: str):
    if kind == "flow":
        return flow_mod.FlowFeatureParams()
    if kind == "lbp_top":
        return lbp_mod.LBPTOPParams()
    raise ValueError(f"unknown feature kind {kind!r}; known: {', '.join(KIND_VERSIONS)}")


def _compute_clip(kind: str, cache: ClipCache, i: int, params) -> tuple[np.ndarray, str]:
    # looked up on the module at call time, so a test can count the computations
    if kind == "flow":
        return flow_mod.clip_flow_features(cache, i, params)
    return lbp_mod.clip_lbp_top(cache, i, params), ""


@dataclass
class FeatureSet:
    """One kind of feature for every clip of a cache."""

    kind: str
    values: np.ndarray  # (N, ...) float32, row i = clip i of the cache
    clip_ids: list[str]
    apex_rules: list[str]  # per clip: the rule that gave its apex ("" for LBP-TOP, which uses every frame)
    params: dict[str, Any]
    fingerprint: str  # content fingerprint of the clip cache
    path: Path | None  # the stored file; None when the cache folder could not be written
    computed: int  # clips computed by this call (0: read from the stored file)


def feature_key(kind: str, params: dict[str, Any], fingerprint: str) -> str:
    blob = json.dumps({"kind": kind, "version": KIND_VERSIONS[kind], "params": params, "fingerprint": fingerprint},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_HEX]


def feature_path(cache_path: str | os.PathLike[str], kind: str, params: dict[str, Any], fingerprint: str) -> Path:
    return Path(cache_path) / "features" / f"{kind}-{feature_key(kind, params, fingerprint)}.npz"


def _read(path: Path, kind: str, params: dict[str, Any], fingerprint: str, clip_ids: list[str]) -> FeatureSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            values, stored_ids, rules = z["values"], z["clip_ids"].tolist(), z["apex_rules"].tolist()
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: unreadable feature file ({type(e).__name__}: {e}); delete it and it is "
                        f"computed again") from None
    if (meta.get("fingerprint"), meta.get("params"), stored_ids) != (fingerprint, params, clip_ids) \
            or len(values) != len(clip_ids):
        raise DataError(f"{path}: feature file does not match its cache (other clips, parameters or data "
                        f"fingerprint); delete it and it is computed again")
    return FeatureSet(kind, values, stored_ids, rules, params, fingerprint, path, 0)


def _write(path: Path, fs: FeatureSet, dataset: str) -> bool:
    """Write atomically; False when the folder cannot be written."""
    meta = {"kind": fs.kind, "version": KIND_VERSIONS[fs.kind], "params": fs.params, "fingerprint": fs.fingerprint,
            "dataset": dataset, "clips": len(fs.clip_ids), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, values=fs.values, clip_ids=np.array(fs.clip_ids, dtype=str),
                     apex_rules=np.array(fs.apex_rules, dtype=str), meta=np.array(json.dumps(meta, sort_keys=True)))
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        return False
    return True


def load_features(cache: ClipCache | str | os.PathLike[str], kind: str, params=None,
                  progress: Progress | None = None) -> FeatureSet:
    """Features `kind` ("flow": (N, 3, 28, 28) u, v, strain; "lbp_top": (N, 1125)) of every clip of
    `cache` (a ClipCache or its folder), read from the feature cache or computed once and stored.
    `params`: a FlowFeatureParams / LBPTOPParams (default: the documented ones). `progress`: called
    after each computed clip (default: a `CountProgress` line on stderr; nothing when read)."""
    if kind not in KIND_VERSIONS:
        raise ValueError(f"unknown feature kind {kind!r}; known: {', '.join(KIND_VERSIONS)}")
    cache = cache if isinstance(cache, ClipCache) else load_cache(cache)
    params = params if params is not None else default_params(kind)
    pdict = json.loads(json.dumps(params.to_dict()))  # tuples -> lists: what the stored JSON gives back
    fingerprint = cache_fingerprint(cache.path)
    clip_ids = [str(c["clip_id"]) for c in cache.clips]
    path = feature_path(cache.path, kind, pdict, fingerprint)
    if path.is_file():
        return _read(path, kind, pdict, fingerprint, clip_ids)
    with _computing(path):
        if path.is_file():  # another job computed it while this one waited
            return _read(path, kind, pdict, fingerprint, clip_ids)
        return _compute(cache, kind, params, pdict, fingerprint, clip_ids, path, progress)


@contextlib.contextmanager
def _computing(path: Path):
    """Hold the lock file of `path` (exclusive flock) while inside; nothing when the folder cannot
    be written (each job then computes in memory). The holder removes the lock file when done: a
    job that waited on it, or comes later, finds `path` written and only reads."""
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a")
    except OSError:
        f = None
    if f is None:
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
            fcntl.flock(f, fcntl.LOCK_UN)


def _compute(cache: ClipCache, kind: str, params, pdict: dict[str, Any], fingerprint: str, clip_ids: list[str],
             path: Path, progress: Progress | None) -> FeatureSet:
    progress = progress if progress is not None else CountProgress(f"{kind} features")
    rows, rules = [], []
    for i, cid in enumerate(clip_ids):
        arr, rule = _compute_clip(kind, cache, i, params)
        rows.append(arr)
        rules.append(rule)
        progress(i + 1, len(clip_ids), cid)
    fs = FeatureSet(kind, np.stack(rows).astype(np.float32), clip_ids, rules, pdict, fingerprint, path, len(rows))
    if not _write(path, fs, cache.dataset):
        fs.path = None
    return fs
