"""Readers of the licensed micro-expression datasets, exactly as distributed (SPEC §4.1).

`read_dataset(name, root, skip_bad=False, annotations=None)` finds the annotation table under
`root` by its content, reads every row, checks it, and finds the frame files of the clip
(onset..offset inclusive) on disk. Each good row becomes one `Sample`. Every bad row (SPEC §4.1,
last bullet) is collected in one pass; then either the read stops with one `BadRowsError` naming
them all (file, row, clip id, reason) or, with `skip_bad=True`, they are recorded in
`ReadResult.skipped` — never dropped silently. Rows fixed by a documented rule are kept and listed
in `ReadResult.repaired` with the original value.

The package: `cells` (cell values: numbers, ids, the repair rule), `tables` (opening .xlsx / .xls /
.csv and finding a dataset's table by content), `core` (frames on disk, and the one row loop every
reader runs), and one module per dataset holding only what differs: its columns, id rules, emotion
words and frame paths (`casme2`, `samm`, `casme_sq`, `casme3`, `smic` for HS / VIS / NIR, `mmew`,
`fourd`). Each declares a `Dataset`; `DATASETS` lists them in registry order.

Conventions every reader follows, so that a new reader (and a new quirk of one copy) is handled
the same way everywhere:

* **Finding the annotation file** (`find_annotation`): every `.xlsx` / `.xlsm` / `.xls` / `.csv`
  up to `ANNOTATION_DEPTH` folder levels below `root` is opened and checked against the dataset's
  `Signature` (sheet, header columns or, for header-less sheets, a content check). File names are
  only a hint. Exactly one must match; none or several is a one-line error listing the files seen
  and why each did not match. `annotations=FILE` names the file instead (it must still match).
* **Numbers** (`parse_number`): ints, integral floats (1143.0, what .xls and some exports give),
  text-typed numbers ("1143", "1143.0", CAS(ME)^3's cells), blanks and "/" (unknown) are parsed by
  one helper in every reader.
* **Repair rule** (`check_span`): an offset before the onset is a bad row; an apex outside a valid
  onset..offset span becomes unknown (`apex=None`, as CASME II's "/"), with a listed repair — the
  span and its frames are valid, and nothing downstream uses the apex. SAMM's 028_4_1 (apex after
  offset) and 032_3_1 (apex before onset) are such rows; the paper counts both (Tables 1-2).
* **Clip ids in every message**: a bad row's entry carries the clip id (subject + filename, as far
  as the row gives them), not only the spreadsheet row. A repeated clip id is a bad row.

Decisions where SPEC is silent:

* An empty apex cell or "/" is an unknown apex (`None`) in every dataset; an empty onset or offset
  is a bad row.
* A `.csv` export is accepted where the dataset needs one table (every dataset but CAS(ME)^2, which
  needs its naming-rule sheets); its sheet name is not checked.
* Subjects: CASME II "01" (two digits), SAMM "006" (three digits), CAS(ME)^2 the frame folder name
  ("s15"), CAS(ME)^3 as written ("spNO.1"), SMIC "s01", MMEW "S01", 4DME as written ("S1").
* Frame files are only checked for existence; an unreadable frame is found later by the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fdp.data.readers.casme2 import CASME2
from fdp.data.readers.casme3 import CASME3
from fdp.data.readers.casme_sq import CASME_SQ
from fdp.data.readers.cells import UNKNOWN_MARKS, _BadRow, check_span, parse_number, repair
from fdp.data.readers.core import FRAMES_DEPTH, Dataset, ReadResult
from fdp.data.readers.fourd import FOURD
from fdp.data.readers.mmew import MMEW
from fdp.data.readers.samm import SAMM
from fdp.data.readers.smic import SMIC, SMIC_NIR, SMIC_VIS
from fdp.data.readers.tables import (
    ANNOTATION_DEPTH,
    HEADER_SEARCH_ROWS,
    TABLE_SUFFIXES,
    Book,
    Layout,
    Sheet,
    Signature,
    _Mismatch,
    find_annotation,
    open_table,
    table_files,
)
from fdp.data.samples import DataError

DATASETS: tuple[Dataset, ...] = (CASME2, SAMM, CASME_SQ, CASME3, SMIC, SMIC_VIS, SMIC_NIR, MMEW, FOURD)

# Reader registry: name -> reader(root, skip_bad, annotations). `read_dataset` is the entry point.
READERS: dict[str, Callable[[Path, bool, Path | None], ReadResult]] = {d.name: d.read for d in DATASETS}
# How each dataset's annotation table is recognised (see `Signature`); names are hints only.
SIGNATURES: dict[str, Signature] = {d.name: d.table for d in DATASETS}
# The emotion words each annotation file uses, lower-cased (SPEC §4.1).
EMOTIONS: dict[str, tuple[str, ...]] = {d.name: d.emotions for d in DATASETS}
# Frame rate of each recording (SPEC §4.1, paper Table 3).
FPS: dict[str, float] = {d.name: d.fps for d in DATASETS}
# Human names for messages.
TITLES: dict[str, str] = {d.name: d.title for d in DATASETS}

__all__ = [
    "ANNOTATION_DEPTH", "DATASETS", "EMOTIONS", "FPS", "FRAMES_DEPTH", "HEADER_SEARCH_ROWS", "READERS", "SIGNATURES",
    "TABLE_SUFFIXES", "TITLES", "UNKNOWN_MARKS", "Book", "Dataset", "Layout", "ReadResult", "Sheet", "Signature",
    "_BadRow", "_Mismatch", "check_span", "find_annotation", "open_table", "parse_number", "read_dataset", "repair",
    "table_files",
]


def read_dataset(
    name: str,
    root: str | os.PathLike[str],
    skip_bad: bool = False,
    annotations: str | os.PathLike[str] | None = None,
) -> ReadResult:
    """Read dataset `name` (one of `READERS`) from its folder `root`.

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
