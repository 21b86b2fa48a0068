"""Face alignment: eyes level and at the fixed positions under known rotations (SPEC §4.3)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from fdp.data.align import (ALIGNED_SIZE, TARGET_EYES, align_clip, apply_transform, estimate_transform,
                            resize_clip, similarity_from_points)

# pupil centres of skimage's astronaut, read off the image once (x, y), image-left first
ASTRONAUT_EYES = np.array([[202.5, 101.5], [246.5, 103.0]])


def _rotated_astronaut(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """A 260 x 260 crop around the face rotated by `angle` degrees (counter-clockwise), and where
    the true eye centres went."""
    img = data.astronaut()[0:260, 100:360]
    eyes = ASTRONAUT_EYES - (100, 0)
    rot = cv2.getRotationMatrix2D((130.0, 130.0), angle, 1.0)
    out = cv2.warpAffine(img, rot, (260, 260), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out, eyes @ rot[:, :2].T + rot[:, 2]


@pytest.mark.parametrize("angle", [-20, -12, -5, 0, 5, 12, 20])
def test_eyes_level_and_in_place(angle):
    img, eyes = _rotated_astronaut(angle)
    al = estimate_transform(img)
    assert al.method == "eyes"
    out = eyes @ al.matrix[:, :2].T + al.matrix[:, 2]  # true eyes mapped into the 72 x 72 crop
    tilt = np.degrees(np.arctan2(out[1, 1] - out[0, 1], out[1, 0] - out[0, 0]))
    assert abs(tilt) < 2.0
    assert np.abs(out - np.asarray(TARGET_EYES)).max() < 2.0


def test_one_transform_for_the_whole_clip():
    img, _ = _rotated_astronaut(10)
    shifted = np.roll(img, 7, axis=1)  # a later frame in which the head moved
    clip = align_clip([img, shifted])
    assert clip.shape == (2, ALIGNED_SIZE, ALIGNED_SIZE, 3) and clip.dtype == np.uint8
    # estimated on frame 0 only: frame 1 goes through frame 0's transform, not its own
    al = estimate_transform(img)
    np.testing.assert_array_equal(clip[1], apply_transform([shifted], al)[0])
    assert not np.array_equal(clip[1], align_clip([shifted])[0])
    assert np.abs(clip[1].astype(int) - clip[0].astype(int)).mean() > 5  # the head moved in the crop

def test_fallback_without_a_face():
    flat = np.full((120, 160, 3), 128, np.uint8)
    al = estimate_transform(flat)
    assert al.method == "frame" and al.eyes is None
    # the central 120 x 120 square scaled to 72
    np.testing.assert_allclose(al.matrix, [[0.6, 0, -12.0], [0, 0.6, 0]])
    out = resize_clip([flat, flat])
    assert out.shape == (2, 72, 72, 3) and (out == 128).all()


def test_similarity_from_points_maps_both_points():
    src = np.array([[10.0, 20.0], [40.0, 35.0]])
    dst = np.asarray(TARGET_EYES)
    m = similarity_from_points(src, dst)
    np.testing.assert_allclose(src @ m[:, :2].T + m[:, 2], dst, atol=1e-9)
    assert abs(m[0, 0] - m[1, 1]) < 1e-12 and abs(m[0, 1] + m[1, 0]) < 1e-12  # no shear
