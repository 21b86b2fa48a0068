"""The synthetic benchmark and its prepared cache are bytes, not a platform accident: generate a
draw and prepare it in a fresh process under each emulated instruction set (`ISA_ENVS`), print
the JPEG digest, the cache fingerprint, the alignment methods and the times per environment.

    python bench/fingerprints.py [--draw smoke|demo|JSON] [--env NAME ...] [--results]

Each environment is set before the process starts (numpy, OpenCV, OpenBLAS, libjpeg-turbo and torch
read their CPU-dispatch switches once, at load). `--worker` is the per-process part (JSON on stdout).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# numpy's dispatch targets above its x86-64 baseline (numpy 2.x names): disabling them all leaves
# the baseline (SSE4.2-level) loops
_NPY_ALL = "X86_V3,X86_V4,AVX512_ICL,AVX512_SPR"
# OpenCV's dispatched targets above its SSE3 baseline
_CV_ALL = "AVX512_SKX,AVX2,FP16,AVX,SSE4_2,POPCNT,SSE4_1,SSSE3"

# environment name -> variables set before the process starts; "cv-unoptimized" also calls
# cv2.setUseOptimized(False) in the process (FDP_BENCH_CV_UNOPTIMIZED)
ISA_ENVS: dict[str, dict[str, str]] = {
    "native": {},
    # what an AVX2 machine without AVX-512 runs: the emulation reproduces such a machine's bytes
    "avx2": {"NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR", "OPENCV_CPU_DISABLE": "AVX512_SKX",
             "OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2"},
    "numpy-baseline": {"NPY_DISABLE_CPU_FEATURES": _NPY_ALL},
    "opencv-baseline": {"OPENCV_CPU_DISABLE": _CV_ALL},
    "cv-unoptimized": {"FDP_BENCH_CV_UNOPTIMIZED": "1"},
    "jpeg-nosimd": {"JSIMD_FORCENONE": "1"},
    "openblas-generic": {"OPENBLAS_CORETYPE": "Prescott"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "all-baseline": {"NPY_DISABLE_CPU_FEATURES": _NPY_ALL, "OPENCV_CPU_DISABLE": _CV_ALL, "JSIMD_FORCENONE": "1",
                     "OPENBLAS_CORETYPE": "Prescott", "ATEN_CPU_CAPABILITY": "default"},
}

PREPARE_SIZE = 36  # fdp.profiles.LAPTOP_ALIGNED, the demo's


def draw_args(draw: str) -> dict:
    """"smoke" / "demo" (orchestrator.cli.demo's draws) or write_synthetic's arguments as JSON."""
    if draw.startswith("{"):
        return json.loads(draw)
    from orchestrator.cli.demo import DEMO_DATA, SMOKE_DATA

    return dict({"smoke": SMOKE_DATA, "demo": DEMO_DATA}[draw])


def jpeg_digest(root: Path) -> str:
    """16 hex of sha256 over every frame file's relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.jpg")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def decoded_digests(root: Path) -> tuple[str, str]:
    """16 hex of sha256 over the RGB pixels of every frame file as OpenCV decodes it (what
    `prepare` reads) and as Pillow decodes it (its libjpeg-turbo obeys JSIMD_FORCENONE: with it
    set, the plain-C reference decoder)."""
    import cv2
    from PIL import Image

    h_cv, h_pil = hashlib.sha256(), hashlib.sha256()
    for p in sorted(root.rglob("*.jpg")):
        h_cv.update(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB).tobytes())
        with Image.open(p) as im:
            h_pil.update(im.convert("RGB").tobytes())
    return h_cv.hexdigest()[:16], h_pil.hexdigest()[:16]


def generate_and_prepare(args: dict, work: Path, prepare_size: int = PREPARE_SIZE) -> dict:
    """Write the draw `args` under `work`, prepare it; digests, alignment counts and times."""
    from fdp.data.cache import cache_fingerprint, load_cache, prepare
    from fdp.data.synth import write_synthetic

    t0, c0 = time.perf_counter(), time.process_time()
    data = write_synthetic(work / "data", **args)
    t1, c1 = time.perf_counter(), time.process_time()
    path = prepare("casme2", data, out_dir=work / "clips", size=prepare_size)
    t2, c2 = time.perf_counter(), time.process_time()
    methods = collections.Counter(c["align"] for c in load_cache(path).clips)
    decoded, decoded_pil = decoded_digests(data)
    return {"jpeg": jpeg_digest(data), "fingerprint": cache_fingerprint(path), "align": dict(sorted(methods.items())),
            "decoded": decoded, "decoded_pil": decoded_pil,
            "synth_s": round(t1 - t0, 2), "synth_cpu_s": round(c1 - c0, 2),
            "prepare_s": round(t2 - t1, 2), "prepare_cpu_s": round(c2 - c1, 2)}


def jpeg_encoder_check(root: Path, quality: int = 92) -> dict:
    """Each stored frame, decoded, encoded again by OpenCV (its libjpeg-turbo's SIMD paths cannot be
    switched off) and by Pillow (plain C under JSIMD_FORCENONE=1), both decoded by Pillow: digests
    of the two. Equal digests: OpenCV's encoder wrote the coefficients the C reference writes."""
    import io

    import cv2
    from PIL import Image

    h_cv, h_pil = hashlib.sha256(), hashlib.sha256()
    for p in sorted(root.rglob("*.jpg")):
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"))
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        with Image.open(io.BytesIO(buf.tobytes())) as im:
            h_cv.update(im.convert("RGB").tobytes())
        out = io.BytesIO()
        Image.fromarray(rgb).save(out, "JPEG", quality=quality)
        with Image.open(io.BytesIO(out.getvalue())) as im:
            h_pil.update(im.convert("RGB").tobytes())
    return {"opencv": h_cv.hexdigest()[:16], "pillow": h_pil.hexdigest()[:16]}


def _worker(draw: str) -> None:
    import cv2

    if os.environ.get("FDP_BENCH_CV_UNOPTIMIZED") == "1":
        cv2.setUseOptimized(False)
    with tempfile.TemporaryDirectory() as tmp:
        result = generate_and_prepare(draw_args(draw), Path(tmp))
        if os.environ.get("FDP_BENCH_JPEG_CHECK") == "1":
            result["jpeg_encoder"] = jpeg_encoder_check(Path(tmp) / "data")
        print(json.dumps(result))


def run_in_env(env_name: str, draw: str, timeout: float = 900, jpeg_check: bool = False) -> dict:
    """One fresh process under ISA_ENVS[env_name]: the worker's JSON (with `jpeg_check`, also
    jpeg_encoder_check's digests under "jpeg_encoder")."""
    env = {**os.environ, **ISA_ENVS[env_name], "PYTHONPATH": str(REPO), "FDP_BENCH_JPEG_CHECK": "1" if jpeg_check else "0"}
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", draw], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{env_name}: worker failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draw", default="smoke", help="smoke, demo, or write_synthetic's arguments as JSON")
    ap.add_argument("--env", action="append", choices=sorted(ISA_ENVS), help="default: all")
    ap.add_argument("--worker", metavar="DRAW", help=argparse.SUPPRESS)
    ap.add_argument("--results", action="store_true", help="append the table to bench/results.md")
    a = ap.parse_args()
    if a.worker:
        _worker(a.worker)
        return
    rows = []
    for name in a.env or list(ISA_ENVS):
        r = run_in_env(name, a.draw, jpeg_check=name == "jpeg-nosimd")
        rows.append((name, r))
        if "jpeg_encoder" in r:
            print(f"{name:17s} OpenCV's JPEG encoder vs libjpeg-turbo's plain C one (decoded by Pillow): "
                  f"{r['jpeg_encoder']['opencv']} vs {r['jpeg_encoder']['pillow']}")
        print(f"{name:17s} jpeg {r['jpeg']}  fingerprint {r['fingerprint']}  decoded {r['decoded']} "
              f"(Pillow {r['decoded_pil']})  align {r['align']}  "
              f"synth {r['synth_s']} s ({r['synth_cpu_s']} cpu)  prepare {r['prepare_s']} s ({r['prepare_cpu_s']} cpu)",
              flush=True)
    if a.results:
        from bench.common import append_results

        lines = ["| environment | JPEG digest | cache fingerprint | alignment | synth s (cpu) | prepare s (cpu) |",
                 "|---|---|---|---|---|---|"]
        for name, r in rows:
            lines.append(f"| {name} | {r['jpeg']} | {r['fingerprint']} | {r['align']} | {r['synth_s']} "
                         f"({r['synth_cpu_s']}) | {r['prepare_s']} ({r['prepare_cpu_s']}) |")
        append_results(f"bench/fingerprints.py --draw {a.draw}", "\n".join(lines))


if __name__ == "__main__":
    main()
