"""MMEW, micro part (not in the paper): `MMEW_Micro_Exp.xlsx` (Subject, Filename, OnsetFrame,
ApexFrame, OffsetFrame, Estimated Emotion, Action Units, remarks) +
`Micro_Expression/<emotion>/<Filename>/<k>.jpg`, frames numbered from 1 within the clip's folder.
There is no subject folder: the subject is the Subject cell (or the first part of `Sxx-yy-zzz`).
The emotion folder names differ between releases (`others` in some, `repression` in others), so the
clip folder is looked up under every emotion folder, its own emotion's first.
"""

from __future__ import annotations

from fdp.data.readers.casme2 import COLUMNS as CASME2_COLUMNS
from fdp.data.readers.cells import _BadRow, guess, s_subject
from fdp.data.readers.core import Clip, Dataset, Row, UsualTableReader, frame_bases
from fdp.data.readers.tables import Signature

# headed as CASME II's, in the file's own order
COLUMNS = {name: CASME2_COLUMNS[name] for name in ("subject", "filename", "onset", "apex", "offset", "emotion", "aus")}


class Mmew(UsualTableReader):
    def setup(self) -> None:
        emotions = "|".join(self.dataset.emotions)
        self.base = frame_bases(self.root, ["Micro_Expression"], rf"(?:{emotions})", self.dataset.title,
                                "Micro_Expression/<emotion>/")[0]

    def clip_id(self, row: Row) -> str:
        return row.text("filename") or guess(row["subject"], "?")

    def parse(self, row: Row) -> Clip | None:
        if not row.text("filename"):  # checked first: the subject may come from it
            raise _BadRow("missing Filename")
        return super().parse(row)

    def subject(self, row: Row) -> str:
        # the Subject cell, or when blank the first part of the clip name Sxx-yy-zzz
        return s_subject(row["subject"] or row.text("filename").split("-")[0], "S")

    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        folders = sorted((self.disk.subfolders(self.base) or {}).items(), key=lambda kv: kv[0].lower() != clip.emotion)
        folder = next((f for f in (self.disk.child(p, clip.folder) for _, p in folders) if f is not None), None)
        return self.disk.select(folder, f"Micro_Expression/*/{clip.folder}", r"(\d+)\.jpg", clip.onset, clip.offset)


MMEW = Dataset(
    name="mmew", fps=90.0,
    # `others` in some releases, `repression` in others (settings treat them as one class)
    emotions=("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others", "repression"),
    table=Signature("MMEW", ("MMEW_Micro_Exp*.xlsx",), None, COLUMNS, subject=r"s\d+"),
    reader=Mmew,
)
