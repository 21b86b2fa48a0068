"""The landmark aligner (`prepare --align landmarks`): the one-line refusal without its extra, the
cache settings it changes (and the Haar ones it leaves alone), its eyes on a real photograph, and
the `fdp.align` tag on runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from fdp.data import landmarks
from fdp.data.cache import alignment_label, cache_key, preprocessing_settings
from fdp.data.samples import DataError
from orchestrator.cli.main import main

HAVE_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None
# pupil centres of skimage's astronaut (x, y), image-left first (tests/test_align.py)
ASTRONAUT_EYES = np.array([[202.5, 101.5], [246.5, 103.0]])


@pytest.fixture
def no_extra(monkeypatch):
    """As if `pip install 'fdp-sweep[landmarks]'` had not been run."""
    landmarks._dlib.cache_clear()
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    yield
    landmarks._dlib.cache_clear()


def test_without_the_extra_asking_for_landmarks_is_one_line_naming_it(no_extra, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"pip install 'fdp-sweep\[landmarks\]'"):
        landmarks.check_available("landmarks")
    landmarks.check_available("haar")  # the default needs nothing
    res = CliRunner().invoke(main, ["prepare", "casme2", "--root", str(tmp_path), "--align", "landmarks"])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0, res.output  # one line, no traceback
    assert "pip install 'fdp-sweep[landmarks]'" in res.output


def test_no_align_and_a_landmark_aligner_exclude_each_other(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["prepare", "casme2", "--root", str(tmp_path), "--no-align", "--align", "landmarks"])
    assert res.exit_code == 2 and "choose one" in res.output


def test_haar_settings_and_keys_are_unchanged_and_landmarks_get_their_own() -> None:
    haar = preprocessing_settings()
    # what Haar caches are keyed on, the landmark option apart (version 2: the exact-arithmetic Haar path)
    assert haar == {"version": 2, "size": 72, "align": "haar-eyes-onset",
                    "target_eyes": [[22.0, 26.0], [50.0, 26.0]], "colour": "rgb"}
    assert preprocessing_settings(method="haar") == haar
    assert preprocessing_settings(align=False, method="landmarks")["align"] == "centre-square-resize"
    if not HAVE_DLIB:
        pytest.skip("the landmarks extra is not installed")
    lm = preprocessing_settings(method="landmarks")
    assert lm["align"] == "landmarks-eyes-onset"
    assert lm["align_version"].startswith("dlib ") and "face-recognition-models 0.3.0" in lm["align_version"]
    root = Path("/data/casme2")
    assert cache_key("casme2", root, lm, "fp") != cache_key("casme2", root, haar, "fp")


def test_alignment_label_names_method_and_version_and_reads_old_caches() -> None:
    assert alignment_label({"alignment": {"method": "haar", "version": "opencv 4.14.0 haar cascades"}}) == \
        "haar (opencv 4.14.0 haar cascades)"
    assert alignment_label({"settings": {"align": "haar-eyes-onset"}}) == "haar"  # prepared before it was recorded
    assert alignment_label({"settings": {"align": "centre-square-resize"}}) == "none (centre square, resized)"
    merged = {"settings": {"align": "landmarks-eyes-onset", "align_version": "dlib 20.0.1 hog"}}
    assert alignment_label(merged) == "landmarks (dlib 20.0.1 hog)"


def test_runs_carry_the_alignment_as_a_tag() -> None:
    from orchestrator.plan.jobs import DataRef
    from orchestrator.track.driver import contact_sheet_dir, data_tags

    ref = DataRef("casme2", "/c", "f" * 16, "/r", 10, "now", False, "landmarks (dlib 20.0.1 hog + 5-point predictor)")
    tags = data_tags(SimpleNamespace(data=ref, test_data=None))
    assert tags["fdp.align"] == "landmarks (dlib 20.0.1 hog + 5-point predictor)"
    test_ref = DataRef("samm", "/s", "e" * 16, "/r2", 5, "now", False, "haar (opencv 4.14.0 haar cascades)")
    tags = data_tags(SimpleNamespace(data=ref, test_data=test_ref))
    assert tags["fdp.test_align"] == "haar (opencv 4.14.0 haar cascades)"
    assert contact_sheet_dir(ref) == "data/casme2-" + "f" * 16
    old = DataRef("casme2", "/c", "f" * 16, "/r", 10, "now", False)  # a ref without it: no empty tag
    assert "fdp.align" not in data_tags(SimpleNamespace(data=old, test_data=None))


@pytest.mark.skipif(not HAVE_DLIB, reason="the landmarks extra is not installed (pip install 'fdp-sweep[landmarks]')")
@pytest.mark.parametrize("angle", [-25, 0, 25])
def test_landmark_eyes_on_the_astronaut(angle: float) -> None:
    import cv2
    from skimage import data

    img = data.astronaut()
    rot = cv2.getRotationMatrix2D((256.0, 256.0), angle, 1.0)
    img = cv2.warpAffine(img, rot, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    truth = ASTRONAUT_EYES @ rot[:, :2].T + rot[:, 2]
    al = landmarks.estimate(img, method="landmarks")
    assert al.method == "eyes"
    iod = np.linalg.norm(truth[1] - truth[0])
    assert np.linalg.norm(al.eyes - truth, axis=1).max() < 0.08 * iod
    # the transform puts them where the Haar path does
    from fdp.data.align import TARGET_EYES

    np.testing.assert_allclose(al.eyes @ al.matrix[:, :2].T + al.matrix[:, 2], TARGET_EYES, atol=1e-9)


@pytest.mark.skipif(not HAVE_DLIB, reason="the landmarks extra is not installed (pip install 'fdp-sweep[landmarks]')")
def test_landmark_aligner_falls_back_to_the_frame_without_a_face() -> None:
    al = landmarks.estimate(np.full((120, 160, 3), 128, np.uint8), method="landmarks")
    assert al.method == "frame" and al.eyes is None
    np.testing.assert_allclose(al.matrix, [[0.6, 0, -12.0], [0, 0.6, 0]])
