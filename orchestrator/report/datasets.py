"""What a prepared clip cache holds, beside the paper's counts: `fdp-sweep datasets` and the end of
`fdp-sweep prepare`.

Researchers compare their counts with the paper's Tables 1-3 first thing. The summary of one cache
gives its provenance (source root, annotation file, key), its size (clips, subjects, frames, frame
sizes), the clip-length distribution (with a warning for long clips), the per-setting class counts
(`fdp.data.settings.count_by_class`) beside the published ones (`reference/datasets.yaml`), what
each setting excludes, every repair and skipped row with its clip id, and the known differences
between the released files and the paper as notes (facts, not errors).
"""

from __future__ import annotations

import functools
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from fdp.data.cache import ClipCache
from fdp.data.samples import row_line
from fdp.data.settings import SETTINGS, count_by_class

REFERENCE_PATH = Path(__file__).with_name("reference") / "datasets.yaml"
LONG_CLIP_S = 2.0  # clips longer than this many seconds get a warning (CAS(ME)^3 has 71 of them)


@functools.lru_cache(maxsize=1)
def dataset_reference() -> dict[str, Any]:
    """`reference/datasets.yaml`: {"settings": {name: {table, counts, megc2019?}}, "datasets": {...}}."""
    return yaml.safe_load(REFERENCE_PATH.read_text())


def list_caches(cache_root: Path) -> list[Path]:
    """Every complete cache under `cache_root` (a folder with index.json and frames.npy), by name."""
    if not cache_root.is_dir():
        return []
    return sorted(d for d in cache_root.iterdir()
                  if d.is_dir() and (d / "index.json").is_file() and (d / "frames.npy").is_file())


def cache_line(path: Path) -> str:
    """One line per cache for the listing: name, dataset, clips, subjects, created, root."""
    index = json.loads((path / "index.json").read_text())
    clips = index.get("clips", [])
    subjects = len({c["subject"] for c in clips})
    return (f"{path.name}  {index.get('dataset')}: {len(clips)} clips, {subjects} subjects, "
            f"prepared {index.get('created', '?')}, from {index.get('root', '?')}")


def _length_line(lengths: list[int]) -> str:
    q = statistics.quantiles(lengths, n=10) if len(lengths) > 1 else [lengths[0]] * 9
    return (f"min {min(lengths)}, median {statistics.median(lengths):g}, p90 {q[8]:g}, max {max(lengths)}, "
            f"mean {statistics.fmean(lengths):.2f}")


def _counts_table(cache: ClipCache, name: str, ref: dict[str, Any]) -> list[str]:
    """Lines of one setting's counts: class, ours, paper (and MEGC2019), then the exclusions."""
    setting = SETTINGS[name]
    counts, excluded = count_by_class(cache.clips, setting)
    published = ref.get("counts", {})
    megc = ref.get("megc2019")
    header = f"  {name} ({ref.get('table', 'no published counts')})"
    width = max(len(header) + 1, 34)
    lines = [f"{header:<{width}}{'ours':>6}{'paper':>7}" + (f"{'MEGC2019':>10}" if megc else "")]

    def row(label: str, ours: int, paper: int | None, other: int | None) -> str:
        mark = "" if paper is None or ours == paper else f"   ({ours - paper:+d})"
        text = f"    {label:<{width - 4}}{ours:>6}{paper if paper is not None else '-':>7}"
        if megc:
            text += f"{other if other is not None else '-':>10}"
        return text + mark

    for cls in setting.classes:
        lines.append(row(cls, counts[cls], published.get(cls), megc.get(cls) if megc else None))
    total_paper = sum(published.values()) if published else None
    lines.append(row("total", sum(counts.values()), total_paper, sum(megc.values()) if megc else None))
    folds = len({c["subject"] for c in cache.clips if setting.label_of(c["emotion"]) is not None})
    shown = ", ".join(f"{k} {v}" for k, v in excluded.items()) or "none"
    lines.append(f"    excluded: {shown}; LOSO folds: {folds}")
    return lines


def alignment_lines(cache: ClipCache) -> list[str]:
    """The aligner and the clip count per alignment method (eyes / face / frame / resize), a
    warning per subject with clips that fell back to "frame" (no face found: the centre square
    of the frame), and where the contact sheet is."""
    from fdp.data.cache import alignment_label
    from fdp.data.contact_sheet import natural_key, sheet_paths

    clips = cache.clips
    methods = Counter(c.get("align", "?") for c in clips)
    lines = [f"alignment ({alignment_label(cache.index)}): "
             + ", ".join(f"{k} {v}" for k, v in sorted(methods.items(), key=lambda kv: (-kv[1], kv[0])))]
    per_subject: dict[str, list[str]] = {}
    for c in clips:
        per_subject.setdefault(str(c["subject"]), []).append(c.get("align", "?"))
    for subject in sorted(per_subject, key=natural_key):
        got = per_subject[subject]
        n = got.count("frame")
        if n:
            lines.append(f"warning: subject {subject}: {n} of {len(got)} clips fell back to \"frame\" (no face "
                         f"found: the centre square of the frame, not the face) -- look at the contact sheet")
    pages = sheet_paths(cache.path)
    if pages:
        lines.append(f"contact sheet: {pages[0]}" + (f" (+{len(pages) - 1} more pages)" if len(pages) > 1 else ""))
    else:
        lines.append("contact sheet: none (`fdp-sweep prepare` without --no-contact-sheet draws it)")
    return lines


def summary_lines(cache: ClipCache, long_clip_s: float = LONG_CLIP_S) -> list[str]:
    """The whole summary of one prepared cache (see the module docstring), as printed lines."""
    ref = dataset_reference()
    index = cache.index
    clips = cache.clips
    ds_ref = ref["datasets"].get(cache.dataset, {})
    subjects = sorted({c["subject"] for c in clips})
    lines = [f"{cache.dataset}: {len(clips)} clips, {len(subjects)} subjects, {cache.frames.shape[0]} frames "
             f"({cache.frames.nbytes / 2**20:.0f} MiB)"]
    if "samples" in ds_ref:  # datasets the paper uses
        lines.append(f"  paper (Table 3): {ds_ref['samples']} clips, {ds_ref['subjects']} subjects, "
                     f"{ds_ref['fps']} fps, mean duration {ds_ref['mean_frames']} frames")
    lines.append(f"source root: {cache.root or '?'}")
    lines.append(f"annotation file: {cache.annotation or '? (prepared before the annotation file was recorded)'}")
    fingerprint = index.get("fingerprint")
    lines.append(f"key: {index.get('key', '?')}" + (f", fingerprint: {fingerprint}" if fingerprint else "")
                 + f", prepared {index.get('created', '?')}")
    settings = cache.settings
    stored = f"{cache.frames.shape[-1]}x{cache.frames.shape[-2]}" if cache.frames.ndim == 4 else "?"
    sizes = Counter(f"{c['source_size'][0]}x{c['source_size'][1]}" for c in clips if c.get("source_size"))
    source = ", ".join(f"{k} ({v} clips)" for k, v in sizes.most_common()) or "?"
    lines.append(f"frames: stored {stored} ({settings.get('align', '?')}), source {source}")
    lines += alignment_lines(cache)
    emotions = Counter(c["emotion"] for c in clips)
    lines.append("emotions: " + ", ".join(f"{k} {v}" for k, v in emotions.most_common()))

    # Lengths as annotated (onset..offset), not as stored: --max-frames changes only the latter.
    annotated = [c["offset"] - c["onset"] + 1 for c in clips]
    fps = clips[0]["fps"] if clips else 0
    lines.append(f"clip length (onset..offset, frames): {_length_line(annotated)}"
                 + (f"; at {fps:g} fps max {max(annotated) / fps:.2f} s" if fps else ""))
    long = [(n, c["clip_id"]) for n, c in zip(annotated, clips) if c["fps"] and n / c["fps"] > long_clip_s]
    max_frames = settings.get("max_frames")
    subsampled = sum(1 for c in clips if c.get("subsampled_from"))
    if max_frames is not None:
        lines.append(f"max frames: {max_frames} (prepare --max-frames); {subsampled} clips subsampled uniformly")
    if long:
        n, cid = max(long)
        advice = ("" if max_frames is not None else
                  "; prepare --max-frames N subsamples long clips uniformly when caching")
        lines.append(f"warning: {len(long)} clips longer than {long_clip_s:g} s (longest {cid}: {n} frames, "
                     f"{n / fps:.1f} s){advice}")

    lines.append("class counts per setting (ours beside the paper's):")
    for name, setting in SETTINGS.items():
        if setting.dataset == cache.dataset:
            lines += _counts_table(cache, name, ref["settings"].get(name, {}))

    lines.append(f"repaired: {len(cache.repaired)}")
    lines += [f"  {row_line(r)} (original {r.get('field', 'value')} {r.get('original')!r})" for r in cache.repaired]
    lines.append(f"skipped: {len(cache.skipped)}")
    lines += [f"  {row_line(s)}" for s in cache.skipped]
    notes = list(ds_ref.get("notes", []))
    if cache.root and (Path(cache.root) / "synthetic.json").is_file():
        notes.insert(0, "synthetic benchmark (fdp-sweep synth): the paper's counts do not apply to it.")
    if notes:
        lines.append("notes:")
        lines += [f"  - {n}" for n in notes]
    return lines
