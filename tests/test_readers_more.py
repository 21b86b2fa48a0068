"""Readers of SMIC (HS/VIS/NIR, cropped and SMIC-E), MMEW and 4DME (issue #16): the layouts and id
quirks researchers meet, bad rows naming the clip, and each synthetic layout read back."""

from __future__ import annotations

import os
from pathlib import Path

import openpyxl
import pytest
from fixtures_data import write_frames

from fdp.data.readers import read_dataset
from fdp.data.samples import DataError
from fdp.data.settings import SETTINGS, count_by_class
from fdp.data.synth import LAYOUTS, write_synthetic


def _book(path: Path, header: list, rows: list[list], sheet: str = "Sheet1") -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(header)
    for r in rows:
        ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


# ---------------------------------------------------------------------------------------------
# SMIC reader: the cropped release and SMIC-E, with their id quirks


def test_smic_cropped_layout(tmp_path: Path) -> None:
    root = tmp_path / "SMIC"
    hs = root / "SMIC_all_cropped" / "HS"
    write_frames(hs / "s1" / "micro" / "negative" / "s1_ne_01", range(1, 6), "reg_image{n:06d}.bmp")
    write_frames(hs / "s1" / "micro" / "positive" / "s1_po_02", range(3, 7), "reg_image{n:06d}.bmp")
    write_frames(hs / "s12" / "micro" / "surprise" / "s12_sur_01", range(1, 4), "reg_image{n:06d}.bmp")
    write_frames(hs / "s1" / "non_micro" / "negative" / "s1_ne_09", range(1, 4), "reg_image{n:06d}.bmp")
    write_frames(root / "SMIC_all_cropped" / "VIS" / "s2" / "micro" / "positive" / "s2_po_01", range(1, 4),
                 "reg_{n:05d}.bmp")
    r = read_dataset("smic", root)
    got = [(s.subject, s.clip_id, s.emotion, s.onset, s.offset, s.apex, len(s.frames)) for s in r.samples]
    assert got == [("s01", "s01_ne_01", "negative", 1, 5, None, 5), ("s01", "s01_po_02", "positive", 3, 6, None, 4),
                   ("s12", "s12_sur_01", "surprise", 1, 3, None, 3)]
    assert r.skipped == [] and all(s.fps == 100.0 for s in r.samples)
    vis = read_dataset("smic_vis", root)
    assert [(s.clip_id, s.fps) for s in vis.samples] == [("s02_po_01", 25.0)]
    # a gap in the frames: the clip is named, one line
    os.remove(hs / "s1" / "micro" / "positive" / "s1_po_02" / "reg_image000004.bmp")
    with pytest.raises(DataError) as e:
        read_dataset("smic", root)
    # named by its clip id (normalised) and the folder as on disk
    assert "s1/micro/positive/s1_po_02/: clip s01_po_02: missing frames on disk" in str(e.value)
    assert "\n" not in str(e.value)
    r = read_dataset("smic", root, skip_bad=True)
    assert [s.clip_id for s in r.samples] == ["s01_ne_01", "s12_sur_01"]
    assert [x["clip_id"] for x in r.skipped] == ["s01_po_02"]


def test_smic_without_either_layout_says_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "list.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"no SMIC-HS frame folder HS/ holding s<N>/ folders found"):
        read_dataset("smic", tmp_path)


def test_smic_e_layout(tmp_path: Path) -> None:
    root = tmp_path / "SMIC-E"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "HS"
    ws.append(["Subject", "Filename", "OnsetF", "OffsetF", "Onset2F", "Offset2F", "FirstF", "LastF", "TotalMF1",
               "TotalMF2", "TotalVL", "Emotion"])
    ws.append([20, "s20_ne_01", 17581039, 17581042, None, None, 17581000, 17581100, 4, None, 100, "negative"])
    ws.append(["s3", "s3_po_03", "1200", "1203", 1300, 1305, 1100, 1400, 4, 6, 300, "positive"])
    ws.append(["s3", "s3_sur_01", 50, 40, None, None, 1, 100, 0, None, 100, "surprise"])  # offset before onset
    wb.create_sheet("VIS")
    root.mkdir(parents=True)
    wb.save(root / "SMIC-HS-E_annotation.xlsx")
    base = root / "SMIC_HS_E"
    write_frames(base / "s20" / "s20_ne_01", range(17581039, 17581043), "image{n}.jpg")
    write_frames(base / "s03" / "s3_po_03", range(1200, 1204), "image{n:06d}.jpg")
    with pytest.raises(DataError, match=r"SMIC-HS-E_annotation.xlsx:row 4: clip s03_sur_01: offset 40 before onset 50"):
        read_dataset("smic", root)
    r = read_dataset("smic", root, skip_bad=True)
    assert [(s.subject, s.clip_id, s.onset, s.offset, len(s.frames)) for s in r.samples] == [
        ("s20", "s20_ne_01", 17581039, 17581042, 4), ("s03", "s03_po_03", 1200, 1203, 4)]
    assert [s["source"] for s in r.skipped] == ["SMIC-HS-E_annotation.xlsx:row 4"]



# ---------------------------------------------------------------------------------------------
# MMEW


_MMEW_HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion", "Action Units",
                "remarks"]


def test_mmew_layouts_and_quirks(tmp_path: Path) -> None:
    root = tmp_path / "MMEW"
    _book(root / "MMEW_Micro_Exp.xlsx", _MMEW_HEADER, [
        ["S01", "S01-01-001", 2, 3, 5, "happiness", "12", ""],
        [None, "S03-02-004", "1", "/", "4", "repression", "4", "subject from the clip name"],
        ["S02", "S02-01-001", 1, 9, 4, "surprise", "1+2", "apex after offset: repaired"],
        ["S02", "S02-01-002", 5, 6, 3, "disgust", "9", "offset before onset: bad"],
    ])
    me = root / "Micro_Expression"
    write_frames(me / "happiness" / "S01-01-001", range(1, 7), "{n}.jpg")
    write_frames(me / "repression" / "S03-02-004", range(1, 5), "{n}.jpg")  # this release names the folder so
    write_frames(me / "surprise" / "S02-01-001", range(1, 5), "{n}.jpg")
    with pytest.raises(DataError) as e:
        read_dataset("mmew", root)
    assert "S02-01-002" in str(e.value) and "offset 3 before onset 5" in str(e.value)
    r = read_dataset("mmew", root, skip_bad=True)
    got = [(s.subject, s.clip_id, s.emotion, s.onset, s.apex, s.offset, [Path(f).name for f in s.frames])
           for s in r.samples]
    assert got == [("S01", "S01-01-001", "happiness", 2, 3, 5, ["2.jpg", "3.jpg", "4.jpg", "5.jpg"]),
                   ("S03", "S03-02-004", "repression", 1, None, 4, ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]),
                   ("S02", "S02-01-001", "surprise", 1, None, 4, ["1.jpg", "2.jpg", "3.jpg", "4.jpg"])]
    assert [(x["clip_id"], x["original"]) for x in r.repaired] == [("S02-01-001", 9)]
    assert [x["clip_id"] for x in r.skipped] == ["S02-01-002"]
    # repression and others are one class in mmew/7; neither is in mmew/3
    counts, excluded = count_by_class(r.samples, SETTINGS["mmew/7"])
    assert counts["others"] == 1 and counts["happiness"] == 1 and not excluded
    counts, excluded = count_by_class(r.samples, SETTINGS["mmew/3"])
    assert counts == {"positive": 1, "negative": 0, "surprise": 1} and excluded == {"repression": 1}


# ---------------------------------------------------------------------------------------------
# 4DME


def test_fourd_combined_emotions_and_bad_rows(tmp_path: Path) -> None:
    root = tmp_path / "4DME"
    _book(root / "4DME_Labelling_Micro_release v1.xlsx", ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"], [
        ["S1", "S1_T1_01", "Surprise+Positive", 101, 102, 104, "1+2+12"],
        ["S1", "S1_T1_02", "Negative", 200, 201, 202, "4"],
        ["S2", "S2_T3_01", "Repression", 10, 11, 12, "14"],
        ["S2", "S2_T3_02", "Happy", 10, 11, 12, "12"],  # not a 4DME word
        ["S2", "S2_T3_03", "Others", 50, 51, 53, ""],     # frames missing on disk
    ])
    g = root / "gray_micro"
    write_frames(g / "S1" / "S1_T1_01", range(100, 106), "img{n}.jpg")
    write_frames(g / "S1" / "S1_T1_02", range(200, 203), "img{n}.jpg")
    write_frames(g / "S2" / "S2_T3_01", range(10, 13), "{n:05d}.jpg")
    write_frames(g / "S2" / "S2_T3_03", range(50, 52), "{n}.jpg")
    with pytest.raises(DataError) as e:
        read_dataset("fourd", root)
    msg = str(e.value)
    assert "S2_T3_02" in msg and "S2_T3_03" in msg  # every bad row in one pass, by clip
    r = read_dataset("fourd", root, skip_bad=True)
    assert [(s.clip_id, s.emotion, len(s.frames)) for s in r.samples] == [
        ("S1_T1_01", "positive+surprise", 4), ("S1_T1_02", "negative", 3), ("S2_T3_01", "repression", 3)]
    assert [x["clip_id"] for x in r.skipped] == ["S2_T3_02", "S2_T3_03"]
    assert "unknown emotion 'Happy'" in r.skipped[0]["reason"]
    assert "missing frames on disk" in r.skipped[1]["reason"]
    # a combined label belongs to no single class: excluded from both settings, and counted as such
    for name in ("fourd/3", "fourd/5"):
        counts, excluded = count_by_class(r.samples, SETTINGS[name])
        assert excluded.get("positive+surprise") == 1 and sum(counts.values()) == (1 if name == "fourd/3" else 2)


# ---------------------------------------------------------------------------------------------
# every synthetic layout goes through its reader


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_synthetic_layouts_read_back(tmp_path: Path, layout: str) -> None:
    root = write_synthetic(tmp_path / layout, subjects=2, clips_per_subject=5, seed=3, size=64, frames_per_clip=10,
                           layout=layout)
    r = read_dataset(layout, root)
    assert len(r.samples) == 10 and r.skipped == [] and r.repaired == []
    assert len({s.subject for s in r.samples}) == 2
    assert all(len(s.frames) == s.offset - s.onset + 1 >= 5 for s in r.samples)
