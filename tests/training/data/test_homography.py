import math

import numpy as np
import pytest

from training.data.colour import linear_to_srgb_uint8, srgb_uint8_to_linear
from training.data.homography import (
    average_warped_subframes,
    camera_path_homographies,
    camera_shake_homographies,
    displacement_extent,
    focal_length_px,
    map_points,
    random_camera_path,
    scale_path_to_extent,
    window_points,
)

H, W = 90, 120
CAMERA = (focal_length_px(W, H, 60.0), ((W - 1) / 2, (H - 1) / 2), math.hypot(W, H) / 2)


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_averaging_along_a_zero_motion_path_returns_the_image():
    image = _image()
    homs = camera_path_homographies(np.zeros((16, 6)), *CAMERA)
    np.testing.assert_allclose(homs, np.tile(np.eye(3), (16, 1, 1)), atol=1e-12)
    out = average_warped_subframes(srgb_uint8_to_linear(image), homs, (H, W))
    assert np.abs(linear_to_srgb_uint8(out).astype(int) - image).max() <= 1


def test_a_pure_shift_moves_the_image_by_that_many_pixels():
    image = _image(1)
    path = np.zeros((1, 6))
    path[0, 3:5] = 5.0, -3.0  # output pixel p shows source pixel p + (5, -3)
    homs = camera_path_homographies(path, *CAMERA)
    out = average_warped_subframes(image.astype(np.float32), homs, (H, W))
    np.testing.assert_allclose(out[3:, : W - 5], image[: H - 3, 5:], atol=1e-4)


@pytest.mark.parametrize("extent", [3.0, 20.0, 35.0])
def test_a_scaled_camera_path_reaches_the_requested_extent(extent):
    rng = np.random.default_rng(4)
    points = window_points(10, 5, 64, 64)
    path = scale_path_to_extent(random_camera_path(rng), extent, points, *CAMERA)
    homs, weights = camera_shake_homographies(path, points, *CAMERA, max_subframes=512)
    # Sub-frames ~1 px apart can fall up to half a pixel short of a turning point.
    assert displacement_extent(homs, points) == pytest.approx(extent, rel=0.05, abs=0.5)
    assert np.any(np.all(np.abs(homs - np.eye(3)) < 1e-9, axis=(1, 2)))  # one identity pose
    assert weights.sum() == pytest.approx(1.0) and weights.min() >= 0.0
    steps = np.linalg.norm(np.diff(map_points(homs, points), axis=0), axis=-1)
    assert steps.max() <= 1.1  # sub-frames close enough to smear, not to ghost


def test_roll_blurs_corners_more_than_the_centre():
    path = np.zeros((32, 6))
    path[:, 2] = np.linspace(0.0, 10.0, 32)  # roll only
    homs = camera_path_homographies(path, *CAMERA)
    centre = np.array([CAMERA[1]])
    corner = np.array([[0.0, 0.0]])
    assert displacement_extent(homs, centre) < 1e-6
    assert displacement_extent(homs, corner) > 5.0
