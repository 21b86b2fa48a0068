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
