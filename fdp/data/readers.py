"""Readers of the four licensed micro-expression datasets, exactly as distributed (SPEC §4.1).

`read_dataset(name, root, skip_bad=False)` finds the annotation spreadsheet under `root` (a glob up
to two folder levels deep), reads every row, checks it, and finds the frame files of the clip
(onset..offset inclusive) on disk. Each good row becomes one `Sample`; each bad row (SPEC §4.1,
last bullet) either stops the read with `DataError("<file>:row <N>: <reason>")` or, with
`skip_bad=True`, is recorded in `ReadResult.skipped` — never dropped silently.

What each reader knows about its dataset (all from SPEC §4.1):

* `casme2` — CASME II, `CASME2-coding-*.xlsx`, first sheet, header row `Subject | Filename |
  (blank) | OnsetFrame | ApexFrame | OffsetFrame | (blank) | Action Units | Estimated Emotion`.
  Subject is "01"-style text or an int; ApexFrame "/" means unknown. Frames in
  `CASME2_RAW_selected/subXX/<Filename>/img<N>.jpg` or `Cropped/subXX/<Filename>/reg_img<N>.jpg`.
* `samm` — SAMM, `SAMM_Micro_FACS_Codes*.xlsx`, sheet `MICRO_ONLY`, header row found by its first
  cell "Subject" below a block of notes; emotions capitalised. Frames in
  `SAMM/<subject>/<Filename>/<subject>_<frame:05d>.jpg`.
* `casme_sq` — CAS(ME)^2, `CAS(ME)^2code_final*.xlsx`, first sheet opened by index, no header;
  sheets `naming rule1` (folder number | folder name | subject number of the code sheet) and
  `naming rule2` (video code | video name) lead to `rawpic/s15/15_0101disgustingteeth/img<N>.jpg`.
  Only `micro-expression` rows are samples; `macro-expression` rows are not micro-expressions and
  are passed over (they are not bad rows).
* `casme3` — CAS(ME)^3 Part A, `cas(me)3_part_A_ME_label*.xlsx`, sheet `label`; one
  subject/task-letter video holds several MEs, so the clip id carries the onset
  (`spNO.1_a_123`). Frames in `<subject>/<letter>/color/<frame>.jpg` below any folder.

Decisions where SPEC is silent (also in the report of the change that added this file):

* CAS(ME)^2 offset 0 ("missing", SPEC §4.1): when the apex is known the offset is set to the apex,
  so the clip covers the rise onset..apex, and the repair is listed in `ReadResult.repaired`.
  Why not a bad row: the paper counts all 57 CAS(ME)^2 ME clips (Tables 2-3), so rows without an
  offset were used, and onset..apex is the public CAS(ME)^2 tooling's rule. With the apex missing
  too the row is bad. An apex of 0 there means unknown (`apex=None`). In CAS(ME)^3 an offset of 0
  is a bad row, as SPEC lists it among that file's known errors.
* An empty apex cell or "/" is an unknown apex (`None`) in every dataset; an empty onset or offset
  is a bad row.
* CASME II: when both `CASME2_RAW_selected/` and `Cropped/` exist the raw frames are read, since
  our preprocessing aligns faces itself (SPEC §4.3).
* Several matching annotation files (e.g. the 2014 and 2019 CASME II codings): the one whose name
  sorts last (the newest date stamp) is read; `Sample.source` names it.
* Subjects: CASME II "01" (two digits), SAMM "006" (three digits), CAS(ME)^2 the frame folder name
  ("s15"), CAS(ME)^3 as written ("spNO.1"). Clip ids: CASME II `sub01_EP02_01f`, SAMM the
  Filename, CAS(ME)^2 `s15_anger1_1`, CAS(ME)^3 `spNO.1_a_123`. A repeated clip id is a bad row.
* Frame files are only checked for existence; an unreadable frame is found later by the cache.
"""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdp.data.samples import DataError, Sample

# Frame rate of each recording (SPEC §4.1, paper Table 3).
FPS: dict[str, float] = {"casme2": 200.0, "samm": 200.0, "casme_sq": 30.0, "casme3": 30.0}

# The emotion words each annotation file uses, lower-cased (SPEC §4.1). A row whose emotion is not
# one of these is a bad row: a typo must not become a new class or vanish from every setting.
EMOTIONS: dict[str, tuple[str, ...]] = {
    "casme2": ("happiness", "disgust", "repression", "surprise", "sadness", "fear", "others"),
    "samm": ("anger", "contempt", "disgust", "fear", "happiness", "other", "sadness", "surprise"),
    "casme_sq": ("positive", "negative", "surprise", "others"),
    "casme3": ("happy", "disgust", "surprise", "anger", "fear", "sad", "others"),
}

# Human names for messages.
TITLES: dict[str, str] = {
    "casme2": "CASME II",
    "samm": "SAMM",
    "casme_sq": "CAS(ME)^2",
    "casme3": "CAS(ME)^3 Part A",
}

# Annotation file name patterns, matched case-insensitively (SPEC §4.1).
ANNOTATION_PATTERNS: dict[str, tuple[str, ...]] = {
    "casme2": ("CASME2-coding-*.xlsx",),
    "samm": ("SAMM_Micro_FACS_Codes*.xlsx",),
    "casme_sq": ("CAS(ME)^2code_final*.xlsx", "CAS(ME)2code_final*.xlsx"),
    "casme3": ("cas(me)3_part_A_ME_label*.xlsx",),
}

ANNOTATION_DEPTH = 2  # folder levels below root searched for the annotation file
FRAMES_DEPTH = 4  # folder levels below root searched for the frame folders
HEADER_SEARCH_ROWS = 100  # rows scanned for a header row whose first cell is "Subject"


@dataclass
class ReadResult:
    """What `read_dataset` returns: the good clips and the bad rows it passed over."""

    samples: list[Sample]  # one per good annotation row, in spreadsheet order
    skipped: list[dict[str, str]]  # {"source": "<file>:row N", "reason": ...} per bad row
    # {"source", "reason"} per row read with a documented repair (CAS(ME)^2 offset 0 -> apex)
    repaired: list[dict[str, str]] = field(default_factory=list)


class _BadRow(Exception):
    """A row-level problem; turned into DataError or a `skipped` entry by the caller."""


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def read_dataset(name: str, root: str | os.PathLike[str], skip_bad: bool = False) -> ReadResult:
    """Read dataset `name` (casme2 | samm | casme_sq | casme3) from its folder `root`.

    Raises `DataError` with one line for an unknown name, a missing root, annotation file,
    sheet, column or frame folder, and (unless `skip_bad`) for the first bad row (SPEC §4.1).
    """
    reader = READERS.get(name)
    if reader is None:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(READERS)}")
    root_path = Path(root).expanduser().absolute()
    if not root_path.is_dir():
        raise DataError(f"{root_path}: {TITLES[name]} dataset root not found (not a folder)")
    return reader(root_path, skip_bad)


# ---------------------------------------------------------------------------------------------
# Shared helpers: finding files, opening sheets, parsing cells, listing frames
# ---------------------------------------------------------------------------------------------


def _walk_dirs(root: Path, max_depth: int, prune: Callable[[Path], bool]) -> Iterator[tuple[Path, int]]:
    """Folders below `root` (root first, breadth-first, sorted) down to `max_depth` levels.

    Folders for which `prune` is true are yielded but not entered: frame folders hold thousands
    of files, and walking into them would make every read slow.
    """
    level = [root]
    for depth in range(max_depth + 1):
        nxt: list[Path] = []
        for folder in level:
            yield folder, depth
            if depth == max_depth or prune(folder):
                continue
            try:
                children = sorted(
                    e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")
                )
            except OSError:
                continue
            nxt.extend(Path(c) for c in children)
        level = nxt


def _find_annotation(root: Path, name: str) -> Path:
    """The annotation file of dataset `name` under `root` (SPEC §4.1); the newest-named on ties."""
    patterns = [p.lower() for p in ANNOTATION_PATTERNS[name]]
    found: list[Path] = []
    for folder, _ in _walk_dirs(root, ANNOTATION_DEPTH, lambda p: False):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            low = e.name.lower()
            # "~$..." are Excel's lock files, not workbooks.
            matches = any(fnmatch.fnmatchcase(low, p) for p in patterns)
            if e.is_file() and matches and not low.startswith("~$"):
                found.append(Path(e.path))
    if not found:
        wanted = " or ".join(ANNOTATION_PATTERNS[name])
        raise DataError(
            f"{root}: no {TITLES[name]} annotation file {wanted} found "
            f"(searched {ANNOTATION_DEPTH} folder levels deep)"
        )
    # Sort by file name, then path: the latest date stamp wins, deterministically.
    return sorted(found, key=lambda p: (p.name.lower(), str(p)))[-1]


def _rel(path: Path, root: Path) -> str:
    """`path` relative to the dataset root, for messages and `Sample.source`."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _open_workbook(path: Path, label: str) -> Any:
    """Open an .xlsx read-only-in-spirit (cached values of formulas), one-line error otherwise."""
    import openpyxl  # local: only readers need it, keep `import fdp` light

    try:
        with warnings.catch_warnings():
            # Real annotation files carry data validation / unknown extensions openpyxl warns about.
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(path, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise DataError(f"{label}: cannot open as an .xlsx workbook ({type(exc).__name__}: {exc})") from None


def _norm(text: Any) -> str:
    """Header / sheet-name key: lower-case letters and digits only ("Onset Frame" -> "onsetframe")."""
    return re.sub(r"[^a-z0-9]", "", str(text).lower()) if text is not None else ""


def _sheet(wb: Any, label: str, name: str) -> Any:
    """Sheet `name` of `wb`, matching case and spacing loosely (copies differ)."""
    if name in wb.sheetnames:
        return wb[name]
    for s in wb.sheetnames:
        if _norm(s) == _norm(name):
            return wb[s]
    raise DataError(f"{label}: no sheet {name!r} (sheets: {', '.join(wb.sheetnames)})")


def _rows(ws: Any) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(Excel row number, cell values) for every row of `ws`, starting at row 1."""
    for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
        yield number, tuple(values)


def _blank(values: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _find_header(
    ws: Any, label: str, columns: dict[str, tuple[str, ...]]
) -> tuple[int, dict[str, int]]:
    """Find the header row by its first cell "Subject" (SPEC §4.1, SAMM) and map fields to columns.

    `columns` maps a field to the accepted header spellings, the distributed one first (compared
    with `_norm`, so "Onset Frame" and "OnsetFrame" both match). Blank header
    cells (CASME II's unnamed columns) are simply never matched.
    """
    for number, values in _rows(ws):
        if number > HEADER_SEARCH_ROWS:
            break
        if values and _norm(values[0]) == "subject":
            index = {_norm(v): i for i, v in reversed(list(enumerate(values))) if _norm(v)}
            mapping: dict[str, int] = {}
            for fld, names in columns.items():
                hit = next((index[_norm(n)] for n in names if _norm(n) in index), None)
                if hit is None:
                    found = ", ".join(str(v) for v in values if v is not None)
                    raise DataError(
                        f"{label}:row {number}: header has no column {names[0]!r} (found: {found})"
                    )
                mapping[fld] = hit
            return number, mapping
    raise DataError(
        f"{label}: no header row whose first cell is 'Subject' in sheet {ws.title!r} "
        f"(searched the first {HEADER_SEARCH_ROWS} rows)"
    )


def _cell(values: Sequence[Any], index: int) -> Any:
    return values[index] if index < len(values) else None


def _text(value: Any) -> str:
    """A cell as text: ints stay ints ("4", not "4.0"), None becomes ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _parse_index(value: Any, column: str) -> int | None:
    """Parse a frame index cell: an int, None for an empty cell, a bad row for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _BadRow(f"non-numeric {column} {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise _BadRow(f"non-integer {column} {value!r}")
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.0*)?", value.strip()):
        number = int(float(value.strip()))
    else:
        raise _BadRow(f"non-numeric {column} {value!r}")
    if number < 0:
        raise _BadRow(f"negative {column} {number}")
    return number


def _frame_index(value: Any, column: str) -> int:
    """An onset / offset cell: required."""
    number = _parse_index(value, column)
    if number is None:
        raise _BadRow(f"missing {column}")
    return number


def _apex_index(value: Any, column: str) -> int | None:
    """An apex cell: "/" or an empty cell mean unknown (SPEC §4.1, CASME II)."""
    if isinstance(value, str) and value.strip() == "/":
        return None
    return _parse_index(value, column)


def _check_order(onset: int, apex: int | None, offset: int) -> None:
    """Inverted indices and an apex outside [onset, offset] are bad rows (SPEC §4.1)."""
    if offset < onset:
        raise _BadRow(f"offset {offset} before onset {onset}")
    if apex is not None and apex < onset:
        raise _BadRow(f"apex {apex} before onset {onset}")
    if apex is not None and apex > offset:
        raise _BadRow(f"apex {apex} after offset {offset}")


def _emotion(value: Any, dataset: str) -> str:
    """Lower-cased emotion, checked against the dataset's vocabulary (`EMOTIONS`)."""
    word = _text(value).lower()
    if not word:
        raise _BadRow("missing emotion")
    if word not in EMOTIONS[dataset]:
        raise _BadRow(f"unknown emotion {_text(value)!r} (known: {', '.join(EMOTIONS[dataset])})")
    return word


def _fmt_numbers(numbers: Sequence[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9" (first few runs only, to keep the message one short line)."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    shown = [f"{a}-{b}" if a != b else f"{a}" for a, b in runs[:5]]
    return ", ".join(shown) + (", ..." if len(runs) > 5 else "")


class _Disk:
    """Cached folder listings: each frame folder is listed once even when it holds several MEs."""

    def __init__(self) -> None:
        self._subfolders: dict[Path, dict[str, Path] | None] = {}
        self._frames: dict[tuple[Path, str], dict[int, Path] | None] = {}

    def subfolders(self, parent: Path) -> dict[str, Path] | None:
        """{name: path} of the sub-folders of `parent` (sorted by name); None if it is no folder."""
        if parent not in self._subfolders:
            try:
                entries = sorted((e.name, Path(e.path)) for e in os.scandir(parent) if e.is_dir())
                self._subfolders[parent] = dict(entries)
            except OSError:
                self._subfolders[parent] = None
        return self._subfolders[parent]

    def child(self, parent: Path, name: str) -> Path | None:
        """Sub-folder `name` of `parent`: the exact name, else a case-insensitive match
        (CAS(ME)^3 labels write `spNO` where some copies' folders say `spNo`)."""
        children = self.subfolders(parent)
        if not children:
            return None
        if name in children:
            return children[name]
        return next((p for n, p in children.items() if n.lower() == name.lower()), None)

    def path(self, base: Path, parts: Iterable[str]) -> Path | None:
        """`base/part/part/...` resolved folder by folder; None when a folder is missing."""
        here: Path | None = base
        for part in parts:
            here = self.child(here, part) if here is not None else None
        return here

    def frames(self, folder: Path, pattern: str) -> dict[int, Path] | None:
        """{frame number: file} for the files of `folder` whose name fully matches `pattern`.

        The number is the first group of `pattern`, parsed as an int, so `img9` sorts before
        `img10` and zero-padding does not matter (SPEC §4.1).
        """
        key = (folder, pattern)
        if key not in self._frames:
            rx = re.compile(pattern, re.IGNORECASE)
            try:
                names = sorted(e.name for e in os.scandir(folder) if e.is_file())
            except OSError:
                self._frames[key] = None
                return None
            found: dict[int, Path] = {}
            for n in names:
                m = rx.fullmatch(n)
                if m:
                    found.setdefault(int(m.group(1)), folder / n)
            self._frames[key] = found
        return self._frames[key]

    def select(
        self, folder: Path | None, shown: str, pattern: str, onset: int, offset: int
    ) -> tuple[str, ...]:
        """Paths of frames onset..offset inclusive in frame order; a bad row if any is missing."""
        found = self.frames(folder, pattern) if folder is not None else None
        if found is None:
            raise _BadRow(f"frame folder {shown} not found on disk")
        missing = [n for n in range(onset, offset + 1) if n not in found]
        if missing:
            raise _BadRow(
                f"missing frames on disk in {shown}: {_fmt_numbers(missing)} "
                f"({len(missing)} of {onset}..{offset})"
            )
        return tuple(str(found[n]) for n in range(onset, offset + 1))


def _frame_bases(
    root: Path, names: Sequence[str] | None, child: str, title: str, looked_for: str
) -> list[Path]:
    """Folders below `root` that hold the per-subject frame folders.

    A base is a folder (named one of `names`, or any name when `names` is None) with at least one
    sub-folder whose name fully matches the regex `child` (the subject folders). Bases are returned
    in breadth-first order; for a fixed name list, the first name with any base wins (CASME II:
    raw before cropped).
    """
    rx = re.compile(child, re.IGNORECASE)

    def has_subjects(folder: Path) -> bool:
        try:
            return any(e.is_dir() and rx.fullmatch(e.name) for e in os.scandir(folder))
        except OSError:
            return False

    def is_subject(folder: Path) -> bool:
        return bool(rx.fullmatch(folder.name))

    folders = [f for f, _ in _walk_dirs(root, FRAMES_DEPTH, is_subject) if not is_subject(f)]
    if names is None:
        bases = [f for f in folders if has_subjects(f)]
    else:
        bases = []
        for name in names:
            bases = [f for f in folders if f.name.lower() == name.lower() and has_subjects(f)]
            if bases:
                break
    if not bases:
        raise DataError(
            f"{root}: no {title} frame folder {looked_for} found (searched {FRAMES_DEPTH} folder levels deep)"
        )
    return bases


class _Collector:
    """Collects samples and bad rows; raises on the first bad row unless skipping (SPEC §4.1)."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.result = ReadResult(samples=[], skipped=[])
        self._clip_rows: dict[str, str] = {}

    def bad(self, source: str, reason: str) -> None:
        if not self.skip_bad:
            raise DataError(f"{source}: {reason}")
        self.result.skipped.append({"source": source, "reason": reason})

    def check_new(self, clip_id: str) -> None:
        """A clip id already read is a bad row: ids must be unique within a dataset (`Sample`).
        Checked before the frames, so the message names the real problem."""
        first = self._clip_rows.get(clip_id)
        if first is not None:
            raise _BadRow(f"duplicate clip {clip_id!r} (first at {first})")

    def add(self, sample: Sample) -> None:
        self._clip_rows[sample.clip_id] = sample.source.rsplit(":", 1)[-1]
        self.result.samples.append(sample)


# ---------------------------------------------------------------------------------------------
# CASME II
# ---------------------------------------------------------------------------------------------

_CASME2_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetFrame", "Onset"),
    "apex": ("ApexFrame", "Apex"),
    "offset": ("OffsetFrame", "Offset"),
    "aus": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
}

# (frame folder name, frame file regex); raw first, see the module docstring.
_CASME2_LAYOUTS = (("CASME2_RAW_selected", r"img(\d+)\.jpg"), ("Cropped", r"reg_img(\d+)\.jpg"))


def _padded_subject(value: Any, width: int, prefix: str = "") -> str:
    """Subject cell as zero-padded digits: 1, "1", "01", "sub01" -> "01" (width 2)."""
    text = _text(value)
    m = re.fullmatch(rf"(?:{prefix})?0*(\d+)", text, re.IGNORECASE) if text else None
    if m is None:
        raise _BadRow(f"bad Subject {text!r}" if text else "missing Subject")
    return m.group(1).zfill(width)


def read_casme2(root: Path, skip_bad: bool = False) -> ReadResult:
    """CASME II (SPEC §4.1): `CASME2-coding-*.xlsx` sheet 1 + `subXX/<Filename>/img<N>.jpg`."""
    ann = _find_annotation(root, "casme2")
    label = _rel(ann, root)
    wb = _open_workbook(ann, label)
    ws = wb.worksheets[0]  # "sheet 1": its name differs between the 2014 and 2019 files
    header, col = _find_header(ws, label, _CASME2_COLUMNS)
    names = [n for n, _ in _CASME2_LAYOUTS]
    bases = _frame_bases(root, names, r"sub\d+", TITLES["casme2"], " or ".join(f"{n}/" for n in names))
    base = bases[0]
    pattern = dict(_CASME2_LAYOUTS)[next(n for n in names if n.lower() == base.name.lower())]
    disk = _Disk()
    out = _Collector(skip_bad)
    for number, values in _rows(ws):
        if number <= header or _blank(values):
            continue
        source = f"{label}:row {number}"
        try:
            subject = _padded_subject(_cell(values, col["subject"]), 2, prefix="sub")
            filename = _text(_cell(values, col["filename"]))
            if not filename:
                raise _BadRow("missing Filename")
            onset = _frame_index(_cell(values, col["onset"]), "OnsetFrame")
            apex = _apex_index(_cell(values, col["apex"]), "ApexFrame")
            offset = _frame_index(_cell(values, col["offset"]), "OffsetFrame")
            _check_order(onset, apex, offset)
            emotion = _emotion(_cell(values, col["emotion"]), "casme2")
            clip_id = f"sub{subject}_{filename}"
            out.check_new(clip_id)
            folder = disk.path(base, [f"sub{subject}", filename])
            shown = _rel(base / f"sub{subject}" / filename, root)
            frames = disk.select(folder, shown, pattern, onset, offset)
            out.add(
                Sample(
                    dataset="casme2",
                    subject=subject,
                    clip_id=clip_id,
                    onset=onset,
                    apex=apex,
                    offset=offset,
                    emotion=emotion,
                    action_units=_text(_cell(values, col["aus"])),
                    fps=FPS["casme2"],
                    frames=frames,
                    source=source,
                )
            )
        except _BadRow as exc:
            out.bad(source, str(exc))
    return out.result


# ---------------------------------------------------------------------------------------------
# SAMM
# ---------------------------------------------------------------------------------------------

_SAMM_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset Frame", "Onset"),
    "apex": ("Apex Frame", "Apex"),
    "offset": ("Offset Frame", "Offset"),
    "aus": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
}


def read_samm(root: Path, skip_bad: bool = False) -> ReadResult:
    """SAMM (SPEC §4.1): sheet `MICRO_ONLY`, header found by "Subject", `<subject>_<frame:05d>.jpg`."""
    ann = _find_annotation(root, "samm")
    label = _rel(ann, root)
    wb = _open_workbook(ann, label)
    ws = _sheet(wb, label, "MICRO_ONLY")
    header, col = _find_header(ws, label, _SAMM_COLUMNS)
    base = _frame_bases(root, ["SAMM"], r"\d+", TITLES["samm"], "SAMM/")[0]
    disk = _Disk()
    out = _Collector(skip_bad)
    for number, values in _rows(ws):
        if number <= header or _blank(values):
            continue
        source = f"{label}:row {number}"
        try:
            subject = _padded_subject(_cell(values, col["subject"]), 3)
            filename = _text(_cell(values, col["filename"]))
            if not filename:
                raise _BadRow("missing Filename")
            onset = _frame_index(_cell(values, col["onset"]), "Onset Frame")
            apex = _apex_index(_cell(values, col["apex"]), "Apex Frame")
            offset = _frame_index(_cell(values, col["offset"]), "Offset Frame")
            _check_order(onset, apex, offset)
            emotion = _emotion(_cell(values, col["emotion"]), "samm")
            out.check_new(filename)
            folder = disk.path(base, [subject, filename])
            shown = _rel(base / subject / filename, root)
            frames = disk.select(folder, shown, rf"{re.escape(subject)}_(\d+)\.jpg", onset, offset)
            out.add(
                Sample(
                    dataset="samm",
                    subject=subject,
                    clip_id=filename,
                    onset=onset,
                    apex=apex,
                    offset=offset,
                    emotion=emotion,
                    action_units=_text(_cell(values, col["aus"])),
                    fps=FPS["samm"],
                    frames=frames,
                    source=source,
                )
            )
        except _BadRow as exc:
            out.bad(source, str(exc))
    return out.result


# ---------------------------------------------------------------------------------------------
# CAS(ME)^2
# ---------------------------------------------------------------------------------------------

# Column positions of the header-less code sheet (SPEC §4.1).
_SQ_SUBJECT, _SQ_CLIP, _SQ_ONSET, _SQ_APEX, _SQ_OFFSET, _SQ_AUS, _SQ_EMOTION, _SQ_TYPE = range(8)
_SQ_TYPES = ("micro-expression", "macro-expression")


def _int_or_none(value: Any) -> int | None:
    """An integer cell (int, integral float or digit text), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _naming_rules(wb: Any, label: str) -> tuple[dict[int, int], dict[str, str]]:
    """({code-sheet subject: folder number}, {video name: 4-digit video code}) from the naming sheets.

    `naming rule1`: folder number (15 -> s15/15_...) | folder name | subject number of the code
    sheet. `naming rule2`: video code (101 or "0101") | video name ("disgust1"). Rows that are not
    of that shape (a title or header row in some copies) are passed over.
    """
    subjects: dict[int, int] = {}
    for _, values in _rows(_sheet(wb, label, "naming rule1")):
        folder_no = _int_or_none(re.sub(r"^[sS]", "", _text(_cell(values, 0))))
        subject_no = _int_or_none(_cell(values, 2))
        if folder_no is not None and subject_no is not None:
            subjects[subject_no] = folder_no
    videos: dict[str, str] = {}
    for _, values in _rows(_sheet(wb, label, "naming rule2")):
        code = _int_or_none(_cell(values, 0))
        name = _text(_cell(values, 1)).lower()
        if code is not None and name:
            videos[name] = f"{code:04d}"
    if not subjects or not videos:
        raise DataError(f"{label}: sheets 'naming rule1'/'naming rule2' hold no subject or video codes")
    return subjects, videos


def read_casme_sq(root: Path, skip_bad: bool = False) -> ReadResult:
    """CAS(ME)^2 (SPEC §4.1): header-less first sheet, naming-rule sheets, micro-expression rows only."""
    ann = _find_annotation(root, "casme_sq")
    label = _rel(ann, root)
    wb = _open_workbook(ann, label)
    ws = wb.worksheets[0]  # its name differs between copies: open by index
    subjects, videos = _naming_rules(wb, label)
    base = _frame_bases(root, ["rawpic"], r"s\d+", TITLES["casme_sq"], "rawpic/")[0]
    disk = _Disk()
    out = _Collector(skip_bad)
    for number, values in _rows(ws):
        if _blank(values):
            continue
        kind = _text(_cell(values, _SQ_TYPE)).lower()
        onset_cell = _cell(values, _SQ_ONSET)
        if number == 1 and kind not in _SQ_TYPES and _int_or_none(onset_cell) is None:
            continue  # a header row some copies add; SPEC says there is none
        source = f"{label}:row {number}"
        try:
            if kind not in _SQ_TYPES:
                written = _text(_cell(values, _SQ_TYPE))
                raise _BadRow(f"unknown expression type {written!r} (known: {', '.join(_SQ_TYPES)})")
            if kind != "micro-expression":
                continue  # macro-expressions are not samples of this dataset (SPEC §4.1)
            subject_no = _int_or_none(_cell(values, _SQ_SUBJECT))
            if subject_no is None:
                raise _BadRow(f"bad subject {_text(_cell(values, _SQ_SUBJECT))!r}")
            if subject_no not in subjects:
                raise _BadRow(f"subject {subject_no} not in sheet 'naming rule1'")
            clip = _text(_cell(values, _SQ_CLIP))
            if not clip:
                raise _BadRow("missing clip name")
            video = clip.rsplit("_", 1)[0].lower()  # "anger1_1" -> video "anger1", 1st ME in it
            if video not in videos:
                raise _BadRow(f"video {video!r} of clip {clip!r} not in sheet 'naming rule2'")
            # 0 = missing in this file (SPEC §4.1)
            onset = _frame_index(onset_cell, "onset")
            apex = _apex_index(_cell(values, _SQ_APEX), "apex")
            offset = _frame_index(_cell(values, _SQ_OFFSET), "offset")
            if onset == 0:
                raise _BadRow("onset is 0 (missing)")
            apex = None if apex == 0 else apex
            repair = None
            if offset == 0:
                if apex is None:
                    raise _BadRow("offset and apex are 0 (missing)")
                if apex < onset:
                    raise _BadRow(f"apex {apex} before onset {onset}")
                # See the module docstring: onset..apex keeps the clip the paper counted.
                repair = f"offset 0 (missing): apex {apex} used as offset"
                offset = apex
            _check_order(onset, apex, offset)
            emotion = _emotion(_cell(values, _SQ_EMOTION), "casme_sq")
            folder_no = subjects[subject_no]
            subject = f"s{folder_no}"
            clip_id = f"{subject}_{clip}"
            out.check_new(clip_id)
            subject_dir = disk.child(base, subject)
            prefix = f"{folder_no}_{videos[video]}"
            video_dir = None
            if subject_dir is not None:
                # Video folders are "<folder no>_<code><description>": match on the known part.
                children = disk.subfolders(subject_dir) or {}
                candidates = [p for n, p in children.items() if n.lower().startswith(prefix.lower())]
                video_dir = candidates[0] if candidates else None
            shown = _rel(base / subject / f"{prefix}*", root)
            frames = disk.select(video_dir, shown, r"img(\d+)\.jpg", onset, offset)
            out.add(
                Sample(
                    dataset="casme_sq",
                    subject=subject,
                    clip_id=clip_id,
                    onset=onset,
                    apex=apex,
                    offset=offset,
                    emotion=emotion,
                    action_units=_text(_cell(values, _SQ_AUS)),
                    fps=FPS["casme_sq"],
                    frames=frames,
                    source=source,
                )
            )
            if repair is not None:  # listed only once the row is known to be good
                out.result.repaired.append({"source": source, "reason": repair})
        except _BadRow as exc:
            out.bad(source, str(exc))
    return out.result


# ---------------------------------------------------------------------------------------------
# CAS(ME)^3 Part A
# ---------------------------------------------------------------------------------------------

_CASME3_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset", "OnsetFrame"),
    "apex": ("Apex", "ApexFrame"),
    "offset": ("Offset", "OffsetFrame"),
    "aus": ("AU", "AUs", "Action Units"),
    "emotion": ("emotion", "Estimated Emotion"),
}


def read_casme3(root: Path, skip_bad: bool = False) -> ReadResult:
    """CAS(ME)^3 Part A (SPEC §4.1): sheet `label`, `<subject>/<letter>/color/<frame>.jpg`."""
    ann = _find_annotation(root, "casme3")
    label = _rel(ann, root)
    wb = _open_workbook(ann, label)
    ws = _sheet(wb, label, "label")
    header, col = _find_header(ws, label, _CASME3_COLUMNS)
    # Part A ships split over several archives in some copies: subjects may sit in several bases.
    bases = _frame_bases(root, None, r"spno\.\d+", TITLES["casme3"], "holding spNO.<k>/ folders")
    disk = _Disk()
    out = _Collector(skip_bad)
    for number, values in _rows(ws):
        if number <= header or _blank(values):
            continue
        source = f"{label}:row {number}"
        try:
            subject = _text(_cell(values, col["subject"]))
            if not re.fullmatch(r"spno\.\d+", subject, re.IGNORECASE):
                raise _BadRow(f"bad Subject {subject!r}" if subject else "missing Subject")
            letter = _text(_cell(values, col["filename"])).lower()  # one row writes a capital
            if not letter:
                raise _BadRow("missing Filename")
            onset = _frame_index(_cell(values, col["onset"]), "Onset")
            apex = _apex_index(_cell(values, col["apex"]), "Apex")
            offset = _frame_index(_cell(values, col["offset"]), "Offset")
            if offset == 0:
                raise _BadRow("offset is 0 (missing)")
            _check_order(onset, apex, offset)
            emotion = _emotion(_cell(values, col["emotion"]), "casme3")
            clip_id = f"{subject}_{letter}_{onset}"
            out.check_new(clip_id)
            folder = next(
                (f for f in (disk.path(b, [subject, letter, "color"]) for b in bases) if f is not None), None
            )
            shown = f"{subject}/{letter}/color"
            frames = disk.select(folder, shown, r"(\d+)\.jpg", onset, offset)
            out.add(
                Sample(
                    dataset="casme3",
                    subject=subject,
                    clip_id=clip_id,
                    onset=onset,
                    apex=apex,
                    offset=offset,
                    emotion=emotion,
                    action_units=_text(_cell(values, col["aus"])),
                    fps=FPS["casme3"],
                    frames=frames,
                    source=source,
                )
            )
        except _BadRow as exc:
            out.bad(source, str(exc))
    return out.result


# Reader registry: name -> reader(root, skip_bad). `read_dataset` is the entry point.
READERS: dict[str, Callable[[Path, bool], ReadResult]] = {
    "casme2": read_casme2,
    "samm": read_samm,
    "casme_sq": read_casme_sq,
    "casme3": read_casme3,
}
