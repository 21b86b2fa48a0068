"""The contact sheet of a prepared clip cache: every clip as the model will see it, to look at
before training (a misaligned subject otherwise shows only as a bad fold, if ever).

One tile per clip: the aligned onset frame, the aligned apex frame and the ground-truth dynamic
image (`fdp.dynamic_image`, over `frames` frames sampled as at test time), framed and captioned
with how the clip was aligned (`clip["align"]`):

    eyes   thin green frame,    caption "eyes"
    face   thick orange frame,  caption "FACE"   (a face but no eye pair: eyes guessed)
    frame  thick red frame,     caption "FRAME"  (no face: the central square of the frame)
    resize thin grey frame,     caption "resize" (`prepare --no-align`)

so the method reads in grey print too (frame width and caption). Tiles are grouped by subject
(natural order), each group under a label with its clip count and fallbacks. Images are drawn at
the cache's stored size (1 stored pixel = 1 sheet pixel), so a page's size is bounded: at most
`tiles_per_page` tiles per page (`columns` per row; a subject starts a new row, and a new page
when it does not fit on the current one; a subject larger than a page continues on the next,
labelled "(cont.)"). One page: `contact_sheet.png`; several: `contact_sheet_p1.png`, ...

`sheet_layout` is the pure layout (which clip goes where; tests read it), `write_contact_sheet`
draws it with matplotlib's Agg canvas into the cache folder.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# method -> (RGB colour, caption word, frame width px)
METHOD_STYLE: dict[str, tuple[tuple[int, int, int], str, int]] = {
    "eyes": ((26, 152, 80), "eyes", 2),
    "face": ((245, 140, 20), "FACE", 5),
    "frame": ((215, 25, 28), "FRAME", 5),
    "resize": ((127, 127, 127), "resize", 2),
}
_UNKNOWN = ((80, 80, 200), "?", 5)
FALLBACKS = ("face", "frame")  # the methods that did not find both eyes
SHEET_NAME = "contact_sheet"
COLUMNS = 6
TILES_PER_PAGE = 120
DI_FRAMES = 8  # the paper's t: frames the dynamic image is pooled over
_PAD = 5  # px between the three images of a tile and around them
_BORDER = 5  # px reserved for the frame around a tile (drawn 2 or 5 px wide)
_CAPTION = 14  # px of caption under a tile's images
_GAP = 6  # px between tiles
_LABEL = 20  # px of a subject label row
_HEADER = 52  # px of the page header (title, three legend lines)
_MARGIN = 8


def sheet_paths(cache_dir: str | os.PathLike[str]) -> list[Path]:
    """The contact sheet page(s) of a cache folder, in page order ([] when none was written)."""
    d = Path(cache_dir)
    one = d / f"{SHEET_NAME}.png"
    if one.is_file():
        return [one]
    pages = list(d.glob(f"{SHEET_NAME}_p*.png"))
    return sorted(pages, key=lambda p: int(re.sub(r"\D", "", p.stem.rsplit("_p", 1)[1]) or 0))


def natural_key(s: str) -> list[Any]:
    """'sub2' < 'sub10': digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(s))]


@dataclass(frozen=True)
class Tile:
    clip: int  # index into cache.clips
    clip_id: str
    subject: str
    method: str  # clip["align"]
    page: int  # 0-based
    x: int  # top-left pixel on its page
    y: int


@dataclass(frozen=True)
class SubjectLabel:
    subject: str
    page: int
    x: int
    y: int
    text: str  # e.g. "sub01: 5 clips, FRAME 2"


@dataclass
class SheetLayout:
    """Where every tile and subject label goes; pixel sizes of each page."""

    tile_size: tuple[int, int]  # (width, height) of one tile incl. its frame and caption
    pages: list[tuple[int, int]]  # (width, height) per page
    tiles: list[Tile] = field(default_factory=list)  # in drawing order: subject after subject
    labels: list[SubjectLabel] = field(default_factory=list)

    def subjects_in_order(self) -> list[str]:
        return list(dict.fromkeys(t.subject for t in self.tiles))


def sheet_layout(clips: Sequence[dict[str, Any]], image_size: int = 72, columns: int = COLUMNS,
                 tiles_per_page: int = TILES_PER_PAGE) -> SheetLayout:
    """The layout of a contact sheet of `clips` (a cache's index entries: subject, clip_id, align)."""
    if columns < 1 or tiles_per_page < columns:
        raise ValueError(f"contact sheet: need columns >= 1 and tiles_per_page >= columns, got {columns}, "
                         f"{tiles_per_page}")
    tw = 3 * image_size + 4 * _PAD + 2 * _BORDER
    th = image_size + 2 * _PAD + 2 * _BORDER + _CAPTION
    rows_per_page = tiles_per_page // columns
    width = 2 * _MARGIN + columns * tw + (columns - 1) * _GAP
    by_subject: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        by_subject.setdefault(str(c["subject"]), []).append(i)
    layout = SheetLayout((tw, th), [])
    page, y, rows_used = 0, _HEADER, 0

    def new_page() -> None:
        nonlocal page, y, rows_used
        layout.pages.append((width, y + _MARGIN))
        page, y, rows_used = page + 1, _HEADER, 0

    for subject in sorted(by_subject, key=natural_key):
        idx = sorted(by_subject[subject], key=lambda i: natural_key(str(clips[i]["clip_id"])))
        methods = Counter(str(clips[i].get("align", "?")) for i in idx)
        bad = ", ".join(f"{METHOD_STYLE.get(m, _UNKNOWN)[1]} {methods[m]}" for m in (*FALLBACKS, "?") if methods[m])
        text = f"{subject}: {len(idx)} clip{'s' if len(idx) != 1 else ''}" + (f", {bad}" if bad else "")
        rows = -(-len(idx) // columns)
        if rows_used and rows_used + rows > rows_per_page:  # the subject fits better on a fresh page
            new_page()
        first = True
        while idx:
            if rows_used >= rows_per_page:
                new_page()
            take = min(len(idx), (rows_per_page - rows_used) * columns)
            layout.labels.append(SubjectLabel(subject, page, _MARGIN, y, text if first else f"{subject} (cont.)"))
            y += _LABEL
            for k, i in enumerate(idx[:take]):
                r, col = divmod(k, columns)
                layout.tiles.append(Tile(i, str(clips[i]["clip_id"]), subject, str(clips[i].get("align", "?")), page,
                                         _MARGIN + col * (tw + _GAP), y + r * (th + _GAP)))
            used = -(-take // columns)
            y += used * (th + _GAP)
            rows_used += used
            idx, first = idx[take:], False
    layout.pages.append((width, y + _MARGIN))
    return layout


def _grey_rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def apex_position(clip: dict[str, Any], n: int) -> int:
    """The annotated apex's place among a clip's `n` stored frames (onset..offset, uniformly
    subsampled when long: the nearest kept frame); the middle frame without a usable apex."""
    onset, apex, offset = (clip.get(k) for k in ("onset", "apex", "offset"))
    if all(isinstance(v, (int, float)) for v in (onset, apex, offset)) and onset <= apex <= offset and offset > onset:
        return int(round((apex - onset) / (offset - onset) * (n - 1)))
    return (n - 1) // 2


def dynamic_images(cache: Any, indices: Sequence[int], di_frames: int = DI_FRAMES) -> np.ndarray:
    """(len(indices), S, S) uint8 ground-truth dynamic images of those clips of `cache`, each
    pooled over `di_frames` frames spaced as at test time (`ClipBank.positions` with u = 0.5)."""
    import torch

    from fdp.dynamic_image import dynamic_image

    if not indices:
        s = int(cache.frames.shape[-1])
        return np.zeros((0, s, s), np.uint8)
    batch = []
    for i in indices:
        frames = cache.clip_frames(i)
        n = int(frames.shape[0])
        pos = np.minimum(np.floor((np.arange(di_frames) + 0.5) * n / di_frames).astype(np.int64), n - 1)
        batch.append(np.asarray(frames[pos]))
    x = torch.from_numpy(np.stack(batch)).float().div_(255.0)  # (B, t, 3, S, S)
    return (dynamic_image(x)[:, 0].numpy() * 255).round().astype(np.uint8)


@dataclass
class ContactSheet:
    paths: list[Path]  # the page files written
    layout: SheetLayout


def write_contact_sheet(cache: Any, out_dir: str | os.PathLike[str] | None = None, columns: int = COLUMNS,
                        tiles_per_page: int = TILES_PER_PAGE, di_frames: int = DI_FRAMES) -> ContactSheet:
    """Draw the contact sheet of `cache` (a `fdp.data.cache.ClipCache`) into `out_dir` (default:
    the cache folder), replacing an earlier one; each page is written to a temporary name and
    renamed. Returns the page paths and the layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out_dir) if out_dir is not None else Path(cache.path)
    s = int(cache.frames.shape[-1])
    layout = sheet_layout(cache.clips, s, columns, tiles_per_page)
    tw, th = layout.tile_size
    methods = Counter(str(c.get("align", "?")) for c in cache.clips)
    fp = cache.index.get("fingerprint", "")
    title = (f"{cache.dataset}: {len(cache.clips)} clips, {len({c['subject'] for c in cache.clips})} subjects"
             f"{f', fingerprint {fp}' if fp else ''} ({Path(cache.path).name})")
    # three short lines, not one long one: a sheet of small frames is narrower than a sentence
    legend = "\n".join([
        "alignment: " + ", ".join(f"{m} {k}" for m, k in methods.most_common()),
        f"each tile: aligned onset | aligned apex | dynamic image ({di_frames} frames)",
        "eyes = thin green; FACE = thick orange (eyes guessed from the face box); FRAME = thick red (no face)"])
    n_pages = len(layout.pages)
    names = [f"{SHEET_NAME}.png"] if n_pages == 1 else [f"{SHEET_NAME}_p{k + 1}.png" for k in range(n_pages)]
    for old in sheet_paths(out):  # a sheet of another page count must not linger
        if old.name not in names:
            old.unlink(missing_ok=True)
    paths = []
    for p, (w, h) in enumerate(layout.pages):
        canvas = np.full((h, w, 3), 255, np.uint8)
        fig = Figure(figsize=(w / 100, h / 100), dpi=100)
        FigureCanvasAgg(fig)
        page_title = title + (f"  [page {p + 1}/{n_pages}]" if n_pages > 1 else "")
        fig.text(_MARGIN / w, 1 - 6 / h, page_title, fontsize=9, weight="bold", va="top", ha="left")
        fig.text(_MARGIN / w, 1 - 19 / h, legend, fontsize=6.5, va="top", ha="left", linespacing=1.1)
        for lab in (lb for lb in layout.labels if lb.page == p):
            fig.text(lab.x / w, 1 - (lab.y + 4) / h, lab.text, fontsize=8, weight="bold", va="top", ha="left")
        tiles = [tt for tt in layout.tiles if tt.page == p]
        dis = dynamic_images(cache, [t.clip for t in tiles], di_frames)
        for t, di in zip(tiles, dis):
            colour, word, bw = METHOD_STYLE.get(t.method, _UNKNOWN)
            frames = np.asarray(cache.clip_frames(t.clip)).transpose(0, 2, 3, 1)  # (T, S, S, 3)
            imgs = (frames[0], frames[apex_position(cache.clips[t.clip], len(frames))], _grey_rgb(di))
            box = canvas[t.y:t.y + th, t.x:t.x + tw]
            box[:] = colour
            box[bw:th - bw, bw:tw - bw] = 255
            for k, img in enumerate(imgs):
                x0 = _BORDER + _PAD + k * (s + _PAD)
                box[_BORDER + _PAD:_BORDER + _PAD + s, x0:x0 + s] = img
            caption = f"{t.clip_id}"
            fig.text((t.x + _BORDER + _PAD) / w, 1 - (t.y + th - _BORDER - 1) / h, caption, fontsize=7,
                     va="bottom", ha="left")
            fig.text((t.x + tw - _BORDER - _PAD) / w, 1 - (t.y + th - _BORDER - 1) / h, word, fontsize=7,
                     va="bottom", ha="right", color=np.asarray(colour) / 255,
                     weight="normal" if t.method in ("eyes", "resize") else "bold")
        fig.figimage(canvas, 0, 0, origin="upper", zorder=0)
        path = out / names[p]
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.png")
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
        paths.append(path)
    return ContactSheet(paths, layout)
