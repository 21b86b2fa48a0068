"""Progress of a count of items (clips prepared, clips synthesised) on stderr.

On a terminal: one line redrawn in place. Elsewhere (a log file, CI): plain lines, one about every
tenth of the run and at the end, each with the count and the rate, and never a carriage return or
an escape sequence, so a log of a long `prepare` stays a readable file of short lines.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class CountProgress:
    """A callback `(done, total, item="")` printing '<label>: 12/255 clips (item), 3.1 clips/s'."""

    def __init__(self, label: str, unit: str = "clips", stream: TextIO | None = None, tty: bool | None = None,
                 lines: int = 10) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.lines = lines  # lines a whole run prints when not on a terminal
        self.open = False  # a terminal line without its newline yet (an error must start a new line)
        self._t0 = time.monotonic()  # the rate counts from here: reading the annotations included

    def line(self, done: int, total: int, item: str = "") -> str:
        elapsed = time.monotonic() - self._t0
        rate = done / elapsed if elapsed > 0 else 0.0
        what = f" ({item})" if item else ""
        return f"{self.label}: {done}/{total} {self.unit}{what}, {rate:.1f} {self.unit}/s"

    def __call__(self, done: int, total: int, item: str = "") -> None:
        text = self.line(done, total, item)
        if self.tty:
            end = "\n" if done == total else ""
            self.stream.write(f"\r{text}\x1b[K{end}")
            self.open = done < total
        elif done == total or done == 1 or done % max(total // self.lines, 1) == 0:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close_line(self) -> None:
        """End an open terminal line, so what is printed next starts on a line of its own."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False
