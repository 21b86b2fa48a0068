"""4DME, micro part (not in the paper): `4DME_Labelling_Micro_release v1.xlsx` (sub_ID, fold_name,
Emotion, Onset, Apex, Offset, AUs) + `gray_micro/<sub_ID>/<fold_name>/` frames with absolute numbers
(any file prefix: `img101.jpg`, `00101.jpg`). A combined label (`Surprise+Positive`) is kept as read
(`positive+surprise`), so every setting can exclude it.
"""

from __future__ import annotations

from typing import Any

from fdp.data.readers.cells import _BadRow, cell_text, guess
from fdp.data.readers.core import Clip, Dataset, Row, UsualTableReader, frame_bases
from fdp.data.readers.tables import Signature

COLUMNS = {
    "subject": ("sub_ID", "Subject"),
    "filename": ("fold_name", "Filename"),
    "emotion": ("Emotion",),
    "onset": ("Onset",),
    "apex": ("Apex",),
    "offset": ("Offset",),
    "aus": ("AUs", "AU", "Action Units"),
}
FRAMES = r"\D*(\d+)\.(?:jpg|png|bmp)"


class Fourd(UsualTableReader):
    def setup(self) -> None:
        self.bases = frame_bases(self.root, ["gray_micro"], r"s\d+", self.dataset.title, "gray_micro/<sub_ID>/")

    def clip_id(self, row: Row) -> str:
        return row.text("filename") or guess(row["subject"], "?")

    def emotion(self, value: Any) -> str:
        """A 4DME emotion, lower case; a combined label (`Surprise+Positive`) keeps both words, sorted
        (`positive+surprise`), so every setting can exclude it (which class it is, is not given)."""
        written = cell_text(value).lower().replace(" ", "")
        if not written:
            raise _BadRow("missing emotion")
        parts = written.split("+")
        words = self.dataset.emotions
        if [p for p in parts if p not in words] or len(set(parts)) != len(parts):
            raise _BadRow(f"unknown emotion {cell_text(value)!r} (known: {', '.join(words)}, or two joined by '+')")
        return "+".join(sorted(parts))

    def subject(self, row: Row) -> str:
        return self.matching(row, "subject", r"s\d+")

    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        parts = [clip.subject, clip.folder]
        return self.disk.select(self.disk.first(self.bases, parts), "gray_micro/" + "/".join(parts), FRAMES,
                                clip.onset, clip.offset)


FOURD = Dataset(
    name="fourd", fps=60.0,
    # single words; a combined label joins two of them with "+" (see `Fourd.emotion`)
    emotions=("positive", "negative", "surprise", "repression", "others"),
    table=Signature("4DME", ("4DME_Labelling_Micro*.xlsx",), None, COLUMNS, subject=r"s\d+"),
    reader=Fourd,
)
