"""The clip cache (SPEC §4.3): every clip aligned once, stored as uint8, reused by every fold,
variant and trial.

Layout of one cache, `<cache_root>/<dataset>-<key>/`:

    frames.npy   uint8 (F, 3, 72, 72): the frames onset..offset of every clip, clip after clip
    index.json   {"dataset", "root", "annotation", "settings", "key", "fingerprint", "synthetic",
                  "alignment": {"method", "version"}, "clips": [...], "skipped": [...], "repaired": [...]}
    contact_sheet.png (or contact_sheet_p1.png, ...): every clip's aligned onset / apex and dynamic
                 image, by subject, marked with how it was aligned (`fdp.data.contact_sheet`)

`skipped` lists the rows left out with `skip_bad` (source, clip_id, reason); `repaired` the values
a documented rule changed (source, clip_id, field, original, value, reason), so a count that
differs from the paper's can be traced to its rows.

`key` is a short hash of the preprocessing settings, the dataset root and a fingerprint of the
annotations read, so a different alignment, another copy of the data or an edited spreadsheet
never reuses a stale cache, while re-running the same `prepare` does (idempotent).

`fingerprint` identifies the *content* (`content_fingerprint`: the annotation rows as read, their
class labels and every stored frame byte), computed once when the cache is assembled. Job keys
include it (`orchestrator.plan.jobs.job_key`), so re-prepared data that changed trains again instead
of reporting old numbers; `find_cache` refuses to choose between several caches of one dataset.

While preparing, each clip is written as a shard into `<dataset>-<key>.partial/` (each shard
itself written to a temporary name and renamed), so an interrupted run resumes from the shards it
finished; a run stopped by bad data removes the shards it wrote. The finished cache is assembled
in a temporary directory and renamed into place, so a directory named `<dataset>-<key>` is always
complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fdp.data.align import ALIGNED_SIZE, TARGET_EYES, align_clip, resize_clip
from fdp.data.landmarks import DEFAULT_METHOD, check_available, estimate, method_version
from fdp.data.samples import BadRowsError, DataError, Sample
from fdp.data.settings import MERGED_KINDS

CACHE_VERSION = 2  # bump when the stored format or the preprocessing changes meaning (2: exact arithmetic)
ENV_CACHE_DIR = "FDP_CACHE_DIR"
Progress = Callable[[int, int, str], None]  # (clips done, clips total, clip id); e.g. CountProgress("prepare")


def default_cache_root() -> Path:
    """`$FDP_CACHE_DIR`, else `./.cache/clips` (relative to the working directory). A
    `$FDP_CACHE_DIR` that exists but is not a folder is a one-line DataError."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env and os.path.exists(env) and not os.path.isdir(env):
        raise DataError(f"{ENV_CACHE_DIR}={env}: is a file, not a folder; point it at the folder that holds "
                        f"the clip caches (or unset it for ./.cache/clips)")
    return Path(env or Path.cwd() / ".cache" / "clips")


def preprocessing_settings(align: bool = True, size: int = ALIGNED_SIZE, max_frames: int | None = None,
                           method: str = DEFAULT_METHOD) -> dict[str, Any]:
    """Everything that changes the stored pixels; part of the cache key and stored in the index.

    `max_frames` (clips longer than it are subsampled uniformly) is only written when set, and the
    aligner's version only for the landmark aligner, so the keys of caches prepared without them
    (Haar: OpenCV is pinned) do not change."""
    landmarks = align and method == "landmarks"
    settings: dict[str, Any] = {
        "version": CACHE_VERSION,
        "size": size,
        "align": ("landmarks-eyes-onset" if landmarks else "haar-eyes-onset") if align else "centre-square-resize",
        "target_eyes": [list(e) for e in TARGET_EYES] if align else None,
        "colour": "rgb",
    }
    if landmarks:
        settings["align_version"] = method_version(method)
    if max_frames is not None:
        settings["max_frames"] = max_frames
    return settings


def alignment_label(index: dict[str, Any]) -> str:
    """How a cache was aligned, with the aligner's version: 'haar (opencv 4.x haar cascades)',
    'landmarks (dlib ...)', 'none (centre square, resized)' -- the runs' `fdp.align` tag. Caches
    prepared before the version was recorded name the method only."""
    a = index.get("alignment")
    if isinstance(a, dict) and a.get("method"):
        return f"{a['method']} ({a['version']})" if a.get("version") else str(a["method"])
    settings = index.get("settings", {})
    name = str(settings.get("align", ""))
    if name == "landmarks-eyes-onset":  # e.g. a merged set: its parts' settings
        return f"landmarks ({settings['align_version']})" if settings.get("align_version") else "landmarks"
    return {"haar-eyes-onset": "haar", "centre-square-resize": "none (centre square, resized)"}.get(name, name or "?")


def subsample(n: int, max_frames: int | None) -> list[int]:
    """Indices of the frames kept of a clip of `n`: all, or `max_frames` spread uniformly over the
    clip, first and last included (a 3456-frame CAS(ME)^3 clip need not fill memory)."""
    if max_frames is None or n <= max_frames:
        return list(range(n))
    return [int(round(i * (n - 1) / (max_frames - 1))) for i in range(max_frames)]


@dataclass
class ClipCache:
    """A loaded cache. `frames` is memory-mapped: loading costs milliseconds, not a copy."""

    path: Path
    dataset: str
    frames: np.ndarray  # uint8 (F, 3, S, S), memory-mapped
    clips: list[dict[str, Any]]  # per clip: subject, clip_id, emotion, fps, start, length, onset, apex, offset, source, align
    # rows left out with --skip-bad: source, clip_id, reason
    skipped: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # preprocessing_settings() of this cache
    root: str = ""  # dataset folder it was prepared from
    repaired: list[dict[str, Any]] = field(default_factory=list)  # values changed by a documented rule
    annotation: str = ""  # the annotation file read (absolute path)
    index: dict[str, Any] = field(default_factory=dict)  # the whole index.json (key, created, ...)

    @property
    def starts(self) -> np.ndarray:
        """(N,) int64 first row of each clip in `frames`."""
        return np.array([c["start"] for c in self.clips], np.int64)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 number of frames of each clip."""
        return np.array([c["length"] for c in self.clips], np.int64)

    def clip_frames(self, i: int) -> np.ndarray:
        """(length, 3, S, S) uint8 frames of clip i."""
        c = self.clips[i]
        return self.frames[c["start"]:c["start"] + c["length"]]


def _fingerprint(samples: list[Sample], skipped: list[dict[str, Any]]) -> str:
    """What was read: a change in the annotations or in the frame lists changes the key."""
    h = hashlib.sha1()
    for s in samples:
        # first/last frame's size and mtime: rewritten frames (e.g. a regenerated synthetic set
        # with the same annotations) must not reuse the old pixels
        stamp = [(os.stat(p).st_size, os.stat(p).st_mtime_ns) if os.path.isfile(p) else None
                 for p in (s.frames[:1] + s.frames[-1:])]
        h.update(f"{s.subject}|{s.clip_id}|{s.onset}|{s.apex}|{s.offset}|{s.emotion}|{len(s.frames)}|"
                 f"{s.frames[0] if s.frames else ''}|{stamp}\n".encode())
    h.update(json.dumps(skipped, sort_keys=True).encode())
    return h.hexdigest()


FINGERPRINT_HEX = 16  # digits of sha256 shown and stored: a data version's short name
# the per-clip fields that come from the annotation row (what a corrected spreadsheet changes)
_ROW_FIELDS = ("subject", "clip_id", "emotion", "fps", "onset", "apex", "offset", "action_units", "length")


def content_fingerprint(dataset: str, clips: list[dict[str, Any]], frames: np.ndarray) -> str:
    """16 hex of sha256 over what a model is trained and tested on: the annotation rows as read
    (subject, clip, onset/apex/offset, AUs), their class labels (the emotion each setting maps)
    and every stored frame byte, in order. Unlike the cache key it ignores where the data came
    from: two copies of the same data have one fingerprint; a fixed row or a redrawn frame
    gives another. Computed once per cache (`prepare`), read back from the index afterwards."""
    h = hashlib.sha256()
    rows = [{k: c.get(k) for k in _ROW_FIELDS} for c in clips]
    h.update(json.dumps({"dataset": dataset, "clips": rows}, sort_keys=True, default=str).encode())
    flat = frames.reshape(-1)
    step = 1 << 26  # 64 MB at a time: a memory-mapped real dataset is not read into memory at once
    for i in range(0, flat.shape[0], step):
        h.update(np.ascontiguousarray(flat[i:i + step]).data)
    return h.hexdigest()[:FINGERPRINT_HEX]


def is_synthetic_root(root: str | os.PathLike[str]) -> bool:
    """Whether a dataset folder holds the synthetic benchmark (`fdp.data.synth` leaves
    `synthetic.json` beside its spreadsheet): tables say "synthetic" for data that is not real."""
    return (Path(root) / "synthetic.json").is_file()


def cache_fingerprint(path: str | os.PathLike[str]) -> str:
    """The content fingerprint of a prepared cache, from its index. A cache prepared before
    fingerprints were stored gets it computed now (once: it is written back to the index when
    the folder is writable)."""
    p = Path(path)
    index_path = p / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{p}: not a prepared clip cache ({e})") from None
    fp = index.get("fingerprint")
    if fp:
        return str(fp)
    fp = content_fingerprint(index["dataset"], index["clips"], np.load(p / "frames.npy", mmap_mode="r"))
    index["fingerprint"] = fp
    index.setdefault("synthetic", is_synthetic_root(index.get("root", "")) if index.get("root") else False)
    try:
        atomic_write_text(index_path, json.dumps(index, indent=1))
    except OSError:  # a read-only shared cache: computed again next time, still correct
        pass
    return fp


@dataclass(frozen=True)
class CacheInfo:
    """What identifies a prepared cache to a reader: where, which content, from where, when."""

    path: Path
    dataset: str
    fingerprint: str
    root: str  # the dataset folder it was prepared from
    clips: int
    created: str  # when it was prepared (index "created")
    synthetic: bool
    align: str = ""  # `alignment_label`: how its frames were aligned

    def line(self) -> str:
        return (f"{self.path} (fingerprint {self.fingerprint}, from {self.root}, {self.clips} clips, "
                f"prepared {self.created or '?'}{', synthetic' if self.synthetic else ''})")


def cache_info(path: str | os.PathLike[str]) -> CacheInfo:
    p = Path(path)
    fp = cache_fingerprint(p)
    index = json.loads((p / "index.json").read_text())
    root = index.get("root", "")
    synthetic = index.get("synthetic")
    if synthetic is None:
        synthetic = bool(root) and is_synthetic_root(root)
    return CacheInfo(p, index.get("dataset", ""), fp, root, len(index.get("clips", [])), index.get("created", ""),
                     bool(synthetic), alignment_label(index))


def cache_key(dataset: str, root: Path, settings: dict[str, Any], fingerprint: str) -> str:
    """10 hex digits of sha1 over dataset, resolved root, settings and annotation fingerprint."""
    blob = json.dumps({"dataset": dataset, "root": str(root), "settings": settings, "fp": fingerprint},
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def _truncated_jpeg(path: str) -> bool:
    """A JPEG whose end-of-image marker is missing: cut off. OpenCV decodes such a file anyway
    (grey below the cut, only a libjpeg warning on stderr), so it must be caught before."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
        tail = f.read()
    return head == b"\xff\xd8" and b"\xff\xd9" not in tail


def read_frames(paths: tuple[str, ...] | list[str]) -> list[np.ndarray]:
    """Decode frame files to RGB uint8; an unreadable file is a DataError naming it and why."""
    frames = []
    for p in paths:
        if not os.path.isfile(p):
            raise DataError(f"{p}: frame file missing")
        if not os.access(p, os.R_OK):
            # cv2.imread would return None and hide why; an OSError in _truncated_jpeg is a traceback
            raise DataError(f"{p}: frame file not readable (permission denied)")
        try:
            truncated = _truncated_jpeg(p)
        except OSError as e:
            raise DataError(f"{p}: frame file not readable ({e.strerror or e})") from None
        if truncated:
            raise DataError(f"{p}: truncated JPEG (no end-of-image marker; {os.path.getsize(p)} bytes)")
        img = cv2.imread(p, cv2.IMREAD_COLOR)  # grey JPEGs (SAMM) come back as 3 equal channels
        if img is None:
            raise DataError(f"{p}: unreadable image (corrupt or not an image; {os.path.getsize(p)} bytes)")
        if frames and img.shape != frames[0].shape:
            raise DataError(f"{p}: frame size {img.shape[1]}x{img.shape[0]} differs from the clip's first frame "
                            f"{frames[0].shape[1]}x{frames[0].shape[0]}")
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return frames


def _process_clip(sample: Sample, align: bool | str, size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """(length, 3, S, S) uint8 aligned frames of one clip and what to record of it: how it was
    aligned (eyes / face / frame / resize) and the source frame size [width, height]. `align`:
    the aligner's name ("haar" | "landmarks"; True: the default), False: centre square resized."""
    frames = read_frames(sample.frames)
    if align:
        alignment = estimate(frames[0], size, align if isinstance(align, str) else DEFAULT_METHOD)
        out, method = align_clip(frames, size, alignment), alignment.method
    else:
        out, method = resize_clip(frames, size), "resize"
    meta = {"align": method, "source_size": [int(frames[0].shape[1]), int(frames[0].shape[0])]}
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)), meta  # (T, H, W, 3) -> (T, 3, H, W)


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file and a rename: a reader sees the old file or the whole new one."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def prepare(name: str, root: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
            align: bool = True, skip_bad: bool = False, progress: Progress | None = None,
            size: int = ALIGNED_SIZE, annotations: str | os.PathLike[str] | None = None,
            max_frames: int | None = None, align_method: str = DEFAULT_METHOD, contact_sheet: bool = True) -> Path:
    """Read dataset `name` from `root`, align (or, with align=False, centre-crop and resize) every
    clip and store the cache under `out_dir` (the cache root; default `default_cache_root()`).
    Returns the cache directory. A complete cache with the same key is reused as is; shards of
    an interrupted run with the same key are reused.

    `annotations` names the annotation file (default: found under `root` by content);
    `max_frames` subsamples longer clips uniformly (recorded in the settings and per clip).
    `align_method` picks the aligner ("haar" | "landmarks", `fdp.data.landmarks`; the landmark
    aligner needs its extra: a one-line DataError naming it otherwise). `contact_sheet` draws
    `fdp.data.contact_sheet` into the cache folder (also for a reused cache that has none).
    Bad rows raise one `BadRowsError` naming all of them before any frame is decoded; unreadable
    frames are collected over the whole pass and raised together at its end (nothing is kept).
    With `skip_bad` both are recorded in the index's `skipped` list instead.
    """
    from fdp.data.readers import read_dataset

    if max_frames is not None and max_frames < 2:
        raise DataError(f"max_frames: expected an integer >= 2, got {max_frames}")
    if align:
        check_available(align_method)  # before anything is read: a missing extra is one line
    root_path = Path(root).resolve()
    result = read_dataset(name, root_path, skip_bad=skip_bad, annotations=annotations)
    samples = list(result.samples)
    skipped: list[dict[str, Any]] = [dict(s) for s in result.skipped]
    settings = preprocessing_settings(align, size, max_frames, align_method)
    key = cache_key(name, root_path, settings, _fingerprint(samples, skipped))
    cache_root = Path(out_dir) if out_dir is not None else default_cache_root()
    final = cache_root / f"{name}-{key}"
    if (final / "index.json").is_file() and (final / "frames.npy").is_file():
        if contact_sheet:  # idempotent: this exact preparation exists (drawn once if it has no sheet)
            ensure_contact_sheet(final)
        return final
    partial = cache_root / f"{name}-{key}.partial"
    resuming = partial.is_dir()
    partial.mkdir(parents=True, exist_ok=True)

    clips: list[dict[str, Any]] = []
    bad_frames: list[dict[str, Any]] = []  # unreadable frames: strict mode raises them all at the end
    total = len(samples)
    for i, s in enumerate(samples):
        shard = partial / f"{i:05d}.npy"
        meta_path = partial / f"{i:05d}.json"
        if shard.is_file() and meta_path.is_file():  # done by an earlier, interrupted run
            meta = json.loads(meta_path.read_text())
        else:
            keep = subsample(len(s.frames), max_frames)
            try:
                picked = s if len(keep) == len(s.frames) else replace(s, frames=tuple(s.frames[k] for k in keep))
                arr, info = _process_clip(picked, align_method if align else False, size)
                meta = {"length": int(arr.shape[0]), **info}
                if len(keep) < len(s.frames):
                    meta["subsampled_from"] = len(s.frames)
            except DataError as e:
                arr, meta = np.zeros((0, 3, size, size), np.uint8), {"skipped": True, "reason": str(e)}
                if not skip_bad:
                    bad_frames.append({"source": s.source, "clip_id": s.clip_id, "reason": str(e)})
            if skip_bad or not bad_frames:  # a strict run with bad frames keeps nothing: no more shards
                _atomic_save(shard, arr)  # shard before meta: a meta file implies a complete shard
                atomic_write_text(meta_path, json.dumps(meta))
        if meta.get("skipped"):
            if skip_bad:
                skipped.append({"source": s.source, "clip_id": s.clip_id, "reason": meta["reason"]})
        else:
            clips.append({"subject": s.subject, "clip_id": s.clip_id, "emotion": s.emotion, "fps": s.fps,
                          "start": 0, "length": meta["length"], "onset": s.onset, "apex": s.apex,
                          "offset": s.offset, "source": s.source, "action_units": s.action_units,
                          "_shard": shard.name,
                          **{k: v for k, v in meta.items() if k not in ("length", "skipped", "reason")}})
        if progress is not None:
            progress(i + 1, total, s.clip_id)
    if bad_frames:
        # bad data stops the run: nothing of it is left behind (an interrupted run's shards, which
        # a resume would reuse, are kept)
        if not resuming:
            shutil.rmtree(partial, ignore_errors=True)
        raise BadRowsError(bad_frames)
    if not clips:
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(f"{root_path}: no usable clips for {name} ({len(skipped)} skipped)")

    # assemble in a temporary directory, then rename: never a half-written cache under the final name
    tmp = cache_root / f"{name}-{key}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    n_frames = sum(c["length"] for c in clips)
    frames = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint8,
                                       shape=(n_frames, 3, size, size))
    start = 0
    for c in clips:
        frames[start:start + c["length"]] = np.load(partial / c.pop("_shard"))
        c["start"] = start
        start += c["length"]
    frames.flush()
    fingerprint = content_fingerprint(name, clips, frames)  # once, while the bytes are at hand
    del frames
    index = {"dataset": name, "root": str(root_path), "annotation": result.annotation, "key": key,
             "settings": settings, "fingerprint": fingerprint, "synthetic": is_synthetic_root(root_path),
             "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "n_frames": n_frames, "clips": clips,
             "skipped": skipped, "repaired": [dict(r) for r in result.repaired],
             "alignment": {"method": align_method if align else "none",
                           "version": method_version(align_method) if align else "centre square, resized"}}
    (tmp / "index.json").write_text(json.dumps(index, indent=1))
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / "index.json").is_file():  # lost a race to a complete cache: fine; else real
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(partial, ignore_errors=True)
    if contact_sheet:
        ensure_contact_sheet(final)
    return final


def ensure_contact_sheet(path: str | os.PathLike[str], redraw: bool = False) -> list[Path]:
    """The contact sheet page(s) of a prepared cache, drawn now when it has none (or `redraw`).
    A cache folder that cannot be written (a shared read-only copy) keeps none: returns []."""
    from fdp.data.contact_sheet import sheet_paths, write_contact_sheet

    have = sheet_paths(path)
    if have and not redraw:
        return have
    try:
        return write_contact_sheet(load_cache(path)).paths
    except OSError:
        return sheet_paths(path)


def load_cache(path: str | os.PathLike[str]) -> ClipCache:
    """Open a prepared cache (frames memory-mapped read-only)."""
    p = Path(path)
    index_path = p / "index.json"
    if not index_path.is_file() or not (p / "frames.npy").is_file():
        raise DataError(f"{p}: not a prepared clip cache (index.json / frames.npy missing)")
    index = json.loads(index_path.read_text())
    frames = np.load(p / "frames.npy", mmap_mode="r")
    return ClipCache(path=p, dataset=index["dataset"], frames=frames, clips=index["clips"],
                     skipped=index.get("skipped", []), settings=index.get("settings", {}),
                     root=index.get("root", ""), repaired=index.get("repaired", []),
                     annotation=index.get("annotation", ""), index=index)


class AmbiguousCacheError(DataError):
    """Several prepared caches of one dataset and none named: which one is meant is the user's call."""


def find_cache(dataset: str, cache_root: str | os.PathLike[str] | None = None,
               root: str | os.PathLike[str] | None = None, fingerprint: str | None = None,
               newest: bool = False) -> Path:
    """The prepared cache of `dataset` under `cache_root` (default `default_cache_root()`).

    Exactly one cache must match: the only one there, the one prepared from `root`, or the one
    whose content fingerprint starts with `fingerprint`. Several matching and none named is an
    AmbiguousCacheError listing each (path, fingerprint, source root, clips, prepared date) and
    how to pick one -- never a silent choice (a synthetic "casme2" prepared into the default
    root must not stand in for the real CASME II). `newest=True` (the synthetic --smoke runs
    only) takes the most recently prepared one instead. None: a one-line DataError that says
    which command makes it.
    """
    base = Path(cache_root) if cache_root is not None else default_cache_root()
    if base.exists() and not base.is_dir():
        raise DataError(f"{base}: the clip cache root is a file, not a folder")
    found = []
    if base.is_dir():
        for d in base.glob(f"{dataset}-*"):
            index = d / "index.json"
            if d.is_dir() and index.is_file() and (d / "frames.npy").is_file():
                if root is not None:
                    if json.loads(index.read_text()).get("root") != str(Path(root).resolve()):
                        continue
                if fingerprint is not None and not cache_fingerprint(d).startswith(fingerprint):
                    continue
                found.append((index.stat().st_mtime, d))
    if not found:
        where = f" from {root}" if root is not None else ""
        which = f" with fingerprint {fingerprint}" if fingerprint is not None else ""
        make = (f"fdp-sweep merge {dataset}" if dataset in MERGED_KINDS
                else f"fdp-sweep prepare {dataset} --root {root if root is not None else '...'}")
        raise DataError(f"no prepared cache for {dataset}{where}{which} under {base}: run `{make}`")
    if len(found) > 1 and not newest:
        listed = "; ".join(cache_info(d).line() for _, d in sorted(found, reverse=True))
        raise AmbiguousCacheError(
            f"{len(found)} prepared caches of {dataset} under {base}, none named: {listed}; pick one with "
            f"--set data.cache_dir=PATH (or its fingerprint), `overrides: {{data.cache_dir: PATH}}` in the spec, "
            f"or {ENV_CACHE_DIR} pointing at a folder that holds only that one")
    return max(found)[1]


def resolve_cache_dir(dataset: str, value: str = "", newest: bool = False) -> Path:
    """`data.cache_dir` as a config gives it: a cache folder, a folder holding exactly one cache
    of `dataset`, a content fingerprint (or its prefix, >= 6 hex) of a cache under the default
    root, or empty (`find_cache`)."""
    if not value:
        return find_cache(dataset, newest=newest)
    p = Path(value).expanduser()
    if (p / "index.json").is_file():
        return p
    if p.is_dir():
        return find_cache(dataset, cache_root=p, newest=newest)
    if len(value) >= 6 and all(ch in "0123456789abcdef" for ch in value.lower()):
        return find_cache(dataset, fingerprint=value.lower())
    return p  # not there: the caller reports the missing cache with its path
