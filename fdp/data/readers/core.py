"""The one row loop every reader runs, and the frame files on disk.

A dataset module declares a `Dataset` (name, frame rate, emotion words, how its annotation table is
recognised) and a `Reader` subclass holding only what differs between datasets: where its frame
folders are (`setup`), the clip id a row is named by in messages (`clip_id`), how a row's cells
become a `Clip` (`parse`: columns, id rules, emotion words) and where its frames are (`frames`).
`Reader.read` does the rest, the same way for every dataset: each row becomes one `Sample` or one
bad-row record (file, row, clip id, reason), a clip id read twice is a bad row, the repairs of good
rows are listed, and strict mode raises one `BadRowsError` naming every bad row of the pass.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdp.data.readers.cells import (
    _BadRow,
    apex_index,
    blank,
    cell,
    cell_text,
    check_span,
    frame_index,
    rel,
)
from fdp.data.readers.tables import Layout, Signature, find_annotation, walk_dirs
from fdp.data.samples import BadRowsError, DataError, Sample

FRAMES_DEPTH = 4  # folder levels below root searched for the frame folders


@dataclass
class ReadResult:
    """What `read_dataset` returns: the good clips, the bad rows passed over, the rows repaired."""

    samples: list[Sample]  # one per good annotation row, in spreadsheet order
    skipped: list[dict[str, Any]]  # {"source": "<file>:row N", "clip_id", "reason"} per bad row
    # {"source", "clip_id", "field", "original", "value", "reason"} per value changed by a documented rule
    repaired: list[dict[str, Any]] = field(default_factory=list)
    annotation: str = ""  # absolute path of the annotation file read


# ---------------------------------------------------------------------------------------------
# Frames on disk


def _fmt_numbers(numbers: Sequence[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9" (first few runs only, to keep the message one short line)."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    shown = [f"{a}-{b}" if a != b else f"{a}" for a, b in runs[:5]]
    return ", ".join(shown) + (", ..." if len(runs) > 5 else "")


class Disk:
    """Cached folder listings: each frame folder is listed once even when it holds several MEs."""

    def __init__(self) -> None:
        self._subfolders: dict[Path, dict[str, Path] | None] = {}
        self._frames: dict[tuple[Path, str], dict[int, Path] | None] = {}

    def subfolders(self, parent: Path) -> dict[str, Path] | None:
        """{name: path} of the sub-folders of `parent` (sorted by name); None if it is no folder."""
        if parent not in self._subfolders:
            try:
                entries = sorted((e.name, Path(e.path)) for e in os.scandir(parent) if e.is_dir())
                self._subfolders[parent] = dict(entries)
            except OSError:
                self._subfolders[parent] = None
        return self._subfolders[parent]

    def child(self, parent: Path, name: str) -> Path | None:
        """Sub-folder `name` of `parent`: the exact name, else a case-insensitive match
        (CAS(ME)^3 labels write `spNO` where some copies' folders say `spNo`)."""
        children = self.subfolders(parent)
        if not children:
            return None
        if name in children:
            return children[name]
        return next((p for n, p in children.items() if n.lower() == name.lower()), None)

    def path(self, base: Path, parts: Iterable[str]) -> Path | None:
        """`base/part/part/...` resolved folder by folder; None when a folder is missing."""
        here: Path | None = base
        for part in parts:
            here = self.child(here, part) if here is not None else None
        return here

    def first(self, bases: Iterable[Path], *candidates: Sequence[str]) -> Path | None:
        """The first of `base/candidate` that exists, bases outermost; None when none does."""
        return next((f for f in (self.path(b, c) for b in bases for c in candidates) if f is not None), None)

    def frames(self, folder: Path, pattern: str) -> dict[int, Path] | None:
        """{frame number: file} for the files of `folder` whose name fully matches `pattern`.

        The number is the first group of `pattern`, parsed as an int, so `img9` sorts before
        `img10` and zero-padding does not matter (SPEC §4.1).
        """
        key = (folder, pattern)
        if key not in self._frames:
            rx = re.compile(pattern, re.IGNORECASE)
            try:
                names = sorted(e.name for e in os.scandir(folder) if e.is_file())
            except OSError:
                self._frames[key] = None
                return None
            found: dict[int, Path] = {}
            for n in names:
                m = rx.fullmatch(n)
                if m:
                    found.setdefault(int(m.group(1)), folder / n)
            self._frames[key] = found
        return self._frames[key]

    def select(
        self, folder: Path | None, shown: str, pattern: str, onset: int, offset: int
    ) -> tuple[str, ...]:
        """Paths of frames onset..offset inclusive in frame order; a bad row if any is missing."""
        found = self.frames(folder, pattern) if folder is not None else None
        if found is None:
            raise _BadRow(f"frame folder {shown} not found on disk")
        missing = [n for n in range(onset, offset + 1) if n not in found]
        if missing:
            raise _BadRow(
                f"missing frames on disk in {shown}: {_fmt_numbers(missing)} "
                f"({len(missing)} of {onset}..{offset})"
            )
        return tuple(str(found[n]) for n in range(onset, offset + 1))


def frame_bases(
    root: Path, names: Sequence[str] | None, child: str, title: str, looked_for: str
) -> list[Path]:
    """Folders below `root` that hold the per-subject frame folders.

    A base is a folder (named one of `names`, or any name when `names` is None) with at least one
    sub-folder whose name fully matches the regex `child` (the subject folders). Bases are returned
    in breadth-first order; for a fixed name list, the first name with any base wins (CASME II:
    raw before cropped).
    """
    rx = re.compile(child, re.IGNORECASE)

    def has_subjects(folder: Path) -> bool:
        try:
            return any(e.is_dir() and rx.fullmatch(e.name) for e in os.scandir(folder))
        except OSError:
            return False

    def is_subject(folder: Path) -> bool:
        return bool(rx.fullmatch(folder.name))

    folders = [f for f, _ in walk_dirs(root, FRAMES_DEPTH, is_subject) if not is_subject(f)]
    if names is None:
        bases = [f for f in folders if has_subjects(f)]
    else:
        bases = []
        for name in names:
            bases = [f for f in folders if f.name.lower() == name.lower() and has_subjects(f)]
            if bases:
                break
    if not bases:
        raise DataError(
            f"{root}: no {title} frame folder {looked_for} found (searched {FRAMES_DEPTH} folder levels deep)"
        )
    return bases


# ---------------------------------------------------------------------------------------------
# Rows, clips, datasets, and the one loop


@dataclass
class Row:
    """One annotation row on its way to a `Sample` (for a release without a table: one clip folder)."""

    source: str  # "<file>:row N" (or "<folder>/"), as messages and `Sample.source` spell it
    values: Sequence[Any]  # the row's cells
    columns: Mapping[str, int]  # field -> 0-based column of `values`
    number: int = 0  # spreadsheet row (0 for a folder)
    clip_id: str = "?"  # what messages call the row: guessed from raw cells, made exact by `parse`

    def __getitem__(self, name: str) -> Any:
        return cell(self.values, self.columns[name])

    def text(self, name: str) -> str:
        return cell_text(self[name])


@dataclass
class Clip:
    """What a good row annotates; its frames are looked up once the clip id is known to be new."""

    subject: str
    onset: int
    apex: int | None
    offset: int
    emotion: str
    action_units: str = ""
    folder: str = ""  # what the dataset's `frames` needs to find the clip's folder (Filename, task letter, ...)
    repairs: list[dict[str, Any]] = field(default_factory=list)  # changes made by a documented rule


@dataclass(frozen=True)
class Dataset:
    """What the registry knows of one dataset: its name, rate, emotion words, table and reader."""

    name: str  # reader name (casme2, samm, ...)
    fps: float  # frame rate of the recordings (SPEC §4.1, paper Table 3)
    # the emotion words its annotation file uses, lower-cased (SPEC §4.1); a row with another word is
    # a bad row: a typo must not become a new class or vanish from every setting
    emotions: tuple[str, ...]
    table: Signature  # how its annotation table is recognised; its title names the dataset in messages
    reader: Callable[[Dataset, Path, Path | None], Reader]  # (dataset, root, annotations) -> one copy's reader

    @property
    def title(self) -> str:
        return self.table.title

    def read(self, root: Path, skip_bad: bool = False, annotations: Path | None = None) -> ReadResult:
        return self.reader(self, root, annotations).read(skip_bad)


class Reader(ABC):
    """Reads one copy of a dataset: `read` is the loop, the hooks are what differs per dataset."""

    def __init__(self, dataset: Dataset, root: Path) -> None:
        self.dataset = dataset
        self.root = root
        self.disk = Disk()
        self.annotation: Path = root  # what `ReadResult.annotation` names

    @abstractmethod
    def rows(self) -> Iterable[Row]:
        """Every row to read, in order."""

    @abstractmethod
    def clip_id(self, row: Row) -> str:
        """The clip id a row is named by before it is parsed (best effort from its raw cells)."""

    @abstractmethod
    def parse(self, row: Row) -> Clip | None:
        """The row's clip, or None for a row that is no sample of the dataset; `_BadRow` for a bad
        row. Sets `row.clip_id` once the exact id is known (it names the sample and every message)."""

    @abstractmethod
    def frames(self, clip: Clip, row: Row) -> tuple[str, ...]:
        """Paths of the clip's frames onset..offset in order; `_BadRow` when any is missing."""

    def emotion(self, value: Any) -> str:
        """Lower-cased emotion, checked against the dataset's words (`Dataset.emotions`)."""
        word = cell_text(value).lower()
        if not word:
            raise _BadRow("missing emotion")
        if word not in self.dataset.emotions:
            raise _BadRow(f"unknown emotion {cell_text(value)!r} (known: {', '.join(self.dataset.emotions)})")
        return word

    def read(self, skip_bad: bool) -> ReadResult:
        """Every row in one pass: a sample, or a bad-row record, never dropped silently (SPEC §4.1)."""
        result = ReadResult(samples=[], skipped=[], annotation=str(self.annotation))
        first_at: dict[str, str] = {}  # clip id -> where it was read first ("row 12")
        for row in self.rows():
            row.clip_id = self.clip_id(row)
            try:
                clip = self.parse(row)
                if clip is None:
                    continue
                # ids must be unique within a dataset; checked before the frames, so the message
                # names the real problem
                if row.clip_id in first_at:
                    raise _BadRow(f"duplicate clip {row.clip_id!r} (first at {first_at[row.clip_id]})")
                frames = self.frames(clip, row)
            except _BadRow as exc:
                result.skipped.append({"source": row.source, "clip_id": row.clip_id, "reason": str(exc)})
                continue
            first_at[row.clip_id] = row.source.rsplit(":", 1)[-1]
            result.samples.append(Sample(
                dataset=self.dataset.name, subject=clip.subject, clip_id=row.clip_id, onset=clip.onset,
                apex=clip.apex, offset=clip.offset, emotion=clip.emotion, action_units=clip.action_units,
                fps=self.dataset.fps, frames=frames, source=row.source))
            # listed only once the row is known good
            result.repaired += [{"source": row.source, "clip_id": row.clip_id, **r} for r in clip.repairs]
        if result.skipped and not skip_bad:
            raise BadRowsError(result.skipped)
        return result


class TableReader(Reader):
    """A reader of a dataset with an annotation table: the table is found by content first, then
    `setup` finds the frame folders; the rows are the table's rows below its header."""

    def __init__(self, dataset: Dataset, root: Path, annotations: Path | None) -> None:
        super().__init__(dataset, root)
        self.annotation, self.layout = find_annotation(root, dataset.table, annotations)
        self.label = rel(self.annotation, root)  # the file as sources and messages name it
        self.columns: Mapping[str, int] = self.layout.columns
        self.setup()

    @abstractmethod
    def setup(self) -> None:
        """Find the frame folders (a one-line `DataError` when there are none) and whatever else
        the dataset reads once per copy."""

    def rows(self) -> Iterator[Row]:
        layout: Layout = self.layout
        for number, values in layout.sheet.rows():
            if number > layout.header and not blank(values):
                yield Row(f"{self.label}:row {number}", values, self.columns, number)

    def heading(self, name: str) -> str:
        """Column `name` as the distributed file heads it (messages name columns so)."""
        assert self.dataset.table.columns is not None
        return self.dataset.table.columns[name][0]

    def span(self, row: Row) -> tuple[int, int | None, int, list[dict[str, Any]]]:
        """(onset, apex, offset, repairs) under the one repair rule (`check_span`); the apex is None
        where the table has no apex column."""
        onset = frame_index(row["onset"], self.heading("onset"))
        apex = apex_index(row["apex"], self.heading("apex")) if "apex" in self.columns else None
        offset = frame_index(row["offset"], self.heading("offset"))
        apex, repairs = check_span(onset, apex, offset)
        return onset, apex, offset, repairs

    def matching(self, row: Row, name: str, pattern: str) -> str:
        """Cell `name` as written; it must fully match the regex `pattern` (any case)."""
        written = row.text(name)
        if not re.fullmatch(pattern, written, re.IGNORECASE):
            raise _BadRow(f"bad {self.heading(name)} {written!r}" if written else f"missing {self.heading(name)}")
        return written


class UsualTableReader(TableReader):
    """A table of the usual columns (Subject, Filename, onset / apex / offset, emotion, AUs): per
    dataset only its subject form, besides what every table reader says."""

    @abstractmethod
    def subject(self, row: Row) -> str:
        """The row's subject id, in the dataset's one form."""

    def parse(self, row: Row) -> Clip | None:
        """Checked in this order: subject, Filename (the clip's folder), onset / apex / offset,
        emotion; the AUs as written."""
        subject = self.subject(row)
        folder = row.text("filename")
        if not folder:
            raise _BadRow(f"missing {self.heading('filename')}")
        onset, apex, offset, repairs = self.span(row)
        return Clip(subject, onset, apex, offset, self.emotion(row["emotion"]), row.text("aus"), folder, repairs)
