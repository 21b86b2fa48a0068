"""Builders of small fake copies of the four ME datasets, laid out exactly as distributed (SPEC §4.1).

Each `make_<dataset>(root, rows, ...)` writes the annotation workbook (openpyxl) and tiny JPEG frames
(cv2.imwrite) under `root` and returns a `FakeDataset` with the Excel row number of every row it
wrote, so tests can check `Sample.source` and bad-row messages. Rows are dicts with the dataset's
own fields (see each builder); a value is written to the cell as given, so quirks such as a "/"
apex, a text "01" subject or a capitalised emotion are reproduced by passing them.

Frames: by default a row gets the frames onset..offset (when both are ints); `frames=[...]` in a
row writes exactly those frame numbers instead (e.g. to leave one out, or to add img9/img10 around
a clip). Frame n is an image of uniform grey level `frame_value(n)`, so a test further down the
pipeline can check that frames arrive in order.

`count_rows(dataset, counts)` makes annotation rows with one frame per clip for given per-emotion
counts; with the `*_COUNTS` tables (SPEC §4.1, paper Tables 1-2) they reproduce the published
sample counts of every class setting in well under a second.

`make_samm_release` and `make_casme3_release` reproduce facts of the released files (issue #15):
SAMM v2's 159 rows with the header on row 14 and the two apex rows outside onset..offset;
CAS(ME)^3 Part A's text-typed frame numbers, a repairable apex and four bad rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openpyxl

FRAME_SIZE = 8  # side of the fake frames in pixels: tiny keeps the fixtures fast

# Per-emotion clip counts as published (SPEC §4.1; paper Tables 1-3), spelled as each file writes them.
CASME2_COUNTS: dict[str, int] = {
    "others": 99, "disgust": 63, "happiness": 32, "surprise": 28, "repression": 27, "sadness": 4, "fear": 2,
}  # 255 clips, 26 subjects
SAMM_COUNTS: dict[str, int] = {
    "Anger": 57, "Other": 26, "Happiness": 26, "Surprise": 15, "Contempt": 12, "Disgust": 9, "Fear": 8, "Sadness": 6,
}  # 159 clips, 29 subjects
CASME_SQ_COUNTS: dict[str, int] = {"positive": 8, "negative": 21, "surprise": 9, "others": 19}  # 57 clips
# Paper Table 1 (943 clips, 100 subjects). The distributed v2 label file has 860 rows (SPEC §4.1),
# so real data will not reproduce these numbers exactly; the fixture checks the mapping, not the file.
CASME3_COUNTS: dict[str, int] = {
    "happy": 64, "anger": 70, "disgust": 281, "fear": 93, "surprise": 201, "sad": 64, "others": 170,
}
# Subjects with clips. CAS(ME)^2: the released code sheet's 57 ME clips come from 14 subjects (the
# paper's 22 counts every subject of the dataset, SPEC §4.1).
SUBJECTS: dict[str, int] = {"casme2": 26, "samm": 29, "casme_sq": 14, "casme3": 100}

# CAS(ME)^2 naming rules of the fake copy: code-sheet subject k lives in folder s(14 + k), and
# video name -> (code, folder description), e.g. rawpic/s15/15_0101disgustingteeth.
SQ_FOLDER_OFFSET = 14
SQ_VIDEOS: dict[str, tuple[int, str]] = {
    "disgust1": (101, "disgustingteeth"),
    "disgust2": (102, "eatingworms"),
    "anger1": (401, "girlcrashing"),
    "anger2": (402, "stickers"),
    "happy1": (502, "cup"),
    "happy2": (503, "unnyfarting"),
    "happy3": (505, "funnyinnovations"),
    "happy4": (507, "climbing"),
    "happy5": (508, "funnydunkey"),
}


@dataclass
class FakeDataset:
    """What a builder wrote: the dataset root, its annotation file and each row's Excel row."""

    root: Path  # pass this to read_dataset
    annotation: Path  # the workbook written
    rows: list[int]  # 1-based Excel row number of each given row, in the order given

    @property
    def annotation_name(self) -> str:
        """The workbook path relative to root, as `Sample.source` spells it."""
        return self.annotation.relative_to(self.root).as_posix()

    def source(self, index: int) -> str:
        """The expected `Sample.source` of the index-th given row."""
        return f"{self.annotation_name}:row {self.rows[index]}"


def frame_value(number: int) -> int:
    """Grey level of fake frame `number` (distinct for neighbouring frames, JPEG-stable)."""
    return (number * 37) % 256


def write_frames(folder: Path, numbers: Iterable[int], name: str, size: int = FRAME_SIZE) -> list[Path]:
    """Write one tiny JPEG per frame number; `name` is a format string with `{n}`.

    No numbers, no folder: a row with `frames=[]` has no frame folder on disk.
    """
    numbers = list(numbers)
    if numbers:
        folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in numbers:
        path = folder / name.format(n=n)
        image = np.full((size, size, 3), frame_value(n), np.uint8)  # (H, W, 3) BGR
        if not cv2.imwrite(str(path), image):
            raise OSError(f"cv2.imwrite failed for {path}")
        paths.append(path)
    return paths


def _frame_numbers(row: Mapping[str, Any], first: int = 1) -> list[int]:
    """Frames to write for a row: `frames` if given, else onset..offset when both are ints and
    onset >= `first` (the lowest frame number the dataset uses)."""
    if "frames" in row:
        return list(row["frames"])
    onset, offset = row.get("onset"), row.get("offset")
    if isinstance(onset, int) and isinstance(offset, int) and first <= onset <= offset:
        return list(range(onset, offset + 1))
    return []


def _digits(value: Any) -> int | None:
    text = str(value).strip().lower().removeprefix("sub")
    return int(text) if text.isdigit() else None


def _append(ws: Any, values: Sequence[Any]) -> int:
    """Append a row and return its Excel row number."""
    ws.append(list(values))
    return ws.max_row


# ---------------------------------------------------------------------------------------------
# CASME II
# ---------------------------------------------------------------------------------------------

CASME2_DEFAULT_ROWS: list[dict[str, Any]] = [
    # text subject, frames around 9/10 to check numeric (not lexical) order
    {"subject": "01", "filename": "EP02_01f", "onset": 8, "apex": 9, "offset": 11, "aus": "12", "emotion": "happiness",
     "frames": range(1, 21)},
    # int subject, "/" apex, int AU cell
    {"subject": 2, "filename": "EP09_04", "onset": 97, "apex": "/", "offset": 102, "aus": 4, "emotion": "repression"},
    {"subject": 2, "filename": "EP13_02", "onset": 1, "apex": 2, "offset": 3, "aus": "1+2", "emotion": "surprise"},
]


def make_casme2(
    root: Path,
    rows: Sequence[Mapping[str, Any]] | None = None,
    *,
    layout: str = "raw",
    version: str = "2019",
    frame_size: int = FRAME_SIZE,
) -> FakeDataset:
    """CASME II: `CASME2-coding-<date>.xlsx` + frames in `CASME2_RAW_selected/` or `Cropped/`.

    Row keys: subject, filename, onset, apex, offset, aus, emotion (+ objective in the 2019
    file; + frames). `layout`: "raw" (img<N>.jpg), "cropped" (reg_img<N>.jpg) or "both".
    `version`: "2019" adds the `Objective Classes` column, "2014" does not.
    """
    rows = CASME2_DEFAULT_ROWS if rows is None else rows
    root.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
              "Estimated Emotion"]
    if version == "2019":
        header.append("Objective Classes")
    _append(ws, header)
    numbers = []
    for row in rows:
        values = [row.get("subject"), row.get("filename"), None, row.get("onset"), row.get("apex"), row.get("offset"),
                  None, row.get("aus", "4"), row.get("emotion")]
        if version == "2019":
            values.append(row.get("objective", 1))
        numbers.append(_append(ws, values))
        subject = _digits(row.get("subject"))
        if subject is None or not row.get("filename"):
            continue
        for kind in (["raw", "cropped"] if layout == "both" else [layout]):
            top, name = ("CASME2_RAW_selected", "img{n}.jpg") if kind == "raw" else ("Cropped", "reg_img{n}.jpg")
            write_frames(root / top / f"sub{subject:02d}" / str(row["filename"]), _frame_numbers(row), name, frame_size)
    path = root / f"CASME2-coding-{'20190701' if version == '2019' else '20140508'}.xlsx"
    wb.save(path)
    return FakeDataset(root, path, numbers)


# ---------------------------------------------------------------------------------------------
# SAMM
# ---------------------------------------------------------------------------------------------

SAMM_DEFAULT_ROWS: list[dict[str, Any]] = [
    {"subject": 6, "filename": "006_1_2", "onset": 5562, "apex": 5564, "offset": 5566, "aus": "4+7",
     "emotion": "Anger"},
    {"subject": "011", "filename": "011_2_3", "onset": 9, "apex": 10, "offset": 12, "aus": "R12",
     "emotion": "Happiness",
     "frames": range(5, 16)},
    {"subject": 6, "filename": "006_5_11", "onset": 100, "apex": 101, "offset": 102, "aus": "12", "emotion": "Other"},
]


def make_samm(
    root: Path,
    rows: Sequence[Mapping[str, Any]] | None = None,
    *,
    notes_rows: int = 13,
    frame_size: int = FRAME_SIZE,
    filename: str = "SAMM_Micro_FACS_Codes_v2.xlsx",
) -> FakeDataset:
    """SAMM: `filename` (as distributed `SAMM_Micro_FACS_Codes_v2.xlsx`; other copies are named
    `SAMM_20181215_Micro_FACS_Codes_v2.xlsx`), sheet `MICRO_ONLY` with `notes_rows` rows of notes
    above the header, frames `SAMM/<subject>/<Filename>/<subject>_<frame:05d>.jpg`.

    Row keys: subject, filename, onset, apex, offset, aus, emotion (+ frames).
    """
    rows = SAMM_DEFAULT_ROWS if rows is None else rows
    root.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    wb.active.title = "README"  # MICRO_ONLY is not the first sheet in the distributed file
    ws = wb.create_sheet("MICRO_ONLY")
    for i in range(notes_rows):
        _append(ws, [f"Note {i + 1}: fake notes block above the table", None, "Subject codes are ..."])
    _append(ws, ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
                 "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"])
    numbers = []
    for row in rows:
        onset, offset = row.get("onset"), row.get("offset")
        duration = offset - onset + 1 if isinstance(onset, int) and isinstance(offset, int) else None
        numbers.append(_append(ws, [row.get("subject"), row.get("filename"), 1, onset, row.get("apex"), offset,
                                    duration, "Micro - 1/2", row.get("aus", "4"), row.get("emotion"), 1, None]))
        subject = _digits(row.get("subject"))
        if subject is None or not row.get("filename"):
            continue
        s = f"{subject:03d}"
        write_frames(root / "SAMM" / s / str(row["filename"]), _frame_numbers(row), f"{s}_{{n:05d}}.jpg", frame_size)
    path = root / filename
    wb.save(path)
    return FakeDataset(root, path, numbers)


# ---------------------------------------------------------------------------------------------
# CAS(ME)^2
# ---------------------------------------------------------------------------------------------

CASME_SQ_DEFAULT_ROWS: list[dict[str, Any]] = [
    {"subject": 1, "clip": "disgust1_1", "onset": 557, "apex": 572, "offset": 608, "aus": "4+7", "emotion": "negative",
     "type": "macro-expression", "frames": []},
    {"subject": 1, "clip": "disgust1_2", "onset": 9, "apex": 10, "offset": 12, "aus": "4", "emotion": "negative",
     "type": "micro-expression", "frames": range(1, 16)},
    # offset 0 = missing: read as onset..apex (documented repair)
    {"subject": 2, "clip": "anger1_1", "onset": 20, "apex": 24, "offset": 0, "aus": "R12", "emotion": "positive",
     "type": "micro-expression", "frames": range(18, 30)},
    {"subject": 2, "clip": "happy1_3", "onset": 40, "apex": 0, "offset": 43, "aus": "12", "emotion": "others",
     "type": "micro-expression"},
]


def make_casme_sq(
    root: Path,
    rows: Sequence[Mapping[str, Any]] | None = None,
    *,
    sheet_name: str = "CASFEcode_final",
    frame_size: int = FRAME_SIZE,
    filename: str = "CAS(ME)^2code_final.xlsx",
) -> FakeDataset:
    """CAS(ME)^2: `filename` (copies: `code_final.xlsx`, `CAS(ME)^2code_final(Updated).xlsx`;
    header-less first sheet named `sheet_name`, sheets
    `naming rule1`/`naming rule2`) + frames `rawpic/s<N>/<N>_<code><description>/img<n>.jpg`.

    Row keys: subject (code-sheet number k -> folder s(14+k)), clip ("anger1_1"; the video part
    must be in SQ_VIDEOS), onset, apex, offset, aus, emotion, type, self_report (+ frames).
    """
    rows = CASME_SQ_DEFAULT_ROWS if rows is None else rows
    root.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet_name
    numbers = []
    for row in rows:
        numbers.append(_append(ws, [row.get("subject"), row.get("clip"), row.get("onset"), row.get("apex"),
                                    row.get("offset"), row.get("aus", "4"), row.get("emotion"),
                                    row.get("type", "micro-expression"), row.get("self_report", "disgust")]))
        subject, clip = row.get("subject"), str(row.get("clip", ""))
        video = clip.rsplit("_", 1)[0]
        if not isinstance(subject, int) or video not in SQ_VIDEOS:
            continue
        folder_no = subject + SQ_FOLDER_OFFSET
        code, description = SQ_VIDEOS[video]
        folder = root / "rawpic" / f"s{folder_no}" / f"{folder_no}_{code:04d}{description}"
        write_frames(folder, _frame_numbers(row), "img{n}.jpg", frame_size)
    rule1 = wb.create_sheet("naming rule1")
    for k in range(1, 41):  # folder number | folder name | code-sheet subject number
        _append(rule1, [k + SQ_FOLDER_OFFSET, f"s{k + SQ_FOLDER_OFFSET}", k])
    rule2 = wb.create_sheet("naming rule2")
    for i, (video, (code, _)) in enumerate(SQ_VIDEOS.items()):
        # codes as ints (101) and as text ("0102"), as copies differ
        _append(rule2, [code if i % 2 == 0 else f"{code:04d}", video])
    path = root / filename
    wb.save(path)
    return FakeDataset(root, path, numbers)


# ---------------------------------------------------------------------------------------------
# CAS(ME)^3 Part A
# ---------------------------------------------------------------------------------------------

CASME3_DEFAULT_ROWS: list[dict[str, Any]] = [
    # two MEs in the same subject/letter video
    {"subject": "spNO.1", "filename": "a", "onset": 123, "apex": 125, "offset": 128, "au": "L12", "emotion": "happy",
     "frames": range(120, 150)},
    {"subject": "spNO.1", "filename": "a", "onset": 140, "apex": 141, "offset": 144, "au": "4", "emotion": "Others",
     "frames": []},
    # capital task letter; frames 0..2 named 0.jpg..2.jpg
    {"subject": "spNO.2", "filename": "C", "onset": 0, "apex": 1, "offset": 2, "au": "1+2", "emotion": "surprise",
     "frames": range(0, 3)},
]


def make_casme3(
    root: Path,
    rows: Sequence[Mapping[str, Any]] | None = None,
    *,
    frame_size: int = FRAME_SIZE,
    folder_case: dict[str, str] | None = None,
) -> FakeDataset:
    """CAS(ME)^3 Part A: `annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx` (sheet `label`) +
    frames `data/part_A/<subject>/<letter>/color/<frame>.jpg`.

    Row keys: subject, filename (task letter), onset, apex, offset, au, objective, emotion
    (+ frames). `folder_case` renames subject folders on disk (e.g. {"spNO.3": "spNo.3"}).
    """
    rows = CASME3_DEFAULT_ROWS if rows is None else rows
    (root / "annotation").mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "label"
    _append(ws, ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"])
    numbers = []
    for row in rows:
        numbers.append(_append(ws, [row.get("subject"), row.get("filename"), row.get("onset"), row.get("apex"),
                                    row.get("offset"), row.get("au", "4"), row.get("objective", 1),
                                    row.get("emotion")]))
        subject, letter = row.get("subject"), row.get("filename")
        if not subject or not letter:
            continue
        on_disk = (folder_case or {}).get(subject, subject)
        folder = root / "data" / "part_A" / on_disk / str(letter).lower() / "color"
        write_frames(folder, _frame_numbers(row, first=0), "{n}.jpg", frame_size)
    path = root / "annotation" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    wb.save(path)
    return FakeDataset(root, path, numbers)


# ---------------------------------------------------------------------------------------------
# Many rows with given per-emotion counts (one frame per clip)
# ---------------------------------------------------------------------------------------------

MAKERS = {"casme2": make_casme2, "samm": make_samm, "casme_sq": make_casme_sq, "casme3": make_casme3}


def count_rows(dataset: str, counts: Mapping[str, int], subjects: int | None = None,
               clip_suffix: int = 1) -> list[dict[str, Any]]:
    """Rows for `MAKERS[dataset]` with `counts[emotion]` one-frame clips each, spread round-robin
    over `subjects` subjects (default: `SUBJECTS`). `clip_suffix` ends SAMM's generated file
    names (`006_1_<suffix>`), so other names can be added without a clash."""
    n_subjects = subjects or SUBJECTS[dataset]
    rows: list[dict[str, Any]] = []
    i = 0
    for emotion, count in counts.items():
        for _ in range(count):
            k = i % n_subjects + 1  # subject number, 1-based
            j = i // n_subjects + 1  # clip number within the subject
            frame = j + 1
            if dataset == "casme2":
                rows.append({"subject": f"{k:02d}", "filename": f"EP{j:02d}_01", "onset": frame, "apex": frame,
                             "offset": frame, "emotion": emotion})
            elif dataset == "samm":
                s = k + 5  # SAMM subjects start at 006
                rows.append({"subject": s, "filename": f"{s:03d}_{j}_{clip_suffix}", "onset": frame, "apex": frame,
                             "offset": frame, "emotion": emotion})
            elif dataset == "casme_sq":
                video = list(SQ_VIDEOS)[j % len(SQ_VIDEOS)]
                rows.append({"subject": k, "clip": f"{video}_{j}", "onset": frame, "apex": frame, "offset": frame,
                             "emotion": emotion, "type": "micro-expression"})
            elif dataset == "casme3":
                # several MEs per subject/letter video: clip j of subject k sits in letter a or b
                rows.append({"subject": f"spNO.{k}", "filename": "ab"[j % 2], "onset": frame, "apex": frame,
                             "offset": frame, "emotion": emotion})
            else:
                raise ValueError(f"unknown dataset {dataset!r}")
            i += 1
    return rows


def make_counts(dataset: str, root: Path, counts: Mapping[str, int] | None = None) -> FakeDataset:
    """A fake `dataset` whose emotions have the published counts (or `counts`), one frame per clip."""
    published = {"casme2": CASME2_COUNTS, "samm": SAMM_COUNTS, "casme_sq": CASME_SQ_COUNTS, "casme3": CASME3_COUNTS}
    rows = count_rows(dataset, counts if counts is not None else published[dataset])
    if dataset == "casme3":
        # the distributed file capitalises "Others" three times (SPEC §4.1)
        others = [r for r in rows if r["emotion"] == "others"][:3]
        for r in others:
            r["emotion"] = "Others"
    if dataset == "casme_sq":
        # macro-expression rows sit in the same sheet and must not be counted
        rows = rows + [{"subject": 1, "clip": "disgust1_99", "onset": 1, "apex": 1, "offset": 1, "emotion": "negative",
                        "type": "macro-expression", "frames": []}]
    return MAKERS[dataset](root, rows)


# ---------------------------------------------------------------------------------------------
# Facts of the released files (issue #15)
# ---------------------------------------------------------------------------------------------

# SAMM v2's two rows whose apex lies outside onset..offset (SPEC §4.1); the emotions are chosen so
# that dropping both gives issue #15's wrong counts (anger 56, contempt 11).
SAMM_APEX_ROWS: list[dict[str, Any]] = [
    {"subject": 28, "filename": "028_4_1", "onset": 1130, "apex": 1143, "offset": 1134, "emotion": "Anger"},
    {"subject": 32, "filename": "032_3_1", "onset": 4896, "apex": 1930, "offset": 4900, "emotion": "Contempt"},
]


def samm_release_rows() -> list[dict[str, Any]]:
    """159 rows like SAMM v2: the published per-class counts (`SAMM_COUNTS`), 29 subjects
    (006..034), tiny clips, and the two apex rows of `SAMM_APEX_ROWS` in place of one generated
    Anger and one generated Contempt row."""
    rows = count_rows("samm", SAMM_COUNTS, clip_suffix=9)
    for known in SAMM_APEX_ROWS:
        i = next(i for i, r in enumerate(rows) if r["emotion"] == known["emotion"])
        rows[i] = dict(known)
    return rows


def make_samm_release(root: Path, filename: str = "SAMM_Micro_FACS_Codes_v2.xlsx") -> FakeDataset:
    """A SAMM copy with v2's facts: 159 rows, header on row 14 after 13 rows of notes, the two
    apex rows; one tiny frame per generated clip."""
    return make_samm(root, samm_release_rows(), notes_rows=13, filename=filename)


def casme3_release_rows() -> list[dict[str, Any]]:
    """A CAS(ME)^3 Part A label sheet in the released file's style: frame numbers stored as text,
    several MEs per subject/letter video, one capitalised "Others" and one capital task letter.

    Row 4 has its apex before its onset: repaired (apex unknown), not bad. Rows 5-8 are the four
    bad rows: offset before onset, offset 0 twice (as in the released v2) and, as the fourth,
    a row whose frames are missing on disk — the released file's fourth problem row (apex before
    onset) is repairable under the one rule, so the fixture keeps four genuinely bad rows.
    """
    t = str  # the released file stores frame numbers as text
    return [
        {"subject": "spNO.1", "filename": "a", "onset": t(10), "apex": t(12), "offset": t(14), "emotion": "happy",
         "frames": range(10, 15)},
        {"subject": "spNO.1", "filename": "a", "onset": t(30), "apex": t(31), "offset": t(33), "emotion": "Others",
         "frames": range(30, 34)},
        {"subject": "spNO.2", "filename": "B", "onset": t(5), "apex": t(6), "offset": t(8), "emotion": "disgust",
         "frames": range(5, 9)},
        # apex before onset: repaired to unknown
        {"subject": "spNO.2", "filename": "c", "onset": t(40), "apex": t(38), "offset": t(42), "emotion": "fear",
         "frames": range(40, 43)},
        # the four bad rows
        {"subject": "spNO.3", "filename": "a", "onset": t(20), "apex": t(21), "offset": t(15), "emotion": "sad",
         "frames": []},
        {"subject": "spNO.3", "filename": "b", "onset": t(50), "apex": t(52), "offset": t(0), "emotion": "anger",
         "frames": []},
        {"subject": "spNO.4", "filename": "d", "onset": t(60), "apex": t(61), "offset": t(0), "emotion": "surprise",
         "frames": []},
        {"subject": "spNO.4", "filename": "e", "onset": t(70), "apex": t(71), "offset": t(73), "emotion": "happy",
         "frames": [70, 71]},
        {"subject": "spNO.5", "filename": "a", "onset": t(3), "apex": "", "offset": t(4), "emotion": "surprise",
         "frames": range(3, 5)},
    ]


# Clip ids of `casme3_release_rows()`'s four bad rows, in sheet order.
CASME3_BAD_CLIPS = ["spNO.3_a_20", "spNO.3_b_50", "spNO.4_d_60", "spNO.4_e_70"]


def make_casme3_release(root: Path) -> FakeDataset:
    """A CAS(ME)^3 Part A copy with `casme3_release_rows()`."""
    return make_casme3(root, casme3_release_rows())
