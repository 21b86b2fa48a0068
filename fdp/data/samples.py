"""The sample record every reader yields, and the one error type for bad data."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(ValueError):
    """Bad input data. The message is one line: '<file>[:row N]: <reason>'."""


@dataclass(frozen=True)
class Sample:
    """One micro-expression clip as annotated."""

    dataset: str  # reader name: casme2 | samm | casme_sq | casme3
    subject: str  # subject id as the dataset writes it, normalised to text ("01", "006", "spNO.1")
    clip_id: str  # unique within the dataset (includes the onset where one video holds several MEs)
    onset: int  # absolute frame number of the onset
    apex: int | None  # absolute frame number of the apex; None where unknown ("/")
    offset: int  # absolute frame number of the offset (inclusive)
    emotion: str  # annotated emotion, lower-case ("happiness", "others", "anger", ...)
    action_units: str  # AU string as annotated
    fps: float  # frame rate of the recording
    frames: tuple[str, ...]  # paths of the frame files onset..offset inclusive, in frame order
    source: str  # where it came from: "<annotation file>:row <N>" (1-based spreadsheet row)


def row_line(entry: dict) -> str:
    """One bad row or repair as one line: '<file>:row N: clip <id>: <reason>'.

    The clip id comes first after the row because a spreadsheet row number means little without
    opening the file (SAMM's table starts below 13 rows of notes)."""
    clip = entry.get("clip_id") or "?"
    return f"{entry['source']}: clip {clip}: {entry['reason']}"


class BadRowsError(DataError):
    """Bad rows found in one pass over a dataset (`rows`: {"source", "clip_id", "reason"} each).

    The message is one line: the whole row for one bad row, else the file, the count and every
    row's number and clip id; `rows` keeps the reasons, which the CLI prints one line each."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = list(rows)
        hint = "run with --skip-bad to skip {} (recorded in the cache index)"
        if len(self.rows) == 1:
            message = f"{row_line(self.rows[0])}; fix the row or {hint.format('it')}"
        else:
            files = sorted({r["source"].rsplit(":row", 1)[0] for r in self.rows})
            shown = [f"{r['source'].rsplit(':', 1)[-1]} ({r.get('clip_id') or '?'})" for r in self.rows[:12]]
            more = f", ... ({len(self.rows) - 12} more)" if len(self.rows) > 12 else ""
            message = (f"{', '.join(files)}: {len(self.rows)} bad rows: {', '.join(shown)}{more}; "
                       f"fix them or {hint.format('them')}")
        super().__init__(message)
