import numpy as np
import pytest

from training.data.degrade import (
    Degradation,
    DegradationConfig,
    add_poisson_gaussian_noise,
    degrade_to_uint8,
    jpeg_round_trip,
    sample_degradation,
)


@pytest.mark.parametrize("exact", [False, True])
def test_noise_variance_is_shot_times_signal_plus_read_squared(exact):
    rng = np.random.default_rng(0)
    flat = np.full((256, 256), 0.25, np.float32)
    noisy = add_poisson_gaussian_noise(flat, rng, 2e-3, 5e-3, exact_poisson=exact)
    assert noisy.mean() == pytest.approx(0.25, abs=1e-3)
    assert noisy.var() == pytest.approx(2e-3 * 0.25 + 5e-3**2, rel=0.05)
    dark = add_poisson_gaussian_noise(np.zeros((64, 64), np.float32), rng, 2e-3, 5e-3)
    assert dark.min() >= 0.0  # clipped at the black level


def test_jpeg_keeps_channel_order_and_colour():
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0] = 200  # pure red
    out = jpeg_round_trip(image, 90)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image).mean() < 3


def test_zero_probabilities_leave_a_clean_encoding():
    cfg = DegradationConfig(noise_probability=0, defocus_probability=0, jpeg_probability=0)
    d = sample_degradation(np.random.default_rng(0), cfg)
    assert d == Degradation()
    linear = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    a = degrade_to_uint8(linear, np.random.default_rng(2), d)
    b = degrade_to_uint8(linear, np.random.default_rng(3), d)
    assert np.array_equal(a, b)


def test_draw_count_does_not_depend_on_probabilities():
    on = DegradationConfig(noise_probability=1, defocus_probability=1, jpeg_probability=1)
    off = DegradationConfig(noise_probability=0, defocus_probability=0, jpeg_probability=0)
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    sample_degradation(r1, on)
    sample_degradation(r2, off)
    assert r1.random() == r2.random()


def test_config_validates_and_accepts_lists():
    cfg = DegradationConfig(jpeg_quality=[70, 80], shot_noise=[1e-4, 1e-3])
    assert cfg.jpeg_quality == (70, 80) and cfg.shot_noise == (1e-4, 1e-3)
    with pytest.raises(ValueError, match="jpeg_quality"):
        DegradationConfig(jpeg_quality=(50, 120))
    with pytest.raises(ValueError, match="noise_probability"):
        DegradationConfig(noise_probability=1.5)
    with pytest.raises(ValueError, match="read_noise"):
        DegradationConfig(read_noise=(0.0, 1e-3))
