"""`fdp-sweep synth` and `fdp-sweep prepare`: thin click wrappers over fdp.data.

Bad data (`DataError`) ends the command with one line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from fdp.data.samples import DataError


def _fail(e: Exception) -> NoReturn:
    click.echo(f"error: {e}", err=True)
    sys.exit(2)


@click.command("synth")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the synthetic dataset into (CASME II layout).")
@click.option("--subjects", default=8, show_default=True, type=click.IntRange(min=1), help="Number of subjects.")
@click.option("--clips-per-subject", default=10, show_default=True, type=click.IntRange(min=1),
              help="Clips per subject (emotions balanced within one per class).")
@click.option("--seed", default=0, show_default=True, type=int, help="Everything is a function of this seed.")
@click.option("--difficulty", default=0.5, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="0 easy .. 1 hard: smaller expressions, stronger noise / drift / flicker / blinks.")
@click.option("--amplitude", default=None, type=click.FloatRange(0.0, 0.5, min_open=True),
              help="Peak AU displacement in eye distances (default: from --difficulty, 0.08 .. 0.03).")
@click.option("--static-range", default=None, type=click.FloatRange(0.0, 10.0),
              help="Neutral-face AU offsets ~ U[-R, R] x amplitude (default 4: no single frame tells the class; "
                   "smaller: single frames tell more).")
@click.option("--apex-range", default=None, nargs=2, type=click.FloatRange(0.0, 1.0), metavar="LO HI",
              help="Apex position as fractions of the onset..offset span, drawn uniformly (default 0.1 0.25).")
@click.option("--size", default=128, show_default=True, type=click.IntRange(min=64), help="Side of the source frames.")
@click.option("--frames-per-clip", default=40, show_default=True, type=click.IntRange(min=8),
              help="Frames per recording (the annotated onset..offset span is 50-80 % of it).")
def synth_cmd(out: Path, subjects: int, clips_per_subject: int, seed: int, difficulty: float,
              amplitude: float | None, static_range: float | None, apex_range: tuple[float, float] | None, size: int,
              frames_per_clip: int) -> None:
    """Write the synthetic micro-expression benchmark (prepare it with `fdp-sweep prepare casme2`)."""
    from fdp.data.synth import write_synthetic

    if out.is_dir() and any(out.iterdir()) and not (out / "synthetic.json").is_file():
        # e.g. a real dataset's root: its reader would pick up the synthetic annotation file
        _fail(DataError(f"{out}: folder is not empty and holds no earlier synthetic benchmark (synthetic.json); "
                        "give an empty or new folder"))
    t0 = time.time()
    total = subjects * clips_per_subject

    tty = sys.stderr.isatty()

    def progress(done: int, n: int) -> None:  # a live line on a terminal, a line per 10 % in a log
        if tty:
            click.echo(f"\rsynth: {done}/{n} clips", nl=done == n, err=True)
        elif done == n or done % max(n // 10, 1) == 0:
            click.echo(f"synth: {done}/{n} clips", err=True)

    try:
        path = write_synthetic(out, subjects=subjects, clips_per_subject=clips_per_subject, seed=seed,
                               difficulty=difficulty, size=size, frames_per_clip=frames_per_clip, progress=progress,
                               amplitude=amplitude, static_range=static_range, apex_range=apex_range or None)
    except DataError as e:
        _fail(e)
    except OSError as e:
        _fail(DataError(f"{e.filename or out}: cannot write the synthetic benchmark ({e.strerror or e})"))
    click.echo(f"wrote {total} clips of {subjects} subjects to {path} in {time.time() - t0:.1f} s")
    click.echo(f"next: fdp-sweep prepare casme2 --root {path}")


@click.command("prepare")
@click.argument("dataset", type=click.Choice(["casme2", "samm", "casme_sq", "casme3"]))
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the dataset as distributed (annotation spreadsheet + frame folders).")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Cache root (default: $FDP_CACHE_DIR or ./.cache/clips).")
@click.option("--no-align", is_flag=True, help="Centre-crop and resize instead of aligning (pre-cropped faces).")
@click.option("--skip-bad", is_flag=True, help="Skip bad rows / unreadable frames (recorded in the index) "
                                                 "instead of stopping at the first.")
def prepare_cmd(dataset: str, root: Path, out: Path | None, no_align: bool, skip_bad: bool) -> None:
    """Read DATASET's annotations, align every clip once and store the clip cache."""
    from fdp.data.cache import load_cache, prepare, stderr_progress

    t0 = time.time()
    line_open = [False]  # a progress line without its newline yet

    def progress(done: int, total: int, clip_id: str) -> None:
        stderr_progress(done, total, clip_id)
        line_open[0] = done < total

    try:
        path = prepare(dataset, root, out, align=not no_align, skip_bad=skip_bad, progress=progress)
        cache = load_cache(path)
    except DataError as e:
        if line_open[0]:
            click.echo("", err=True)  # the error gets a line of its own, below where progress stopped
        _fail(e)
    emotions = collections.Counter(c["emotion"] for c in cache.clips)
    methods = collections.Counter(c.get("align", "?") for c in cache.clips)
    subjects = len({c["subject"] for c in cache.clips})
    click.echo(f"{dataset}: {len(cache.clips)} clips, {subjects} subjects, {cache.frames.shape[0]} frames "
               f"({cache.frames.nbytes / 2**20:.0f} MiB)")
    click.echo("emotions: " + ", ".join(f"{k} {v}" for k, v in emotions.most_common()))
    click.echo("alignment: " + ", ".join(f"{k} {v}" for k, v in methods.most_common()))
    click.echo(f"skipped: {len(cache.skipped)}")
    for s in cache.skipped:
        click.echo(f"  {s['source']}: {s['reason']}")
    click.echo(f"cache: {path}")
    from fdp.data.cache import cache_fingerprint

    # the data version's name: runs, tables and the MLflow Dataset column show it
    click.echo(f"fingerprint: {cache_fingerprint(path)}")
    click.echo(f"time: {time.time() - t0:.1f} s")
