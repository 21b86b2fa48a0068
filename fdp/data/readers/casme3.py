"""CAS(ME)^3 Part A (SPEC §4.1): sheet `label`, header `Subject | Filename | Onset | Apex | Offset |
AU | Objective class | emotion`; subjects as written (`spNO.1`), Filename a task letter (one row
writes a capital), frame numbers often stored as text. One subject/letter video holds several MEs,
so the clip id carries the onset (`spNO.1_a_123`). Frames in `<subject>/<letter>/color/<frame>.jpg`
below any folder: copies split over several archive folders are read together. An offset of 0 is a
bad row, as SPEC lists it among the file's known errors.
"""

from __future__ import annotations

from fdp.data.readers.cells import _BadRow, apex_index, check_span, frame_index, guess, lenient_number
from fdp.data.readers.core import Clip, Dataset, Row, TableReader, frame_bases
from fdp.data.readers.tables import Signature

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset", "OnsetFrame"),
    "apex": ("Apex", "ApexFrame"),
    "offset": ("Offset", "OffsetFrame"),
    "aus": ("AU", "AUs", "Action Units"),
    "emotion": ("emotion", "Estimated Emotion"),
}
SUBJECT = r"spno\.\d+"  # spNO.<k>; some copies' folders write spNo.<k>


class Casme3(TableReader):
    def setup(self) -> None:
        self.bases = frame_bases(self.root, None, SUBJECT, self.dataset.title, "holding spNO.<k>/ folders")

    def clip_id(self, row: Row) -> str:
        return guess(row["subject"], row.text("filename").lower(), lenient_number(row["onset"]))

    def parse(self, row: Row) -> Clip:
        subject = self.matching(row, "subject", SUBJECT)
        letter = row.text("filename").lower()  # one row writes a capital
        if not letter:
            raise _BadRow("missing Filename")
        onset = frame_index(row["onset"], "Onset")
        apex = apex_index(row["apex"], "Apex")
        offset = frame_index(row["offset"], "Offset")
        if offset == 0:
            raise _BadRow("offset is 0 (missing)")
        apex, repairs = check_span(onset, apex, offset)
        emotion = self.emotion(row["emotion"])
        row.clip_id = f"{subject}_{letter}_{onset}"
        return Clip(subject, onset, apex, offset, emotion, row.text("aus"), letter, repairs)

    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        parts = [clip.subject, clip.folder, "color"]
        return self.disk.select(self.disk.first(self.bases, parts), "/".join(parts), r"(\d+)\.jpg", clip.onset,
                                clip.offset)


CASME3 = Dataset(
    name="casme3", fps=30.0,
    emotions=("happy", "disgust", "surprise", "anger", "fear", "sad", "others"),
    table=Signature("CAS(ME)^3 Part A", ("cas(me)3_part_A_ME_label*.xlsx",), "label", COLUMNS, subject=SUBJECT),
    reader=Casme3,
)
