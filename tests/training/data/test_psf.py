import numpy as np
import pytest

from training.data.colour import srgb_uint8_to_linear
from training.data.psf import (
    arc_length_subframes,
    blur_kernel_from_trajectory,
    convolve_linear,
    kernel_extent,
    path_length,
    random_trajectory,
    sample_path,
    trajectory_extent,
)


@pytest.mark.parametrize("extent", [1.0, 4.0, 12.5, 35.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_sums_to_one_and_reaches_requested_extent(extent, seed):
    rng = np.random.default_rng(seed)
    path = random_trajectory(rng, extent, exposure=rng.uniform(0.25, 1.0))
    assert trajectory_extent(path) == pytest.approx(extent, rel=1e-9)
    kernel = blur_kernel_from_trajectory(path)
    assert kernel.dtype == np.float32 and kernel.ndim == 2
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.min() >= 0.0
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    # Support measured on pixel centres above 1 % of the peak; bilinear splatting spreads the
    # path's ends by up to a pixel, hence the tolerance.
    measured = kernel_extent(kernel, threshold=0.01)
    assert abs(measured - extent) <= max(2.0, 0.15 * extent), (measured, extent)


def test_kernel_centre_of_mass_is_its_centre_pixel():
    path = np.array([[0.0, 0.0], [7.3, 0.0], [7.3, 3.1]])  # an L: centroid off the midpoint
    kernel = blur_kernel_from_trajectory(path).astype(np.float64)
    ys, xs = np.indices(kernel.shape)
    c = kernel.shape[0] // 2
    assert (kernel * xs).sum() == pytest.approx(c, abs=1e-6)
    assert (kernel * ys).sum() == pytest.approx(c, abs=1e-6)


def test_slow_stretches_of_the_path_weigh_more():
    # Equal time per sample: 9 samples crowd the first pixel, the rest sweep 10 px quickly.
    path = np.concatenate([np.zeros((9, 2)), [[10.0, 0.0]]])
    kernel = blur_kernel_from_trajectory(path)
    row = kernel[kernel.shape[0] // 2]
    assert row.argmax() == np.nonzero(row)[0][0]  # the peak is at the start, where it lingered


def test_blurring_a_single_bright_pixel_reproduces_the_kernel():
    rng = np.random.default_rng(7)
    kernel = blur_kernel_from_trajectory(random_trajectory(rng, 15.0))
    k = kernel.shape[0]
    image = np.zeros((64, 72), np.uint8)
    image[30, 33] = 255
    linear = srgb_uint8_to_linear(np.repeat(image[..., None], 3, axis=2))
    out = convolve_linear(linear, kernel)
    top, left = 30 - k // 2, 33 - k // 2
    for ch in range(3):
        np.testing.assert_allclose(out[top : top + k, left : left + k, ch], kernel, atol=1e-6)
    outside = out.copy()
    outside[top : top + k, left : left + k] = 0
    assert np.abs(outside).max() < 1e-6


def test_short_exposures_give_straighter_paths():
    def curliness(exposure):
        rng = np.random.default_rng(3)
        paths = [random_trajectory(rng, 20.0, exposure=exposure) for _ in range(40)]
        return np.mean([path_length(p) / trajectory_extent(p) for p in paths])

    assert curliness(0.25) < curliness(1.0)


def test_trajectories_are_deterministic_per_generator_seed():
    a = random_trajectory(np.random.default_rng(11), 9.0)
    b = random_trajectory(np.random.default_rng(11), 9.0)
    c = random_trajectory(np.random.default_rng(12), 9.0)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert random_trajectory(np.random.default_rng(0), 0.0).max() == 0.0


def test_convolution_rejects_even_kernels():
    with pytest.raises(ValueError, match="odd"):
        convolve_linear(np.zeros((8, 8), np.float32), np.ones((2, 2), np.float32) / 4)


def test_arc_length_subframes_are_evenly_spaced_and_weighted_by_time():
    # 49 steps standing still, then 50 steps of 0.4 px: 20 px at constant speed.
    still = np.zeros((50, 2))
    moving = np.stack([np.linspace(0.4, 20.0, 50), np.zeros(50)], axis=1)
    path = np.concatenate([still, moving])
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    times, weights = arc_length_subframes(steps, 1.0, 2, 64)
    x = sample_path(path, times)[:, 0]
    assert len(times) == 21
    np.testing.assert_allclose(np.diff(x), 1.0, atol=1e-6)
    # Each sub-frame gets the time spent within half a pixel of it: the pause lands on the first.
    expected = np.full(21, 2.5)
    expected[0], expected[-1] = 49 + 1.25, 1.25
    np.testing.assert_allclose(weights, expected / 99, atol=1e-6)
