"""`fdp-sweep synth`, `fdp-sweep prepare` and `fdp-sweep datasets`: thin click wrappers over fdp.data.

Bad data (`DataError`) ends the command with one line on stderr and exit code 2, no traceback;
bad rows found together are printed one line each ("bad row: ...") above that line.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import NoReturn

import click

from fdp.config import suggest
from fdp.data.progress import CountProgress
from fdp.data.samples import BadRowsError, DataError, row_line
from orchestrator.cli.tools import fail


def _fail(e: Exception) -> NoReturn:
    if isinstance(e, BadRowsError) and len(e.rows) > 1:
        for r in e.rows:  # the reasons: the error line names rows and clips only
            click.echo(f"bad row: {row_line(r)}", err=True)
    fail(e)


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
@click.option("--layout", default="casme2", show_default=True, type=click.Choice(["casme2", "samm", "smic", "mmew", "fourd"]),
              help="Write the clips in this dataset's distributed layout (its reader then prepares them).")
def synth_cmd(out: Path, subjects: int, clips_per_subject: int, seed: int, difficulty: float,
              amplitude: float | None, static_range: float | None, apex_range: tuple[float, float] | None, size: int,
              frames_per_clip: int, layout: str) -> None:
    """Write the synthetic micro-expression benchmark (prepare it with `fdp-sweep prepare casme2`)."""
    from fdp.data.synth import write_synthetic

    if out.is_dir() and any(out.iterdir()) and not (out / "synthetic.json").is_file():
        # e.g. a real dataset's root: its reader would pick up the synthetic annotation file
        _fail(DataError(f"{out}: folder is not empty and holds no earlier synthetic benchmark (synthetic.json); "
                        "give an empty or new folder"))
    t0 = time.time()
    progress = CountProgress("synth")  # a live line on a terminal, a line per 10 % in a log
    try:
        path = write_synthetic(out, subjects=subjects, clips_per_subject=clips_per_subject, seed=seed,
                               difficulty=difficulty, size=size, frames_per_clip=frames_per_clip, progress=progress,
                               amplitude=amplitude, static_range=static_range, apex_range=apex_range or None,
                               layout=layout)
    except DataError as e:
        _fail(e)
    except OSError as e:
        _fail(DataError(f"{e.filename or out}: cannot write the synthetic benchmark ({e.strerror or e})"))
    click.echo(f"wrote {subjects * clips_per_subject} clips of {subjects} subjects to {path} "
               f"in {time.time() - t0:.1f} s")
    click.echo(f"next: fdp-sweep prepare {layout} --root {path}")


@click.command("prepare")
@click.argument("dataset", metavar="DATASET", type=click.Choice(["casme2", "samm", "casme_sq", "casme3", "smic",
                                                                 "smic_vis", "smic_nir", "mmew", "fourd"]))
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the dataset as distributed (annotation spreadsheet + frame folders).")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Cache root (default: $FDP_CACHE_DIR or ./.cache/clips).")
@click.option("--no-align", is_flag=True, help="Centre-crop and resize instead of aligning (pre-cropped faces).")
@click.option("--align", "align_method", default="haar", show_default=True, type=click.Choice(["haar", "landmarks"]),
              help="Face aligner: OpenCV's Haar cascades (no extra dependency) or dlib's facial landmarks "
                   "(pip install 'fdp-sweep[landmarks]'). Part of the cache key; recorded on every run (fdp.align).")
@click.option("--skip-bad", is_flag=True, help="Skip bad rows / unreadable frames (recorded in the index, each with "
                                                 "its clip id) instead of stopping after listing them all.")
@click.option("--annotations", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The annotation file to read (default: the one .xlsx/.xls/.csv under --root whose sheet and "
                   "header match the dataset, whatever its name).")
@click.option("--max-frames", default=None, type=click.IntRange(min=2),
              help="Subsample clips longer than this many frames uniformly when caching (recorded in the "
                   "cache settings; part of its key). Default: keep every frame.")
@click.option("--no-contact-sheet", is_flag=True,
              help="Do not draw the contact sheet (a batch job that nobody looks at); running prepare again without "
                   "this flag draws it for the cache as it is.")
def prepare_cmd(dataset: str, root: Path, out: Path | None, no_align: bool, align_method: str, skip_bad: bool,
                annotations: Path | None, max_frames: int | None, no_contact_sheet: bool) -> None:
    """Read DATASET's annotations (casme2, samm, casme_sq, casme3, smic, smic_vis, smic_nir, mmew, fourd),
    align every clip once and store the clip cache; then print
    what it holds beside the paper's counts (as `fdp-sweep datasets` does) and where its contact
    sheet is (every clip's aligned onset, apex and dynamic image, by subject: look before training)."""
    from fdp.data.cache import cache_fingerprint, load_cache, prepare
    from orchestrator.report.datasets import summary_lines

    if no_align and align_method != "haar":
        _fail(DataError(f"--no-align and --align {align_method}: choose one"))
    t0 = time.time()
    progress = CountProgress("prepare")  # a live line on a terminal, plain lines in a log
    try:
        path = prepare(dataset, root, out, align=not no_align, skip_bad=skip_bad, progress=progress,
                       annotations=annotations, max_frames=max_frames, align_method=align_method,
                       contact_sheet=not no_contact_sheet)
        cache = load_cache(path)
    except DataError as e:
        progress.close_line()  # the error gets a line of its own, below where progress stopped
        _fail(e)
    for line in summary_lines(cache):
        click.echo(line)
    click.echo(f"cache: {path}")
    # the data version's name: runs, tables and the MLflow Dataset column show it
    click.echo(f"fingerprint: {cache_fingerprint(path)}")
    click.echo(f"time: {time.time() - t0:.1f} s")


@click.command("datasets")
@click.argument("target", required=False)
@click.option("--cache-root", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where the caches are (default: $FDP_CACHE_DIR or ./.cache/clips).")
@click.option("--root", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="With a dataset name: the cache prepared from this dataset folder.")
@click.option("--long-clips", "long_clip_s", default=2.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help="Warn about clips longer than this (onset..offset as annotated).")
def datasets_cmd(target: str | None, cache_root: Path | None, root: Path | None, long_clip_s: float) -> None:
    """List the prepared clip caches, or summarise one: TARGET is a cache folder or a dataset name
    (casme2, samm, casme_sq, casme3, smic, smic_vis, smic_nir, mmew, fourd; composite, lodo). The
    summary gives the source, the annotation file, clips, subjects, frame sizes, clip lengths,
    per-setting class counts beside the paper's Tables 1-3, repairs, skipped rows and the known
    differences from the paper."""
    from fdp.data.cache import default_cache_root, find_cache, load_cache
    from orchestrator.report.datasets import cache_line, list_caches, summary_lines

    base = cache_root if cache_root is not None else default_cache_root()
    try:
        if target is None:
            caches = list_caches(base)
            if not caches:
                raise DataError(f"no prepared caches under {base}: run `fdp-sweep prepare DATASET --root ...`")
            click.echo(f"{len(caches)} prepared caches under {base}:")
            for c in caches:
                click.echo(f"  {cache_line(c)}")
            click.echo("details: fdp-sweep datasets DATASET | CACHE_FOLDER")
            return
        given = Path(target)
        if (given / "index.json").is_file():
            path = given
        elif given.is_dir() or "/" in target or "\\" in target:
            raise DataError(f"{target}: not a prepared clip cache (no index.json in it)")
        elif target not in _cache_names():
            raise DataError(f"unknown dataset {target!r}{suggest(target, _cache_names())}; "
                            f"known: {', '.join(_cache_names())} (or give a cache folder)")
        else:
            path = find_cache(target, cache_root=base, root=root)
        cache = load_cache(path)
    except DataError as e:
        _fail(e)
    click.echo(f"cache: {path}")
    for line in summary_lines(cache, long_clip_s=long_clip_s):
        click.echo(line)


def _cache_names() -> list[str]:
    """What a cache can be named after: every reader (`prepare`) and merged set (`merge`)."""
    from fdp.data.settings import MERGED_KINDS
    from fdp.data.readers import READERS

    return [*READERS, *MERGED_KINDS]


@click.command("merge")
@click.argument("kind", type=click.Choice(["composite", "lodo"]))
@click.option("--part", "parts", multiple=True, metavar="DATASET=CACHE | DATASET:SETTING[=CACHE]",
              help="A prepared cache of one part (default: the one prepared cache of that dataset). "
                   "composite: casme2, samm, smic; lodo: each dataset with its class setting, e.g. samm:samm/3.")
@click.option("--label-list", default=None,
              help="composite: the label list (default: the official MEGC2019 list shipped with fdp-sweep); "
                   "'rule' groups the parts' emotions by the MEGC2019 guideline instead (synthetic data).")
@click.option("--skip-missing", is_flag=True, help="composite: leave out listed clips not in the caches (recorded).")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Cache root (default: $FDP_CACHE_DIR or ./.cache/clips).")
def merge_cmd(kind: str, parts: tuple[str, ...], label_list: str | None, skip_missing: bool, out: Path | None) -> None:
    """Build a merged dataset from prepared caches: the MEGC2019 composite (CASME II + SAMM + SMIC,
    3 classes, LOSO over all subjects) or a leave-one-dataset-out set (folds are datasets)."""
    from fdp.data.cache import find_cache, load_cache
    from fdp.data.merged import MEGC_DATABASES, build_composite, build_lodo

    paths: dict[str, str] = {}
    settings: dict[str, str] = {}
    for p in parts:
        head, _, path = p.partition("=")
        db, _, setting = head.partition(":")
        if not db or db in paths or db in settings:
            _fail(DataError(f"--part {p!r}: expected DATASET=CACHE or DATASET:SETTING[=CACHE], each dataset once"))
        if setting:
            settings[db] = setting
        if path:
            paths[db] = path
    try:
        names = list(MEGC_DATABASES) if kind == "composite" else list(dict.fromkeys([*settings, *paths]))
        for db in names:
            if db not in paths:
                paths[db] = str(find_cache(db, out))
        if kind == "composite":
            path = build_composite(paths, out, label_list=label_list, skip_missing=skip_missing)
        else:
            path = build_lodo(paths, settings, out)
        cache = load_cache(path)
    except (DataError, KeyError) as e:
        _fail(e)
    per_db = collections.Counter(c["database"] for c in cache.clips)
    classes = collections.Counter(c["emotion"] for c in cache.clips)
    subjects = {c["subject"] for c in cache.clips}
    click.echo(f"{kind}: {len(cache.clips)} clips, {len(subjects)} subjects "
               f"({', '.join(f'{db} {n}' for db, n in sorted(per_db.items()))})")
    click.echo("classes: " + ", ".join(f"{k} {v}" for k, v in classes.most_common()))
    for s in cache.skipped:
        click.echo(f"  skipped {s.get('clip_id', '')} ({s['source']}): {s['reason']}")
    click.echo(f"cache: {path}")
