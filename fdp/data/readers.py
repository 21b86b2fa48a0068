"""Readers of the four licensed micro-expression datasets, exactly as distributed (SPEC §4.1).

`read_dataset(name, root, skip_bad=False, annotations=None)` finds the annotation table under
`root` by its content (`SIGNATURES`), reads every row, checks it, and finds the frame files of the
clip (onset..offset inclusive) on disk. Each good row becomes one `Sample`. Every bad row (SPEC
§4.1, last bullet) is collected in one pass; then either the read stops with one `BadRowsError`
naming them all (file, row, clip id, reason) or, with `skip_bad=True`, they are recorded in
`ReadResult.skipped` — never dropped silently. Rows fixed by a documented rule are kept and listed
in `ReadResult.repaired` with the original value.

Conventions every reader follows, so that a new reader (and a new quirk of one copy) is handled
the same way everywhere:

* **Finding the annotation file** (`find_annotation`): every `.xlsx` / `.xlsm` / `.xls` / `.csv`
  up to `ANNOTATION_DEPTH` folder levels below `root` is opened and checked against the dataset's
  `Signature` (sheet, header columns or, for header-less sheets, a content check). File names are
  only a hint (copies are renamed: `SAMM_20181215_Micro_FACS_Codes_v2.xlsx`, `code_final.xlsx`).
  Exactly one must match; none or several is a one-line error listing the files seen and why each
  did not match. `annotations=FILE` names the file instead (it must still match the signature).
* **Numbers** (`parse_number`): ints, integral floats (1143.0, what .xls and some exports give),
  text-typed numbers ("1143", "1143.0", CAS(ME)^3's cells), blanks and "/" (unknown) are parsed by
  one helper in every reader.
* **Repair rule** (`check_span`): an offset before the onset is a bad row; an apex outside a valid
  onset..offset span becomes unknown (`apex=None`, as CASME II's "/"), with a listed repair — the
  span and its frames are valid, and nothing downstream uses the apex. SAMM's 028_4_1 (apex after
  offset) and 032_3_1 (apex before onset) are such rows; the paper counts both (Tables 1-2).
* **Clip ids in every message**: a bad row's entry carries the clip id (subject + filename, as far
  as the row gives them), not only the spreadsheet row.

What each reader knows about its dataset (all from SPEC §4.1):

* `casme2` — CASME II, first sheet, header row `Subject | Filename | (blank) | OnsetFrame |
  ApexFrame | OffsetFrame | (blank) | Action Units | Estimated Emotion`. Subject is "01"-style
  text or an int; ApexFrame "/" means unknown. Frames in
  `CASME2_RAW_selected/subXX/<Filename>/img<N>.jpg` or `Cropped/subXX/<Filename>/reg_img<N>.jpg`.
* `samm` — SAMM, sheet `MICRO_ONLY`, header row found by its first cell "Subject" below a block of
  notes; emotions capitalised. Frames in `SAMM/<subject>/<Filename>/<subject>_<frame:05d>.jpg`.
* `casme_sq` — CAS(ME)^2, first sheet opened by index, no header; sheets `naming rule1` (folder
  number | folder name | subject number of the code sheet) and `naming rule2` (video code | video
  name) lead to `rawpic/s15/15_0101disgustingteeth/img<N>.jpg`. Only `micro-expression` rows are
  samples; `macro-expression` rows are not micro-expressions and are passed over (not bad rows).
* `casme3` — CAS(ME)^3 Part A, sheet `label`; one subject/task-letter video holds several MEs, so
  the clip id carries the onset (`spNO.1_a_123`). Frames in `<subject>/<letter>/color/<frame>.jpg`
  below any folder.

Decisions where SPEC is silent:

* CAS(ME)^2 offset 0 ("missing", SPEC §4.1): when the apex is known the offset is set to the apex,
  so the clip covers the rise onset..apex, and the repair is listed with the original 0. Why not a
  bad row: the paper counts all 57 CAS(ME)^2 ME clips (Tables 2-3), so rows without an offset were
  used, and onset..apex is the public CAS(ME)^2 tooling's rule. With the apex missing too (or
  before the onset) the row is bad. An apex of 0 there means unknown (`apex=None`). In CAS(ME)^3 an
  offset of 0 is a bad row, as SPEC lists it among that file's known errors.
* An empty apex cell or "/" is an unknown apex (`None`) in every dataset; an empty onset or offset
  is a bad row.
* CASME II: when both `CASME2_RAW_selected/` and `Cropped/` exist the raw frames are read, since
  our preprocessing aligns faces itself (SPEC §4.3).
* A `.csv` export is accepted where the dataset needs one table (CASME II, SAMM, CAS(ME)^3); its
  sheet name is not checked. CAS(ME)^2 needs its naming-rule sheets, so only a workbook will do.
* Subjects: CASME II "01" (two digits), SAMM "006" (three digits), CAS(ME)^2 the frame folder name
  ("s15"), CAS(ME)^3 as written ("spNO.1"). Clip ids: CASME II `sub01_EP02_01f`, SAMM the
  Filename, CAS(ME)^2 `s15_anger1_1`, CAS(ME)^3 `spNO.1_a_123`. A repeated clip id is a bad row.
* Frame files are only checked for existence; an unreadable frame is found later by the cache.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdp.data.samples import BadRowsError, DataError, Sample

# Frame rate of each recording (SPEC §4.1, paper Table 3).
FPS: dict[str, float] = {"casme2": 200.0, "samm": 200.0, "casme_sq": 30.0, "casme3": 30.0,
                         "smic": 100.0, "smic_vis": 25.0, "smic_nir": 25.0, "mmew": 90.0, "fourd": 60.0}

# The emotion words each annotation file uses, lower-cased (SPEC §4.1). A row whose emotion is not
# one of these is a bad row: a typo must not become a new class or vanish from every setting.
EMOTIONS: dict[str, tuple[str, ...]] = {
    "casme2": ("happiness", "disgust", "repression", "surprise", "sadness", "fear", "others"),
    "samm": ("anger", "contempt", "disgust", "fear", "happiness", "other", "sadness", "surprise"),
    "casme_sq": ("positive", "negative", "surprise", "others"),
    "casme3": ("happy", "disgust", "surprise", "anger", "fear", "sad", "others"),
    "smic": ("negative", "positive", "surprise"),
    "smic_vis": ("negative", "positive", "surprise"),
    "smic_nir": ("negative", "positive", "surprise"),
    # MMEW: `others` in some releases, `repression` in others (settings treat them as one class)
    "mmew": ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others", "repression"),
    # 4DME: single words; a combined label joins two of them with "+" (see _fourd_emotion)
    "fourd": ("positive", "negative", "surprise", "repression", "others"),
}

# Human names for messages.
TITLES: dict[str, str] = {
    "casme2": "CASME II",
    "samm": "SAMM",
    "casme_sq": "CAS(ME)^2",
    "casme3": "CAS(ME)^3 Part A",
    "smic": "SMIC-HS",
    "smic_vis": "SMIC-VIS",
    "smic_nir": "SMIC-NIR",
    "mmew": "MMEW",
    "fourd": "4DME",
}

TABLE_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv")  # files opened as candidate annotation tables
ANNOTATION_DEPTH = 2  # folder levels below root searched for the annotation file
FRAMES_DEPTH = 4  # folder levels below root searched for the frame folders
HEADER_SEARCH_ROWS = 100  # rows scanned for a header row whose first cell is "Subject"
UNKNOWN_MARKS = ("/",)  # cell texts that mean "not known" (CASME II's apex)


@dataclass
class ReadResult:
    """What `read_dataset` returns: the good clips, the bad rows passed over, the rows repaired."""

    samples: list[Sample]  # one per good annotation row, in spreadsheet order
    skipped: list[dict[str, Any]]  # {"source": "<file>:row N", "clip_id", "reason"} per bad row
    # {"source", "clip_id", "field", "original", "value", "reason"} per value changed by a documented rule
    repaired: list[dict[str, Any]] = field(default_factory=list)
    annotation: str = ""  # absolute path of the annotation file read


class _BadRow(Exception):
    """A row-level problem; turned into a `skipped` entry (and, when strict, a BadRowsError)."""


class _Mismatch(Exception):
    """A table that is not the dataset's annotation table; the message says why (no file name)."""


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def read_dataset(
    name: str,
    root: str | os.PathLike[str],
    skip_bad: bool = False,
    annotations: str | os.PathLike[str] | None = None,
) -> ReadResult:
    """Read dataset `name` (casme2 | samm | casme_sq | casme3) from its folder `root`.

    `annotations` names the annotation file (else it is found under `root` by content). Raises
    `DataError` with one line for an unknown name, a missing root, annotation file, sheet, column
    or frame folder, and (unless `skip_bad`) `BadRowsError` for all bad rows at once (SPEC §4.1).
    """
    reader = READERS.get(name)
    if reader is None:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(READERS)}")
    root_path = Path(root).expanduser().absolute()
    if not root_path.is_dir():
        raise DataError(f"{root_path}: {TITLES[name]} dataset root not found (not a folder)")
    ann = Path(annotations).expanduser().absolute() if annotations is not None else None
    return reader(root_path, skip_bad, ann)


# ---------------------------------------------------------------------------------------------
# Tables: .xlsx / .xls / .csv behind one small interface
# ---------------------------------------------------------------------------------------------


@dataclass
class Sheet:
    """One table: its name and its rows as value tuples (row 1 first; blank cells are None)."""

    title: str
    values: list[tuple[Any, ...]]

    def rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(spreadsheet row number, cell values) for every row, starting at row 1."""
        return enumerate(self.values, start=1)


@dataclass
class Book:
    """An opened annotation file. A CSV is a book of one sheet whose name is not checked."""

    path: Path
    sheets: list[Sheet]
    single_table: bool = False  # a CSV: any sheet name asked for is its one table

    @property
    def sheetnames(self) -> list[str]:
        return [s.title for s in self.sheets]

    def sheet(self, name: str | None) -> Sheet:
        """Sheet `name` (case and spacing matched loosely, as copies differ); None: the first."""
        if name is None or self.single_table:
            return self.sheets[0]
        for s in self.sheets:
            if s.title == name:
                return s
        for s in self.sheets:
            if _norm(s.title) == _norm(name):
                return s
        raise _Mismatch(f"no sheet {name!r} (sheets: {', '.join(self.sheetnames)})")

    def has_sheet(self, name: str) -> bool:
        return any(_norm(s.title) == _norm(name) for s in self.sheets)


def _cell_value(value: Any) -> Any:
    """Blank text cells become None, so every format spells "empty" the same way."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def open_table(path: Path) -> Book:
    """Open an .xlsx/.xlsm (openpyxl, cached formula values), .xls (xlrd) or .csv as a `Book`.

    Raises `_Mismatch` with the reason when the file cannot be read as a table.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import openpyxl  # local: only readers need it, keep `import fdp` light

            with warnings.catch_warnings():
                # Real annotation files carry data validation / unknown extensions openpyxl warns about.
                warnings.simplefilter("ignore")
                wb = openpyxl.load_workbook(path, data_only=True)
            sheets = [Sheet(ws.title, [tuple(_cell_value(v) for v in row)
                                       for row in ws.iter_rows(min_row=1, values_only=True)])
                      for ws in wb.worksheets]
            return Book(path, sheets)
        if suffix == ".xls":
            import xlrd  # .xls (BIFF) only; openpyxl does not read it

            wb = xlrd.open_workbook(str(path))
            sheets = [Sheet(sh.name, [tuple(_cell_value(v) for v in sh.row_values(i)) for i in range(sh.nrows)])
                      for sh in wb.sheets()]
            return Book(path, sheets)
        if suffix == ".csv":
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", errors="replace")  # Excel's "CSV" on Windows
            try:
                dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            values = [tuple(_cell_value(v) for v in row) for row in csv.reader(text.splitlines(), dialect)]
            return Book(path, [Sheet(path.stem, values)], single_table=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, csv.Error) as exc:
        raise _Mismatch(f"cannot open as a {suffix} table ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # xlrd raises its own XLRDError for a file that is not .xls
        if type(exc).__module__.startswith("xlrd"):
            raise _Mismatch(f"cannot open as a {suffix} table ({type(exc).__name__}: {exc})") from None
        raise
    raise _Mismatch(f"not a table file (reads {', '.join(TABLE_SUFFIXES)})")


# ---------------------------------------------------------------------------------------------
# Signatures: how each dataset's annotation table is recognised by its content
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where the rows of a matched table are: the sheet, its header row (0: none), the columns."""

    sheet: Sheet
    header: int  # spreadsheet row of the header; rows after it are data (0 for header-less sheets)
    columns: dict[str, int]  # field -> 0-based column index ({} for header-less sheets)
    book: Book | None = None  # the whole file (CAS(ME)^2 reads its naming-rule sheets from it)


@dataclass(frozen=True)
class Signature:
    """What makes a table a dataset's annotation table; `check(book)` finds its `Layout`.

    A reader added later (SMIC, MMEW, 4DME) declares one of these and gets finding by content,
    `--annotations FILE` and the "files seen" message for free.
    """

    dataset: str  # reader name
    hints: tuple[str, ...]  # usual file names (globs, case-insensitive): listed first, named in messages
    sheet: str | None  # sheet holding the rows; None: the first sheet (its name differs between copies)
    # header fields -> accepted spellings (distributed one first); None: a header-less sheet
    columns: dict[str, tuple[str, ...]] | None = None
    other_sheets: tuple[str, ...] = ()  # sheets that must exist too (CAS(ME)^2's naming rules)
    # header-less sheets: a content check returning None when the sheet matches, else why not
    content: Callable[[Sheet], str | None] | None = None
    subject: str | None = None  # regex the first data row's Subject cell must match (tells look-alikes apart)
    absent: tuple[str, ...] = ()  # header columns that mark another dataset's sheet (SAMM's Inducement Code)

    def describe(self) -> str:
        """What is looked for, for messages: 'sheet MICRO_ONLY with columns Subject | ...'."""
        where = f"sheet {self.sheet}" if self.sheet else "first sheet"
        if self.columns:
            what = f"{where} with columns " + " | ".join(names[0] for names in self.columns.values())
        else:
            what = where + " of ME rows"
        if self.other_sheets:
            what += " and sheets " + ", ".join(self.other_sheets)
        return what

    def check(self, book: Book) -> Layout:
        """The table's layout, or `_Mismatch` saying why this book is not the annotation file."""
        sheet = book.sheet(self.sheet)
        missing = [s for s in self.other_sheets if not book.has_sheet(s)]
        if missing:
            raise _Mismatch(f"no sheet {', '.join(repr(m) for m in missing)} (sheets: {', '.join(book.sheetnames)})")
        if self.columns is not None:
            header, columns = _find_header(sheet, self.columns)
            names = {_norm(v) for v in sheet.values[header - 1]}
            other = [a for a in self.absent if _norm(a) in names]
            if other:
                raise _Mismatch(f"header row {header} has column {other[0]!r}, which {TITLES[self.dataset]} lacks")
            if self.subject:
                # one bad Subject cell must not hide the file: any of the first rows will do
                seen = [_text(_cell(v, columns["subject"])) for n, v in sheet.rows()
                        if header < n <= header + HEADER_SEARCH_ROWS and not _blank(v)]
                if seen and not any(re.fullmatch(self.subject, x, re.IGNORECASE) for x in seen):
                    raise _Mismatch(f"Subject cells ({seen[0]!r}, ...) are not {TITLES[self.dataset]}'s kind "
                                    f"of subject")
            return Layout(sheet, header, columns, book)
        if self.content is not None:
            why = self.content(sheet)
            if why is not None:
                raise _Mismatch(why)
        return Layout(sheet, 0, {}, book)


def _hinted(sig: Signature, path: Path) -> bool:
    return any(fnmatch.fnmatchcase(path.name.lower(), h.lower()) for h in sig.hints)


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


def table_files(root: Path, depth: int = ANNOTATION_DEPTH) -> list[Path]:
    """Every candidate table file below `root` (Excel lock files "~$..." and hidden files left out)."""
    found: list[Path] = []
    for folder, _ in _walk_dirs(root, depth, lambda p: False):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            low = e.name.lower()
            if e.is_file() and low.endswith(TABLE_SUFFIXES) and not low.startswith(("~$", ".")):
                found.append(Path(e.path))
    return found


def find_annotation(root: Path, name: str, annotations: Path | None = None) -> tuple[Path, Layout]:
    """The annotation file of dataset `name` and its layout: `annotations` if given (it must
    match), else the one table under `root` that matches `SIGNATURES[name]` (SPEC §4.1)."""
    sig = SIGNATURES[name]
    title = TITLES[name]
    if annotations is not None:
        label = _rel(annotations, root)
        if not annotations.is_file():
            raise DataError(f"{annotations}: {title} annotation file not found")
        try:
            return annotations, sig.check(open_table(annotations))
        except _Mismatch as exc:
            raise DataError(f"{label}: not a {title} annotation file ({sig.describe()}): {exc}") from None
    files = sorted(table_files(root), key=lambda p: (not _hinted(sig, p), str(p).lower()))
    matches: list[tuple[Path, Layout]] = []
    seen: list[str] = []
    for path in files:
        try:
            matches.append((path, sig.check(open_table(path))))
            seen.append(f"{_rel(path, root)} (matches)")
        except _Mismatch as exc:
            seen.append(f"{_rel(path, root)} ({exc})")
    if len(matches) == 1:
        return matches[0]
    usual = " or ".join(sig.hints)
    if not matches:
        listed = "; ".join(seen) if seen else "none"
        raise DataError(
            f"{root}: no {title} annotation file found: looked for a table with {sig.describe()} "
            f"(usually {usual}) in .xlsx/.xls/.csv files {ANNOTATION_DEPTH} folder levels deep; "
            f"tables seen: {listed}; name the file with --annotations FILE"
        )
    names = ", ".join(_rel(p, root) for p, _ in matches)
    raise DataError(
        f"{root}: {len(matches)} files match the {title} annotation table: {names}; "
        "name the one to read with --annotations FILE"
    )


# ---------------------------------------------------------------------------------------------
# Shared helpers: cells, numbers, the repair rule, frames on disk
# ---------------------------------------------------------------------------------------------


def _rel(path: Path, root: Path) -> str:
    """`path` relative to the dataset root, for messages and `Sample.source`."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _norm(text: Any) -> str:
    """Header / sheet-name key: lower-case letters and digits only ("Onset Frame" -> "onsetframe")."""
    return re.sub(r"[^a-z0-9]", "", str(text).lower()) if text is not None else ""


def _blank(values: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _find_header(sheet: Sheet, columns: dict[str, tuple[str, ...]]) -> tuple[int, dict[str, int]]:
    """Find the header row by its first cell "Subject" (SPEC §4.1, SAMM) and map fields to columns.

    `columns` maps a field to the accepted header spellings, the distributed one first (compared
    with `_norm`, so "Onset Frame" and "OnsetFrame" both match). Blank header
    cells (CASME II's unnamed columns) are simply never matched.
    """
    # the subject column comes first (4DME calls it sub_ID)
    firsts = {_norm(n) for n in columns.get("subject", ("Subject",))}
    for number, values in sheet.rows():
        if number > HEADER_SEARCH_ROWS:
            break
        if values and _norm(values[0]) in firsts:
            index = {_norm(v): i for i, v in reversed(list(enumerate(values))) if _norm(v)}
            mapping: dict[str, int] = {}
            for fld, names in columns.items():
                hit = next((index[_norm(n)] for n in names if _norm(n) in index), None)
                if hit is None:
                    found = ", ".join(str(v) for v in values if v is not None)
                    raise _Mismatch(f"header row {number} has no column {names[0]!r} (found: {found})")
                mapping[fld] = hit
            return number, mapping
    raise _Mismatch(
        f"no header row whose first cell is {columns.get('subject', ('Subject',))[0]!r} in sheet {sheet.title!r} "
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


def parse_number(value: Any, column: str) -> int | None:
    """A frame-number cell as an int; None for a blank cell or an unknown mark ("/").

    One helper for every reader and every copy of a file: ints, integral floats (1143.0: .xls
    cells, some exports), text-typed numbers ("1143", " 1143.0 ": CAS(ME)^3 and CSV exports) all
    give 1143 — text is read as the number it spells, so it behaves exactly as a numeric cell.
    NaN (a numeric export's empty cell, also as the text "nan") is blank. Anything else (a
    non-integral or negative number, other text, a boolean, a date) is a bad row named after
    `column`.
    """
    shown = value
    if isinstance(value, str):
        text = value.strip().replace("\u00a0", "")  # Excel text cells keep non-breaking spaces
        if not text or text in UNKNOWN_MARKS:
            return None
        try:
            value = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            raise _BadRow(f"non-numeric {column} {shown!r}") from None
    if value is None:
        return None
    if isinstance(value, bool):
        raise _BadRow(f"non-numeric {column} {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if value != value:  # NaN
            return None
        if not value.is_integer():
            raise _BadRow(f"non-integer {column} {value!r}")
        number = int(value)
    else:  # a date, a time, ...: a frame number is none of these
        raise _BadRow(f"non-numeric {column} {value!r}")
    if number < 0:
        raise _BadRow(f"negative {column} {number}")
    return number


def _lenient_number(value: Any) -> int | None:
    """`parse_number`, with None instead of a bad row (for lookup sheets and best-effort clip ids)."""
    try:
        return parse_number(value, "")
    except _BadRow:
        return None


def _frame_index(value: Any, column: str) -> int:
    """An onset / offset cell: required."""
    number = parse_number(value, column)
    if number is None:
        written = _text(value)
        raise _BadRow(f"missing {column} ({written!r})" if written else f"missing {column}")
    return number


def _apex_index(value: Any, column: str) -> int | None:
    """An apex cell: "/" or an empty cell mean unknown (SPEC §4.1, CASME II)."""
    return parse_number(value, column)


def repair(field_name: str, original: Any, value: Any, reason: str) -> dict[str, Any]:
    """A repair record (without source and clip id, which `_Collector.add` fills in)."""
    return {"field": field_name, "original": original, "value": value, "reason": reason}


def check_span(onset: int, apex: int | None, offset: int) -> tuple[int | None, list[dict[str, Any]]]:
    """The one rule for every reader: (apex to use, repairs).

    An offset before the onset leaves no valid span: a bad row. An apex outside a valid
    onset..offset span becomes unknown (None), as CASME II's "/": the clip's frames are still
    right and nothing downstream uses the apex, so the clip is kept (the paper counts SAMM's two
    such rows) and the original apex is recorded.
    """
    if offset < onset:
        raise _BadRow(f"offset {offset} before onset {onset}")
    if apex is not None and apex < onset:
        return None, [repair("apex", apex, None, f"apex {apex} before onset {onset}: apex set to unknown")]
    if apex is not None and apex > offset:
        return None, [repair("apex", apex, None, f"apex {apex} after offset {offset}: apex set to unknown")]
    return apex, []


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
    """Collects samples, repairs and bad rows over the whole table (SPEC §4.1): strict mode
    reports every bad row of one pass, not only the first."""

    def __init__(self, skip_bad: bool, annotation: Path) -> None:
        self.skip_bad = skip_bad
        self.result = ReadResult(samples=[], skipped=[], annotation=str(annotation))
        self._clip_rows: dict[str, str] = {}

    def bad(self, source: str, clip_id: str, reason: str) -> None:
        self.result.skipped.append({"source": source, "clip_id": clip_id, "reason": reason})

    def check_new(self, clip_id: str) -> None:
        """A clip id already read is a bad row: ids must be unique within a dataset (`Sample`).
        Checked before the frames, so the message names the real problem."""
        first = self._clip_rows.get(clip_id)
        if first is not None:
            raise _BadRow(f"duplicate clip {clip_id!r} (first at {first})")

    def add(self, sample: Sample, repairs: Iterable[dict[str, Any]] = ()) -> None:
        """A good row, with the repairs made to it (listed only once the row is known good)."""
        self._clip_rows[sample.clip_id] = sample.source.rsplit(":", 1)[-1]
        self.result.samples.append(sample)
        for r in repairs:
            self.result.repaired.append({"source": sample.source, "clip_id": sample.clip_id, **r})

    def finish(self) -> ReadResult:
        if self.result.skipped and not self.skip_bad:
            raise BadRowsError(self.result.skipped)
        return self.result


def _data_rows(layout: Layout, label: str) -> Iterator[tuple[str, Sequence[Any]]]:
    """(source "<file>:row N", cells) of each row of a columnar sheet below its header, blank rows passed over."""
    for number, values in layout.sheet.rows():
        if number > layout.header and not _blank(values):
            yield f"{label}:row {number}", values


def _span(values: Sequence[Any], col: dict[str, int], onset: str, apex: str | None,
          offset: str) -> tuple[int, int | None, int, list[dict[str, Any]]]:
    """(onset, apex, offset, repairs) from a row's frame columns, named in messages as the file
    names them; `apex` None: the dataset annotates none."""
    first = _frame_index(_cell(values, col["onset"]), onset)
    top = _apex_index(_cell(values, col["apex"]), apex) if apex else None
    last = _frame_index(_cell(values, col["offset"]), offset)
    top, repairs = check_span(first, top, last)
    return first, top, last, repairs


def _guess(*parts: Any) -> str:
    """A best-effort clip id from raw cells, for rows too broken to give the real one."""
    return "_".join(_text(p) or "?" for p in parts)


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
    """Subject cell as zero-padded digits: 1, 1.0, "1", "01", "sub01" -> "01" (width 2)."""
    number = _lenient_number(value)
    if number is not None:
        return str(number).zfill(width)
    text = _text(value)
    m = re.fullmatch(rf"(?:{prefix})?0*(\d+)", text, re.IGNORECASE) if text else None
    if m is None:
        raise _BadRow(f"bad Subject {text!r}" if text else "missing Subject")
    return m.group(1).zfill(width)


def _subject_or_raw(value: Any, width: int, prefix: str = "") -> str:
    try:
        return _padded_subject(value, width, prefix)
    except _BadRow:
        return _text(value) or "?"


def read_casme2(root: Path, skip_bad: bool = False, annotations: Path | None = None) -> ReadResult:
    """CASME II (SPEC §4.1): `CASME2-coding-*.xlsx` sheet 1 + `subXX/<Filename>/img<N>.jpg`."""
    ann, layout = find_annotation(root, "casme2", annotations)
    label = _rel(ann, root)
    col = layout.columns
    names = [n for n, _ in _CASME2_LAYOUTS]
    bases = _frame_bases(root, names, r"sub\d+", TITLES["casme2"], " or ".join(f"{n}/" for n in names))
    base = bases[0]
    pattern = dict(_CASME2_LAYOUTS)[next(n for n in names if n.lower() == base.name.lower())]
    disk = _Disk()
    out = _Collector(skip_bad, ann)
    for source, values in _data_rows(layout, label):
        filename = _text(_cell(values, col["filename"]))
        clip_id = f"sub{_subject_or_raw(_cell(values, col['subject']), 2, 'sub')}_{filename or '?'}"
        try:
            subject = _padded_subject(_cell(values, col["subject"]), 2, prefix="sub")
            if not filename:
                raise _BadRow("missing Filename")
            onset, apex, offset, repairs = _span(values, col, "OnsetFrame", "ApexFrame", "OffsetFrame")
            emotion = _emotion(_cell(values, col["emotion"]), "casme2")
            out.check_new(clip_id)
            folder = disk.path(base, [f"sub{subject}", filename])
            shown = _rel(base / f"sub{subject}" / filename, root)
            frames = disk.select(folder, shown, pattern, onset, offset)
            out.add(Sample(dataset="casme2", subject=subject, clip_id=clip_id, onset=onset, apex=apex, offset=offset,
                           emotion=emotion, action_units=_text(_cell(values, col["aus"])), fps=FPS["casme2"],
                           frames=frames, source=source), repairs)
        except _BadRow as exc:
            out.bad(source, clip_id, str(exc))
    return out.finish()


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


def read_samm(root: Path, skip_bad: bool = False, annotations: Path | None = None) -> ReadResult:
    """SAMM (SPEC §4.1): sheet `MICRO_ONLY`, header found by "Subject", `<subject>_<frame:05d>.jpg`."""
    ann, layout = find_annotation(root, "samm", annotations)
    label = _rel(ann, root)
    col = layout.columns
    base = _frame_bases(root, ["SAMM"], r"\d+", TITLES["samm"], "SAMM/")[0]
    disk = _Disk()
    out = _Collector(skip_bad, ann)
    for source, values in _data_rows(layout, label):
        filename = _text(_cell(values, col["filename"]))
        # SAMM's Filename (006_1_2) starts with the subject: it is the clip id
        clip_id = filename or f"{_subject_or_raw(_cell(values, col['subject']), 3)}_?"
        try:
            subject = _padded_subject(_cell(values, col["subject"]), 3)
            if not filename:
                raise _BadRow("missing Filename")
            onset, apex, offset, repairs = _span(values, col, "Onset Frame", "Apex Frame", "Offset Frame")
            emotion = _emotion(_cell(values, col["emotion"]), "samm")
            out.check_new(filename)
            folder = disk.path(base, [subject, filename])
            shown = _rel(base / subject / filename, root)
            frames = disk.select(folder, shown, rf"{re.escape(subject)}_(\d+)\.jpg", onset, offset)
            out.add(Sample(dataset="samm", subject=subject, clip_id=filename, onset=onset, apex=apex, offset=offset,
                           emotion=emotion, action_units=_text(_cell(values, col["aus"])), fps=FPS["samm"],
                           frames=frames, source=source), repairs)
        except _BadRow as exc:
            out.bad(source, clip_id, str(exc))
    return out.finish()


# ---------------------------------------------------------------------------------------------
# CAS(ME)^2
# ---------------------------------------------------------------------------------------------

# Column positions of the header-less code sheet (SPEC §4.1).
_SQ_SUBJECT, _SQ_CLIP, _SQ_ONSET, _SQ_APEX, _SQ_OFFSET, _SQ_AUS, _SQ_EMOTION, _SQ_TYPE = range(8)
_SQ_TYPES = ("micro-expression", "macro-expression")
_SQ_RULES = ("naming rule1", "naming rule2")


def _sq_content(sheet: Sheet) -> str | None:
    """CAS(ME)^2's code sheet has no header: it is recognised by its expression-type column."""
    for number, values in sheet.rows():
        if number > HEADER_SEARCH_ROWS:
            break
        if _text(_cell(values, _SQ_TYPE)).lower() in _SQ_TYPES:
            return None
    return (f"first sheet {sheet.title!r} has no micro-expression/macro-expression row in column H "
            f"(searched the first {HEADER_SEARCH_ROWS} rows)")


def _naming_rules(book: Book, label: str) -> tuple[dict[int, int], dict[str, str]]:
    """({code-sheet subject: folder number}, {video name: 4-digit video code}) from the naming sheets.

    `naming rule1`: folder number (15 -> s15/15_...) | folder name | subject number of the code
    sheet. `naming rule2`: video code (101 or "0101") | video name ("disgust1"). Rows that are not
    of that shape (a title or header row in some copies) are passed over.
    """
    subjects: dict[int, int] = {}
    for _, values in book.sheet(_SQ_RULES[0]).rows():
        folder_no = _lenient_number(re.sub(r"^[sS]", "", _text(_cell(values, 0))))
        subject_no = _lenient_number(_cell(values, 2))
        if folder_no is not None and subject_no is not None:
            subjects[subject_no] = folder_no
    videos: dict[str, str] = {}
    for _, values in book.sheet(_SQ_RULES[1]).rows():
        code = _lenient_number(_cell(values, 0))
        name = _text(_cell(values, 1)).lower()
        if code is not None and name:
            videos[name] = f"{code:04d}"
    if not subjects or not videos:
        raise DataError(f"{label}: sheets 'naming rule1'/'naming rule2' hold no subject or video codes")
    return subjects, videos


def read_casme_sq(root: Path, skip_bad: bool = False, annotations: Path | None = None) -> ReadResult:
    """CAS(ME)^2 (SPEC §4.1): header-less first sheet, naming-rule sheets, micro-expression rows only."""
    ann, layout = find_annotation(root, "casme_sq", annotations)
    label = _rel(ann, root)
    assert layout.book is not None
    subjects, videos = _naming_rules(layout.book, label)
    base = _frame_bases(root, ["rawpic"], r"s\d+", TITLES["casme_sq"], "rawpic/")[0]
    disk = _Disk()
    out = _Collector(skip_bad, ann)
    for number, values in layout.sheet.rows():
        if _blank(values):
            continue
        kind = _text(_cell(values, _SQ_TYPE)).lower()
        onset_cell = _cell(values, _SQ_ONSET)
        if number == 1 and kind not in _SQ_TYPES and _lenient_number(onset_cell) is None:
            continue  # a header row some copies add; SPEC says there is none
        source = f"{label}:row {number}"
        clip = _text(_cell(values, _SQ_CLIP))
        subject_no = _lenient_number(_cell(values, _SQ_SUBJECT))
        folder_guess = subjects.get(subject_no) if subject_no is not None else None
        clip_id = f"s{folder_guess if folder_guess is not None else '?'}_{clip or '?'}"
        try:
            if kind not in _SQ_TYPES:
                written = _text(_cell(values, _SQ_TYPE))
                raise _BadRow(f"unknown expression type {written!r} (known: {', '.join(_SQ_TYPES)})")
            if kind != "micro-expression":
                continue  # macro-expressions are not samples of this dataset (SPEC §4.1)
            if subject_no is None:
                raise _BadRow(f"bad subject {_text(_cell(values, _SQ_SUBJECT))!r}")
            if subject_no not in subjects:
                raise _BadRow(f"subject {subject_no} not in sheet 'naming rule1'")
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
            repairs = []
            if offset == 0:
                if apex is None:
                    raise _BadRow("offset and apex are 0 (missing)")
                if apex < onset:
                    raise _BadRow(f"offset 0 (missing) and apex {apex} before onset {onset}")
                # See the module docstring: onset..apex keeps the clip the paper counted.
                repairs.append(repair("offset", 0, apex, f"offset 0 (missing): apex {apex} used as offset"))
                offset = apex
            apex, span_repairs = check_span(onset, apex, offset)
            repairs += span_repairs
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
            out.add(Sample(dataset="casme_sq", subject=subject, clip_id=clip_id, onset=onset, apex=apex, offset=offset,
                           emotion=emotion, action_units=_text(_cell(values, _SQ_AUS)), fps=FPS["casme_sq"],
                           frames=frames, source=source), repairs)
        except _BadRow as exc:
            out.bad(source, clip_id, str(exc))
    return out.finish()


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


def read_casme3(root: Path, skip_bad: bool = False, annotations: Path | None = None) -> ReadResult:
    """CAS(ME)^3 Part A (SPEC §4.1): sheet `label`, `<subject>/<letter>/color/<frame>.jpg`."""
    ann, layout = find_annotation(root, "casme3", annotations)
    label = _rel(ann, root)
    col = layout.columns
    # Part A ships split over several archives in some copies: subjects may sit in several bases.
    bases = _frame_bases(root, None, r"spno\.\d+", TITLES["casme3"], "holding spNO.<k>/ folders")
    disk = _Disk()
    out = _Collector(skip_bad, ann)
    for source, values in _data_rows(layout, label):
        subject = _text(_cell(values, col["subject"]))
        letter = _text(_cell(values, col["filename"])).lower()  # one row writes a capital
        onset_guess = _lenient_number(_cell(values, col["onset"]))
        clip_id = _guess(subject, letter, onset_guess)
        try:
            if not re.fullmatch(r"spno\.\d+", subject, re.IGNORECASE):
                raise _BadRow(f"bad Subject {subject!r}" if subject else "missing Subject")
            if not letter:
                raise _BadRow("missing Filename")
            onset = _frame_index(_cell(values, col["onset"]), "Onset")
            apex = _apex_index(_cell(values, col["apex"]), "Apex")
            offset = _frame_index(_cell(values, col["offset"]), "Offset")
            if offset == 0:
                raise _BadRow("offset is 0 (missing)")
            apex, repairs = check_span(onset, apex, offset)
            emotion = _emotion(_cell(values, col["emotion"]), "casme3")
            clip_id = f"{subject}_{letter}_{onset}"
            out.check_new(clip_id)
            folder = next(
                (f for f in (disk.path(b, [subject, letter, "color"]) for b in bases) if f is not None), None
            )
            shown = f"{subject}/{letter}/color"
            frames = disk.select(folder, shown, r"(\d+)\.jpg", onset, offset)
            out.add(Sample(dataset="casme3", subject=subject, clip_id=clip_id, onset=onset, apex=apex, offset=offset,
                           emotion=emotion, action_units=_text(_cell(values, col["aus"])), fps=FPS["casme3"],
                           frames=frames, source=source), repairs)
        except _BadRow as exc:
            out.bad(source, clip_id, str(exc))
    return out.finish()


# ---------------------------------------------------------------------------------------------
# SMIC (HS / VIS / NIR)
# ---------------------------------------------------------------------------------------------

_SMIC_MODALITY = {"smic": "HS", "smic_vis": "VIS", "smic_nir": "NIR"}
# cropped release: reg_image000001.bmp (HS), reg_00001.bmp (VIS/NIR); SMIC-E: image17581039.jpg
_SMIC_FRAMES = r"(?:reg_image|reg_|image)(\d+)\.(?:bmp|jpg|png)"
_SMIC_WORDS = {"negative": "negative", "ne": "negative", "positive": "positive", "po": "positive",
               "surprise": "surprise", "sur": "surprise", "su": "surprise"}
_SMIC_E_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetF", "Onset"),
    "offset": ("OffsetF", "Offset"),
    "emotion": ("Emotion",),
}


def _s_subject(value: Any, prefix: str = "s") -> str:
    """`s1`, `s01`, `S1`, 1 -> prefix + two digits: SMIC's disk writes s1 where the MEGC list writes
    s01, MMEW S01 (and sometimes 1): one form everywhere."""
    number = _lenient_number(value)
    text = _text(value)
    m = re.fullmatch(r"s0*(\d+)", text, re.IGNORECASE) if number is None and text else None
    if number is None and m is None:
        raise _BadRow(f"bad Subject {text!r}" if text else "missing Subject")
    return f"{prefix}{number if number is not None else int(m.group(1)):02d}"  # type: ignore[union-attr]


def _smic_clip(name: str, subject: str) -> str:
    """`s3_ne_03` -> `s03_ne_03`; a clip named after another subject is a bad row."""
    m = re.fullmatch(r"s0*(\d+)(_.+)", name.strip(), re.IGNORECASE)
    if m is None:
        raise _BadRow(f"clip name {name!r} is not <subject>_<class>_<n>")
    if f"s{int(m.group(1)):02d}" != subject:
        raise _BadRow(f"clip {name!r} lies under subject {subject}")
    return f"{subject}{m.group(2).lower()}"


def _smic_emotion(value: Any) -> str:
    word = _text(value).lower()
    if word not in _SMIC_WORDS:
        raise _BadRow(f"unknown emotion {_text(value)!r} (known: negative, positive, surprise)" if word
                      else "missing emotion")
    return _SMIC_WORDS[word]


def _read_smic(root: Path, skip_bad: bool, annotations: Path | None, name: str) -> ReadResult:
    """SMIC: the extended release (SMIC-E, an annotation sheet with absolute frame numbers) when
    its workbook is under `root` or named, else the cropped release, where the class is the folder
    and a clip spans all its frames (no apex is annotated in either)."""
    if annotations is None and name != "smic_nir":
        sig = SIGNATURES[name]
        for path in table_files(root):
            try:
                sig.check(open_table(path))
            except _Mismatch:
                continue
            return _read_smic_e(root, skip_bad, None, name)  # find_annotation settles several matches
        return _read_smic_cropped(root, skip_bad, name)
    if annotations is not None:
        return _read_smic_e(root, skip_bad, annotations, name)
    return _read_smic_cropped(root, skip_bad, name)


def _read_smic_cropped(root: Path, skip_bad: bool, name: str) -> ReadResult:
    """`.../<HS|VIS|NIR>/<sN>/micro/<negative|positive|surprise>/<clip>/reg_image%06d.bmp`;
    `non_micro/` folders beside `micro/` are not micro-expressions and are passed over."""
    modality = _SMIC_MODALITY[name]
    bases = _frame_bases(root, [modality], r"s\d+", TITLES[name], f"{modality}/ holding s<N>/ folders")
    disk = _Disk()
    out = _Collector(skip_bad, bases[0])
    for base in bases:
        for subject_dir, subject_path in (disk.subfolders(base) or {}).items():
            if not re.fullmatch(r"s\d+", subject_dir, re.IGNORECASE):
                continue
            micro = disk.child(subject_path, "micro")
            for cls_dir, cls_path in (disk.subfolders(micro) or {}).items() if micro else []:
                for clip_dir, clip_path in (disk.subfolders(cls_path) or {}).items():
                    shown = _rel(clip_path, root)
                    clip_id = clip_dir
                    try:
                        subject = _s_subject(subject_dir)
                        emotion = _smic_emotion(cls_dir)
                        clip_id = _smic_clip(clip_dir, subject)
                        out.check_new(clip_id)
                        found = disk.frames(clip_path, _SMIC_FRAMES) or {}
                        if not found:
                            raise _BadRow(f"no frame files in {shown}")
                        onset, offset = min(found), max(found)
                        frames = disk.select(clip_path, shown, _SMIC_FRAMES, onset, offset)
                        out.add(Sample(dataset=name, subject=subject, clip_id=clip_id, onset=onset, apex=None,
                                       offset=offset, emotion=emotion, action_units="", fps=FPS[name],
                                       frames=frames, source=f"{shown}/"))
                    except _BadRow as exc:
                        out.bad(f"{shown}/", clip_id, str(exc))
    if not out.result.samples and not out.result.skipped:
        raise DataError(f"{root}: no {TITLES[name]} clips under {modality}/<subject>/micro/<class>/<clip>/")
    return out.finish()


def _read_smic_e(root: Path, skip_bad: bool, annotations: Path | None, name: str) -> ReadResult:
    """SMIC-E: sheet HS or VIS; columns Subject, Filename, OnsetF, OffsetF, (Onset2F, Offset2F,
    FirstF, LastF, TotalMF1, TotalMF2, TotalVL,) Emotion; frames
    `SMIC_<HS|VIS>_E/<sN>/<clip>/image<frame>.jpg` with absolute numbers. The clip is
    OnsetF..OffsetF; a second onset/offset pair (a second ME of the same video) is not read."""
    modality = _SMIC_MODALITY[name]
    ann, layout = find_annotation(root, name, annotations)
    label = _rel(ann, root)
    col = layout.columns
    bases = _frame_bases(root, [f"SMIC_{modality}_E", modality], r"s\d+", TITLES[name],
                         f"SMIC_{modality}_E/ holding s<N>/ folders")
    disk = _Disk()
    out = _Collector(skip_bad, ann)
    for source, values in _data_rows(layout, label):
        filename = _text(_cell(values, col["filename"]))
        clip_id = filename or _guess(_cell(values, col["subject"]), "?")
        try:
            subject = _s_subject(_cell(values, col["subject"]))
            if not filename:
                raise _BadRow("missing Filename")
            clip_id = _smic_clip(filename, subject)
            onset, _, offset, _ = _span(values, col, "OnsetF", None, "OffsetF")
            emotion = _smic_emotion(_cell(values, col["emotion"]))
            out.check_new(clip_id)
            folder = next((f for f in (disk.path(b, [d, filename]) for b in bases
                                       for d in (subject, f"s{int(subject[1:])}")) if f is not None), None)
            frames = disk.select(folder, f"{subject}/{filename}", _SMIC_FRAMES, onset, offset)
            out.add(Sample(dataset=name, subject=subject, clip_id=clip_id, onset=onset, apex=None, offset=offset,
                           emotion=emotion, action_units="", fps=FPS[name], frames=frames, source=source))
        except _BadRow as exc:
            out.bad(source, clip_id, str(exc))
    return out.finish()


# ---------------------------------------------------------------------------------------------
# MMEW
# ---------------------------------------------------------------------------------------------

_MMEW_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetFrame", "Onset"),
    "apex": ("ApexFrame", "Apex"),
    "offset": ("OffsetFrame", "Offset"),
    "emotion": ("Estimated Emotion", "Emotion"),
    "aus": ("Action Units", "AU", "AUs"),
}


def read_mmew(root: Path, skip_bad: bool = False, annotations: Path | None = None) -> ReadResult:
    """MMEW (micro part): `MMEW_Micro_Exp.xlsx` + `Micro_Expression/<emotion>/<Filename>/<k>.jpg`,
    frames numbered from 1 within the clip's folder. There is no subject folder: the subject is the
    Subject cell (or the first part of `Sxx-yy-zzz`). The emotion folder names differ between
    releases (`others` in some, `repression` in others), so the clip folder is looked up under every
    emotion folder, its own emotion's first."""
    ann, layout = find_annotation(root, "mmew", annotations)
    label = _rel(ann, root)
    col = layout.columns
    emotions = "|".join(EMOTIONS["mmew"])
    base = _frame_bases(root, ["Micro_Expression"], rf"(?:{emotions})", TITLES["mmew"], "Micro_Expression/<emotion>/")[0]
    disk = _Disk()
    out = _Collector(skip_bad, ann)
    for source, values in _data_rows(layout, label):
        filename = _text(_cell(values, col["filename"]))
        clip_id = filename or _guess(_cell(values, col["subject"]), "?")
        try:
            if not filename:
                raise _BadRow("missing Filename")
            # the Subject cell, or when blank the first part of the clip name Sxx-yy-zzz
            subject = _s_subject(_cell(values, col["subject"]) or filename.split("-")[0], "S")
            onset, apex, offset, repairs = _span(values, col, "OnsetFrame", "ApexFrame", "OffsetFrame")
            emotion = _emotion(_cell(values, col["emotion"]), "mmew")
            out.check_new(clip_id)
            folders = sorted((disk.subfolders(base) or {}).items(), key=lambda kv: kv[0].lower() != emotion)
            folder = next((f for f in (disk.child(p, filename) for _, p in folders) if f is not None), None)
            frames = disk.select(folder, f"Micro_Expression/*/{filename}", r"(\d+)\.jpg", onset, offset)
            out.add(Sample(dataset="mmew", subject=subject, clip_id=clip_id, onset=onset, apex=apex, offset=offset,
                           emotion=emotion, action_units=_text(_cell(values, col["aus"])), fps=FPS["mmew"],
                           frames=frames, source=source), repairs)
        except _BadRow as exc:
            out.bad(source, clip_id, str(exc))
    return out.finish()


# ---------------------------------------------------------------------------------------------
# 4DME
# ---------------------------------------------------------------------------------------------

_FOURD_COLUMNS = {
    "subject": ("sub_ID", "Subject"),
    "filename": ("fold_name", "Filename"),
    "emotion": ("Emotion",),
    "onset": ("Onset",),
    "apex": ("Apex",),
    "offset": ("Offset",),
    "aus": ("AUs", "AU", "Action Units"),
}
_FOURD_FRAMES = r"\D*(\d+)\.(?:jpg|png|bmp)"


def _fourd_emotion(value: Any) -> str:
    """A 4DME emotion, lower case; a combined label (`Surprise+Positive`) keeps both words, sorted
    (`positive+surprise`), so every setting can exclude it (which class it is, is not given)."""
    text = _text(value).lower().replace(" ", "")
    if not text:
        raise _BadRow("missing emotion")
    parts = text.split("+")
    unknown = [p for p in parts if p not in EMOTIONS["fourd"]]
    if unknown or len(set(parts)) != len(parts):
        raise _BadRow(f"unknown emotion {_text(value)!r} (known: {', '.join(EMOTIONS['fourd'])}, or two joined by '+')")
    return "+".join(sorted(parts))


def read_fourd(root: Path, skip_bad: bool = False, annotations: Path | None = None) -> ReadResult:
    """4DME (micro part): `4DME_Labelling_Micro_release v1.xlsx` (sub_ID, fold_name, Emotion, Onset,
    Apex, Offset, AUs) + `gray_micro/<sub_ID>/<fold_name>/` frames with absolute numbers."""
    ann, layout = find_annotation(root, "fourd", annotations)
    label = _rel(ann, root)
    col = layout.columns
    bases = _frame_bases(root, ["gray_micro"], r"s\d+", TITLES["fourd"], "gray_micro/<sub_ID>/")
    disk = _Disk()
    out = _Collector(skip_bad, ann)
    for source, values in _data_rows(layout, label):
        subject = _text(_cell(values, col["subject"]))
        filename = _text(_cell(values, col["filename"]))
        clip_id = filename or _guess(subject, "?")
        try:
            if not re.fullmatch(r"s\d+", subject, re.IGNORECASE):
                raise _BadRow(f"bad sub_ID {subject!r}" if subject else "missing sub_ID")
            if not filename:
                raise _BadRow("missing fold_name")
            onset, apex, offset, repairs = _span(values, col, "Onset", "Apex", "Offset")
            emotion = _fourd_emotion(_cell(values, col["emotion"]))
            out.check_new(clip_id)
            folder = next((f for f in (disk.path(b, [subject, filename]) for b in bases) if f is not None), None)
            frames = disk.select(folder, f"gray_micro/{subject}/{filename}", _FOURD_FRAMES, onset, offset)
            out.add(Sample(dataset="fourd", subject=subject, clip_id=clip_id, onset=onset, apex=apex, offset=offset,
                           emotion=emotion, action_units=_text(_cell(values, col["aus"])), fps=FPS["fourd"],
                           frames=frames, source=source), repairs)
        except _BadRow as exc:
            out.bad(source, clip_id, str(exc))
    return out.finish()


# How each dataset's annotation table is recognised (see `Signature`); names are hints only.
SIGNATURES: dict[str, Signature] = {
    "casme2": Signature("casme2", ("CASME2-coding-*.xlsx",), None, _CASME2_COLUMNS, subject=r"(sub)?\d+",
                        absent=("Inducement Code",)),
    "samm": Signature("samm", ("SAMM_Micro_FACS_Codes*.xlsx", "SAMM_*Micro_FACS_Codes*.xlsx"), "MICRO_ONLY",
                      _SAMM_COLUMNS, subject=r"\d+"),
    "casme_sq": Signature("casme_sq", ("CAS(ME)^2code_final*.xlsx", "*code_final*.xlsx"), None, None,
                          other_sheets=_SQ_RULES, content=_sq_content),
    "casme3": Signature("casme3", ("cas(me)3_part_A_ME_label*.xlsx",), "label", _CASME3_COLUMNS,
                        subject=r"spno\.\d+"),
    # SMIC-E only: the cropped release has no annotation table (the reader falls back to its folders)
    "smic": Signature("smic", ("SMIC-HS-E_annotation*.xlsx", "SMIC-E_annotation*.xlsx"), "HS", _SMIC_E_COLUMNS,
                      subject=r"s?\d+"),
    "smic_vis": Signature("smic_vis", ("SMIC-HS-E_annotation*.xlsx", "SMIC-E_annotation*.xlsx"), "VIS",
                          _SMIC_E_COLUMNS, subject=r"s?\d+"),
    "smic_nir": Signature("smic_nir", ("SMIC-NIR-E_annotation*.xlsx",), "NIR", _SMIC_E_COLUMNS, subject=r"s?\d+"),
    "mmew": Signature("mmew", ("MMEW_Micro_Exp*.xlsx",), None, _MMEW_COLUMNS, subject=r"s\d+"),
    "fourd": Signature("fourd", ("4DME_Labelling_Micro*.xlsx",), None, _FOURD_COLUMNS, subject=r"s\d+"),
}

# Reader registry: name -> reader(root, skip_bad, annotations). `read_dataset` is the entry point.
READERS: dict[str, Callable[[Path, bool, Path | None], ReadResult]] = {
    "casme2": read_casme2,
    "samm": read_samm,
    "casme_sq": read_casme_sq,
    "casme3": read_casme3,
    "smic": functools.partial(_read_smic, name="smic"),
    "smic_vis": functools.partial(_read_smic, name="smic_vis"),
    "smic_nir": functools.partial(_read_smic, name="smic_nir"),
    "mmew": read_mmew,
    "fourd": read_fourd,
}
