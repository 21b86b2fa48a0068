"""SAMM (SPEC §4.1): sheet `MICRO_ONLY`, the header row found by its first cell "Subject" below a
block of notes (row 14 in v2); emotions capitalised. Frames in
`SAMM/<subject>/<Filename>/<subject>_<frame:05d>.jpg`. Subject "006" (three digits); the Filename
(006_1_2) starts with the subject and is the clip id.
"""

from __future__ import annotations

import re

from fdp.data.readers.cells import padded_subject, rel, subject_or_raw
from fdp.data.readers.core import Clip, Dataset, Row, UsualTableReader, frame_bases
from fdp.data.readers.tables import Signature

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset Frame", "Onset"),
    "apex": ("Apex Frame", "Apex"),
    "offset": ("Offset Frame", "Offset"),
    "aus": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
}


class Samm(UsualTableReader):
    def setup(self) -> None:
        self.base = frame_bases(self.root, ["SAMM"], r"\d+", self.dataset.title, "SAMM/")[0]

    def clip_id(self, row: Row) -> str:
        return row.text("filename") or f"{subject_or_raw(row['subject'], 3)}_?"

    def subject(self, row: Row) -> str:
        return padded_subject(row["subject"], 3)

    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        parts = [clip.subject, clip.folder]
        return self.disk.select(self.disk.path(self.base, parts), rel(self.base.joinpath(*parts), self.root),
                                rf"{re.escape(clip.subject)}_(\d+)\.jpg", clip.onset, clip.offset)


SAMM = Dataset(
    name="samm", fps=200.0,
    emotions=("anger", "contempt", "disgust", "fear", "happiness", "other", "sadness", "surprise"),
    table=Signature("SAMM", ("SAMM_Micro_FACS_Codes*.xlsx", "SAMM_*Micro_FACS_Codes*.xlsx"), "MICRO_ONLY", COLUMNS,
                    subject=r"\d+"),
    reader=Samm,
)
