import numpy as np

from training.data.object_motion import (
    composite_moving_object,
    premultiplied_layer,
    random_object_mask,
    random_object_path,
)


def _scene():
    rng = np.random.default_rng(0)
    margin = 6
    background = np.full((48 + 2 * margin, 64 + 2 * margin, 3), 0.2, np.float32)
    alpha = random_object_mask(rng, 16, 20)
    layer = premultiplied_layer(np.full((16, 20, 3), 0.8, np.float32), alpha)
    return rng, margin, background, alpha, layer


def test_masks_are_soft_bounded_and_clear_at_the_border():
    rng = np.random.default_rng(1)
    for _ in range(6):
        mask = random_object_mask(rng, 30, 40)
        assert mask.shape == (30, 40) and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        assert mask.max() > 0.99 and mask[0].max() < 0.05 and mask[:, -1].max() < 0.05
        assert ((mask > 0.02) & (mask < 0.98)).any()  # a feathered edge


def test_a_still_object_is_composited_without_resampling():
    _, margin, background, alpha, layer = _scene()
    still = np.zeros((1, 2))
    out = composite_moving_object(background, margin, layer, (10, 7), still, still, np.zeros(1))
    expected = np.full((48, 64, 3), 0.2, np.float32)
    expected[7:23, 10:30] = 0.2 * (1 - alpha[..., None]) + 0.8 * alpha[..., None]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_moving_object_smears_but_conserves_light():
    rng, margin, background, _, layer = _scene()
    offsets, angles = random_object_path(rng, 12.0, 24)
    offsets -= offsets.mean(0)
    camera = np.zeros_like(offsets)
    still = np.zeros((1, 2))
    sharp = composite_moving_object(background, margin, layer, (22, 16), still, still, [0.0])
    blurred = composite_moving_object(background, margin, layer, (22, 16), camera, offsets, angles)
    # The object stays inside the crop, so the exposure holds the same light, spread out.
    assert blurred.sum() == np.float32(blurred.sum())
    np.testing.assert_allclose(blurred.sum(), sharp.sum(), rtol=2e-3)
    assert np.abs(blurred - sharp).max() > 0.1
    assert np.allclose(blurred[:4], 0.2, atol=1e-6)  # far from the object: background only
