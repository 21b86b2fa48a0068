"""The synthetic benchmark and `prepare` are bytes, not a platform accident: the same seed gives the
same JPEG files and the same cache fingerprint on every CPU.

A reduced draw through the demo's code path (write_synthetic + prepare at the laptop frame size)
has pinned digests: in process (also with OpenCV's optimised kernels off), and in fresh processes
under each emulated instruction set of bench/fingerprints.py (numpy, OpenCV, OpenBLAS, torch and
libjpeg-turbo dispatch switched down). The demo's own draw has its fingerprint pinned as
`orchestrator.cli.demo.DEMO_FINGERPRINT`, checked natively and under the AVX2 emulation.

A deliberate change of the generator or of the alignment changes these digests: regenerate them
with `python bench/fingerprints.py --draw '<TINY as JSON>' --env native` (and `--draw demo`), and
say in the commit why the bytes changed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import pytest

from fdp.data.cache import cache_fingerprint, prepare

REPO = Path(__file__).resolve().parents[1]

# blinks, several subjects and faces, the rotations and fallbacks of the aligner, a few seconds
TINY = {"subjects": 3, "clips_per_subject": 2, "seed": 7, "amplitude": 0.12, "difficulty": 0.0,
        "frames_per_clip": 12, "size": 96}
TINY_JPEG = "446c2456c7b5d84c"  # jpeg_digest: the frame files' paths and bytes
TINY_DECODED = "67461425ebaacbab"  # decoded_digests: their pixels as OpenCV decodes them
TINY_FINGERPRINT = "c8e48c3bbc8399ca"  # the prepared cache's content fingerprint


def _bench():
    spec = importlib.util.spec_from_file_location("bench_fingerprints", REPO / "bench" / "fingerprints.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reduced_draw_gives_the_pinned_bytes(tmp_path):
    """In process: the JPEGs, their decoded pixels and the prepared cache are the pinned ones, and a
    second preparation with OpenCV's optimised kernels switched off gives the same fingerprint."""
    r = _bench().generate_and_prepare(TINY, tmp_path / "a")
    assert (r["jpeg"], r["decoded"], r["fingerprint"]) == (TINY_JPEG, TINY_DECODED, TINY_FINGERPRINT), r
    assert r["decoded_pil"] == r["decoded"]  # Pillow's libjpeg-turbo decodes the same pixels
    was = cv2.useOptimized()
    cv2.setUseOptimized(False)
    try:
        again = prepare("casme2", tmp_path / "a" / "data", out_dir=tmp_path / "b", size=36)
    finally:
        cv2.setUseOptimized(was)
    assert cache_fingerprint(again) == TINY_FINGERPRINT


@pytest.mark.integration
def test_reduced_draw_is_the_same_under_every_instruction_set():
    """Fresh processes with numpy / OpenCV / OpenBLAS / torch / libjpeg-turbo dispatch limited
    (down to every library's baseline at once): the same pinned digests. Under JSIMD_FORCENONE,
    Pillow's plain-C libjpeg-turbo decodes the frames to the pixels OpenCV's SIMD decoder gives,
    and re-encoded by both, the frames decode alike: OpenCV's encoder writes what the C one writes."""
    from concurrent.futures import ThreadPoolExecutor

    bench = _bench()
    draw = json.dumps(TINY)
    with ThreadPoolExecutor(max_workers=2) as pool:  # one process per core: each is single-threaded work
        runs = dict(zip(bench.ISA_ENVS, pool.map(
            lambda env: bench.run_in_env(env, draw, timeout=600, jpeg_check=env == "jpeg-nosimd"), bench.ISA_ENVS)))
    seen = {env: (r["jpeg"], r["decoded"], r["fingerprint"]) for env, r in runs.items()}
    assert runs["jpeg-nosimd"]["decoded_pil"] == TINY_DECODED
    assert runs["jpeg-nosimd"]["jpeg_encoder"]["opencv"] == runs["jpeg-nosimd"]["jpeg_encoder"]["pillow"], \
        runs["jpeg-nosimd"]["jpeg_encoder"]
    assert seen == {env: (TINY_JPEG, TINY_DECODED, TINY_FINGERPRINT) for env in bench.ISA_ENVS}


@pytest.mark.integration
@pytest.mark.parametrize("env", ["native", "avx2"])
def test_demo_draw_has_the_pinned_fingerprint(env):
    """The demo's draw (DEMO_DATA at the laptop frame size) prepared in a fresh process, natively and
    as an AVX2 machine without AVX-512 runs it: DEMO_FINGERPRINT, the data the README's demo ran on."""
    from orchestrator.cli.demo import DEMO_FINGERPRINT

    r = _bench().run_in_env(env, "demo", timeout=900)
    assert r["fingerprint"] == DEMO_FINGERPRINT, r
