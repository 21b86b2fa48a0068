"""Dataset readers (SPEC §4.1): every field of every format's quirks, bad rows, missing files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import openpyxl
import pytest
from fixtures_data import make_casme2, make_casme3, make_casme_sq, make_samm, write_frames

from fdp.data.readers import EMOTIONS, FPS, READERS, ReadResult, read_dataset
from fdp.data.samples import DataError, Sample


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


def test_casme2_newest_coding_file_wins_and_lock_files_are_ignored(tmp_path: Path) -> None:
    make_casme2(tmp_path, version="2014", rows=[{"subject": 1, "filename": "EP01", "onset": 1, "apex": 1,
                                                 "offset": 1, "emotion": "fear"}])
    make_casme2(tmp_path, version="2019")  # writes CASME2-coding-20190701.xlsx beside it
    (tmp_path / "~$CASME2-coding-20990101.xlsx").write_bytes(b"lock")
    samples = read_dataset("casme2", str(tmp_path)).samples
    assert {s.source.split(":")[0] for s in samples} == {"CASME2-coding-20190701.xlsx"}
    assert len(samples) == 3


def test_annotation_is_found_two_levels_deep_but_not_three(tmp_path: Path) -> None:
    ds = make_casme2(tmp_path / "a" / "b")
    samples = read_dataset("casme2", tmp_path).samples
    assert samples[0].source == "a/b/CASME2-coding-20190701.xlsx:row 2"
    assert Path(samples[0].frames[0]).parent == ds.root / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    make_casme2(tmp_path / "deep" / "x" / "y" / "z")  # three levels below root "deep"
    with pytest.raises(DataError, match=r"no CASME II annotation file CASME2-coding-\*\.xlsx found"):
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


# Bad rows (SPEC §4.1, last bullet): each case is one extra CASME II row and its one-line reason.
GOOD = {"subject": "03", "filename": "EP01_01", "onset": 9, "apex": 10, "offset": 12, "aus": "4", "emotion": "disgust"}
BAD_ROWS = [
    ({"onset": "abc"}, "non-numeric OnsetFrame 'abc'"),
    ({"onset": None}, "missing OnsetFrame"),
    ({"onset": 9.5}, "non-integer OnsetFrame 9.5"),
    ({"offset": "", "frames": []}, "missing OffsetFrame"),
    ({"onset": 12, "offset": 9, "apex": "/", "frames": []}, "offset 9 before onset 12"),
    ({"apex": 30}, "apex 30 after offset 12"),
    ({"apex": 3}, "apex 3 before onset 9"),
    ({"frames": [9, 10, 12]}, "missing frames on disk in CASME2_RAW_selected/sub03/EP01_01: 11 (1 of 9..12)"),
    ({"frames": [9, 12]}, "missing frames on disk in CASME2_RAW_selected/sub03/EP01_01: 10-11 (2 of 9..12)"),
    ({"frames": []}, "frame folder CASME2_RAW_selected/sub03/EP01_01 not found on disk"),
    ({"emotion": "joy"}, "unknown emotion 'joy' (known: " + ", ".join(EMOTIONS["casme2"]) + ")"),
    ({"emotion": None}, "missing emotion"),
    ({"subject": "x1"}, "bad Subject 'x1'"),
    ({"filename": None}, "missing Filename"),
    ({"subject": 1, "filename": "EP02_01f", "frames": []}, "duplicate clip 'sub01_EP02_01f' (first at row 2)"),
]


def _with_bad_row(tmp_path: Path, change: dict) -> tuple:
    rows = [
        {"subject": "01", "filename": "EP02_01f", "onset": 8, "apex": 9, "offset": 11, "emotion": "happiness"},
        {**GOOD, **change},
        {"subject": 2, "filename": "EP13_02", "onset": 1, "apex": 2, "offset": 3, "emotion": "surprise"},
    ]
    return make_casme2(tmp_path, rows=rows), rows


@pytest.mark.parametrize(("change", "reason"), BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_bad_row_stops_with_file_row_and_reason(tmp_path: Path, change: dict, reason: str) -> None:
    ds, _ = _with_bad_row(tmp_path, change)
    with pytest.raises(DataError) as err:
        read_dataset("casme2", ds.root)
    assert str(err.value) == f"CASME2-coding-20190701.xlsx:row 3: {reason}"
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("change", "reason"), BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_bad_row_is_recorded_when_skipping(tmp_path: Path, change: dict, reason: str) -> None:
    ds, _ = _with_bad_row(tmp_path, change)
    result = read_dataset("casme2", ds.root, skip_bad=True)
    assert result.skipped == [{"source": "CASME2-coding-20190701.xlsx:row 3", "reason": reason}]
    assert [s.source for s in result.samples] == [ds.source(0), ds.source(2)]


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


SAMM_KNOWN_BAD = [  # SPEC §4.1: 028_4_1 apex after offset, 032_3_1 apex before onset
    {"subject": 6, "filename": "006_1_2", "onset": 10, "apex": 11, "offset": 12, "emotion": "Contempt"},
    {"subject": 28, "filename": "028_4_1", "onset": 100, "apex": 140, "offset": 120, "emotion": "Anger"},
    {"subject": 32, "filename": "032_3_1", "onset": 50, "apex": 40, "offset": 60, "emotion": "Surprise"},
    {"subject": 33, "filename": "033_1_1", "onset": 5, "apex": 6, "offset": 7, "emotion": "Fear"},
]


def test_samm_known_bad_rows(tmp_path: Path) -> None:
    ds = make_samm(tmp_path, rows=SAMM_KNOWN_BAD)
    with pytest.raises(DataError, match=r"^SAMM_Micro_FACS_Codes_v2\.xlsx:row 16: apex 140 after offset 120$"):
        read_dataset("samm", ds.root)
    result = read_dataset("samm", ds.root, skip_bad=True)
    assert result.skipped == [
        {"source": "SAMM_Micro_FACS_Codes_v2.xlsx:row 16", "reason": "apex 140 after offset 120"},
        {"source": "SAMM_Micro_FACS_Codes_v2.xlsx:row 17", "reason": "apex 40 before onset 50"},
    ]
    assert [(s.clip_id, s.emotion) for s in result.samples] == [("006_1_2", "contempt"), ("033_1_1", "fear")]


def test_samm_without_micro_only_sheet(tmp_path: Path) -> None:
    ds = make_samm(tmp_path)
    wb = openpyxl.load_workbook(ds.annotation)
    wb["MICRO_ONLY"].title = "ALL"
    wb.save(ds.annotation)
    message = "SAMM_Micro_FACS_Codes_v2.xlsx: no sheet 'MICRO_ONLY' (sheets: README, ALL)"
    with pytest.raises(DataError, match="^" + re.escape(message) + "$"):
        read_dataset("samm", ds.root)


def test_samm_header_missing_a_column(tmp_path: Path) -> None:
    ds = make_samm(tmp_path, notes_rows=2)
    wb = openpyxl.load_workbook(ds.annotation)
    wb["MICRO_ONLY"].cell(row=3, column=10).value = "Emotion guess"
    wb.save(ds.annotation)
    with pytest.raises(DataError, match=r"xlsx:row 3: header has no column 'Estimated Emotion'"):
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
    assert result.repaired == [{"source": src.format(3), "reason": "offset 0 (missing): apex 24 used as offset"}]
    assert result.skipped == []
    assert _names(result.samples[0]) == ["img9.jpg", "img10.jpg", "img11.jpg", "img12.jpg"]
    assert Path(result.samples[0].frames[0]).parent == tmp_path / "rawpic" / "s15" / "15_0101disgustingteeth"
    assert Path(result.samples[1].frames[0]).parent == tmp_path / "rawpic" / "s16" / "16_0401girlcrashing"
    assert Path(result.samples[2].frames[0]).parent == tmp_path / "rawpic" / "s16" / "16_0502cup"


CASME_SQ_BAD = [
    ({"offset": 0, "apex": 0}, "offset and apex are 0 (missing)"),
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
    with pytest.raises(DataError, match="^" + re.escape(f"CAS(ME)^2code_final.xlsx:row 2: {reason}") + "$"):
        read_dataset("casme_sq", ds.root)
    result = read_dataset("casme_sq", ds.root, skip_bad=True)
    assert [s.clip_id for s in result.samples] == ["s16_happy2_1"] and result.repaired == []
    assert result.skipped == [{"source": "CAS(ME)^2code_final.xlsx:row 2", "reason": reason}]


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


def test_casme3_known_bad_rows(tmp_path: Path) -> None:
    rows = [
        {"subject": "spNO.1", "filename": "a", "onset": 10, "apex": 12, "offset": 0, "emotion": "fear", "frames": []},
        {"subject": "spNO.1", "filename": "a", "onset": 20, "apex": 18, "offset": 25, "emotion": "anger"},
        {"subject": "spNO.1", "filename": "b", "onset": 1, "apex": 2, "offset": 3, "emotion": "disgust"},
    ]
    ds = make_casme3(tmp_path, rows=rows)
    with pytest.raises(DataError, match=re.escape("v2.xlsx:row 2: offset is 0 (missing)") + "$"):
        read_dataset("casme3", ds.root)
    result = read_dataset("casme3", ds.root, skip_bad=True)
    name = "annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    assert result.skipped == [
        {"source": f"{name}:row 2", "reason": "offset is 0 (missing)"},
        {"source": f"{name}:row 3", "reason": "apex 18 before onset 20"},
    ]
    assert [s.clip_id for s in result.samples] == ["spNO.1_b_1"]


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
    with pytest.raises(DataError, match=r"^unknown dataset 'casme4'; known: casme2, samm, casme_sq, casme3$"):
        read_dataset("casme4", "/nowhere")


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: SAMM dataset root not found \(not a folder\)$"):
        read_dataset("samm", tmp_path / "nope")


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("casme2", "CASME2-coding-*.xlsx"),
        ("samm", "SAMM_Micro_FACS_Codes*.xlsx"),
        ("casme_sq", "CAS(ME)^2code_final*.xlsx or CAS(ME)2code_final*.xlsx"),
        ("casme3", "cas(me)3_part_A_ME_label*.xlsx"),
    ],
)
def test_missing_annotation_names_the_pattern(tmp_path: Path, name: str, pattern: str) -> None:
    with pytest.raises(DataError) as err:
        read_dataset(name, tmp_path)
    assert str(err.value).endswith(f"annotation file {pattern} found (searched 2 folder levels deep)")
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


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
    with pytest.raises(DataError, match=r"^CASME2-coding-20190701\.xlsx: cannot open as an \.xlsx workbook"):
        read_dataset("casme2", tmp_path)


def test_registry_and_frame_rates() -> None:
    assert list(READERS) == ["casme2", "samm", "casme_sq", "casme3"]
    assert FPS == {"casme2": 200.0, "samm": 200.0, "casme_sq": 30.0, "casme3": 30.0}
