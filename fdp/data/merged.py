"""Merged datasets: the MEGC2019 composite (CDE) and leave-one-dataset-out (LODO) sets.

A merged set is itself a clip cache (`<cache_root>/composite-<key>/` or `lodo-<key>/`, the layout
of `fdp.data.cache`) assembled from prepared caches of its parts, so folds, job keys, tracking and
tables work on it unchanged. Subjects and clip ids are namespaced by database (`samm/006`,
`samm/006_1_2`): ids of two datasets can never collide, and each clip records its `database`, from
which per-database metrics are recomputed out of one set of pooled predictions.

* **Composite** (MEGC2019 CDE, `../shared/data/README.md`): the official label list
  (`megc2019_combined_3class_gt.csv`, shipped as package data) names 442 clips of CASME II, SAMM
  and SMIC with a class 0 = negative, 1 = positive, 2 = surprise; every listed clip must be found in
  the part caches (ids normalised: `sub01`/`01`, `6`/`006`, `s1`/`s01`), or is reported by name
  (and, when allowed, left out and recorded). LOSO then runs over the 68 namespaced subjects.
  Without a list (`label_list="rule"`), the clips are grouped by the challenge guideline's rule
  (negative = repression, anger, contempt, disgust, fear, sadness; positive = happiness;
  surprise), other emotions omitted: what the synthetic smoke data uses.
* **LODO** (MEB's cross-dataset validator; Table 8 is its two-dataset case): each part comes with a
  class setting; all settings must have the same classes in the same order; a fold is a database.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fdp.data.cache import ClipCache, content_fingerprint, default_cache_root, load_cache
from fdp.data.samples import DataError

MEGC_FILE = Path(__file__).with_name("megc2019_combined_3class_gt.csv")
MEGC_SHA256 = "adf1de4a088d4c3b3bd01cc8d061e836264d0e05140266eb15d8dc1050f484a7"  # the official file, byte for byte
MEGC_CLASSES = ("negative", "positive", "surprise")  # label list codes 0, 1, 2
MEGC_DATABASES = ("casme2", "samm", "smic")
# the challenge guideline's grouping, in the emotion words our readers produce (SMIC's own words
# are already the classes); "others"/"other" are omitted, as the guideline says
MEGC_GROUPS: dict[str, tuple[str, ...]] = {
    "negative": ("repression", "anger", "contempt", "disgust", "fear", "sadness", "negative"),
    "positive": ("happiness", "positive"),
    "surprise": ("surprise",),
}


@dataclass(frozen=True)
class ListEntry:
    """One row of a composite label list, ids as the readers write them."""

    database: str
    subject: str  # canonical subject ("01", "006", "s01")
    clip_id: str  # canonical clip id ("sub01_EP02_01f", "006_1_2", "s01_ne_01")
    label: int  # index into MEGC_CLASSES
    line: int  # line of the list file (1-based)

    @property
    def name(self) -> str:
        return f"{self.database}/{self.clip_id}"


def canonical_ids(database: str, subject: Any, clip: Any) -> tuple[str, str]:
    """(subject, clip id) in the form our readers write them, from any of the forms in circulation.

    CASME II `sub01`/`01`/1 + `EP02_01f` -> ("01", "sub01_EP02_01f"); SAMM 6/`006` + `006_1_2` ->
    ("006", "006_1_2"); SMIC `s1`/`s01` + `s1_ne_01`/`s01_ne_01` -> ("s01", "s01_ne_01").
    """
    s, c = str(subject).strip(), str(clip).strip()
    if database == "casme2":
        m = re.fullmatch(r"(?:sub)?0*(\d+)", s, re.IGNORECASE)
        if not m:
            raise ValueError(f"bad CASME II subject {s!r}")
        sub = m.group(1).zfill(2)
        c = re.sub(r"^sub\d+_", "", c, flags=re.IGNORECASE)
        return sub, f"sub{sub}_{c}"
    if database == "samm":
        m = re.fullmatch(r"0*(\d+)", s)
        if not m:
            raise ValueError(f"bad SAMM subject {s!r}")
        return m.group(1).zfill(3), c
    if database.startswith("smic"):
        m = re.fullmatch(r"s0*(\d+)", s, re.IGNORECASE)
        if not m:
            raise ValueError(f"bad SMIC subject {s!r}")
        sub = f"s{int(m.group(1)):02d}"
        return sub, smic_clip_id(c)
    return s, c


def smic_clip_id(clip: str) -> str:
    """`s3_ne_03` -> `s03_ne_03`: the subject part zero-padded to two digits (SMIC folders and the
    MEGC list disagree on the padding)."""
    m = re.fullmatch(r"s0*(\d+)(_.*)", clip.strip(), re.IGNORECASE)
    return f"s{int(m.group(1)):02d}{m.group(2).lower()}" if m else clip.strip()


def read_label_list(path: str | os.PathLike[str] | None = None) -> list[ListEntry]:
    """The composite label list (default: the official MEGC2019 file shipped with fdp).

    Four columns, no header: database, subject, clip, class code (0-2). A bad row is a one-line
    DataError naming file and line; blank lines are passed over.
    """
    p = Path(path) if path is not None else MEGC_FILE
    if not p.is_file():
        raise DataError(f"{p}: composite label list not found")
    entries: list[ListEntry] = []
    seen: dict[tuple[str, str], int] = {}
    with open(p, newline="") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            where = f"{p}:line {n}"
            if len(cells) != 4:
                raise DataError(f"{where}: expected 4 columns (database, subject, clip, class), got {len(cells)}")
            db, subject, clip, code = cells
            if db.lower() not in MEGC_DATABASES:
                raise DataError(f"{where}: unknown database {db!r} (known: {', '.join(MEGC_DATABASES)})")
            db = db.lower()
            if not re.fullmatch(r"[0-2]", code):
                raise DataError(f"{where}: class must be 0 (negative), 1 (positive) or 2 (surprise), got {code!r}")
            try:
                sub, cid = canonical_ids(db, subject, clip)
            except ValueError as e:
                raise DataError(f"{where}: {e}") from None
            if (db, cid) in seen:
                raise DataError(f"{where}: clip {db}/{cid} listed twice (first at line {seen[(db, cid)]})")
            seen[(db, cid)] = n
            entries.append(ListEntry(db, sub, cid, int(code), n))
    if not entries:
        raise DataError(f"{p}: composite label list is empty")
    return entries


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _key(blob: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:10]


def _part_identity(cache: ClipCache) -> dict[str, Any]:
    """What identifies a part: its database, path and content key (fingerprint where stored)."""
    index = cache.index  # already read by load_cache
    return {"database": cache.dataset, "path": str(cache.path.resolve()),
            "key": index.get("fingerprint") or index.get("key", ""), "clips": len(cache.clips)}


def _open_parts(parts: dict[str, str | os.PathLike[str]]) -> dict[str, ClipCache]:
    caches = {}
    for db, path in parts.items():
        cache = load_cache(path)
        if cache.dataset != db:
            raise DataError(f"{path}: part {db!r} is a cache of {cache.dataset}")
        caches[db] = cache
    sizes = {db: int(c.frames.shape[-1]) for db, c in caches.items()}
    if len(set(sizes.values())) > 1:
        raise DataError("merged set: part caches have different frame sizes "
                        + ", ".join(f"{db} {s}" for db, s in sizes.items()) + " (prepare them alike)")
    settings = {db: {k: v for k, v in c.settings.items()} for db, c in caches.items()}
    if len({json.dumps(s, sort_keys=True) for s in settings.values()}) > 1:
        raise DataError("merged set: part caches were prepared with different preprocessing settings "
                        f"({', '.join(settings)}); prepare them alike")
    return caches


def _write(kind: str, caches: dict[str, ClipCache], chosen: list[tuple[str, int, str]], extra: dict[str, Any],
           out_dir: str | os.PathLike[str] | None, skipped: list[dict[str, Any]]) -> Path:
    """Assemble the chosen clips (database, clip index, class) into `<out>/<kind>-<key>/`."""
    identity = {"kind": kind, "parts": [_part_identity(caches[db]) for db in sorted(caches)], **extra,
                "skipped": skipped}
    key = _key(identity)
    cache_root = Path(out_dir) if out_dir is not None else default_cache_root()
    final = cache_root / f"{kind}-{key}"
    if (final / "index.json").is_file() and (final / "frames.npy").is_file():
        return final
    first = next(iter(caches.values()))
    size = int(first.frames.shape[-1])
    clips: list[dict[str, Any]] = []
    n_frames = sum(caches[db].clips[i]["length"] for db, i, _ in chosen)
    tmp = cache_root / f"{kind}-{key}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    frames = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint8,
                                       shape=(n_frames, 3, size, size))
    start = 0
    for db, i, cls in chosen:
        c = dict(caches[db].clips[i])
        frames[start:start + c["length"]] = caches[db].clip_frames(i)
        c.update(subject=f"{db}/{c['subject']}", clip_id=f"{db}/{c['clip_id']}", database=db,
                 source_emotion=c["emotion"], emotion=cls, start=start)
        clips.append(c)
        start += c["length"]
    frames.flush()
    # the content fingerprint of any cache (fdp.data.cache), over the merged rows, classes and frames
    fingerprint = content_fingerprint(kind, clips, frames)
    del frames
    synthetic = all(caches[db].index.get("synthetic", False) for db in caches)
    index = {"dataset": kind, "root": "merged: " + ", ".join(str(caches[db].path) for db in sorted(caches)),
             "key": key, "fingerprint": fingerprint, "synthetic": synthetic, "settings": first.settings,
             "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "n_frames": n_frames, "clips": clips,
             "skipped": skipped, "merged": identity}
    (tmp / "index.json").write_text(json.dumps(index, indent=1))
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / "index.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def build_composite(parts: dict[str, str | os.PathLike[str]], out_dir: str | os.PathLike[str] | None = None,
                    label_list: str | os.PathLike[str] | None = None, skip_missing: bool = False) -> Path:
    """The MEGC2019 composite cache from prepared caches of casme2, samm and smic.

    `label_list`: the list file (default: the official one), or "rule" for the guideline's grouping
    of whatever the parts hold. Every listed clip not found in its part is named in one DataError
    line, unless `skip_missing`, which records them in the index's `skipped`.
    """
    caches = _open_parts(parts)
    chosen: list[tuple[str, int, str]] = []
    skipped: list[dict[str, Any]] = []
    if str(label_list) == "rule":
        groups = {e: cls for cls, emotions in MEGC_GROUPS.items() for e in emotions}
        for db in sorted(caches):
            for i, c in enumerate(caches[db].clips):
                if c["emotion"] in groups:
                    chosen.append((db, i, groups[c["emotion"]]))
        extra: dict[str, Any] = {"label_list": "rule: " + "; ".join(f"{k} = {', '.join(v)}"
                                                                      for k, v in MEGC_GROUPS.items())}
    else:
        path = Path(label_list) if label_list is not None else MEGC_FILE
        entries = read_label_list(path)
        needed = sorted({e.database for e in entries})
        absent = [db for db in needed if db not in caches]
        if absent:
            raise DataError(f"{path}: the list names clips of {', '.join(absent)}, but no cache of it was given "
                            f"(prepare it and pass --part {absent[0]}=<cache>)")
        where = {db: {c["clip_id"]: i for i, c in enumerate(caches[db].clips)} for db in caches}
        missing = []
        for e in entries:
            i = where[e.database].get(e.clip_id)
            if i is None or caches[e.database].clips[i]["subject"] != e.subject:
                missing.append(e)
            else:
                chosen.append((e.database, i, MEGC_CLASSES[e.label]))
        if missing and not skip_missing:
            names = ", ".join(f"{e.name} (line {e.line})" for e in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise DataError(f"{path}: {len(missing)} of {len(entries)} listed clips not in the prepared caches: "
                            f"{names}{more}; pass --skip-missing to leave them out (recorded)")
        skipped = [{"source": f"{path}:line {e.line}", "clip_id": e.name, "reason": "listed clip not in the cache"}
                   for e in missing]
        extra = {"label_list": str(path.resolve()), "label_list_sha256": _sha256(path),
                 "official": _sha256(path) == MEGC_SHA256}
    if not chosen:
        raise DataError("composite: no clip of the parts falls into negative/positive/surprise")
    return _write("composite", caches, chosen, extra, out_dir, skipped)


def build_lodo(parts: dict[str, str | os.PathLike[str]], settings: dict[str, str],
               out_dir: str | os.PathLike[str] | None = None) -> Path:
    """A leave-one-dataset-out cache: each part's clips labelled by its class setting; all settings
    must share their class list (names and order)."""
    from fdp.data.settings import SETTINGS

    if len(parts) < 2:
        raise DataError("leave-one-dataset-out: needs at least two datasets")
    caches = _open_parts(parts)
    classes = {}
    for db in caches:
        if db not in settings:
            raise DataError(f"leave-one-dataset-out: no class setting given for {db} (e.g. {db}:{db}/3)")
        s = SETTINGS[settings[db]]
        if s.dataset != db:
            raise DataError(f"leave-one-dataset-out: setting {s.name} is for {s.dataset}, not {db}")
        classes[db] = tuple(s.classes)
    if len(set(classes.values())) > 1:
        raise DataError("leave-one-dataset-out: the settings' classes differ: "
                        + "; ".join(f"{settings[db]} {'/'.join(c)}" for db, c in classes.items()))
    common = next(iter(classes.values()))
    lodo = [s.name for s in SETTINGS.values() if s.dataset == "lodo" and tuple(s.classes) == common]
    if not lodo:
        known = "; ".join(f"{s.name} {'/'.join(s.classes)}" for s in SETTINGS.values() if s.dataset == "lodo")
        raise DataError(f"leave-one-dataset-out: no lodo class setting has the classes {'/'.join(common)} "
                        f"(known: {known})")
    chosen = []
    for db in sorted(caches):
        s = SETTINGS[settings[db]]
        for i, c in enumerate(caches[db].clips):
            label = s.label_of(c["emotion"])
            if label is not None:
                chosen.append((db, i, s.classes[label]))
    extra = {"settings": {db: settings[db] for db in sorted(caches)}, "classes": list(next(iter(classes.values())))}
    return _write("lodo", caches, chosen, extra, out_dir, [])


def database_of(subject_or_clip: str) -> str:
    """The database of a namespaced id (`samm/006` -> `samm`); "" for a plain id."""
    return subject_or_clip.split("/", 1)[0] if "/" in subject_or_clip else ""
