"""A quiet live display of a sweep on stderr.

On a terminal: a few lines redrawn in place (jobs done / running / failed / queued, ETA, latest
pooled metric per finished configuration, and the step of a job running in the driver's process).
Elsewhere (CI logs, files): one line about every `interval` seconds and at the end, and a job's
step line five times per job, so a log of a long sweep stays readable.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


def format_duration(seconds: float) -> str:
    """12 -> '12s', 125 -> '2m05s', 7300 -> '2h01m'."""
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass
class Progress:
    """Counts of a sweep's jobs and the display of them. Call the event methods; `tick()` redraws
    when due."""

    total: int  # jobs to run in this invocation (skipped ones excluded; a search adds as it asks trials)
    parallel: int = 1  # jobs the cluster runs at once (for the ETA)
    skipped: int = 0  # jobs already FINISHED in an earlier invocation
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interval: float = 10.0  # seconds between lines when not on a terminal
    tty: bool | None = None  # None: ask the stream
    max_metric_lines: int = 8  # configurations listed on a terminal (the latest ones)
    running: int = 0
    done: int = 0
    failed: int = 0
    durations: list[float] = field(default_factory=list)  # driver-side seconds of finished jobs
    metrics: dict[str, str] = field(default_factory=dict)  # config label -> "uf1=0.512 uar=0.498"
    t0: float = field(default_factory=time.monotonic)
    name: str = "sweep"  # what the status line is about ("sweep", "search")
    unit: str = "jobs"  # what it counts ("jobs"; a search's are its objective "folds")
    current: str = ""  # the step line of the job running in this process ("" when none or on Ray)
    _last: float = float("-inf")  # first event always draws
    _fifth: int = -1  # of the running job's steps, the fifth its last step line was in
    _drawn_lines: int = 0

    def __post_init__(self) -> None:
        if self.tty is None:
            self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    # -- events --------------------------------------------------------------------------------

    def started(self) -> None:
        self.running += 1
        self.tick()

    def finished(self, seconds: float, ok: bool) -> None:
        self.running = max(self.running - 1, 0)
        self.current = ""
        if ok:
            self.done += 1
            self.durations.append(seconds)
        else:
            self.failed += 1
        self.tick()

    def withdrawn(self, n: int = 1, reused: bool = False, running: bool = False) -> None:
        """`n` counted jobs will not run here: cancelled while `running`, dropped with a closed
        search trial, or `reused` (finished by an earlier run: counted as skipped)."""
        self.total -= n
        self.skipped += n if reused else 0
        self.running = max(self.running - (n if running else 0), 0)
        self.tick()

    def step(self, label: str, step: int, steps: int, terms: dict[str, float]) -> None:
        """Step `step` of `steps` of the job `label`, running in this process: redrawn on a
        terminal; in a log, a line at every fifth of the steps and at the last."""
        fifth = 5 * step // max(steps, 1)  # steps are told at the trainer's log_every, not each one
        new = fifth != self._fifth or not self.current
        self.current, self._fifth = (f"{label}: step {step}/{steps} "
                                     + " ".join(f"{k}={v:.4f}" for k, v in terms.items())), fifth
        if self.tty:
            self.tick()
        elif new or step == steps:
            self.stream.write(self.current + "\n")
            self.stream.flush()

    def pooled(self, config_label: str, metrics: dict[str, float]) -> None:
        self.metrics[config_label] = " ".join(f"{k}={metrics[k]:.3f}" for k in ("acc", "uf1", "uar", "di_mse")
                                              if k in metrics)
        self.tick(force=not self.tty)  # a finished configuration is worth a line in a log

    # -- display -------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return max(self.total - self.done - self.failed - self.running, 0)

    def eta(self) -> float | None:
        """Seconds left: remaining jobs in waves of `parallel`, at the mean finished-job time."""
        if not self.durations:
            return None
        return statistics.fmean(self.durations) * (self.queued + self.running) / max(self.parallel, 1)

    def status_line(self) -> str:
        eta = self.eta()
        parts = [f"{self.unit} {self.done}/{self.total} done", f"{self.running} running", f"{self.failed} failed",
                 f"{self.queued} queued"] + ([f"{self.skipped} skipped"] if self.skipped else [])
        parts += [f"elapsed {format_duration(time.monotonic() - self.t0)}",
                  f"eta {format_duration(eta)}" if eta is not None else "eta ?"]
        return f"{self.name}: " + ", ".join(parts)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            # redraw in place at most 10x a second: move up over the previous block, clear it
            if not force and now - self._last < 0.1:
                return
            lines = [self.status_line()] + [f"  {k}: {v}" for k, v in
                                            list(self.metrics.items())[-self.max_metric_lines:]]
            lines += [f"  {self.current}"] if self.current else []
            up = f"\x1b[{self._drawn_lines}F" if self._drawn_lines else ""
            # a block shorter than the last one (a job's step line gone) clears what it leaves below
            rest = "\x1b[J" if len(lines) < self._drawn_lines else ""
            self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines) + rest)
            self._drawn_lines = len(lines)
        else:
            if not force and now - self._last < self.interval:
                return
            tail = "".join(f" | {k}: {v}" for k, v in list(self.metrics.items())[-1:])  # the latest one, if any
            self.stream.write(self.status_line() + tail + "\n")
        self.stream.flush()
        self._last = now

    def close(self) -> None:
        """Final state, always drawn."""
        self.tick(force=True)
