"""Dataset readers (SPEC §4.1): every field of every format's quirks, bad rows, missing files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import openpyxl
import pytest
from fixtures_data import (
    CASME3_BAD_CLIPS,
    make_casme2,
    make_casme3,
    make_casme3_release,
    make_casme_sq,
    make_samm,
    make_samm_release,
    write_frames,
)

from fdp.data.readers import EMOTIONS, FPS, READERS, SIGNATURES, ReadResult, _BadRow, parse_number, read_dataset
from fdp.data.samples import BadRowsError, DataError, Sample


def _names(sample: Sample) -> list[str]:
    return [Path(f).name for f in sample.frames]


def _fields(sample: Sample) -> tuple:
    """Every field but the frame paths (checked separately, by name and folder)."""
    return (sample.dataset, sample.subject, sample.clip_id, sample.onset, sample.apex, sample.offset,
            sample.emotion, sample.action_units, sample.fps, sample.source)


# ---------------------------------------------------------------------------------------------
# CASME II
# ---------------------------------------------------------------------------------------------


def test_casme2_reads_every_field(tmp_path: Path) -> None:
    ds = make_casme2(tmp_path / "CASME2")  # default rows: text/int subjects, "/" apex, img9/img10
    result = read_dataset("casme2", ds.root)
    assert isinstance(result, ReadResult) and result.skipped == [] and result.repaired == []
    assert [_fields(s) for s in result.samples] == [
        ("casme2", "01", "sub01_EP02_01f", 8, 9, 11, "happiness", "12", 200.0, "CASME2-coding-20190701.xlsx:row 2"),
        ("casme2", "02", "sub02_EP09_04", 97, None, 102, "repression", "4", 200.0, "CASME2-coding-20190701.xlsx:row 3"),
        ("casme2", "02", "sub02_EP13_02", 1, 2, 3, "surprise", "1+2", 200.0, "CASME2-coding-20190701.xlsx:row 4"),
    ]
    first, second, _ = result.samples
    # img1..img20 exist; onset..offset picked by number, in numeric (not lexical) order
    assert _names(first) == ["img8.jpg", "img9.jpg", "img10.jpg", "img11.jpg"]
    assert _names(second) == [f"img{n}.jpg" for n in range(97, 103)]
    assert Path(first.frames[0]).parent == ds.root / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    assert all(os.path.isabs(f) for s in result.samples for f in s.frames)


def test_casme2_cropped_layout_and_2014_file(tmp_path: Path) -> None:
    ds = make_casme2(tmp_path, layout="cropped", version="2014")
    samples = read_dataset("casme2", ds.root).samples
    assert _names(samples[0]) == ["reg_img8.jpg", "reg_img9.jpg", "reg_img10.jpg", "reg_img11.jpg"]
    assert Path(samples[0].frames[0]).parent == tmp_path / "Cropped" / "sub01" / "EP02_01f"
    assert samples[0].source == "CASME2-coding-20140508.xlsx:row 2"


def test_casme2_prefers_raw_frames_when_both_layouts_exist(tmp_path: Path) -> None:
    ds = make_casme2(tmp_path, layout="both")
    samples = read_dataset("casme2", ds.root).samples
    assert all("CASME2_RAW_selected" in f and Path(f).name.startswith("img") for s in samples for f in s.frames)


def test_two_matching_coding_files_are_listed_and_annotations_picks_one(tmp_path: Path) -> None:
    make_casme2(tmp_path, version="2014", rows=[{"subject": 1, "filename": "EP01", "onset": 1, "apex": 1,
                                                 "offset": 1, "emotion": "fear"}])
    make_casme2(tmp_path, version="2019")  # writes CASME2-coding-20190701.xlsx beside it
    (tmp_path / "~$CASME2-coding-20990101.xlsx").write_bytes(b"lock")  # Excel's lock file: not a candidate
    with pytest.raises(DataError) as err:
        read_dataset("casme2", str(tmp_path))
    assert str(err.value) == (f"{tmp_path}: 2 files match the CASME II annotation table: CASME2-coding-20140508.xlsx, "
                              "CASME2-coding-20190701.xlsx; name the one to read with --annotations FILE")
    samples = read_dataset("casme2", tmp_path, annotations=tmp_path / "CASME2-coding-20190701.xlsx").samples
    assert {s.source.split(":")[0] for s in samples} == {"CASME2-coding-20190701.xlsx"}
    assert len(samples) == 3
    older = read_dataset("casme2", tmp_path, annotations=tmp_path / "CASME2-coding-20140508.xlsx")
    assert [s.clip_id for s in older.samples] == ["sub01_EP01"]
    assert older.annotation == str(tmp_path / "CASME2-coding-20140508.xlsx")


def test_annotation_is_found_two_levels_deep_but_not_three(tmp_path: Path) -> None:
    ds = make_casme2(tmp_path / "a" / "b")
    samples = read_dataset("casme2", tmp_path).samples
    assert samples[0].source == "a/b/CASME2-coding-20190701.xlsx:row 2"
    assert Path(samples[0].frames[0]).parent == ds.root / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    make_casme2(tmp_path / "deep" / "x" / "y" / "z")  # three levels below root "deep"
    with pytest.raises(DataError, match=r"no CASME II annotation file found: .* tables seen: none;"):
        read_dataset("casme2", tmp_path / "deep")


def test_relative_root_gives_absolute_frame_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_casme2(tmp_path / "CASME2")
    monkeypatch.chdir(tmp_path)
    samples = read_dataset("casme2", "CASME2").samples
    assert samples[0].frames[0] == str(tmp_path / "CASME2" / "CASME2_RAW_selected" / "sub01" / "EP02_01f" / "img8.jpg")


def test_corrupt_frame_file_is_only_checked_for_existence(tmp_path: Path) -> None:
    ds = make_casme2(tmp_path)
    bad = ds.root / "CASME2_RAW_selected" / "sub01" / "EP02_01f" / "img9.jpg"
    bad.write_bytes(b"not a jpeg")
    samples = read_dataset("casme2", ds.root).samples
    assert str(bad) in samples[0].frames  # the cache, not the reader, finds unreadable frames


# Bad rows (SPEC §4.1, last bullet): each case is one extra CASME II row, its clip id as far as the
# row gives it, and its one-line reason.
GOOD = {"subject": "03", "filename": "EP01_01", "onset": 9, "apex": 10, "offset": 12, "aus": "4", "emotion": "disgust"}
CLIP = "sub03_EP01_01"
BAD_ROWS = [
    ({"onset": "abc"}, CLIP, "non-numeric OnsetFrame 'abc'"),
    ({"onset": None}, CLIP, "missing OnsetFrame"),
    ({"onset": 9.5}, CLIP, "non-integer OnsetFrame 9.5"),
    ({"onset": "9.5"}, CLIP, "non-integer OnsetFrame 9.5"),
    ({"onset": "/"}, CLIP, "missing OnsetFrame ('/')"),
    ({"offset": "", "frames": []}, CLIP, "missing OffsetFrame"),
    ({"onset": 12, "offset": 9, "apex": "/", "frames": []}, CLIP, "offset 9 before onset 12"),
    ({"onset": "12", "offset": "9", "frames": []}, CLIP, "offset 9 before onset 12"),  # text-typed numbers
    ({"offset": -1, "frames": []}, CLIP, "negative OffsetFrame -1"),
    ({"frames": [9, 10, 12]}, CLIP, "missing frames on disk in CASME2_RAW_selected/sub03/EP01_01: 11 (1 of 9..12)"),
    ({"frames": [9, 12]}, CLIP, "missing frames on disk in CASME2_RAW_selected/sub03/EP01_01: 10-11 (2 of 9..12)"),
    ({"frames": []}, CLIP, "frame folder CASME2_RAW_selected/sub03/EP01_01 not found on disk"),
    ({"emotion": "joy"}, CLIP, "unknown emotion 'joy' (known: " + ", ".join(EMOTIONS["casme2"]) + ")"),
    ({"emotion": None}, CLIP, "missing emotion"),
    ({"subject": "x1"}, "subx1_EP01_01", "bad Subject 'x1'"),
    ({"filename": None}, "sub03_?", "missing Filename"),
    ({"subject": 1, "filename": "EP02_01f", "frames": []}, "sub01_EP02_01f",
     "duplicate clip 'sub01_EP02_01f' (first at row 2)"),
]


def _with_bad_row(tmp_path: Path, change: dict) -> tuple:
    rows = [
        {"subject": "01", "filename": "EP02_01f", "onset": 8, "apex": 9, "offset": 11, "emotion": "happiness"},
        {**GOOD, **change},
        {"subject": 2, "filename": "EP13_02", "onset": 1, "apex": 2, "offset": 3, "emotion": "surprise"},
    ]
    return make_casme2(tmp_path, rows=rows), rows


@pytest.mark.parametrize(("change", "clip", "reason"), BAD_ROWS, ids=[r for _, _, r in BAD_ROWS])
def test_bad_row_stops_with_file_row_clip_and_reason(tmp_path: Path, change: dict, clip: str, reason: str) -> None:
    ds, _ = _with_bad_row(tmp_path, change)
    with pytest.raises(BadRowsError) as err:
        read_dataset("casme2", ds.root)
    assert str(err.value) == (f"CASME2-coding-20190701.xlsx:row 3: clip {clip}: {reason}; fix the row or run with "
                              "--skip-bad to skip it (recorded in the cache index)")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("change", "clip", "reason"), BAD_ROWS, ids=[r for _, _, r in BAD_ROWS])
def test_bad_row_is_recorded_with_its_clip_when_skipping(tmp_path: Path, change: dict, clip: str,
                                                         reason: str) -> None:
    ds, _ = _with_bad_row(tmp_path, change)
    result = read_dataset("casme2", ds.root, skip_bad=True)
    assert result.skipped == [{"source": "CASME2-coding-20190701.xlsx:row 3", "clip_id": clip, "reason": reason}]
    assert [s.source for s in result.samples] == [ds.source(0), ds.source(2)]


@pytest.mark.parametrize(("apex", "reason"), [(30, "apex 30 after offset 12"), (3, "apex 3 before onset 9"),
                                              ("3", "apex 3 before onset 9")])
def test_apex_outside_the_span_is_repaired_to_unknown(tmp_path: Path, apex, reason: str) -> None:
    ds, _ = _with_bad_row(tmp_path, {"apex": apex})
    result = read_dataset("casme2", ds.root)  # strict: a repair is not a bad row
    assert result.skipped == [] and len(result.samples) == 3
    kept = result.samples[1]
    assert (kept.clip_id, kept.onset, kept.apex, kept.offset) == (CLIP, 9, None, 12)
    assert _names(kept) == [f"img{n}.jpg" for n in range(9, 13)]  # the span and its frames are kept as annotated
    assert result.repaired == [{"source": ds.source(1), "clip_id": CLIP, "field": "apex", "original": 3 if
                                apex == "3" else apex, "value": None, "reason": f"{reason}: apex set to unknown"}]


def test_strict_mode_lists_every_bad_row_in_one_pass(tmp_path: Path) -> None:
    rows = [{**GOOD, "filename": f"EP0{i}", "onset": 12, "offset": 9, "frames": []} for i in range(1, 4)]
    rows.insert(1, dict(GOOD))
    ds = make_casme2(tmp_path, rows=rows)
    with pytest.raises(BadRowsError) as err:
        read_dataset("casme2", ds.root)
    assert str(err.value) == ("CASME2-coding-20190701.xlsx: 3 bad rows: row 2 (sub03_EP01), row 4 (sub03_EP02), "
                              "row 5 (sub03_EP03); fix them or run with --skip-bad to skip them (recorded in the "
                              "cache index)")
    assert [(r["source"], r["clip_id"], r["reason"]) for r in err.value.rows] == [
        (ds.source(i), f"sub03_EP0{n}", "offset 9 before onset 12") for i, n in ((0, 1), (2, 2), (3, 3))]


@pytest.mark.parametrize(("value", "expected"), [
    (1143, 1143), (1143.0, 1143), ("1143", 1143), (" 1143.0 ", 1143), ("1143\u00a0", 1143), ("+7", 7), (0, 0),
    ("1.143e3", 1143), (None, None), ("", None), ("  ", None), ("/", None), (float("nan"), None), ("nan", None),
])
def test_parse_number_reads_every_spelling_of_a_frame_number(value, expected) -> None:
    assert parse_number(value, "Onset") == expected


@pytest.mark.parametrize(("value", "reason"), [
    ("abc", "non-numeric Onset 'abc'"), (True, "non-numeric Onset True"), (12.5, "non-integer Onset 12.5"),
    ("12.5", "non-integer Onset 12.5"), (-3, "negative Onset -3"), ("-3", "negative Onset -3"),
    ("inf", "non-integer Onset inf"), ("12 a", "non-numeric Onset '12 a'"), ("/ 2", "non-numeric Onset '/ 2'"),
])
def test_parse_number_refuses_what_is_no_frame_number(value, reason: str) -> None:
    with pytest.raises(_BadRow, match="^" + re.escape(reason) + "$"):
        parse_number(value, "Onset")


# ---------------------------------------------------------------------------------------------
# SAMM
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("notes_rows", [0, 4, 13])
def test_samm_header_is_found_by_its_subject_cell(tmp_path: Path, notes_rows: int) -> None:
    ds = make_samm(tmp_path, notes_rows=notes_rows)
    result = read_dataset("samm", ds.root)
    header = notes_rows + 1
    assert ds.rows == [header + 1, header + 2, header + 3]
    src = "SAMM_Micro_FACS_Codes_v2.xlsx:row {}"
    assert [_fields(s) for s in result.samples] == [
        ("samm", "006", "006_1_2", 5562, 5564, 5566, "anger", "4+7", 200.0, src.format(header + 1)),
        ("samm", "011", "011_2_3", 9, 10, 12, "happiness", "R12", 200.0, src.format(header + 2)),
        ("samm", "006", "006_5_11", 100, 101, 102, "other", "12", 200.0, src.format(header + 3)),
    ]
    assert _names(result.samples[0]) == ["006_05562.jpg", "006_05563.jpg", "006_05564.jpg", "006_05565.jpg",
                                         "006_05566.jpg"]
    # 011_00005..011_00015 on disk: 9..12 picked, zero-padding read as numbers
    assert _names(result.samples[1]) == ["011_00009.jpg", "011_00010.jpg", "011_00011.jpg", "011_00012.jpg"]
    assert Path(result.samples[1].frames[0]).parent == tmp_path / "SAMM" / "011" / "011_2_3"


def test_samm_release_apex_rows_are_repaired_and_counted_as_the_paper(tmp_path: Path) -> None:
    """SAMM v2 (issue #15): 159 rows, header on row 14; 028_4_1 apex 1143 after offset 1134 and
    032_3_1 apex 1930 before onset 4896 are kept with an unknown apex, so samm/5 is 136 and samm/3 133."""
    from fdp.data.settings import SETTINGS, count_by_class

    ds = make_samm_release(tmp_path)
    assert ds.rows[0] == 15  # the header is row 14, below 13 rows of notes
    result = read_dataset("samm", ds.root)  # strict: nothing is bad
    assert result.skipped == [] and len(result.samples) == 159
    assert len({s.subject for s in result.samples}) == 29
    name = "SAMM_Micro_FACS_Codes_v2.xlsx"
    assert [(r["clip_id"], r["field"], r["original"], r["value"], r["reason"]) for r in result.repaired] == [
        ("028_4_1", "apex", 1143, None, "apex 1143 after offset 1134: apex set to unknown"),
        ("032_3_1", "apex", 1930, None, "apex 1930 before onset 4896: apex set to unknown"),
    ]
    assert all(r["source"].startswith(f"{name}:row ") for r in result.repaired)
    by_id = {s.clip_id: s for s in result.samples}
    assert (by_id["028_4_1"].onset, by_id["028_4_1"].apex, by_id["028_4_1"].offset) == (1130, None, 1134)
    assert _names(by_id["032_3_1"]) == [f"032_{n:05d}.jpg" for n in range(4896, 4901)]
    five, _ = count_by_class(result.samples, SETTINGS["samm/5"])
    three, _ = count_by_class(result.samples, SETTINGS["samm/3"])
    assert five == {"happiness": 26, "anger": 57, "contempt": 12, "surprise": 15, "other": 26}  # 136
    assert three == {"positive": 26, "negative": 92, "surprise": 15}  # 133


@pytest.mark.parametrize("filename", ["SAMM_20181215_Micro_FACS_Codes_v2.xlsx", "samm codes (copy).xlsx"])
def test_renamed_samm_file_is_found_by_content(tmp_path: Path, filename: str) -> None:
    ds = make_samm(tmp_path, filename=filename)
    (tmp_path / "notes.xlsx").write_bytes(b"not a workbook")  # another table file, seen and passed over
    result = read_dataset("samm", ds.root)
    assert [s.source for s in result.samples] == [f"{filename}:row {r}" for r in ds.rows]
    assert result.annotation == str(tmp_path / filename)


def test_samm_csv_export_with_text_numbers(tmp_path: Path) -> None:
    ds = make_samm(tmp_path)
    wb = openpyxl.load_workbook(ds.annotation)
    with open(tmp_path / "micro_only.csv", "w", newline="") as f:
        import csv
        csv.writer(f).writerows([["" if v is None else v for v in row] for row in
                                 wb["MICRO_ONLY"].iter_rows(values_only=True)])
    ds.annotation.unlink()
    result = read_dataset("samm", ds.root)
    assert [(s.clip_id, s.onset, s.apex, s.offset) for s in result.samples] == [
        ("006_1_2", 5562, 5564, 5566), ("011_2_3", 9, 10, 12), ("006_5_11", 100, 101, 102)]
    assert result.samples[0].source == "micro_only.csv:row 15"


def test_samm_xls_copy_with_float_numbers(tmp_path: Path) -> None:
    xlwt = pytest.importorskip("xlwt")
    ds = make_samm(tmp_path, notes_rows=2)
    book = xlwt.Workbook()
    sheet = book.add_sheet("MICRO_ONLY")
    for r, row in enumerate(openpyxl.load_workbook(ds.annotation)["MICRO_ONLY"].iter_rows(values_only=True)):
        for c, v in enumerate(row):
            if v is not None:
                sheet.write(r, c, float(v) if isinstance(v, int) else v)  # .xls stores every number as a float
    book.save(str(tmp_path / "SAMM_codes.xls"))
    ds.annotation.unlink()
    result = read_dataset("samm", ds.root)
    assert [(s.subject, s.clip_id, s.onset, s.offset) for s in result.samples] == [
        ("006", "006_1_2", 5562, 5566), ("011", "011_2_3", 9, 12), ("006", "006_5_11", 100, 102)]
    assert result.samples[0].source == "SAMM_codes.xls:row 4"


def test_samm_without_micro_only_sheet(tmp_path: Path) -> None:
    ds = make_samm(tmp_path)
    wb = openpyxl.load_workbook(ds.annotation)
    wb["MICRO_ONLY"].title = "ALL"
    wb.save(ds.annotation)
    message = ("tables seen: SAMM_Micro_FACS_Codes_v2.xlsx (no sheet 'MICRO_ONLY' (sheets: README, ALL)); "
               "name the file with --annotations FILE")
    with pytest.raises(DataError, match=re.escape(message) + "$"):
        read_dataset("samm", ds.root)
    with pytest.raises(DataError, match="^" + re.escape(
            "SAMM_Micro_FACS_Codes_v2.xlsx: not a SAMM annotation file (sheet MICRO_ONLY with columns Subject | ")):
        read_dataset("samm", ds.root, annotations=ds.annotation)


def test_samm_header_missing_a_column(tmp_path: Path) -> None:
    ds = make_samm(tmp_path, notes_rows=2)
    wb = openpyxl.load_workbook(ds.annotation)
    wb["MICRO_ONLY"].cell(row=3, column=10).value = "Emotion guess"
    wb.save(ds.annotation)
    with pytest.raises(DataError, match=r"xlsx \(header row 3 has no column 'Estimated Emotion' \(found: Subject, "):
        read_dataset("samm", ds.root)


# ---------------------------------------------------------------------------------------------
# CAS(ME)^2
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sheet_name", ["CASFEcode_final", "CASMEcode_final"])
def test_casme_sq_reads_micro_rows_through_the_naming_rules(tmp_path: Path, sheet_name: str) -> None:
    ds = make_casme_sq(tmp_path, sheet_name=sheet_name)  # row 1 macro, rows 2-4 micro
    result = read_dataset("casme_sq", ds.root)
    src = "CAS(ME)^2code_final.xlsx:row {}"
    assert [_fields(s) for s in result.samples] == [
        ("casme_sq", "s15", "s15_disgust1_2", 9, 10, 12, "negative", "4", 30.0, src.format(2)),
        # offset 0 (missing) -> onset..apex, and the repair is listed
        ("casme_sq", "s16", "s16_anger1_1", 20, 24, 24, "positive", "R12", 30.0, src.format(3)),
        # apex 0 (missing) -> unknown apex
        ("casme_sq", "s16", "s16_happy1_3", 40, None, 43, "others", "12", 30.0, src.format(4)),
    ]
    assert result.repaired == [{"source": src.format(3), "clip_id": "s16_anger1_1", "field": "offset", "original": 0,
                                "value": 24, "reason": "offset 0 (missing): apex 24 used as offset"}]
    assert result.skipped == []
    assert _names(result.samples[0]) == ["img9.jpg", "img10.jpg", "img11.jpg", "img12.jpg"]
    assert Path(result.samples[0].frames[0]).parent == tmp_path / "rawpic" / "s15" / "15_0101disgustingteeth"
    assert Path(result.samples[1].frames[0]).parent == tmp_path / "rawpic" / "s16" / "16_0401girlcrashing"
    assert Path(result.samples[2].frames[0]).parent == tmp_path / "rawpic" / "s16" / "16_0502cup"


CASME_SQ_BAD = [
    ({"offset": 0, "apex": 0}, "offset and apex are 0 (missing)"),
    ({"offset": 0, "apex": 3}, "offset 0 (missing) and apex 3 before onset 5"),
    ({"offset": 4}, "offset 4 before onset 5"),
    ({"onset": 0}, "onset is 0 (missing)"),
    # a row that would be repaired (offset 0) but is bad for another reason is only skipped
    ({"offset": 0, "emotion": "joy"}, "unknown emotion 'joy' (known: positive, negative, surprise, others)"),
    ({"type": "micro"}, "unknown expression type 'micro' (known: micro-expression, macro-expression)"),
    ({"clip": "sad9_1"}, "video 'sad9' of clip 'sad9_1' not in sheet 'naming rule2'"),
    ({"subject": 77}, "subject 77 not in sheet 'naming rule1'"),
    ({"emotion": "Happiness"}, "unknown emotion 'Happiness' (known: positive, negative, surprise, others)"),
    ({"frames": [5, 6]}, "missing frames on disk in rawpic/s15/15_0102*: 7 (1 of 5..7)"),
]


@pytest.mark.parametrize(("change", "reason"), CASME_SQ_BAD, ids=[r for _, r in CASME_SQ_BAD])
def test_casme_sq_bad_rows(tmp_path: Path, change: dict, reason: str) -> None:
    good = {"subject": 2, "clip": "happy2_1", "onset": 3, "apex": 4, "offset": 5, "emotion": "positive"}
    row = {"subject": 1, "clip": "disgust2_1", "onset": 5, "apex": 6, "offset": 7, "emotion": "negative", **change}
    ds = make_casme_sq(tmp_path, rows=[good, row])
    clip = "s?_disgust2_1" if "subject 77" in reason else "s15_sad9_1" if "sad9" in reason else "s15_disgust2_1"
    with pytest.raises(DataError, match="^" + re.escape(f"CAS(ME)^2code_final.xlsx:row 2: clip {clip}: {reason};")):
        read_dataset("casme_sq", ds.root)
    result = read_dataset("casme_sq", ds.root, skip_bad=True)
    assert [s.clip_id for s in result.samples] == ["s16_happy2_1"] and result.repaired == []
    assert result.skipped == [{"source": "CAS(ME)^2code_final.xlsx:row 2", "clip_id": clip, "reason": reason}]


@pytest.mark.parametrize("filename", ["code_final.xlsx", "CAS(ME)^2code_final(Updated).xlsx", "CAS(ME)2 codes.xlsx"])
def test_renamed_casme_sq_file_is_found_by_content(tmp_path: Path, filename: str) -> None:
    ds = make_casme_sq(tmp_path, filename=filename)
    make_samm(tmp_path / "other")  # a SAMM sheet under the same root: seen, does not match
    result = read_dataset("casme_sq", ds.root)
    assert [s.clip_id for s in result.samples] == ["s15_disgust1_2", "s16_anger1_1", "s16_happy1_3"]
    assert result.samples[0].source == f"{filename}:row 2"


# ---------------------------------------------------------------------------------------------
# CAS(ME)^3 Part A
# ---------------------------------------------------------------------------------------------


def test_casme3_reads_several_mes_per_video(tmp_path: Path) -> None:
    ds = make_casme3(tmp_path)
    result = read_dataset("casme3", ds.root)
    src = "annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx:row {}"
    assert [_fields(s) for s in result.samples] == [
        ("casme3", "spNO.1", "spNO.1_a_123", 123, 125, 128, "happy", "L12", 30.0, src.format(2)),
        ("casme3", "spNO.1", "spNO.1_a_140", 140, 141, 144, "others", "4", 30.0, src.format(3)),  # "Others"
        ("casme3", "spNO.2", "spNO.2_c_0", 0, 1, 2, "surprise", "1+2", 30.0, src.format(4)),  # letter "C"
    ]
    assert _names(result.samples[0]) == [f"{n}.jpg" for n in range(123, 129)]
    assert _names(result.samples[1]) == [f"{n}.jpg" for n in range(140, 145)]
    assert _names(result.samples[2]) == ["0.jpg", "1.jpg", "2.jpg"]
    assert Path(result.samples[2].frames[0]).parent == tmp_path / "data" / "part_A" / "spNO.2" / "c" / "color"


def test_casme3_subject_folder_case_differs(tmp_path: Path) -> None:
    rows = [{"subject": "spNO.3", "filename": "d", "onset": 7, "apex": 8, "offset": 9, "emotion": "sad"}]
    ds = make_casme3(tmp_path, rows=rows, folder_case={"spNO.3": "spNo.3"})
    (sample,) = read_dataset("casme3", ds.root).samples
    assert sample.subject == "spNO.3"  # as the label file writes it
    assert Path(sample.frames[0]).parent == tmp_path / "data" / "part_A" / "spNo.3" / "d" / "color"


def test_casme3_release_sheet_names_all_four_bad_clips_in_one_pass(tmp_path: Path) -> None:
    """CAS(ME)^3 Part A (issue #15): text-typed frame numbers; one run names every bad row by clip."""
    ds = make_casme3_release(tmp_path)
    name = "annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    with pytest.raises(BadRowsError) as err:
        read_dataset("casme3", ds.root)
    assert str(err.value) == (f"{name}: 4 bad rows: row 6 (spNO.3_a_20), row 7 (spNO.3_b_50), row 8 (spNO.4_d_60), "
                              "row 9 (spNO.4_e_70); fix them or run with --skip-bad to skip them (recorded in the "
                              "cache index)")
    expected = [
        {"source": f"{name}:row 6", "clip_id": "spNO.3_a_20", "reason": "offset 15 before onset 20"},
        {"source": f"{name}:row 7", "clip_id": "spNO.3_b_50", "reason": "offset is 0 (missing)"},
        {"source": f"{name}:row 8", "clip_id": "spNO.4_d_60", "reason": "offset is 0 (missing)"},
        {"source": f"{name}:row 9", "clip_id": "spNO.4_e_70",
         "reason": "missing frames on disk in spNO.4/e/color: 72-73 (2 of 70..73)"},
    ]
    assert err.value.rows == expected and [r["clip_id"] for r in expected] == CASME3_BAD_CLIPS
    result = read_dataset("casme3", ds.root, skip_bad=True)
    assert result.skipped == expected
    assert [(s.clip_id, s.onset, s.apex, s.offset, s.emotion) for s in result.samples] == [
        ("spNO.1_a_10", 10, 12, 14, "happy"), ("spNO.1_a_30", 30, 31, 33, "others"),
        ("spNO.2_b_5", 5, 6, 8, "disgust"), ("spNO.2_c_40", 40, None, 42, "fear"),
        ("spNO.5_a_3", 3, None, 4, "surprise")]
    assert result.repaired == [{"source": f"{name}:row 5", "clip_id": "spNO.2_c_40", "field": "apex", "original": 38,
                                "value": None, "reason": "apex 38 before onset 40: apex set to unknown"}]


def test_casme3_subjects_split_over_several_folders(tmp_path: Path) -> None:
    rows = [{"subject": "spNO.1", "filename": "a", "onset": 1, "apex": 1, "offset": 2, "emotion": "happy"}]
    ds = make_casme3(tmp_path, rows=rows + [{"subject": "spNO.9", "filename": "k", "onset": 3, "apex": 3,
                                              "offset": 3, "emotion": "fear", "frames": []}])
    write_frames(tmp_path / "data" / "part_A_2" / "spNO.9" / "k" / "color", [3], "{n}.jpg")
    samples = read_dataset("casme3", ds.root).samples
    assert [Path(s.frames[0]).parts[-5] for s in samples] == ["part_A", "part_A_2"]


# ---------------------------------------------------------------------------------------------
# Dataset-level errors: one line naming what was looked for
# ---------------------------------------------------------------------------------------------


def test_unknown_dataset_name() -> None:
    with pytest.raises(DataError, match=r"^unknown dataset .casme4.; known: casme2, samm, casme_sq, casme3, smic, smic_vis, smic_nir, mmew, fourd$"):
        read_dataset("casme4", "/nowhere")


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: SAMM dataset root not found \(not a folder\)$"):
        read_dataset("samm", tmp_path / "nope")


# SMIC's readers fall back to the cropped release (no annotation table): tests/test_readers_more.py
@pytest.mark.parametrize("name", [n for n in SIGNATURES if not n.startswith("smic")])
def test_missing_annotation_lists_the_tables_seen(tmp_path: Path, name: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "list.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError) as err:
        read_dataset(name, tmp_path)
    sig = SIGNATURES[name]
    message = str(err.value)
    assert message.startswith(f"{tmp_path}: no ") and "\n" not in message
    assert f"looked for a table with {sig.describe()} (usually {' or '.join(sig.hints)})" in message
    assert "tables seen: sub/list.csv (" in message and message.endswith("name the file with --annotations FILE")


def test_each_dataset_matches_only_its_own_signature(tmp_path: Path) -> None:
    makers = {"casme2": make_casme2, "samm": make_samm, "casme_sq": make_casme_sq, "casme3": make_casme3}
    for name, maker in makers.items():
        maker(tmp_path / name)
    from fdp.data.readers import _Mismatch, open_table, table_files

    for name, sig in SIGNATURES.items():
        matching = []
        for other in makers:
            (path,) = table_files(tmp_path / other)
            try:
                sig.check(open_table(path))
                matching.append(other)
            except _Mismatch:
                pass
        assert matching == ([name] if name in makers else []), name  # later readers match none of these


@pytest.mark.parametrize(
    ("maker", "name", "folder", "looked_for"),
    [
        (make_casme2, "casme2", "CASME2_RAW_selected", "CASME2_RAW_selected/ or Cropped/"),
        (make_samm, "samm", "SAMM", "SAMM/"),
        (make_casme_sq, "casme_sq", "rawpic", "rawpic/"),
        (make_casme3, "casme3", "data", "holding spNO.<k>/ folders"),
    ],
)
def test_missing_frame_folder(tmp_path: Path, maker, name: str, folder: str, looked_for: str) -> None:
    maker(tmp_path)
    (tmp_path / folder).rename(tmp_path / "elsewhere.zip.d")
    if name != "casme3":  # CAS(ME)^3 bases have no fixed name: hide the subject folders instead
        message = f"frame folder {looked_for} found (searched 4 folder levels deep)"
        with pytest.raises(DataError, match=re.escape(message)):
            read_dataset(name, tmp_path)
    else:
        for sub in (tmp_path / "elsewhere.zip.d" / "part_A").iterdir():
            sub.rename(sub.with_name("x" + sub.name))
        with pytest.raises(DataError, match=re.escape(f"frame folder {looked_for} found")):
            read_dataset(name, tmp_path)


def test_annotation_that_is_not_a_workbook(tmp_path: Path) -> None:
    (tmp_path / "CASME2-coding-20190701.xlsx").write_text("not a zip")
    with pytest.raises(DataError, match=r"tables seen: CASME2-coding-20190701\.xlsx \(cannot open as a \.xlsx table "
                                        r"\(BadZipFile: "):
        read_dataset("casme2", tmp_path)
    with pytest.raises(DataError,
                       match=r"^CASME2-coding-20190701\.xlsx: not a CASME II annotation file .*: cannot open"):
        read_dataset("casme2", tmp_path, annotations=tmp_path / "CASME2-coding-20190701.xlsx")


def test_registry_and_frame_rates() -> None:
    assert list(READERS) == ["casme2", "samm", "casme_sq", "casme3", "smic", "smic_vis", "smic_nir", "mmew", "fourd"]
    assert FPS == {"casme2": 200.0, "samm": 200.0, "casme_sq": 30.0, "casme3": 30.0, "smic": 100.0, "smic_vis": 25.0,
                   "smic_nir": 25.0, "mmew": 90.0, "fourd": 60.0}
