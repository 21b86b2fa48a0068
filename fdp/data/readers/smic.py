"""SMIC (HS / VIS / NIR; not in the paper): three datasets of one reader. The extended release
(SMIC-E: an annotation sheet with absolute frame numbers) is read when its workbook is under the
root or named; else the cropped release, where the class is the folder and a clip spans all its
frames. No apex is annotated in either.

Ids: the disk writes `s1` and `s3_ne_03` (also under a folder `s03`), the MEGC2019 list `s01` and
`s01_ne_01`; both are read as `s01` / `s03_ne_03`, so the composite join needs no special case.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fdp.data.readers.cells import _BadRow, cell_text, guess, rel, s_subject
from fdp.data.readers.core import Clip, Dataset, Reader, ReadResult, Row, TableReader, frame_bases
from fdp.data.readers.tables import Signature, table_files
from fdp.data.samples import DataError

MODALITY = {"smic": "HS", "smic_vis": "VIS", "smic_nir": "NIR"}
# cropped release: reg_image000001.bmp (HS), reg_00001.bmp (VIS/NIR); SMIC-E: image17581039.jpg
FRAMES = r"(?:reg_image|reg_|image)(\d+)\.(?:bmp|jpg|png)"
WORDS = {"negative": "negative", "ne": "negative", "positive": "positive", "po": "positive",
         "surprise": "surprise", "sur": "surprise", "su": "surprise"}
E_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetF", "Onset"),
    "offset": ("OffsetF", "Offset"),
    "emotion": ("Emotion",),
}


def smic_clip(name: str, subject: str) -> str:
    """`s3_ne_03` -> `s03_ne_03`; a clip named after another subject is a bad row."""
    m = re.fullmatch(r"s0*(\d+)(_.+)", name.strip(), re.IGNORECASE)
    if m is None:
        raise _BadRow(f"clip name {name!r} is not <subject>_<class>_<n>")
    if f"s{int(m.group(1)):02d}" != subject:
        raise _BadRow(f"clip {name!r} lies under subject {subject}")
    return f"{subject}{m.group(2).lower()}"


def smic_emotion(value: Any) -> str:
    word = cell_text(value).lower()
    if word not in WORDS:
        raise _BadRow(f"unknown emotion {cell_text(value)!r} (known: negative, positive, surprise)" if word
                      else "missing emotion")
    return WORDS[word]


class SmicE(TableReader):
    """SMIC-E: sheet HS or VIS; columns Subject, Filename, OnsetF, OffsetF, (Onset2F, Offset2F,
    FirstF, LastF, TotalMF1, TotalMF2, TotalVL,) Emotion; frames
    `SMIC_<HS|VIS>_E/<sN>/<clip>/image<frame>.jpg` with absolute numbers. The clip is
    OnsetF..OffsetF; a second onset/offset pair (a second ME of the same video) is not read."""

    def setup(self) -> None:
        modality = MODALITY[self.dataset.name]
        self.bases = frame_bases(self.root, [f"SMIC_{modality}_E", modality], r"s\d+", self.dataset.title,
                                 f"SMIC_{modality}_E/ holding s<N>/ folders")

    def clip_id(self, row: Row) -> str:
        return row.text("filename") or guess(row["subject"], "?")

    def parse(self, row: Row) -> Clip:
        subject = s_subject(row["subject"])
        filename = row.text("filename")
        if not filename:
            raise _BadRow("missing Filename")
        row.clip_id = smic_clip(filename, subject)
        onset, _, offset, _ = self.span(row)
        return Clip(subject, onset, None, offset, smic_emotion(row["emotion"]), "", filename)

    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        folder = self.disk.first(self.bases, [clip.subject, clip.folder], [f"s{int(clip.subject[1:])}", clip.folder])
        return self.disk.select(folder, f"{clip.subject}/{clip.folder}", FRAMES, clip.onset, clip.offset)


class SmicCropped(Reader):
    """`.../<HS|VIS|NIR>/<sN>/micro/<negative|positive|surprise>/<clip>/reg_image%06d.bmp`: each clip
    folder is a row; `non_micro/` folders beside `micro/` are not micro-expressions and are passed over."""

    def __init__(self, dataset: Dataset, root: Path) -> None:
        super().__init__(dataset, root)
        self.modality = MODALITY[dataset.name]
        self.bases = frame_bases(root, [self.modality], r"s\d+", dataset.title,
                                 f"{self.modality}/ holding s<N>/ folders")
        self.annotation = self.bases[0]

    def rows(self) -> Iterator[Row]:
        """(subject folder, class folder, clip folder, its path) of every clip folder."""
        for base in self.bases:
            for subject_dir, subject_path in (self.disk.subfolders(base) or {}).items():
                if not re.fullmatch(r"s\d+", subject_dir, re.IGNORECASE):
                    continue
                micro = self.disk.child(subject_path, "micro")
                for cls_dir, cls_path in (self.disk.subfolders(micro) or {}).items() if micro else []:
                    for clip_dir, clip_path in (self.disk.subfolders(cls_path) or {}).items():
                        yield Row(f"{rel(clip_path, self.root)}/", (subject_dir, cls_dir, clip_dir, clip_path),
                                  {"subject": 0, "class": 1, "clip": 2, "path": 3})

    def clip_id(self, row: Row) -> str:
        return row["clip"]

    def parse(self, row: Row) -> Clip:
        subject = s_subject(row["subject"])
        emotion = smic_emotion(row["class"])
        row.clip_id = smic_clip(row["clip"], subject)
        return Clip(subject, 0, None, 0, emotion)  # the span is the clip's frames (`frames`)

    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        shown = rel(row["path"], self.root)
        found = self.disk.frames(row["path"], FRAMES) or {}
        if not found:
            raise _BadRow(f"no frame files in {shown}")
        clip.onset, clip.offset = min(found), max(found)
        return self.disk.select(row["path"], shown, FRAMES, clip.onset, clip.offset)

    def read(self, skip_bad: bool) -> ReadResult:
        result = super().read(skip_bad)
        if not result.samples and not result.skipped:
            raise DataError(f"{self.root}: no {self.dataset.title} clips under "
                            f"{self.modality}/<subject>/micro/<class>/<clip>/")
        return result


def smic_reader(dataset: Dataset, root: Path, annotations: Path | None) -> Reader:
    """SMIC-E when its workbook is named, or (HS, VIS) found under `root`, else the cropped release."""
    if annotations is not None:
        return SmicE(dataset, root, annotations)
    if dataset.name != "smic_nir" and any(dataset.table.matches(p) for p in table_files(root)):
        return SmicE(dataset, root, None)  # find_annotation settles several matches
    return SmicCropped(dataset, root)


def _smic(name: str, title: str, fps: float, hints: tuple[str, ...]) -> Dataset:
    return Dataset(name=name, fps=fps, emotions=("negative", "positive", "surprise"),
                   table=Signature(title, hints, MODALITY[name], E_COLUMNS, subject=r"s?\d+"), reader=smic_reader)


# SMIC-E only: the cropped release has no annotation table (the reader falls back to its folders)
SMIC = _smic("smic", "SMIC-HS", 100.0, ("SMIC-HS-E_annotation*.xlsx", "SMIC-E_annotation*.xlsx"))
SMIC_VIS = _smic("smic_vis", "SMIC-VIS", 25.0, ("SMIC-HS-E_annotation*.xlsx", "SMIC-E_annotation*.xlsx"))
SMIC_NIR = _smic("smic_nir", "SMIC-NIR", 25.0, ("SMIC-NIR-E_annotation*.xlsx",))
