"""Annotation tables: .xlsx / .xls / .csv behind one small interface, and finding a dataset's table
under its root by content (`Signature`, `find_annotation`).

File names are only a hint, since copies are renamed (`SAMM_20181215_Micro_FACS_Codes_v2.xlsx`,
`code_final.xlsx`): every table file up to `ANNOTATION_DEPTH` folder levels below the root is opened
and checked against the dataset's signature; exactly one must match.
"""

from __future__ import annotations

import csv
import fnmatch
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdp.data.readers.cells import blank, cell, cell_text, norm, rel
from fdp.data.samples import DataError

TABLE_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv")  # files opened as candidate annotation tables
ANNOTATION_DEPTH = 2  # folder levels below root searched for the annotation file
HEADER_SEARCH_ROWS = 100  # rows scanned for a header row whose first cell is "Subject"


class _Mismatch(Exception):
    """A table that is not the dataset's annotation table; the message says why (no file name)."""


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
            if norm(s.title) == norm(name):
                return s
        raise _Mismatch(f"no sheet {name!r} (sheets: {', '.join(self.sheetnames)})")

    def has_sheet(self, name: str) -> bool:
        return any(norm(s.title) == norm(name) for s in self.sheets)


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

    Every dataset declares one of these (`core.Dataset.table`) and gets finding by content,
    `--annotations FILE` and the "files seen" message for free.
    """

    title: str  # the dataset's name in messages ("CASME II")
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
            names = {norm(v) for v in sheet.values[header - 1]}
            other = [a for a in self.absent if norm(a) in names]
            if other:
                raise _Mismatch(f"header row {header} has column {other[0]!r}, which {self.title} lacks")
            if self.subject:
                # one bad Subject cell must not hide the file: any of the first rows will do
                seen = [cell_text(cell(v, columns["subject"])) for n, v in sheet.rows()
                        if header < n <= header + HEADER_SEARCH_ROWS and not blank(v)]
                if seen and not any(re.fullmatch(self.subject, x, re.IGNORECASE) for x in seen):
                    raise _Mismatch(f"Subject cells ({seen[0]!r}, ...) are not {self.title}'s kind of subject")
            return Layout(sheet, header, columns, book)
        if self.content is not None:
            why = self.content(sheet)
            if why is not None:
                raise _Mismatch(why)
        return Layout(sheet, 0, {}, book)

    def hinted(self, path: Path) -> bool:
        """Whether `path` has one of the usual file names (such files are tried and listed first)."""
        return any(fnmatch.fnmatchcase(path.name.lower(), h.lower()) for h in self.hints)

    def matches(self, path: Path) -> bool:
        """Whether the table file `path` is this dataset's annotation table."""
        try:
            self.check(open_table(path))
        except _Mismatch:
            return False
        return True


def _find_header(sheet: Sheet, columns: dict[str, tuple[str, ...]]) -> tuple[int, dict[str, int]]:
    """Find the header row by its first cell "Subject" (SPEC §4.1, SAMM) and map fields to columns.

    `columns` maps a field to the accepted header spellings, the distributed one first (compared
    with `norm`, so "Onset Frame" and "OnsetFrame" both match). Blank header
    cells (CASME II's unnamed columns) are simply never matched.
    """
    # the subject column comes first (4DME calls it sub_ID)
    firsts = {norm(n) for n in columns.get("subject", ("Subject",))}
    for number, values in sheet.rows():
        if number > HEADER_SEARCH_ROWS:
            break
        if values and norm(values[0]) in firsts:
            index = {norm(v): i for i, v in reversed(list(enumerate(values))) if norm(v)}
            mapping: dict[str, int] = {}
            for fld, names in columns.items():
                hit = next((index[norm(n)] for n in names if norm(n) in index), None)
                if hit is None:
                    found = ", ".join(str(v) for v in values if v is not None)
                    raise _Mismatch(f"header row {number} has no column {names[0]!r} (found: {found})")
                mapping[fld] = hit
            return number, mapping
    raise _Mismatch(
        f"no header row whose first cell is {columns.get('subject', ('Subject',))[0]!r} in sheet {sheet.title!r} "
        f"(searched the first {HEADER_SEARCH_ROWS} rows)"
    )


def walk_dirs(root: Path, max_depth: int, prune: Callable[[Path], bool]) -> Iterator[tuple[Path, int]]:
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
    for folder, _ in walk_dirs(root, depth, lambda p: False):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            low = e.name.lower()
            if e.is_file() and low.endswith(TABLE_SUFFIXES) and not low.startswith(("~$", ".")):
                found.append(Path(e.path))
    return found


def find_annotation(root: Path, sig: Signature, annotations: Path | None = None) -> tuple[Path, Layout]:
    """The annotation file of the dataset whose table `sig` describes, and its layout: `annotations`
    if given (it must match), else the one table under `root` that matches (SPEC §4.1)."""
    title = sig.title
    if annotations is not None:
        label = rel(annotations, root)
        if not annotations.is_file():
            raise DataError(f"{annotations}: {title} annotation file not found")
        try:
            return annotations, sig.check(open_table(annotations))
        except _Mismatch as exc:
            raise DataError(f"{label}: not a {title} annotation file ({sig.describe()}): {exc}") from None
    files = sorted(table_files(root), key=lambda p: (not sig.hinted(p), str(p).lower()))
    matches: list[tuple[Path, Layout]] = []
    seen: list[str] = []
    for path in files:
        try:
            matches.append((path, sig.check(open_table(path))))
            seen.append(f"{rel(path, root)} (matches)")
        except _Mismatch as exc:
            seen.append(f"{rel(path, root)} ({exc})")
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
    names = ", ".join(rel(p, root) for p, _ in matches)
    raise DataError(
        f"{root}: {len(matches)} files match the {title} annotation table: {names}; "
        "name the one to read with --annotations FILE"
    )
