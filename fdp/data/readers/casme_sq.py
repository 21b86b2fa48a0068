"""CAS(ME)^2 (SPEC §4.1): the first sheet (opened by index, its name differs between copies) has no
header: subject number | clip name (`anger1_1`) | onset | apex | offset | AUs | emotion | expression
type | self-report. Sheets `naming rule1` (folder number | folder name | subject number of the code
sheet) and `naming rule2` (video code | video name) lead to `rawpic/s15/15_0101disgustingteeth/img<N>.jpg`.
Only `micro-expression` rows are samples; `macro-expression` rows are not micro-expressions and are
passed over (not bad rows). Subject: the frame folder name ("s15"); clip id `s15_anger1_1`.

Offset 0 means "missing" in this file (SPEC §4.1). When the apex is known the offset is set to the
apex, so the clip covers the rise onset..apex, and the repair is listed with the original 0. Why not
a bad row: the paper counts all 57 CAS(ME)^2 ME clips (Tables 2-3), so rows without an offset were
used, and onset..apex is the public CAS(ME)^2 tooling's rule. With the apex missing too (or before
the onset) the row is bad. An apex of 0 means unknown (`apex=None`). Only a workbook will do (a CSV
export lacks the naming-rule sheets).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fdp.data.readers.cells import (
    _BadRow,
    apex_index,
    cell,
    cell_text,
    check_span,
    frame_index,
    lenient_number,
    rel,
    repair,
)
from fdp.data.readers.core import Clip, Dataset, Row, TableReader, frame_bases
from fdp.data.readers.tables import HEADER_SEARCH_ROWS, Book, Sheet, Signature
from fdp.data.samples import DataError

# Column positions of the header-less code sheet (SPEC §4.1).
COLUMNS = {"subject": 0, "clip": 1, "onset": 2, "apex": 3, "offset": 4, "aus": 5, "emotion": 6, "type": 7}
TYPES = ("micro-expression", "macro-expression")
RULES = ("naming rule1", "naming rule2")


def _content(sheet: Sheet) -> str | None:
    """CAS(ME)^2's code sheet has no header: it is recognised by its expression-type column."""
    for number, values in sheet.rows():
        if number > HEADER_SEARCH_ROWS:
            break
        if cell_text(cell(values, COLUMNS["type"])).lower() in TYPES:
            return None
    return (f"first sheet {sheet.title!r} has no micro-expression/macro-expression row in column H "
            f"(searched the first {HEADER_SEARCH_ROWS} rows)")


def naming_rules(book: Book, label: str) -> tuple[dict[int, int], dict[str, str]]:
    """({code-sheet subject: folder number}, {video name: 4-digit video code}) from the naming sheets.

    `naming rule1`: folder number (15 -> s15/15_...) | folder name | subject number of the code
    sheet. `naming rule2`: video code (101 or "0101") | video name ("disgust1"). Rows that are not
    of that shape (a title or header row in some copies) are passed over.
    """
    subjects: dict[int, int] = {}
    for _, values in book.sheet(RULES[0]).rows():
        folder_no = lenient_number(re.sub(r"^[sS]", "", cell_text(cell(values, 0))))
        subject_no = lenient_number(cell(values, 2))
        if folder_no is not None and subject_no is not None:
            subjects[subject_no] = folder_no
    videos: dict[str, str] = {}
    for _, values in book.sheet(RULES[1]).rows():
        code = lenient_number(cell(values, 0))
        name = cell_text(cell(values, 1)).lower()
        if code is not None and name:
            videos[name] = f"{code:04d}"
    if not subjects or not videos:
        raise DataError(f"{label}: sheets 'naming rule1'/'naming rule2' hold no subject or video codes")
    return subjects, videos


class CasmeSq(TableReader):
    def setup(self) -> None:
        assert self.layout.book is not None
        self.subjects, self.videos = naming_rules(self.layout.book, self.label)
        self.base = frame_bases(self.root, ["rawpic"], r"s\d+", self.dataset.title, "rawpic/")[0]
        self.columns = COLUMNS

    def rows(self) -> Iterator[Row]:
        for row in super().rows():
            # a header row some copies add; SPEC says there is none
            if not (row.number == 1 and row.text("type").lower() not in TYPES and lenient_number(row["onset"]) is None):
                yield row

    def clip_id(self, row: Row) -> str:
        subject_no = lenient_number(row["subject"])
        folder = self.subjects.get(subject_no) if subject_no is not None else None
        return f"s{folder if folder is not None else '?'}_{row.text('clip') or '?'}"

    def parse(self, row: Row) -> Clip | None:
        kind = row.text("type").lower()
        if kind not in TYPES:
            raise _BadRow(f"unknown expression type {row.text('type')!r} (known: {', '.join(TYPES)})")
        if kind != "micro-expression":
            return None  # macro-expressions are not samples of this dataset (SPEC §4.1)
        subject_no = lenient_number(row["subject"])
        if subject_no is None:
            raise _BadRow(f"bad subject {row.text('subject')!r}")
        if subject_no not in self.subjects:
            raise _BadRow(f"subject {subject_no} not in sheet 'naming rule1'")
        clip = row.text("clip")
        if not clip:
            raise _BadRow("missing clip name")
        video = clip.rsplit("_", 1)[0].lower()  # "anger1_1" -> video "anger1", 1st ME in it
        if video not in self.videos:
            raise _BadRow(f"video {video!r} of clip {clip!r} not in sheet 'naming rule2'")
        onset = frame_index(row["onset"], "onset")
        apex = apex_index(row["apex"], "apex")
        offset = frame_index(row["offset"], "offset")
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
        emotion = self.emotion(row["emotion"])
        folder_no = self.subjects[subject_no]
        row.clip_id = f"s{folder_no}_{clip}"
        # video folders are "<folder no>_<code><description>": found by the known part
        return Clip(f"s{folder_no}", onset, apex, offset, emotion, row.text("aus"),
                    f"{folder_no}_{self.videos[video]}", repairs + span_repairs)

    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        subject_dir = self.disk.child(self.base, clip.subject)
        candidates = [p for n, p in (self.disk.subfolders(subject_dir) or {}).items()
                      if n.lower().startswith(clip.folder.lower())] if subject_dir is not None else []
        shown = rel(self.base / clip.subject / f"{clip.folder}*", self.root)
        return self.disk.select(candidates[0] if candidates else None, shown, r"img(\d+)\.jpg", clip.onset,
                                clip.offset)


CASME_SQ = Dataset(
    name="casme_sq", fps=30.0,
    emotions=("positive", "negative", "surprise", "others"),
    table=Signature("CAS(ME)^2", ("CAS(ME)^2code_final*.xlsx", "*code_final*.xlsx"), None, None,
                    other_sheets=RULES, content=_content),
    reader=CasmeSq,
)
