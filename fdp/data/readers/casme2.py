"""CASME II (SPEC §4.1): `CASME2-coding-*.xlsx`, first sheet (its name differs between the 2014 and
2019 files), header row `Subject | Filename | (blank) | OnsetFrame | ApexFrame | OffsetFrame |
(blank) | Action Units | Estimated Emotion`. Subject is "01"-style text, an int or "sub01"; ApexFrame
"/" means unknown. Frames in `CASME2_RAW_selected/subXX/<Filename>/img<N>.jpg` or
`Cropped/subXX/<Filename>/reg_img<N>.jpg`; when both exist the raw frames are read, since our
preprocessing aligns faces itself (SPEC §4.3). Clip id `sub01_EP02_01f`.
"""

from __future__ import annotations

from fdp.data.readers.cells import padded_subject, rel, subject_or_raw
from fdp.data.readers.core import Clip, Dataset, Row, UsualTableReader, frame_bases
from fdp.data.readers.tables import Signature

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetFrame", "Onset"),
    "apex": ("ApexFrame", "Apex"),
    "offset": ("OffsetFrame", "Offset"),
    "aus": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
}

# (frame folder name, frame file regex); raw first, see the module docstring.
FRAME_LAYOUTS = (("CASME2_RAW_selected", r"img(\d+)\.jpg"), ("Cropped", r"reg_img(\d+)\.jpg"))


class Casme2(UsualTableReader):
    def setup(self) -> None:
        names = [n for n, _ in FRAME_LAYOUTS]
        looked_for = " or ".join(f"{n}/" for n in names)
        self.base = frame_bases(self.root, names, r"sub\d+", self.dataset.title, looked_for)[0]
        self.pattern = dict(FRAME_LAYOUTS)[next(n for n in names if n.lower() == self.base.name.lower())]

    def clip_id(self, row: Row) -> str:
        return f"sub{subject_or_raw(row['subject'], 2, 'sub')}_{row.text('filename') or '?'}"

    def subject(self, row: Row) -> str:
        return padded_subject(row["subject"], 2, prefix="sub")

    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        parts = [f"sub{clip.subject}", clip.folder]
        return self.disk.select(self.disk.path(self.base, parts), rel(self.base.joinpath(*parts), self.root),
                                self.pattern, clip.onset, clip.offset)


CASME2 = Dataset(
    name="casme2", fps=200.0,
    emotions=("happiness", "disgust", "repression", "surprise", "sadness", "fear", "others"),
    table=Signature("CASME II", ("CASME2-coding-*.xlsx",), None, COLUMNS, subject=r"(sub)?\d+",
                    absent=("Inducement Code",)),
    reader=Casme2,
)
