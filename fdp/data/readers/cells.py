"""Cell values as every reader reads them: text, frame numbers, subject ids, the repair rule.

One helper per kind of value, so that every copy of every file (ints, integral floats from .xls,
text-typed numbers from CAS(ME)^3 and CSV exports, blanks, "/") is read the same way by every reader.
A value that cannot be read raises `_BadRow`, which the row loop (`core.Reader.read`) turns into
one bad-row record naming the file, the row and the clip.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

UNKNOWN_MARKS = ("/",)  # cell texts that mean "not known" (CASME II's apex)


class _BadRow(Exception):
    """A row-level problem; turned into a `skipped` entry (and, when strict, a BadRowsError)."""


def rel(path: Path, root: Path) -> str:
    """`path` relative to the dataset root, for messages and `Sample.source`."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def norm(text: Any) -> str:
    """Header / sheet-name key: lower-case letters and digits only ("Onset Frame" -> "onsetframe")."""
    return re.sub(r"[^a-z0-9]", "", str(text).lower()) if text is not None else ""


def blank(values: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def cell(values: Sequence[Any], index: int) -> Any:
    return values[index] if index < len(values) else None


def cell_text(value: Any) -> str:
    """A cell as text: ints stay ints ("4", not "4.0"), None becomes ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def guess(*parts: Any) -> str:
    """A best-effort clip id from raw cells, for rows too broken to give the real one."""
    return "_".join(cell_text(p) or "?" for p in parts)


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
        written = value.strip().replace("\u00a0", "")  # Excel text cells keep non-breaking spaces
        if not written or written in UNKNOWN_MARKS:
            return None
        try:
            value = int(written) if re.fullmatch(r"[+-]?\d+", written) else float(written)
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


def lenient_number(value: Any) -> int | None:
    """`parse_number`, with None instead of a bad row (for lookup sheets and best-effort clip ids)."""
    try:
        return parse_number(value, "")
    except _BadRow:
        return None


def frame_index(value: Any, column: str) -> int:
    """An onset / offset cell: required."""
    number = parse_number(value, column)
    if number is None:
        written = cell_text(value)
        raise _BadRow(f"missing {column} ({written!r})" if written else f"missing {column}")
    return number


def apex_index(value: Any, column: str) -> int | None:
    """An apex cell: "/" or an empty cell mean unknown (SPEC §4.1, CASME II)."""
    return parse_number(value, column)


def repair(field_name: str, original: Any, value: Any, reason: str) -> dict[str, Any]:
    """A repair record (without source and clip id, which the row loop fills in)."""
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


def padded_subject(value: Any, width: int, prefix: str = "") -> str:
    """Subject cell as zero-padded digits: 1, 1.0, "1", "01", "sub01" -> "01" (width 2)."""
    number = lenient_number(value)
    if number is not None:
        return str(number).zfill(width)
    written = cell_text(value)
    m = re.fullmatch(rf"(?:{prefix})?0*(\d+)", written, re.IGNORECASE) if written else None
    if m is None:
        raise _BadRow(f"bad Subject {written!r}" if written else "missing Subject")
    return m.group(1).zfill(width)


def subject_or_raw(value: Any, width: int, prefix: str = "") -> str:
    """`padded_subject`, or the cell as written (for the clip id of a row whose subject is bad)."""
    try:
        return padded_subject(value, width, prefix)
    except _BadRow:
        return cell_text(value) or "?"


def s_subject(value: Any, prefix: str = "s") -> str:
    """`s1`, `s01`, `S1`, 1 -> prefix + two digits: SMIC's disk writes s1 where the MEGC list writes
    s01, MMEW S01 (and sometimes 1): one form everywhere."""
    number = lenient_number(value)
    written = cell_text(value)
    m = re.fullmatch(r"s0*(\d+)", written, re.IGNORECASE) if number is None and written else None
    if number is None and m is None:
        raise _BadRow(f"bad Subject {written!r}" if written else "missing Subject")
    return f"{prefix}{number if number is not None else int(m.group(1)):02d}"  # type: ignore[union-attr]
